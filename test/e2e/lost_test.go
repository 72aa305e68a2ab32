package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// The failures a production edge sees between a callback's claim in Redis and its
// settlement: each leaves the claim in flight, and ZEGO's retries, at 2, 6, 14, 30 and
// 62 s after the first try, must still get the callback to the backend, once. Two
// Traefik replicas share one real redis-server; each test takes about 30 s (the default
// inFlightTimeout, 20 s, lets the retry at 30 s through), and they run in parallel.

// zegoRetrySchedule is when ZEGO retries, after its first try: 2, 4, 8, 16 and 32 s apart.
var zegoRetrySchedule = []time.Duration{2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second, 62 * time.Second}

// lostSetup is one scenario's Redis, two replicas and backend.
type lostSetup struct {
	redis    *redistest.Server
	a, b     *traefiktest.Traefik
	backend  *conformance.Backend
	replicas [2]*conformance.Server
}

func newLostSetup(t *testing.T, redisOpts redistest.Options, backend *conformance.Backend) *lostSetup {
	redisOpts.Password = conformance.RedisPassword
	redis := redistest.Start(t, redisOpts)
	url := upstream(t, backend)
	routes := []traefiktest.Route{{Name: "zego", Backend: url, Plugin: conformance.Config(map[string]any{
		"nonceStore": "redis", "redis": conformance.RedisSettings(redis.Addr, conformance.RedisPassword, "lost"),
	})}}
	s := &lostSetup{redis: redis, backend: backend}
	s.a = traefiktest.Start(t, routes, traefiktest.Options{})
	s.b = traefiktest.Start(t, routes, traefiktest.Options{})
	s.replicas = [2]*conformance.Server{conformance.Remote(s.a.URL+"/zego", backend), conformance.Remote(s.b.URL+"/zego", backend)}
	return s
}

// retryAsZEGO sends body to srv on ZEGO's schedule from first, until an answer is 2xx as
// ZEGO does. It checks that one retry was forwarded, by 62 s, exactly once, and that a
// copy after it is not forwarded again. It returns the retries' statuses.
func retryAsZEGO(t *testing.T, srv *conformance.Server, body []byte, first time.Time) []int {
	t.Helper()
	before := len(srv.Backend.Calls())
	var statuses []int
	delivered := false
	for _, after := range zegoRetrySchedule {
		time.Sleep(time.Until(first.Add(after)))
		r := srv.Do(t, conformance.Request{Body: body})
		statuses = append(statuses, r.Status)
		if r.Status/100 == 2 {
			delivered = r.Header.Get("X-Zego-Duplicate") == ""
			break
		}
		if r.Status != http.StatusConflict || r.Code != "duplicate" {
			t.Errorf("retry at +%v: %d %q, want 409 duplicate while the claim is in flight", after, r.Status, r.Code)
		}
	}
	if !delivered {
		t.Fatalf("no retry was forwarded by 62 s: %v", statuses)
	}
	if n := len(srv.Backend.Calls()) - before; n != 1 {
		t.Errorf("the retries reached the backend %d times, want exactly once", n)
	}
	conformance.CheckStep(t, "a copy after the delivery", srv, conformance.Acked(body))
	return statuses
}

// TestReplicaKilledMidDelivery: replica A forwards a callback and is killed (SIGKILL)
// while the backend holds it. Its claim stays in Redis; ZEGO's retries through replica
// B get 409 until the claim lapses, then one is forwarded.
func TestReplicaKilledMidDelivery(t *testing.T) {
	t.Parallel()
	backend := &conformance.Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 8),
		Plan: []conformance.Answer{{Status: http.StatusOK, Hold: true}}}
	s := newLostSetup(t, redistest.Options{}, backend)
	defer close(backend.Hold)
	body := conformance.Fresh()
	first := time.Now()
	go func() {
		// The connection dies with A: the answer is an error, which ZEGO retries.
		_, _ = conformance.Post(context.Background(), &http.Client{Timeout: 90 * time.Second}, s.replicas[0].URL, conformance.Request{Body: body})
	}()
	backend.WaitEntered(t, "the first try")
	s.a.Kill()
	statuses := retryAsZEGO(t, s.replicas[1], body, first)
	t.Logf("retries through replica B after A was killed: %v", statuses)
}

// TestRedisStalledDuringClaim: Redis stops (SIGSTOP) as a callback is claimed; the
// claim's reply does not come within redis.timeout and the callback gets 503, but Redis
// runs the SET NX when it resumes (SIGCONT). ZEGO's retries get 409 until that claim
// lapses, then one is forwarded.
func TestRedisStalledDuringClaim(t *testing.T) {
	t.Parallel()
	s := newLostSetup(t, redistest.Options{}, &conformance.Backend{})
	// A callback first, so that replica A holds a connection when Redis stalls: the SET NX
	// goes out on it, and waits in Redis's socket.
	conformance.CheckStep(t, "a callback before the stall", s.replicas[0], conformance.Delivered(conformance.Fresh()))
	body := conformance.Fresh()
	s.redis.Pause()
	first := time.Now()
	conformance.CheckStep(t, "the first try, Redis stalled", s.replicas[0], conformance.Step{Req: conformance.Request{Body: body},
		Status: http.StatusServiceUnavailable, Code: "nonce_store_unavailable"})
	time.Sleep(time.Until(first.Add(time.Second)))
	s.redis.Resume()
	statuses := retryAsZEGO(t, s.replicas[1], body, first)
	if statuses[0] != http.StatusConflict {
		t.Errorf("the retry at 2 s got %d: the stalled claim did not reach Redis, and this test proves nothing", statuses[0])
	}
	t.Logf("retries through replica B after the stalled claim: %v", statuses)
}

// TestSettlementFails: Redis dies (SIGKILL) while the backend holds a callback, and comes
// back from its append-only file with the claim; the backend answers 500 and the claim's
// settlement (its token-checked delete) fails. ZEGO's retries get 409 until the claim
// lapses, then one is forwarded.
func TestSettlementFails(t *testing.T) {
	t.Parallel()
	backend := &conformance.Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 8),
		Plan: []conformance.Answer{{Status: http.StatusInternalServerError, Hold: true}}}
	s := newLostSetup(t, redistest.Options{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}}, backend)
	body := conformance.Fresh()
	first := time.Now()
	answer := make(chan conformance.Response, 1)
	go func() { answer <- s.replicas[0].Do(t, conformance.Request{Body: body}) }()
	backend.WaitEntered(t, "the first try")
	s.redis.Kill()
	close(backend.Hold)
	if r := <-answer; r.Status != http.StatusInternalServerError {
		t.Errorf("the first try: %d, want the backend's 500", r.Status)
	}
	s.redis.Restart()
	if !hasKeys(s.redis) {
		t.Fatal("the claim did not survive Redis's restart: this test proves nothing")
	}
	statuses := retryAsZEGO(t, s.replicas[1], body, first)
	t.Logf("retries through replica B after a failed settlement: %v", statuses)
}

// hasKeys reports whether Redis holds any key.
func hasKeys(r *redistest.Server) bool {
	n, _ := r.MustDo("DBSIZE").(int64)
	return n > 0
}

// TestFailOpenFloodDeliversOncePerReplica: a flood of copies of one captured callback at
// 512 connections, through two Traefik replicas that share a healthy Redis with
// redis.failOpen and a 50 ms timeout: Traefik's own load makes Redis's replies late,
// which counts as Redis failing, and the copies that fall back are checked against their
// Traefik's memory. The backend gets the callback at most once per replica (it got it up
// to 173 times when failOpen forwarded unchecked). Three rounds, each a fresh callback.
func TestFailOpenFloodDeliversOncePerReplica(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{Password: conformance.RedisPassword})
	backend := &conformance.Backend{}
	url := upstream(t, backend)
	settings := conformance.RedisSettings(redis.Addr, conformance.RedisPassword, "flood")
	settings["failOpen"], settings["timeout"] = true, "50ms"
	routes := []traefiktest.Route{{Name: "zego", Backend: url, Plugin: conformance.Config(map[string]any{"nonceStore": "redis", "redis": settings})}}
	replicas := []*traefiktest.Traefik{traefiktest.Start(t, routes, traefiktest.Options{}), traefiktest.Start(t, routes, traefiktest.Options{})}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 256, MaxIdleConnsPerHost: 256}}
	const conns, copies = 512, 2048
	for round := 0; round < 3; round++ {
		body := conformance.Fresh()
		before := len(backend.Calls())
		var wg sync.WaitGroup
		next := make(chan int, copies)
		for i := 0; i < copies; i++ {
			next <- i
		}
		close(next)
		var mu sync.Mutex
		statuses := map[int]int{}
		for c := 0; c < conns; c++ {
			target := replicas[c%2].URL + "/zego"
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					resp, err := conformance.Post(context.Background(), client, target, conformance.Request{Body: body})
					status := resp.Status
					if err != nil {
						status = -1
					}
					mu.Lock()
					statuses[status]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		delivered := len(backend.Calls()) - before
		t.Logf("round %d: %d copies at %d connections over 2 replicas: the backend got %d; answers %v", round+1, copies, conns, delivered, statuses)
		if delivered < 1 || delivered > len(replicas) {
			t.Errorf("round %d: the backend got the callback %d times, want 1 to %d (one per replica at most)", round+1, delivered, len(replicas))
		}
	}
	fellBack := 0
	for _, tr := range replicas {
		fellBack += strings.Count(tr.Logs(), "checked against this Traefik's memory only")
	}
	t.Logf("lines of copies that Redis did not answer in time, checked against their Traefik's memory only: %d (bounded by the log's limit)", fellBack)
}
