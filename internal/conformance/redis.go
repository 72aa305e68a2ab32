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

// SlowRedisDelay is how long the Redis of the busy-pool row holds each reply: slow is a
// redistest.Proxy with it.
const SlowRedisDelay = time.Second

// RedisRows are what concerns Redis itself: an outage and a restart, and a pool busier
// than its connections in front of slow, a redistest.Proxy of the server at addr
// that holds each reply SlowRedisDelay. They run with the Redis store only, after the
// others: they stop it.
func RedisRows(addr, password, slow string) []Row {
	redis := func(addr, key, password string, failOpen bool, timeout string) map[string]any {
		settings := RedisSettings(addr, password, key)
		settings["failOpen"], settings["timeout"] = failOpen, timeout
		return map[string]any{"nonceStore": "redis", "redis": settings}
	}
	return []Row{
		{Desc: "Redis stopped, then started again: failing closed 503, failing open forwarded, retryOn noAnswer no answer, then all pass without a new New; a wrong password 503",
			Shared: true, Run: runOutage, Mws: []Mw{
				{Config: redis(addr, "outage-closed", password, false, "300ms")},
				{Config: redis(addr, "outage-open", password, true, "300ms")},
				{Config: redis(addr, "outage-wrong", password+"-wrong", false, "300ms")},
				{Config: Config(redis(addr, "outage-no-answer", password, false, "300ms"), map[string]any{"retryOn": "noAnswer"})},
			}},
		// Failing open, with a timeout that a new connection's handshake and a claim, one
		// delayed reply each, keep within with room for a loaded machine and the
		// interpreter, and that the copies waiting for a connection exceed: the first comes
		// free after two delayed replies.
		{Desc: "a pool busier than its connections never fails open",
			Mws: []Mw{{Config: redis(slow, "busy", password, true, "1900ms")}}, Run: runBusyPool},
	}
}

// runOutage stops the Redis server under two middlewares, one failing closed (503) and
// one failing open (forwarded), then starts it again: the next callbacks pass, and
// replicas share the store again.
func runOutage(t *testing.T, e *Env) {
	closed, open, wrong, noAnswer := e.Srv[0], e.Srv[1], e.Srv[2], e.Srv[3]
	unavailable := Step{Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"}
	CheckStep(t, "Redis up", closed, Delivered(Fresh()))
	retried := Fresh() // a cloud recording callback: retried only when it gets no answer
	e.Redis.Stop()
	CheckStep(t, "Redis down, retryOn noAnswer: no answer", noAnswer, Step{Req: Request{Body: retried}, NoAnswer: true})
	CheckStep(t, "Redis down, retryOn noAnswer: ZEGO's retry, no answer", noAnswer, Step{Req: Request{Body: retried}, NoAnswer: true})
	CheckStep(t, "Redis down, failing closed", closed, withBody(unavailable, Fresh()))
	CheckStep(t, "Redis down, failing closed, the other replica", e.Replica[0], withBody(unavailable, Fresh()))
	caught := Fresh()
	CheckStep(t, "Redis down, failing open", open, Step{Req: Request{Body: caught}, Status: http.StatusOK, Forwarded: true,
		Got: map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"mix_start"}}})
	CheckStep(t, "Redis down, failing open: its replay, caught in this Traefik's memory", open, Acked(caught))
	// A plain body the reading left to the key check (a number, a name not seen yet, an
	// alias of event): its headers written all the same.
	plain := zegotest.Fill(`{"EventType":"x","seq":7,"brand_new":"v","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`,
		zegotest.Secret, zegotest.Seconds(time.Now()), zegotest.Nonce())
	CheckStep(t, "Redis down, failing open, a plain body", open, Step{Req: Request{Body: plain}, Status: http.StatusOK, Forwarded: true,
		Got: map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}, "X-Zego-Seq": {"7"}, "X-Zego-Brand-New": {"v"}}})
	e.Redis.Restart()
	CheckStep(t, "Redis back, failing closed", closed, Delivered(Fresh()))
	CheckStep(t, "Redis back, failing open", open, Delivered(Fresh()))
	CheckStep(t, "Redis back, retryOn noAnswer: ZEGO's retry delivered", noAnswer, Delivered(retried))
	CheckStep(t, "Redis back, retryOn noAnswer: a copy after its delivery", noAnswer, Acked(retried))
	replayed := Fresh()
	CheckStep(t, "Redis back: a delivery", closed, Delivered(replayed))
	CheckStep(t, "Redis back: its replay", closed, Acked(replayed))
	CheckStep(t, "Redis back: its replay through the other replica", e.Replica[0], Acked(replayed))
	CheckStep(t, "wrong password", wrong, withBody(unavailable, Fresh()))
}

// runBusyPool sends, to a middleware that fails open, in front of a Redis whose replies
// take SlowRedisDelay, 100 copies of one callback at once: this Traefik's memory catches
// the copies (redis.failOpen claims there first), and exactly one reaches the backend.
// Then 60 different callbacks at once, more than the pool has connections: those that
// wait for one past the timeout get 503, not forwarded unchecked (Redis is up, only this
// Traefik's pool is busy), and each of the others is delivered once.
func runBusyPool(t *testing.T, e *Env) {
	srv := e.Srv[0]
	statuses := sendAtOnce(t, []*Server{srv}, Fresh(), 100)
	checkOneDelivered(t, srv.Backend, 0, statuses, http.StatusOK, http.StatusConflict, http.StatusServiceUnavailable)

	before := len(srv.Backend.Calls())
	var wg sync.WaitGroup
	answers := make(chan int, 60)
	start := make(chan struct{})
	for i := 0; i < 60; i++ {
		body := Fresh()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers <- srv.Do(t, Request{Body: body}).Status
		}()
	}
	close(start)
	wg.Wait()
	close(answers)
	counts := map[int]int{}
	for s := range answers {
		counts[s]++
	}
	if counts[http.StatusOK]+counts[http.StatusServiceUnavailable] != 60 {
		t.Errorf("60 callbacks at once got %v, want 200 or 503 each", counts)
	}
	if got := len(srv.Backend.Calls()) - before; got != counts[http.StatusOK] {
		t.Errorf("the backend got %d callbacks, %d were answered 200", got, counts[http.StatusOK])
	}
	if counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no callback found the pool busy: this test proves nothing")
	}
}

// RedisPassword is the password of the redis-server the tests start for the Redis store.
const RedisPassword = "redis-password-for-tests"

// RunRedis runs the rows that exercise the replay store, then RedisRows, against the
// middleware that build makes, with a redis-server of its own as the store.
func RunRedis(t *testing.T, build Builder) {
	srv := redistest.Start(t, redistest.Options{Password: RedisPassword})
	RunStore(t, build, RedisStore(srv.Addr, RedisPassword))
	slow := redistest.StartProxy(t, srv.Addr, SlowRedisDelay).Addr
	RunRows(t, build, RedisRows(srv.Addr, RedisPassword, slow), RedisStore(srv.Addr, RedisPassword), srv)
}
