package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// TestStoreRowsThroughTraefikWithRedis runs the table's replay rows, the documented
// callbacks and the flows through Traefik with the Redis store.
func TestStoreRowsThroughTraefikWithRedis(t *testing.T) {
	const password = "redis-password-for-tests"
	redis := redistest.Start(t, redistest.Options{Password: password})
	rows := tableRows(t, conformance.RedisStore(redis.Addr, password), true)
	slow := redistest.DelayProxy(t, redis.Addr, 250*time.Millisecond)
	rows = append(rows, row{name: "a pool busier than its connections never fails open", backend: &conformance.Backend{},
		config: config(conformance.BusyPoolConfig(slow, password, "busy")), run: conformance.RunBusyPool})
	runRows(t, rows)
}

// TestRedisAcrossReplicas runs two Traefik instances, as two replicas behind a load
// balancer, with one Redis as their shared replay store.
func TestRedisAcrossReplicas(t *testing.T) {
	const password = "redis-password-for-tests"
	redis := redistest.Start(t, redistest.Options{Password: password})
	backend := &conformance.Backend{}
	url := upstream(t, backend)
	closed := config(map[string]any{"nonceStore": "redis", "redis": conformance.RedisSettings(redis.Addr, password, "replicas")})
	openRedis := conformance.RedisSettings(redis.Addr, password, "replicas")
	openRedis["failOpen"] = true
	open := config(map[string]any{"nonceStore": "redis", "redis": openRedis})
	routes := []traefiktest.Route{
		{Name: "zego", Backend: url, Plugin: closed},
		{Name: "open", Backend: url, Plugin: open},
	}
	a := traefiktest.Start(t, routes, traefiktest.Options{})
	b := traefiktest.Start(t, routes, traefiktest.Options{})
	replicas := []*conformance.Server{conformance.Remote(a.URL+"/zego", backend), conformance.Remote(b.URL+"/zego", backend)}
	fresh := func() []byte {
		return zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	}

	t.Run("delivered through one, replayed to the other", func(t *testing.T) {
		body := fresh()
		conformance.CheckStep(t, "replica A", replicas[0], conformance.Step{Req: conformance.Request{Body: body}, Status: 200, Forwarded: true})
		conformance.CheckStep(t, "replica B", replicas[1], conformance.Step{Req: conformance.Request{Body: body}, Status: 200,
			RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
	})

	t.Run("50 concurrent copies over both replicas reach the backend once", func(t *testing.T) {
		body := fresh()
		before := len(backend.Calls())
		var wg sync.WaitGroup
		statuses := make(chan int, 50)
		for i := 0; i < 50; i++ {
			srv := replicas[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- srv.Do(t, conformance.Request{Body: body}).Status
			}()
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if s != http.StatusOK && s != http.StatusConflict {
				t.Errorf("a copy got %d", s)
			}
		}
		if n := len(backend.Calls()) - before; n != 1 {
			t.Errorf("the backend got %d of 50 copies, want exactly 1", n)
		}
	})

	t.Run("Redis stopped, then started again", func(t *testing.T) {
		redis.Stop()
		for _, srv := range replicas {
			conformance.CheckStep(t, "failing closed", srv, conformance.Step{Req: conformance.Request{Body: fresh()},
				Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"})
		}
		conformance.CheckStep(t, "failing open", conformance.Remote(b.URL+"/open", backend),
			conformance.Step{Req: conformance.Request{Body: fresh()}, Status: 200, Forwarded: true})
		redis.Restart()
		body := fresh()
		conformance.CheckStep(t, "after the restart, replica A", replicas[0], conformance.Step{Req: conformance.Request{Body: body}, Status: 200, Forwarded: true})
		conformance.CheckStep(t, "after the restart, its replay to B", replicas[1], conformance.Step{Req: conformance.Request{Body: body}, Status: 200,
			RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
	})
}
