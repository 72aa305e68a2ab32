package conformance

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// RedisStore is the StoreConfig of a Redis store at addr: each middleware name gets its
// own key prefix.
func RedisStore(addr, password string) StoreConfig {
	return func(name string) map[string]any {
		return map[string]any{"nonceStore": "redis", "redis": RedisSettings(addr, password, name)}
	}
}

// RedisSettings is a middleware's redis section: the server, the password, a key prefix
// of its own, and a timeout short enough for outage tests.
func RedisSettings(addr, password, name string) map[string]any {
	prefix := "zc-" + strings.NewReplacer("@", "-", " ", "-").Replace(name) + ":"
	return map[string]any{"address": addr, "password": password, "keyPrefix": prefix, "timeout": "300ms"}
}

// RunRedisOutage stops the Redis server under two middlewares, one failing closed (503)
// and one failing open (forwarded), then starts it again: the next callbacks pass,
// without building the middleware again. A wrong password answers 503 too.
func RunRedisOutage(t *testing.T, build Builder, srv *redistest.Server, password string) {
	closedName, openName := UniqueName("closed"), UniqueName("open")
	closed := Start(t, build, merge(BaseConfig(), RedisStore(srv.Addr, password)(closedName)), closedName)
	openCfg := RedisStore(srv.Addr, password)(openName)
	openCfg["redis"].(map[string]any)["failOpen"] = true
	open := Start(t, build, merge(BaseConfig(), openCfg), openName)
	fresh := func() []byte {
		return zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	}

	CheckStep(t, "Redis up", closed, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true})
	srv.Stop()
	CheckStep(t, "Redis down, failing closed", closed, Step{Req: Request{Body: fresh()}, Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"})
	CheckStep(t, "Redis down, failing open", open, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true,
		Got: map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"mix_start"}}})
	srv.Restart()
	CheckStep(t, "Redis back, failing closed", closed, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true})
	CheckStep(t, "Redis back, failing open", open, Step{Req: Request{Body: fresh()}, Status: http.StatusOK, Forwarded: true})
	replayed := fresh()
	CheckStep(t, "Redis back: a delivery", closed, Step{Req: Request{Body: replayed}, Status: http.StatusOK, Forwarded: true})
	CheckStep(t, "Redis back: its replay", closed, Step{Req: Request{Body: replayed}, Status: http.StatusOK,
		RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})

	if password != "" {
		wrongName := UniqueName("wrongpass")
		wrong := Start(t, build, merge(BaseConfig(), RedisStore(srv.Addr, password+"-wrong")(wrongName)), wrongName)
		CheckStep(t, "wrong password", wrong, Step{Req: Request{Body: fresh()}, Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"})
	}
}

// BusyPoolConfig is a middleware's store settings for RunBusyPool: Redis at addr (a
// redistest.DelayProxy in front of a real server), failing open, with a timeout the
// delayed replies keep within.
func BusyPoolConfig(addr, password, name string) map[string]any {
	settings := RedisSettings(addr, password, name)
	settings["failOpen"] = true
	settings["timeout"] = "400ms"
	return map[string]any{"nonceStore": "redis", "redis": settings}
}

// RunBusyPool sends 100 copies of one callback at once to a middleware that fails open,
// in front of a Redis whose replies take 250 ms (see BusyPoolConfig): more copies than
// the pool has connections wait for one past the timeout. redis.failOpen must not
// forward them: Redis is up, only this Traefik's pool is busy, and forwarding would let
// the replays through. Exactly one copy reaches the backend; the others get 409, or 503
// where no connection came free in time.
func RunBusyPool(t *testing.T, srv *Server) {
	body := freshMix()
	const copies = 100
	var wg sync.WaitGroup
	statuses := make(chan int, copies)
	start := make(chan struct{})
	for i := 0; i < copies; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses <- srv.Do(t, Request{Body: body}).Status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	busy := 0
	for s := range statuses {
		switch s {
		case http.StatusOK, http.StatusConflict:
		case http.StatusServiceUnavailable:
			busy++
		default:
			t.Errorf("a copy got %d, want 200, 409 or 503", s)
		}
	}
	if n := len(srv.Backend.Calls()); n != 1 {
		t.Errorf("the backend got %d of %d copies, want exactly 1: a busy pool must not fail open", n, copies)
	}
	if busy == 0 {
		t.Errorf("no copy found the pool busy: this test proves nothing")
	}
}

// RunRedisFailures runs what concerns Redis itself against the middleware that build
// makes: an outage and a restart, then a pool busier than its connections.
func RunRedisFailures(t *testing.T, build Builder, srv *redistest.Server, password string) {
	t.Run("Outage", func(t *testing.T) { RunRedisOutage(t, build, srv, password) })
	t.Run("BusyPool", func(t *testing.T) {
		name := UniqueName("busy")
		addr := redistest.DelayProxy(t, srv.Addr, 250*time.Millisecond)
		RunBusyPool(t, Start(t, build, merge(BaseConfig(), BusyPoolConfig(addr, password, name)), name))
	})
}
