package conformance

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// ConfigCase is a configuration New must refuse (WantErr, a part of the error's text,
// usually the key) or accept (WantErr empty).
type ConfigCase struct {
	Desc    string
	Config  map[string]any
	WantErr string
}

// ConfigCases lists New's errors and a few configurations it must accept.
func ConfigCases(t testing.TB) []ConfigCase {
	missing := filepath.Join(t.TempDir(), "no-such-file")
	empty := filepath.Join(t.TempDir(), "empty")
	writeFile(t, empty, "# nothing but a comment\n\n")
	threeWords := filepath.Join(t.TempDir(), "three-words")
	writeFile(t, threeWords, "# app id, secret\n1234567 "+zegotest.Secret+" "+zegotest.OtherSecret+"\n")
	pemLike := filepath.Join(t.TempDir(), "cert.pem")
	writeFile(t, pemLike, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
	twoOnALine := filepath.Join(t.TempDir(), "two-on-a-line")
	writeFile(t, twoOnALine, "# ok\n"+zegotest.Secret+"\n"+zegotest.Secret+","+zegotest.OtherSecret+"\n")
	redis := func(over map[string]any) map[string]any {
		return Config(map[string]any{"nonceStore": "redis", "redis": over})
	}
	return []ConfigCase{
		{Desc: "defaults with one secret", Config: Config()},
		{Desc: "every option set", Config: Config(map[string]any{
			"secretsFile": SecretsFile(t), "timestampTolerance": "90s", "events": []string{"mix_start"},
			"maxBodyBytes": 4096, "headerPrefix": "X-Callback-", "duplicates": "reject", "nonceCapacity": 10,
			"fields": []string{"event"}, "maxHeaderFields": 8, "maxHeaderValueBytes": 256, "reportOnly": true,
		})},
		{Desc: "secrets trimmed", Config: map[string]any{"secrets": []string{" " + zegotest.Secret + " "}}},
		{Desc: "no secret at all", Config: map[string]any{}, WantErr: "secrets"},
		{Desc: "empty secrets list", Config: map[string]any{"secrets": []string{}}, WantErr: "secrets"},
		{Desc: "an empty secret", Config: map[string]any{"secrets": []string{zegotest.Secret, "  "}}, WantErr: "secrets[1]"},
		{Desc: "unreadable secretsFile", Config: map[string]any{"secretsFile": missing}, WantErr: "secretsFile"},
		{Desc: "secretsFile without a secret", Config: Config(map[string]any{"secretsFile": empty}), WantErr: "secretsFile"},
		{Desc: "tolerance without a unit", Config: Config(map[string]any{"timestampTolerance": "300"}), WantErr: "timestampTolerance"},
		{Desc: "tolerance not a duration", Config: Config(map[string]any{"timestampTolerance": "five minutes"}), WantErr: "timestampTolerance"},
		{Desc: "tolerance zero", Config: Config(map[string]any{"timestampTolerance": "0s"}), WantErr: "timestampTolerance"},
		{Desc: "tolerance negative", Config: Config(map[string]any{"timestampTolerance": "-5m"}), WantErr: "timestampTolerance"},
		{Desc: "tolerance empty", Config: Config(map[string]any{"timestampTolerance": ""}), WantErr: "timestampTolerance"},
		{Desc: "appSecrets alone", Config: map[string]any{"appSecrets": map[string]any{"1234567": []string{zegotest.Secret}}}},
		{Desc: "appSecrets with an app id that is not digits", Config: map[string]any{"appSecrets": map[string]any{"my-app": []string{zegotest.Secret}}}, WantErr: "appSecrets"},
		{Desc: "appSecrets keyed by an unquoted YAML number", Config: map[string]any{"appSecrets": map[string]any{"<int Value>": []string{zegotest.Secret}}}, WantErr: "appSecrets: an app id written as a number in YAML reaches the plugin as \"<int Value>\": quote it"},
		{Desc: "appSecrets with an app id of a leading 0", Config: map[string]any{"appSecrets": map[string]any{"0111111": []string{zegotest.Secret}}}, WantErr: "appSecrets: an app id is not a ZEGO AppID"},
		{Desc: "appSecrets swapped, a secret as the app id, not shown", Config: map[string]any{"appSecrets": map[string]any{zegotest.Secret: []string{"1234567890123456"}}}, WantErr: "appSecrets: an app id is not a ZEGO AppID"},
		{Desc: "a secret shorter than 16 characters", Config: map[string]any{"secrets": []string{"0123456789abcde"}}, WantErr: "secrets[0]: shorter than 16"},
		{Desc: "appSecrets with an app without a secret", Config: map[string]any{"appSecrets": map[string]any{"1234567": []string{}}}, WantErr: "appSecrets"},
		{Desc: "appSecrets with a secret holding a comma", Config: map[string]any{"appSecrets": map[string]any{"1234567": []string{zegotest.Secret + "," + zegotest.OtherSecret}}}, WantErr: "appSecrets: app 1234567, item 0"},
		{Desc: "appSecrets listing a secret of secrets", Config: Config(map[string]any{"appSecrets": map[string]any{"1234567": []string{zegotest.Secret}}}), WantErr: "appSecrets: a secret of app 1234567 is also in secrets"},
		{Desc: "appSecrets giving two apps one secret", Config: map[string]any{"appSecrets": map[string]any{"1234567": []string{zegotest.Secret}, "7654321": []string{zegotest.Secret}}}, WantErr: "appSecrets: a secret is listed for app 1234567 and for app 7654321; each app has its own"},
		{Desc: "unreadable appSecretsFile", Config: map[string]any{"appSecretsFile": missing}, WantErr: "appSecretsFile"},
		{Desc: "appSecretsFile with a line of three words", Config: map[string]any{"appSecretsFile": threeWords}, WantErr: "appSecretsFile: line 2"},
		{Desc: "unknown duplicates", Config: Config(map[string]any{"duplicates": "ignore"}), WantErr: "duplicates"},
		{Desc: "unknown retryOn", Config: Config(map[string]any{"retryOn": "never"}), WantErr: "retryOn"},
		{Desc: "rememberAnswerBytes negative", Config: Config(map[string]any{"rememberAnswerBytes": -1}), WantErr: "rememberAnswerBytes"},
		{Desc: "rememberAnswerBytes over its bound", Config: Config(map[string]any{"rememberAnswerBytes": 4097}), WantErr: "rememberAnswerBytes"},
		{Desc: "rememberAnswerBytes zero keeps none", Config: Config(map[string]any{"rememberAnswerBytes": 0})},
		{Desc: "maxBodyBytes zero", Config: Config(map[string]any{"maxBodyBytes": 0}), WantErr: "maxBodyBytes"},
		{Desc: "maxBodyBytes negative", Config: Config(map[string]any{"maxBodyBytes": -1}), WantErr: "maxBodyBytes"},
		{Desc: "nonceCapacity zero", Config: Config(map[string]any{"nonceCapacity": 0}), WantErr: "nonceCapacity"},
		{Desc: "maxHeaderFields zero", Config: Config(map[string]any{"maxHeaderFields": 0}), WantErr: "maxHeaderFields"},
		{Desc: "maxHeaderValueBytes negative", Config: Config(map[string]any{"maxHeaderValueBytes": -4}), WantErr: "maxHeaderValueBytes"},
		{Desc: "headerPrefix empty", Config: Config(map[string]any{"headerPrefix": ""}), WantErr: "headerPrefix"},
		{Desc: "headerPrefix with an underscore", Config: Config(map[string]any{"headerPrefix": "X_Zego_"}), WantErr: "headerPrefix"},
		{Desc: "headerPrefix with a space", Config: Config(map[string]any{"headerPrefix": "X Zego"}), WantErr: "headerPrefix"},
		{Desc: "headerPrefix X- covers X-Forwarded-For", Config: Config(map[string]any{"headerPrefix": "X-"}), WantErr: "headerPrefix"},
		{Desc: "headerPrefix X-Forwarded-", Config: Config(map[string]any{"headerPrefix": "x-forwarded-"}), WantErr: "headerPrefix"},
		{Desc: "headerPrefix without a trailing dash", Config: Config(map[string]any{"headerPrefix": "X-Zego"}), WantErr: "headerPrefix"},
		{Desc: "tolerance under a second", Config: Config(map[string]any{"timestampTolerance": "500ms"}), WantErr: "timestampTolerance"},
		{Desc: "events with an empty item", Config: Config(map[string]any{"events": []string{"mix_start", ""}}), WantErr: "events[1]"},
		{Desc: "fields naming the signature", Config: Config(map[string]any{"fields": []string{"event", "signature"}}), WantErr: "fields[1]"},
		{Desc: "unknown nonceStore", Config: Config(map[string]any{"nonceStore": "etcd"}), WantErr: "nonceStore"},
		{Desc: "redis store with defaults (nothing connects yet)", Config: Config(map[string]any{"nonceStore": "redis"})},
		{Desc: "redis timeout without a unit", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"timeout": "5"}}), WantErr: "redis.timeout"},
		{Desc: "redis address without a port", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"address": "redis.internal"}}), WantErr: "redis.address"},
		{Desc: "redis passwordFile unreadable", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"passwordFile": missing}}), WantErr: "redis.passwordFile"},
		{Desc: "redis tlsCertFile without TLS", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"tlsCertFile": missing, "tlsKeyFile": missing}}), WantErr: "redis.tlsSkipVerify, redis.tlsCAFile, redis.tlsCertFile or redis.tlsKeyFile is set without TLS"},
		{Desc: "redis tlsKeyFile without its certificate", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"tls": true, "tlsKeyFile": missing}}), WantErr: "redis.tlsCertFile and redis.tlsKeyFile: set both"},
		{Desc: "redis tlsCertFile unreadable", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"tls": true, "tlsCertFile": missing, "tlsKeyFile": missing}}), WantErr: "redis.tlsCertFile"},
		{Desc: "redis tlsKeyFile not PEM", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"tls": true, "tlsCertFile": pemLike, "tlsKeyFile": empty}}), WantErr: "redis.tlsKeyFile: holds no PEM block"},
		{Desc: "redis db negative", Config: Config(map[string]any{"nonceStore": "redis", "redis": map[string]any{"db": -1}}), WantErr: "redis.db"},
		// Mistakes that would load and weaken the protection.
		{Desc: "a misspelt key", Config: Config(map[string]any{"timestampTolerence": "10s"}),
			WantErr: `unknown key "timestampTolerence" (did you mean timestampTolerance?)`},
		{Desc: "a misspelt secret key, its value not shown", Config: map[string]any{"secrets": []string{zegotest.OtherSecret}, "secret": zegotest.Secret},
			WantErr: `unknown key "secret" (did you mean secrets?)`},
		{Desc: "two unknown keys", Config: Config(map[string]any{"reportonly2": true, "zzzzzzzzzzzzzzzz": 1}),
			WantErr: `unknown keys "reportonly2" (did you mean reportOnly?), "zzzzzzzzzzzzzzzz"`},
		{Desc: "a misspelt redis key", Config: redis(map[string]any{"adress": "redis:6379"}),
			WantErr: `unknown key "redis.adress" (did you mean redis.address?)`},
		{Desc: "a redis key at the top", Config: Config(map[string]any{"passwordFile": "/run/secrets/redis"}),
			WantErr: `unknown key "passwordFile" (did you mean redis.passwordFile?)`},
		{Desc: "a redis section with the memory store", Config: Config(map[string]any{"redis": map[string]any{"address": "redis:6379", "passwordFile": missing}}),
			WantErr: "redis.address, redis.passwordFile set, but nonceStore is memory"},
		{Desc: "nonceCapacity with the redis store", Config: Config(map[string]any{"nonceStore": "redis", "nonceCapacity": 5}), WantErr: "nonceCapacity: set, but"},
		{Desc: "two secrets in one item", Config: map[string]any{"secrets": []string{zegotest.Secret + " " + zegotest.OtherSecret}}, WantErr: "secrets[0]: holds white space"},
		{Desc: "two secrets with a comma", Config: map[string]any{"secrets": []string{zegotest.Secret + ";", zegotest.Secret + "," + zegotest.OtherSecret}}, WantErr: "secrets[1]: holds white space, a comma"},
		{Desc: "a secret with a control byte", Config: map[string]any{"secrets": []string{zegotest.Secret + "\x00"}}, WantErr: "secrets[0]"},
		{Desc: "two secrets on one line of secretsFile", Config: map[string]any{"secretsFile": twoOnALine}, WantErr: "secretsFile: line 3 holds white space, a comma"},
		{Desc: "tolerance past an hour", Config: Config(map[string]any{"timestampTolerance": "1000000h"}), WantErr: `timestampTolerance: "1000000h" is not between 1s and 1h0m0s`},
		{Desc: "tolerance that would overflow", Config: Config(map[string]any{"timestampTolerance": "1500000h"}), WantErr: "timestampTolerance"},
		{Desc: "nonceCapacity past its bound", Config: Config(map[string]any{"nonceCapacity": 1e12}), WantErr: "nonceCapacity"},
		{Desc: "maxHeaderFields past its bound", Config: Config(map[string]any{"maxHeaderFields": 5000}), WantErr: "maxHeaderFields"},
		{Desc: "a redis URL", Config: redis(map[string]any{"address": "rediss://zego:" + RedisPassword + "@redis.internal:6380/2"})},
		{Desc: "a redis URL's password beside redis.password", Config: redis(map[string]any{"address": "redis://:" + RedisPassword + "@redis.internal", "password": "x"}),
			WantErr: "redis.password: set together with a password in redis.address"},
		{Desc: "inFlightTimeout past twice the tolerance", Config: Config(map[string]any{"timestampTolerance": "10s", "inFlightTimeout": "30s"}), WantErr: "inFlightTimeout"},
		{Desc: "an unknown timestampUnit", Config: Config(map[string]any{"timestampUnit": "ms"}), WantErr: "timestampUnit"},
		{Desc: "an unknown replayKey", Config: Config(map[string]any{"replayKey": "nonce"}), WantErr: "replayKey"},
		{Desc: "redis.username beside a user in the URL", Config: redis(map[string]any{"address": "redis://zego@redis.internal", "username": "other"}), WantErr: "redis.username"},
		{Desc: "redis.tls beside a rediss URL", Config: redis(map[string]any{"address": "rediss://redis.internal", "tls": true}), WantErr: "redis.tls"},
		{Desc: "redis.tlsCAFile that holds no certificate", Config: redis(map[string]any{"tls": true, "tlsCAFile": empty}), WantErr: "redis.tlsCAFile"},
		{Desc: "redis.tlsSkipVerify without TLS", Config: redis(map[string]any{"tlsSkipVerify": true}), WantErr: "redis.tlsSkipVerify"},
		{Desc: "redis.keyPrefix with a space", Config: redis(map[string]any{"keyPrefix": "zego callback:"}), WantErr: "redis.keyPrefix"},
		{Desc: "a user and password in a bare redis address", Config: redis(map[string]any{"address": "zego:" + RedisPassword + "@redis.internal:6379"}),
			WantErr: "redis.address"},
		{Desc: "a redis password in a URL's query", Config: redis(map[string]any{"address": "redis://redis.internal:6379/0?password=" + RedisPassword}), WantErr: "redis.address"},
		{Desc: "a redis password after a comma", Config: redis(map[string]any{"address": "redis.internal:6379,password=" + RedisPassword}), WantErr: "redis.address"},
		{Desc: "a redis password after a space", Config: redis(map[string]any{"address": "redis.internal:6379 " + RedisPassword}), WantErr: "redis.address"},
		{Desc: "a redis URL's host cut by a password's #", Config: redis(map[string]any{"address": "redis://zego:" + RedisPassword[:6] + "#" + RedisPassword[6:]}), WantErr: "redis.address"},
	}
}

// RunNew checks New against ConfigCases: the errors name their key and never hold a
// secret, and New does not panic.
func RunNew(t *testing.T, build Builder) {
	for _, c := range ConfigCases(t) {
		c := c
		t.Run(c.Desc, func(t *testing.T) {
			h, err := build(t, c.Config, http.NotFoundHandler(), UniqueName("new"))
			if c.WantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("New: %v, want a handler", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted the configuration, want an error naming %q", c.WantErr)
			}
			if !strings.Contains(err.Error(), c.WantErr) {
				t.Errorf("New: %q does not name %q", err, c.WantErr)
			}
			for _, secret := range []string{zegotest.Secret, zegotest.OtherSecret, RedisPassword} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("New's error holds a secret: %q", err)
				}
			}
		})
	}
}
