//go:build !yaegi
// +build !yaegi

package zegocallback_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	zegocallback "github.com/zegocallback/traefik-zego-callback/plugin"
)

// nativeBuild decodes a configuration the way encoding/json does (keys match field
// names without regard to case, as in Traefik), gives the keys no field takes to
// Unknown, as Traefik's decoder does with a ",remain" field, and calls New, compiled.
// The test module runs the same table through the interpreter, with Traefik's own
// decoder.
func nativeBuild(t testing.TB, config map[string]any, next http.Handler, name string) (http.Handler, error) {
	t.Helper()
	cfg := zegocallback.CreateConfig()
	raw, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	cfg.Unknown = remain(config, reflect.TypeOf(*cfg))
	if redis, ok := config["redis"].(map[string]any); ok {
		cfg.Redis.Unknown = remain(redis, reflect.TypeOf(cfg.Redis))
	}
	return zegocallback.New(context.Background(), next, cfg, name)
}

// remain returns the keys of config that no field of the struct type t takes, compared
// without regard to case.
func remain(config map[string]any, t reflect.Type) map[string]any {
	out := map[string]any{}
	for k, v := range config {
		if f, ok := t.FieldByNameFunc(func(name string) bool { return strings.EqualFold(name, k) }); !ok || f.Name == "Unknown" {
			out[k] = v
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	conformance.Run(t, nativeBuild)
}

// TestRedisConformance runs the replay-store flows with a real redis-server as the store,
// and its outage.
func TestRedisConformance(t *testing.T) { conformance.RunRedis(t, nativeBuild) }

// TestRedisClusterConformance runs the store against a real Redis Cluster: slots over
// three primaries, a slot migrated, a primary's failover.
func TestRedisClusterConformance(t *testing.T) {
	conformance.RunRedisCluster(t, conformance.LocalReplicas(nativeBuild))
}

// TestRedisSentinelConformance runs the store behind real Redis Sentinels, through the
// primary's failover.
func TestRedisSentinelConformance(t *testing.T) {
	conformance.RunRedisSentinel(t, conformance.LocalReplicas(nativeBuild))
}

// TestPlainReadsAsTheGeneral sends 100 000 generated requests, signed and not, through
// the plain reading and the general one of each configuration of the differential
// table, and requires the same answers and the same forwarded requests
// (conformance.Differential). The test module sends fewer through Yaegi.
func TestPlainReadsAsTheGeneral(t *testing.T) {
	conformance.Differential(t, nativeBuild, 100000, 1)
}

// FuzzPlainReading is TestPlainReadsAsTheGeneral for a body the fuzzer gives, signed as
// its own timestamp and nonce say, sent to every configuration of the table.
func FuzzPlainReading(f *testing.F) {
	for _, seed := range conformance.DiffSeeds(200) {
		f.Add(seed)
	}
	pairs := conformance.DiffPairs(f, nativeBuild)
	f.Fuzz(func(t *testing.T, body []byte) {
		conformance.DiffBody(t, pairs, body)
	})
}
