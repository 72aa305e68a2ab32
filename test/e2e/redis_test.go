package e2e

import (
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

// TestStoreRowsThroughTraefikWithRedis runs the rows that concern the replay store (the
// table's, the documented callbacks, the flows, the replicas) through two Traefik
// replicas sharing one Redis, then what concerns Redis itself: an outage, a busy pool.
func TestStoreRowsThroughTraefikWithRedis(t *testing.T) {
	const password = "redis-password-for-tests"
	redis := redistest.Start(t, redistest.Options{Password: password})
	slow := redistest.StartProxy(t, redis.Addr, conformance.SlowRedisDelay).Addr
	rows := append(conformance.StoreRows(conformance.SecretsFile(t)), conformance.RedisRows(redis.Addr, password, slow)...)
	runRows(t, rows, conformance.RedisStore(redis.Addr, password), redis)
}
