//go:build !yaegi
// +build !yaegi

package zegocallback_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	zegocallback "github.com/zegocallback/traefik-zego-callback/plugin"
)

// nativeBuild decodes a configuration the way encoding/json does (keys match field
// names without regard to case, as in Traefik) and calls New, compiled. The test module
// runs the same table through the interpreter, with Traefik's own decoder.
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
	return zegocallback.New(context.Background(), next, cfg, name)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, nativeBuild)
}

// TestRedisConformance runs the replay-store flows with a real redis-server as the store,
// and its outage.
func TestRedisConformance(t *testing.T) { conformance.RunRedis(t, nativeBuild) }
