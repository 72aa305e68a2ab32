package test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
)

// The configuration every file of test/testdata/every-option describes.
const wantEveryOption = `{
	"Secrets": ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"],
	"SecretsFile": "",
	"AppSecrets": {"1234567": ["abcdef0123456789abcdef0123456789"], "7654321": ["bcdef0123456789abcdef0123456789a", "cdef0123456789abcdef0123456789ab"]},
	"AppSecretsFile": "/run/secrets/zego_app_secrets",
	"TimestampTolerance": "2m",
	"TimestampUnit": "seconds",
	"Events": ["mix_start", "mix_stop"],
	"MaxBodyBytes": 65536,
	"HeaderPrefix": "X-Zego-",
	"Duplicates": "reject",
	"RememberAnswerBytes": 512,
	"RetryOn": "noAnswer",
	"NonceCapacity": 200000,
	"ReplayKey": "signatureAndBody",
	"InFlightTimeout": "30s",
	"Fields": ["event", "appid", "task_id"],
	"MaxHeaderFields": 32,
	"MaxHeaderValueBytes": 2048,
	"ReportOnly": true,
	"NonceStore": "redis",
	"Redis": {
		"Address": "redis.internal:6379",
		"Username": "traefik",
		"Password": "",
		"PasswordFile": "/run/secrets/redis_password",
		"DB": 2,
		"TLS": true,
		"TLSSkipVerify": false,
		"TLSCAFile": "",
		"TLSCertFile": "",
		"TLSKeyFile": "",
		"Timeout": "250ms",
		"KeyPrefix": "zego-callback:",
		"Sentinels": ["sentinel-0.internal:26379", "sentinel-1.internal:26379"],
		"MasterName": "zego",
		"SentinelUsername": "traefik-sentinel",
		"SentinelPassword": "",
		"SentinelPasswordFile": "/run/secrets/sentinel_password",
		"TLSServerName": "redis.internal",
		"WaitReplicas": 1,
		"FailOpen": false
	}
}`

// decoders load the middleware called zego-callback from a file of dir as each of
// Traefik's providers would: paerser for files and labels, JSON and Secret substitution
// for the Kubernetes CRD.
func decoders(dir, yml, toml, compose, kubernetes string) []decoder {
	return []decoder{
		{"file provider, YAML", func() (map[string]any, error) {
			return pluginload.PluginConfFromFile(filepath.Join(dir, yml), "zego-callback", "zegocallback")
		}},
		{"file provider, TOML", func() (map[string]any, error) {
			return pluginload.PluginConfFromFile(filepath.Join(dir, toml), "zego-callback", "zegocallback")
		}},
		{"Docker labels", func() (map[string]any, error) {
			labels, err := pluginload.ComposeLabels(filepath.Join(dir, compose), "callback-backend")
			if err != nil {
				return nil, err
			}
			return pluginload.PluginConfFromLabels(labels, "zego-callback", "zegocallback")
		}},
		{"Kubernetes Middleware", func() (map[string]any, error) {
			return pluginload.PluginConfFromKubernetes(filepath.Join(dir, kubernetes), "zego-callback", "zegocallback")
		}},
	}
}

type decoder struct {
	desc string
	load func() (map[string]any, error)
}

// TestEveryOptionDecodesAlike decodes the fixture that sets every option, in each
// provider's form, through Traefik's mapstructure settings into the interpreted plugin's
// Config: each gives the same configuration, and the middleware builds from it.
func TestEveryOptionDecodesAlike(t *testing.T) {
	dir := filepath.Join(pluginload.RepoRoot(), "test", "testdata", "every-option")
	var want map[string]any
	if err := json.Unmarshal([]byte(wantEveryOption), &want); err != nil {
		t.Fatal(err)
	}
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range decoders(dir, "dynamic.yml", "dynamic.toml", "docker-labels.yml", "kubernetes.yml") {
		s := s
		t.Run(s.desc, func(t *testing.T) {
			raw, err := s.load()
			if err != nil {
				t.Fatalf("provider decoding: %v", err)
			}
			cfg, err := p.CreateConfig(raw)
			if err != nil {
				t.Fatalf("Traefik's plugin decoding of %v: %v", raw, err)
			}
			got := configAsMap(t, cfg.Interface())
			for k, v := range want {
				gj, _ := json.Marshal(got[k])
				wj, _ := json.Marshal(v)
				if string(gj) != string(wj) {
					t.Errorf("%s = %s, want %s (provider gave %#v)", k, gj, wj, raw[strings.ToLower(k[:1])+k[1:]])
				}
			}
			if len(got) != len(want) {
				t.Errorf("Config has %d fields, the test knows %d: add the new ones to the fixture", len(got), len(want))
			}
			if n := cfg.Elem().FieldByName("Unknown").Len(); n != 0 {
				t.Errorf("%d keys were not taken: %v", n, cfg.Elem().FieldByName("Unknown").Interface())
			}
			// New reads passwordFile and appSecretsFile; the fixture names Docker secrets'
			// paths. It sets
			// nonceCapacity, which a Redis store does not use and New refuses, to check
			// that it decodes.
			passwordFile := filepath.Join(t.TempDir(), "redis_password")
			if err := os.WriteFile(passwordFile, []byte("sample\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			redis := cfg.Elem().FieldByName("Redis")
			redis.FieldByName("PasswordFile").SetString(passwordFile)
			redis.FieldByName("SentinelPasswordFile").SetString(passwordFile)
			// address and sentinels do not go together: the fixture sets both to check
			// that both decode.
			redis.FieldByName("Address").SetString("127.0.0.1:6379")
			appSecretsFile := filepath.Join(t.TempDir(), "zego_app_secrets")
			if err := os.WriteFile(appSecretsFile, []byte("2222222 def0123456789abcdef0123456789abc\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.Elem().FieldByName("AppSecretsFile").SetString(appSecretsFile)
			cfg.Elem().FieldByName("NonceCapacity").SetInt(1000000)
			if _, err := p.NewHandler(context.Background(), http.NotFoundHandler(), cfg, "zego-callback@every-option"); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

// TestSamplesEnforce holds what a user copies from testdata/traefik to what protects as
// it stands: each sample's middleware enforces (no reportOnly), reads its secrets from a
// file, and builds; the end-to-end test sends forgeries through each (TestSamplesRefuseForgeries).
func TestSamplesEnforce(t *testing.T) {
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range SampleDecoders() {
		s := s
		t.Run(s.desc, func(t *testing.T) {
			raw, err := s.load()
			if err != nil {
				t.Fatalf("provider decoding: %v", err)
			}
			for k := range raw {
				if strings.EqualFold(k, "reportOnly") || strings.EqualFold(k, "secrets") {
					t.Errorf("a sample sets %s", k)
				}
			}
			if raw["secretsFile"] == nil {
				t.Errorf("the sample reads no secretsFile: %v", raw)
			}
			raw["secretsFile"] = secretsFileFor(t)
			if _, err := p.Build(context.Background(), raw, http.NotFoundHandler(), "zego-callback@sample"); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

// SampleDecoders decode the samples a user copies.
func SampleDecoders() []decoder {
	return decoders(filepath.Join(pluginload.RepoRoot(), "testdata", "traefik"), "dynamic.yml", "dynamic.toml", "docker-compose.yml", "kubernetes.yml")
}

func secretsFileFor(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMistakesRefusedUnderEveryDecoder: a misspelt key, at the top or under redis, reaches
// New through each provider's decoder, and New refuses it, naming the key it meant.
func TestMistakesRefusedUnderEveryDecoder(t *testing.T) {
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secrets := secretsFileFor(t)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("dynamic.yml", `http:
  middlewares:
    zego-callback:
      plugin:
        zegocallback:
          secretsFile: `+secrets+`
          timestampTolerence: 10s
          nonceStore: redis
          redis:
            adress: redis:6379
`)
	write("dynamic.toml", `[http.middlewares.zego-callback.plugin.zegocallback]
  secretsFile = "`+secrets+`"
  timestampTolerence = "10s"
  nonceStore = "redis"
[http.middlewares.zego-callback.plugin.zegocallback.redis]
  adress = "redis:6379"
`)
	write("compose.yml", `services:
  callback-backend:
    labels:
      - traefik.http.middlewares.zego-callback.plugin.zegocallback.secretsFile=`+secrets+`
      - traefik.http.middlewares.zego-callback.plugin.zegocallback.timestampTolerence=10s
      - traefik.http.middlewares.zego-callback.plugin.zegocallback.nonceStore=redis
      - traefik.http.middlewares.zego-callback.plugin.zegocallback.redis.adress=redis:6379
`)
	write("kubernetes.yml", `apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: zego-callback
spec:
  plugin:
    zegocallback:
      secretsFile: `+secrets+`
      timestampTolerence: 10s
      nonceStore: redis
      redis:
        adress: redis:6379
`)
	for _, d := range decoders(dir, "dynamic.yml", "dynamic.toml", "compose.yml", "kubernetes.yml") {
		raw, err := d.load()
		if err != nil {
			t.Fatalf("%s: provider decoding: %v", d.desc, err)
		}
		_, err = p.Build(context.Background(), raw, http.NotFoundHandler(), "zego-callback@mistake")
		want := `unknown keys "redis.adress" (did you mean redis.address?), "timestampTolerence" (did you mean timestampTolerance?)`
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
			t.Errorf("%s: New: %v, want %s", d.desc, err, want)
		}
	}
}

func configAsMap(t *testing.T, cfg any) map[string]any {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAppSecretsUnderEveryDecoder: appSecrets, a map from app id to secrets, reaches the
// plugin alike from a YAML and a TOML file, Docker labels (a comma-separated list) and a
// Kubernetes Middleware, and the middleware builds from it; an app id written as an
// unquoted YAML number, which Traefik's decoder turns into the text "<int Value>", is
// refused with a message that says to quote it.
func TestAppSecretsUnderEveryDecoder(t *testing.T) {
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const a1, a2, b1 = "0123456789abcdef0123456789abcdea", "0123456789abcdef0123456789abcdeb", "0123456789abcdef0123456789abcdec"
	write("dynamic.yml", `http:
  middlewares:
    zego-callback:
      plugin:
        zegocallback:
          appSecrets:
            "1234567": [`+a1+`, `+a2+`]
            "7654321":
              - `+b1+`
`)
	write("dynamic.toml", `[http.middlewares.zego-callback.plugin.zegocallback.appSecrets]
  "1234567" = ["`+a1+`", "`+a2+`"]
  "7654321" = ["`+b1+`"]
`)
	write("compose.yml", `services:
  callback-backend:
    labels:
      - traefik.http.middlewares.zego-callback.plugin.zegocallback.appSecrets.1234567=`+a1+`,`+a2+`
      - traefik.http.middlewares.zego-callback.plugin.zegocallback.appSecrets.7654321=`+b1+`
`)
	write("kubernetes.yml", `apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: zego-callback
spec:
  plugin:
    zegocallback:
      appSecrets:
        "1234567":
          - `+a1+`
          - `+a2+`
        "7654321": [`+b1+`]
`)
	want := `{"1234567":["` + a1 + `","` + a2 + `"],"7654321":["` + b1 + `"]}`
	for _, d := range decoders(dir, "dynamic.yml", "dynamic.toml", "compose.yml", "kubernetes.yml") {
		raw, err := d.load()
		if err != nil {
			t.Fatalf("%s: provider decoding: %v", d.desc, err)
		}
		cfg, err := p.CreateConfig(raw)
		if err != nil {
			t.Fatalf("%s: Traefik's plugin decoding: %v", d.desc, err)
		}
		got, _ := json.Marshal(configAsMap(t, cfg.Interface())["AppSecrets"])
		if string(got) != want {
			t.Errorf("%s: appSecrets = %s, want %s", d.desc, got, want)
		}
		if _, err := p.Build(context.Background(), raw, http.NotFoundHandler(), "zego-callback@apps"); err != nil {
			t.Errorf("%s: New: %v", d.desc, err)
		}
	}

	write("unquoted.yml", `http:
  middlewares:
    zego-callback:
      plugin:
        zegocallback:
          appSecrets:
            1234567: [`+a1+`]
`)
	raw, err := pluginload.PluginConfFromFile(filepath.Join(dir, "unquoted.yml"), "zego-callback", "zegocallback")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Build(context.Background(), raw, http.NotFoundHandler(), "zego-callback@unquoted")
	if err == nil || !strings.Contains(err.Error(), `reaches the plugin as "<int Value>": quote it`) {
		t.Errorf("an unquoted app id: New: %v, want the advice to quote it", err)
	}
}
