package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/test/load"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

const (
	// reloadDefault is the 200. Traefik applies a provider's changes at most once
	// every providersThrottleDuration (2 s by default, which would make 200 reloads take
	// seven minutes); the test's Traefik throttles at reloadThrottle instead.
	reloadDefault  = 200
	reloadThrottle = "100ms"
	// reloadSenders send callbacks all through the reloads, each pausing reloadPause
	// between two: about 240 callbacks a second in all (measured), enough for requests to
	// be in flight at every switch, little enough that the reloads, not the load, take the
	// CPU.
	reloadSenders = 4
	reloadPause   = 15 * time.Millisecond
	// reloadReplayEvery: every tenth callback a sender sends is a replay of one already
	// delivered.
	reloadReplayEvery = 10
	// reloadTolerance is the route's timestampTolerance: the store remembers a callback
	// 2 × 30 s + 1 s, so at about 240 callbacks a second it holds about 15 000 at most
	// (~1.5 MB) and stays at that size once the first minute has passed; with the default
	// 5m it would grow all through the run and hide what the reloads do. Every replay is
	// of a callback delivered a few seconds before, well within 30 s.
	reloadTolerance = "30s"

	// reloadRSSGrowthMB bounds Traefik's resident memory in the last quarter of the
	// reloads over the first (the highest sample of each): the store filling up to its
	// ~1.5 MB (6 MB with the collector's slack and map growth) when the first quarter ends
	// before the first minute, and the collector's and allocator's swings (RSS moves by
	// about 3 MB between samples of an idle Traefik reloading).
	reloadRSSGrowthMB = 12
	// reloadHeapGrowthMB bounds Traefik's live heap (collected) at the end over its live
	// heap after the first quarter of the reloads: the store's growth until it is full
	// (the senders cannot pass 4 / 15 ms = 267 callbacks a second: at most 16 000
	// callbacks × ~106 B ≈ 1.7 MB, 2.5 MB while the map grows), Traefik's own ~4 KB a
	// reload (measured with and without the plugin on the route: the same, 0.6 MB over
	// 150 reloads), and 1 MB of slack. Measured: 1.6 to 1.8 MB in the short form, whose
	// first quarter ends before the store is full; 0.6 MB in the full form. A leak of
	// 30 KB a reload shows over the full form's last 150 reloads.
	reloadHeapGrowthMB = 4
	// reloadGoroutineMargin bounds Traefik's goroutines in the last quarter over the first
	// quarter (the highest sample of each), and after the run with the connections closed
	// over before it: one goroutine kept per reload is 12 over the short form's last
	// quarter and 50 over the full form's; the senders' connections come and go by a few
	// (40-45 measured throughout).
	reloadGoroutineMargin = 10
)

// reloadDeadline bounds the run: Traefik applies a file provider's change at most every
// 2 s (providersThrottleDuration), and a reload under load takes a little more; 5 s a
// reload plus a minute stops a hang without timing anything.
func reloadDeadline(n int) time.Duration { return time.Minute + time.Duration(n)*5*time.Second }

// reloadRoutes is the dynamic configuration of reload k: the callback route, whose
// middleware's settings change on every reload (harmlessly: the nonce stays among the
// headers), a marker route /reload-<k>/ whose being served shows that reload k is
// applied, and an unrelated route that comes and goes.
func reloadRoutes(k int, callbacks, plain string) []traefiktest.Route {
	settings := []map[string]any{
		{},
		{"maxHeaderFields": 32},
		{"fields": []string{"event", "appid", "nonce", "task_id"}},
	}[k%3]
	settings["timestampTolerance"] = reloadTolerance
	routes := []traefiktest.Route{
		{Name: "zego", Backend: callbacks, Plugin: conformance.Config(settings)},
		{Name: fmt.Sprintf("reload-%d", k), Backend: plain},
	}
	if k%2 == 1 {
		routes = append(routes, traefiktest.Route{Name: "unrelated", Backend: plain})
	}
	return routes
}

// crossing is a callback delivered before reload k was written, replayed once reload k
// was served.
type crossing struct {
	reload int
	nonce  string
	answer load.Answer
}

// TestReloadUnderLoad reloads Traefik's dynamic configuration ZEGO_RELOADS times (200 by
// default) while callbacks flow: good ones, each new, and replays of
// delivered ones. No request fails because of a reload, every good callback is delivered
// exactly once, no replay gets through across a reload, and Traefik's memory and
// goroutines stay flat from the first quarter of the reloads to the last.
func TestReloadUnderLoad(t *testing.T) {
	reloads := envInt(t, "ZEGO_RELOADS", reloadDefault)
	limit := envDuration(t, "ZEGO_RELOAD_DEADLINE", reloadDeadline(reloads))
	if reloads < 8 {
		t.Fatalf("ZEGO_RELOADS=%d: at least 8, so that the first and last quarters of the reloads can be compared", reloads)
	}

	rec := newDeliveries()
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
	}))
	t.Cleanup(plain.Close)
	tr := traefiktest.Start(t, reloadRoutes(0, up.URL, plain.URL), traefiktest.Options{Debug: true, ProvidersThrottle: reloadThrottle})

	smp := newSampler(t, tr)
	before := smp.mustTake(t)
	smp.every(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	// The senders, until stop.
	stop := make(chan struct{})
	driver := &load.Driver{URL: tr.URL + "/zego", Conc: reloadSenders, Count: math.MaxInt, Stop: stop, Pause: reloadPause,
		Kind: func(i int) load.Kind {
			if i%reloadReplayEvery == reloadReplayEvery-1 {
				return load.Replayed
			}
			return load.Good
		}}
	sent := make(chan []load.Sent, 1)
	go func() { sent <- driver.Run(ctx) }()
	var all []load.Sent
	var stopOnce sync.Once
	stopSenders := func() {
		stopOnce.Do(func() {
			close(stop)
			all = <-sent
		})
	}
	defer stopSenders() // on a failed WaitRoutes too
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}

	// The reloads, each waited for.
	start := time.Now()
	began := time.Since(smp.start)
	var took []time.Duration
	var crossings []crossing
	// When the first quarter of the reloads ended and the last began, since the sampler
	// was made.
	var firstEnds, lastBegins time.Duration
	var heapQuarter int64
	for k := 1; k <= reloads; k++ {
		if ctx.Err() != nil {
			t.Fatalf("reload %d of %d: past the deadline (%v, ZEGO_RELOAD_DEADLINE)", k, reloads, limit)
		}
		// The callback delivered last before the reload is written: the one most likely
		// to have been remembered only by the middleware the reload replaces.
		nonce, body, ok := driver.Latest(ctx)
		if !ok {
			t.Fatalf("reload %d: no callback delivered before the deadline", k)
		}
		t0 := time.Now()
		routes := reloadRoutes(k, up.URL, plain.URL)
		tr.SetRoutes(t, routes)
		tr.WaitRoutes(t, routes)
		took = append(took, time.Since(t0))
		crossings = append(crossings, crossing{reload: k, nonce: nonce, answer: load.Post(ctx, client, tr.URL+"/zego", body)})
		if k == reloads/4 {
			firstEnds = time.Since(smp.start)
			heapQuarter = liveHeap(t, tr)
		}
		if k == reloads-reloads/4 {
			lastBegins = time.Since(smp.start)
		}
	}
	reloading := time.Since(start)
	end := time.Since(smp.start)
	heapEnd := liveHeap(t, tr)
	stopSenders()
	samples, sampleErrs := smp.finish()
	client.CloseIdleConnections()
	up.CloseClientConnections()
	plain.CloseClientConnections()
	after := smp.waitGoroutines(t, before.goroutines+reloadGoroutineMargin, 20*time.Second)

	ty := tallyOf(all, rec)
	var crossed int
	for _, c := range crossings {
		if n, _ := rec.got(c.nonce); c.answer.String() != load.Replayed.Want() || n != 1 {
			crossed++
			ty.note("a callback delivered before reload %d, replayed after it: %v, delivered %d times", c.reload, c.answer, n)
		}
	}
	total, _, _, _ := rec.totals()

	var first, last []sample
	for _, s := range samples {
		switch {
		case s.at >= began && s.at <= firstEnds:
			first = append(first, s)
		case s.at >= lastBegins && s.at <= end:
			last = append(last, s)
		}
	}
	q1, q4 := spanOf(first), spanOf(last)
	t.Logf("reload: %d reloads in %v (each %v median, %v p90, %v max), while %d callbacks flowed (%d good, %d replays; %s); "+
		"%d replays across a reload; upstream got %d; first quarter %s, last quarter %s; goroutines %d before, %d after; "+
		"live heap %.1f MB after the first quarter, %.1f MB at the end",
		reloads, reloading.Round(time.Millisecond), load.Percentile(took, 50).Round(time.Millisecond), load.Percentile(took, 90).Round(time.Millisecond),
		load.Percentile(took, 100).Round(time.Millisecond), len(all), ty.good, ty.replays, ty.summary(), len(crossings), total,
		q1, q4, before.goroutines, after.goroutines, float64(heapQuarter)/mb, float64(heapEnd)/mb)

	ty.check(t, rec)
	if crossed > 0 {
		t.Errorf("replays across a reload not acknowledged or forwarded %d; e.g.\n%s", crossed, strings.Join(ty.examples, "\n"))
	}
	if ty.good == 0 || ty.replays == 0 {
		t.Errorf("%d good callbacks and %d replays flowed during the reloads: the senders did not run", ty.good, ty.replays)
	}

	if len(sampleErrs) > 0 || q1.n == 0 || q4.n == 0 {
		t.Fatalf("Traefik's samples: %d failed (%v), %d in the first quarter, %d in the last", len(sampleErrs), sampleErrs, q1.n, q4.n)
	}
	if growth := q4.maxRSSKB - q1.maxRSSKB; growth > reloadRSSGrowthMB*1024 {
		t.Errorf("Traefik's RSS grew by %.1f MB from the first quarter of the reloads to the last, more than %d MB",
			float64(growth)/1024, reloadRSSGrowthMB)
	}
	if growth := heapEnd - heapQuarter; growth > reloadHeapGrowthMB*mb {
		t.Errorf("Traefik's live heap grew by %.1f MB over the last %d reloads, more than %d MB (%.0f KB a reload)",
			float64(growth)/mb, reloads-reloads/4, reloadHeapGrowthMB, float64(growth)/1024/float64(reloads-reloads/4))
	}
	if q4.maxG > q1.maxG+reloadGoroutineMargin {
		t.Errorf("Traefik's goroutines rose from at most %d in the first quarter of the reloads to %d in the last", q1.maxG, q4.maxG)
	}
	if after.goroutines > before.goroutines+reloadGoroutineMargin {
		t.Errorf("Traefik has %d goroutines after the reloads with the connections closed, %d before: a leak", after.goroutines, before.goroutines)
	}
}
