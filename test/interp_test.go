package test

import (
	"context"
	"net/http"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
)

// yaegiBuild builds the middleware through the interpreter, with Traefik's decoder.
func yaegiBuild(t testing.TB, config map[string]any, next http.Handler, name string) (http.Handler, error) {
	t.Helper()
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatalf("loading the plugin as Traefik does: %v", err)
	}
	return p.Build(context.Background(), config, next, name)
}

// TestInterpretedConformance runs the middleware's whole behaviour table through Yaegi.
func TestInterpretedConformance(t *testing.T) {
	conformance.Run(t, yaegiBuild)
}

// TestInterpretedRedisConformance runs the replay-store flows through Yaegi with a real
// redis-server as the store, and its outage: the plugin's own RESP client, interpreted.
func TestInterpretedRedisConformance(t *testing.T) { conformance.RunRedis(t, yaegiBuild) }

// TestInterpretedRedisCluster and TestInterpretedRedisSentinel run the store against a
// real Redis Cluster and real Sentinels, through their failovers, through Yaegi.
func TestInterpretedRedisCluster(t *testing.T) {
	conformance.RunRedisCluster(t, conformance.LocalReplicas(yaegiBuild))
}

func TestInterpretedRedisSentinel(t *testing.T) {
	conformance.RunRedisSentinel(t, conformance.LocalReplicas(yaegiBuild))
}

// TestInterpretedPlainReadsAsTheGeneral is the plugin's TestPlainReadsAsTheGeneral
// through Yaegi, on fewer requests (the plugin's 100 000 run natively): the two readings
// give the same answers and forward the same requests, interpreted.
func TestInterpretedPlainReadsAsTheGeneral(t *testing.T) {
	conformance.Differential(t, yaegiBuild, 10000, 2)
}
