package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
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
		{Name: "zego", Backend: callbacks, Plugin: config(settings)},
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
	answer answer
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
	url := tr.URL + "/zego/callback"

	smp := newSampler(t, tr)
	before := smp.mustTake(t)
	smp.every(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	client := loadClient(reloadSenders + 1)
	ring := newDelivered(256)

	// The senders, until stop.
	stop := make(chan struct{})
	results := make([][]sent, reloadSenders)
	var wg sync.WaitGroup
	for w := 0; w < reloadSenders; w++ {
		w := w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				select {
				case <-stop:
					return
				case <-time.After(reloadPause):
				}
				s := sent{kind: kindGood}
				var body []byte
				if j%reloadReplayEvery == reloadReplayEvery-1 {
					var ok bool
					s.kind = kindReplayed
					if s.nonce, body, ok = ring.pick(ctx, j*reloadSenders+w); !ok {
						return
					}
				} else {
					s.nonce, body = signedNow()
					s.hash = bodyHash(body)
				}
				s.answer = post(ctx, client, url, body)
				if s.kind == kindGood && s.answer.status == 200 && !s.answer.duplicate && s.answer.err == nil {
					ring.add(s.nonce, body)
				}
				results[w] = append(results[w], s)
			}
		}()
	}
	var stopOnce sync.Once
	stopSenders := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer stopSenders() // on a failed WaitRoutes too

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
		nonce, body, ok := ring.latest(ctx)
		if !ok {
			t.Fatalf("reload %d: no callback delivered before the deadline", k)
		}
		t0 := time.Now()
		routes := reloadRoutes(k, up.URL, plain.URL)
		tr.SetRoutes(t, routes)
		tr.WaitRoutes(t, routes)
		took = append(took, time.Since(t0))
		crossings = append(crossings, crossing{reload: k, nonce: nonce, answer: post(ctx, client, url, body)})
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

	// Every callback's answer, and what reached the upstream.
	var all []sent
	for _, r := range results {
		all = append(all, r...)
	}
	answers := map[string]int{}
	var goods, replays, wrong, lost, duplicated, altered, replayForwarded int
	var examples []string
	note := func(format string, args ...any) {
		if len(examples) < 10 {
			examples = append(examples, fmt.Sprintf(format, args...))
		}
	}
	for _, s := range all {
		answers[soakKindNames[s.kind]+" "+s.answer.String()]++
		if s.answer.String() != soakWant[s.kind] {
			wrong++
			note("%s %s: %v, want %s", soakKindNames[s.kind], s.nonce, s.answer, soakWant[s.kind])
		}
		c := rec.count(s.nonce)
		if s.kind == kindReplayed {
			replays++
			if c != 1 {
				replayForwarded++
				note("replay of %s: the upstream got it %d times", s.nonce, c)
			}
			continue
		}
		goods++
		switch h := rec.hash(s.nonce); {
		case c == 0:
			lost++
			note("good %s: %v, never reached the upstream", s.nonce, s.answer)
		case c > 1:
			duplicated++
			note("good %s: reached the upstream %d times", s.nonce, c)
		case h != s.hash:
			altered++
			note("good %s: the upstream got another body", s.nonce)
		}
	}
	var crossed int
	for _, c := range crossings {
		if c.answer.String() != soakWant[kindReplayed] || rec.count(c.nonce) != 1 {
			crossed++
			note("a callback delivered before reload %d, replayed after it: %v, delivered %d times", c.reload, c.answer, rec.count(c.nonce))
		}
	}
	total, distinct, anomalies, anomalyExamples := rec.totals()

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
		reloads, reloading.Round(time.Millisecond), percentile(took, 50).Round(time.Millisecond), percentile(took, 90).Round(time.Millisecond),
		percentile(took, 100).Round(time.Millisecond), len(all), goods, replays, answersSummary(answers), len(crossings), total,
		q1, q4, before.goroutines, after.goroutines, float64(heapQuarter)/mb, float64(heapEnd)/mb)

	if wrong+lost+duplicated+altered+replayForwarded+crossed > 0 {
		t.Errorf("answered otherwise than documented %d; good ones lost %d, delivered more than once %d, altered %d; "+
			"replays forwarded %d; replays across a reload not acknowledged or forwarded %d; e.g.\n%s",
			wrong, lost, duplicated, altered, replayForwarded, crossed, strings.Join(examples, "\n"))
	}
	delivered := goods - lost
	if total != delivered || distinct != delivered || anomalies != 0 {
		t.Errorf("the upstream got %d requests (%d distinct nonces, %d not a verified callback), want %d: the good ones once each; e.g. %v",
			total, distinct, anomalies, delivered, anomalyExamples)
	}
	if goods == 0 || replays == 0 {
		t.Errorf("%d good callbacks and %d replays flowed during the reloads: the senders did not run", goods, replays)
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

// answersSummary writes the answers counted, in a stable order.
func answersSummary(answers map[string]int) string {
	parts := make([]string, 0, len(answers))
	for a, c := range answers {
		parts = append(parts, fmt.Sprintf("%d × %s", c, a))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// TestFullStoreThroughTraefik fills a memory store of 50 through Traefik: the 51st new
// callback gets 503 nonce_store_unavailable and is not forwarded, and a replay of one of
// the first 50 is still acknowledged as a duplicate.
func TestFullStoreThroughTraefik(t *testing.T) {
	backend := &conformance.Backend{}
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "small", Backend: upstream(t, backend), Plugin: config(map[string]any{"nonceCapacity": 50})}},
		traefiktest.Options{})
	srv := conformance.Remote(tr.URL+"/small", backend)
	var first []byte
	for i := 0; i < 50; i++ {
		body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
		if i == 0 {
			first = body
		}
		conformance.CheckStep(t, fmt.Sprintf("callback %d of 50", i+1), srv, conformance.Step{Req: conformance.Request{Body: body}, Status: 200, Forwarded: true})
	}
	for i := 0; i < 2; i++ {
		body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
		conformance.CheckStep(t, fmt.Sprintf("new callback %d with the store full", i+1), srv,
			conformance.Step{Req: conformance.Request{Body: body}, Status: 503, Code: "nonce_store_unavailable"})
	}
	conformance.CheckStep(t, "a replay of the first with the store full", srv, conformance.Step{Req: conformance.Request{Body: first}, Status: 200,
		RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
	if n := len(backend.Calls()); n != 50 {
		t.Errorf("the backend got %d callbacks, want the first 50", n)
	}
	if logs := tr.Logs(); !strings.Contains(logs, "code=nonce_store_unavailable") {
		t.Errorf("Traefik's log has no line for the refused callbacks:\n%s", logs)
	}
}
