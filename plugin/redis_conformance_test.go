//go:build !yaegi
// +build !yaegi

package zegocallback_test

import (
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

// TestRedisConformance runs the replay-store flows with a real redis-server as the store,
// and its outage.
func TestRedisConformance(t *testing.T) {
	const password = "redis-password-for-tests"
	srv := redistest.Start(t, redistest.Options{Password: password})
	conformance.RunStore(t, nativeBuild, conformance.RedisStore(srv.Addr, password))
	conformance.RunRedisFailures(t, nativeBuild, srv, password)
}
