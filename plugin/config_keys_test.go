package zegocallback

import (
	"reflect"
	"strings"
	"testing"
)

// TestConfigKeys holds the lists of known keys against Config's fields: each field but
// the one that receives unknown keys is a key, and each key a field.
func TestConfigKeys(t *testing.T) {
	for _, level := range []struct {
		name string
		typ  reflect.Type
		keys []string
	}{
		{"top level", reflect.TypeOf(Config{}), configKeys},
		{"redis", reflect.TypeOf(RedisConfig{}), redisKeys},
	} {
		var fields []string
		for i := 0; i < level.typ.NumField(); i++ {
			if f := level.typ.Field(i); f.Tag.Get("mapstructure") != ",remain" {
				fields = append(fields, strings.ToLower(f.Name))
			}
		}
		var keys []string
		for _, k := range level.keys {
			keys = append(keys, strings.ToLower(k))
		}
		if strings.Join(fields, " ") != strings.Join(keys, " ") {
			t.Errorf("%s: the fields are %v, the known keys %v", level.name, fields, keys)
		}
	}
	// Every redis key is one redisKeysSet tells set.
	set := redisKeysSet(RedisConfig{Address: "x", Username: "x", Password: "x", PasswordFile: "x", DB: 1, TLS: true,
		TLSSkipVerify: true, TLSCAFile: "x", TLSCertFile: "x", TLSKeyFile: "x", Timeout: "x", KeyPrefix: "x", FailOpen: true,
		Sentinels: []string{"x"}, MasterName: "x", SentinelUsername: "x", SentinelPassword: "x", SentinelPasswordFile: "x", TLSServerName: "x", WaitReplicas: 1})
	if len(set) != len(redisKeys) {
		t.Errorf("redisKeysSet tells %d keys of %d set: %v", len(set), len(redisKeys), set)
	}
}

func TestNearestKey(t *testing.T) {
	known := append(append([]string{}, configKeys...), "redis.address", "redis.passwordFile")
	for _, tc := range []struct{ key, want string }{
		{"timestampTolerence", "timestampTolerance"},
		{"TIMESTAMPTOLERANCE2", "timestampTolerance"},
		{"secret", "secrets"},
		{"secretFile", "secretsFile"},
		{"redis.adress", "redis.address"},
		{"passwordfile", "redis.passwordFile"},
		{"event", "events"},
		{"completelyDifferent", ""},
		{"x", ""},
	} {
		if got := nearestKey(tc.key, known); got != tc.want {
			t.Errorf("nearestKey(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", d)
	}
}
