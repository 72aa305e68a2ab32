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

// The configuration every sample in testdata/traefik describes.
const wantSampleConfig = `{
	"Secrets": ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"],
	"SecretsFile": "",
	"TimestampTolerance": "2m",
	"TimestampUnit": "seconds",
	"Events": ["mix_start", "mix_stop"],
	"MaxBodyBytes": 65536,
	"HeaderPrefix": "X-Zego-",
	"Duplicates": "reject",
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
		"TLS": false,
		"TLSSkipVerify": false,
		"TLSCAFile": "",
		"Timeout": "250ms",
		"KeyPrefix": "zego-callback:",
		"FailOpen": false
	}
}`

// TestSampleConfigsDecodeAlike decodes each sample dynamic configuration as its Traefik
// provider would (paerser for files and labels, JSON and Secret substitution for the
// Kubernetes CRD), then through Traefik's mapstructure settings into the interpreted
// plugin's Config, and builds the middleware from it.
func TestSampleConfigsDecodeAlike(t *testing.T) {
	dir := filepath.Join(pluginload.RepoRoot(), "testdata", "traefik")
	samples := []struct {
		desc string
		load func() (map[string]any, error)
	}{
		{"file provider, YAML", func() (map[string]any, error) {
			return pluginload.PluginConfFromFile(filepath.Join(dir, "dynamic.yml"), "zego-callback", "zegocallback")
		}},
		{"file provider, TOML", func() (map[string]any, error) {
			return pluginload.PluginConfFromFile(filepath.Join(dir, "dynamic.toml"), "zego-callback", "zegocallback")
		}},
		{"Docker labels", func() (map[string]any, error) {
			labels, err := pluginload.ComposeLabels(filepath.Join(dir, "docker-compose.yml"), "callback-backend")
			if err != nil {
				return nil, err
			}
			return pluginload.PluginConfFromLabels(labels, "zego-callback", "zegocallback")
		}},
		{"Kubernetes Middleware with a Secret", func() (map[string]any, error) {
			return pluginload.PluginConfFromKubernetes(filepath.Join(dir, "kubernetes.yml"), "zego-callback", "zegocallback")
		}},
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(wantSampleConfig), &want); err != nil {
		t.Fatal(err)
	}
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
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
				t.Errorf("Config has %d fields, the test knows %d: add the new ones to the samples", len(got), len(want))
			}
			// New reads passwordFile; the sample names a Docker secret's path.
			passwordFile := filepath.Join(t.TempDir(), "redis_password")
			if err := os.WriteFile(passwordFile, []byte("sample\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.Elem().FieldByName("Redis").FieldByName("PasswordFile").SetString(passwordFile)
			if _, err := p.NewHandler(context.Background(), http.NotFoundHandler(), cfg, "zego-callback@sample"); err != nil {
				t.Errorf("New: %v", err)
			}
		})
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
