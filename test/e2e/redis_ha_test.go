package e2e

import (
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// traefikReplicas starts n Traefik processes with one route through the plugin, config
// its configuration, in front of backend.
func traefikReplicas(t *testing.T, config map[string]any, backend *conformance.Backend, n int) []*conformance.Server {
	t.Helper()
	routes := []traefiktest.Route{{Name: "zego", Backend: upstream(t, backend), Plugin: config}}
	var out []*conformance.Server
	for i := 0; i < n; i++ {
		tr := traefiktest.Start(t, routes, traefiktest.Options{})
		out = append(out, conformance.Remote(tr.URL+"/zego", backend))
	}
	return out
}

// TestRedisClusterThroughTraefik runs the store against a real Redis Cluster through two
// Traefik replicas: slots over three primaries, a slot migrated (ASK, then MOVED), a
// primary killed and its replica promoted while callbacks arrive.
func TestRedisClusterThroughTraefik(t *testing.T) {
	t.Parallel()
	conformance.RunRedisCluster(t, traefikReplicas)
}

// TestRedisSentinelThroughTraefik runs the store behind three real Redis Sentinels
// through two Traefik replicas, through the primary's failover.
func TestRedisSentinelThroughTraefik(t *testing.T) {
	t.Parallel()
	conformance.RunRedisSentinel(t, traefikReplicas)
}
