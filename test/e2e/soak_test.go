package e2e

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/test/load"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

const (
	// soakConc is the number of connections sending at once (the 64).
	soakConc = 64
	// soakDefaultCallbacks is the short form CI runs, in well under a minute on two cores;
	// the full form sets ZEGO_SOAK_CALLBACKS=100000 (make soak).
	soakDefaultCallbacks = 10000

	// soakRSSPerCallback bounds what each remembered callback may add to Traefik's
	// resident memory. The store holds about 100 bytes per callback natively (make bench:
	// BenchmarkMemoryStore, 86 B at 100 000, 106 B at 1 000 000) and about as much under
	// Yaegi, whose map is a Go map; Go's collector lets the heap reach twice what is live
	// before collecting (GOGC=100), and a growing map holds its old and new buckets
	// while it moves: 4 × 100 B.
	soakRSSPerCallback = 400
	// soakRSSHeadroomMB is what Traefik's resident memory may grow by under load whatever
	// the store holds: 64 connections with their read and write buffers on both sides
	// (tens of KB each), the garbage of thousands of requests a second up to the
	// collector's goal, and the pages the Go runtime keeps before returning them. About
	// 32 MB measured at 10 000 callbacks (102 MB before, 134 MB during); twice that. A
	// per-request leak of 1 KB shows over the full form's 100 000 callbacks; the short
	// form only catches gross leaks (the live-heap bound below is the finer one).
	soakRSSHeadroomMB = 64
	// soakHeapPerCallback and soakHeapSlackMB bound Traefik's live heap after the run
	// (collected, connections closed) over its live heap before: each delivered callback
	// stays in the store, about 100 B (measured here through Traefik: 106 B a callback at
	// 100 000), so 200 B; plus a few MB that a run leaves behind whatever its length
	// (pools, buffers, the transport's idle state; 1 to 2 MB measured). Anything kept per
	// request (a body, a header map, a closure) is 1 KB or more and shows.
	soakHeapPerCallback = 200
	soakHeapSlackMB     = 4
	// soakGoroutinesPerConn bounds Traefik's goroutines per client connection during the
	// run: the server's connection goroutine, its background reader while a handler runs,
	// and the upstream connection's read and write loops make 4; 6 leaves room for the
	// transport dialing a spare connection.
	soakGoroutinesPerConn = 6
	// soakGoroutineMargin is how far Traefik's goroutines may stay above their count
	// before the run once the test has closed its connections on both sides: the pprof
	// request's own, and a few of Go's and Traefik's that start and stop on their own.
	soakGoroutineMargin = 10
)

// soakDeadline bounds the run in time: 60 s plus 5 ms a callback (200 a second, a
// twentieth of the ~4 000 measured on two cores). It stops a hang; it is not a speed test.
func soakDeadline(n int) time.Duration { return 60*time.Second + time.Duration(n)*5*time.Millisecond }

// soakKindOf rotates the bad ones: one callback in ten, forged, stale, replayed, malformed
// in turn.
func soakKindOf(i int) load.Kind {
	if i%10 != 9 {
		return load.Good
	}
	return [...]load.Kind{load.Forged, load.Stale, load.Replayed, load.Malformed}[(i/10)%4]
}

// TestSoak sends ZEGO_SOAK_CALLBACKS callbacks (10 000 by default) through a real Traefik
// at 64 concurrent connections, one in ten forged, stale, replayed or malformed, and
// counts each from both sides: no bad one reaches the upstream, every good one does,
// exactly once and byte for byte, every callback gets its documented answer, and
// Traefik's memory and goroutines stay within the bounds above.
func TestSoak(t *testing.T) {
	n := envInt(t, "ZEGO_SOAK_CALLBACKS", soakDefaultCallbacks)
	limit := envDuration(t, "ZEGO_SOAK_DEADLINE", soakDeadline(n))

	rec := newDeliveries()
	up := httptest.NewServer(rec)
	t.Cleanup(up.Close)
	// Every callback is signed just before it is sent, so the default tolerance (5m)
	// holds however long the run; replays are of recent deliveries.
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "soak", Backend: up.URL, Plugin: conformance.Config()}}, traefiktest.Options{Debug: true})

	smp := newSampler(t, tr)
	heapBefore := liveHeap(t, tr)
	before := smp.mustTake(t)
	smp.every(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	all := (&load.Driver{URL: tr.URL + "/soak", Conc: soakConc, Count: n, Kind: soakKindOf}).Run(ctx)
	elapsed := time.Since(start)
	samples, sampleErrs := smp.finish()
	if ctx.Err() != nil {
		t.Fatalf("the soak did not finish within %v (ZEGO_SOAK_DEADLINE): %d of %d callbacks answered", limit, len(all), n)
	}

	// Closed on both sides (the driver closes its own), Traefik's connection goroutines end.
	up.CloseClientConnections()
	after := smp.waitGoroutines(t, before.goroutines+soakGoroutineMargin, 20*time.Second)
	heapAfter := liveHeap(t, tr)

	ty := tallyOf(all, rec)
	total, distinct, _, _ := rec.totals()
	goodDelivered := ty.good - ty.lost
	during := spanOf(samples)
	rate := float64(len(all)) / elapsed.Seconds()
	heapPer := float64(heapAfter-heapBefore) / float64(max(goodDelivered, 1))

	t.Logf("soak: %d callbacks at %d connections in %v, %.0f req/s: %s; upstream got %d (%d distinct); "+
		"RSS %.1f MB before, %.1f-%.1f MB during; goroutines %d before, %d-%d during, %d after; "+
		"live heap %.1f -> %.1f MB, %.0f B per delivered callback",
		len(all), soakConc, elapsed.Round(time.Millisecond), rate, ty.summary(), total, distinct,
		float64(before.rssKB)/1024, float64(during.minRSSKB)/1024, float64(during.maxRSSKB)/1024,
		before.goroutines, during.minG, during.maxG, after.goroutines,
		float64(heapBefore)/mb, float64(heapAfter)/mb, heapPer)

	if len(all) != n {
		t.Errorf("%d callbacks answered, want %d", len(all), n)
	}
	ty.check(t, rec)

	if len(sampleErrs) > 0 || during.n == 0 {
		t.Errorf("%d of Traefik's samples failed (%d taken): %v", len(sampleErrs), during.n, sampleErrs)
	}
	rssLimitKB := int64(soakRSSHeadroomMB*1024 + goodDelivered*soakRSSPerCallback/1024)
	if growth := max(during.maxRSSKB, after.rssKB) - before.rssKB; growth > rssLimitKB {
		t.Errorf("Traefik's RSS grew by %.1f MB over the run, more than %.1f MB (%d MB + %d callbacks × %d B)",
			float64(growth)/1024, float64(rssLimitKB)/1024, soakRSSHeadroomMB, goodDelivered, soakRSSPerCallback)
	}
	if heapLimit := int64(soakHeapSlackMB*mb + goodDelivered*soakHeapPerCallback); heapAfter-heapBefore > heapLimit {
		t.Errorf("Traefik's live heap grew by %.1f MB over the run, more than %.1f MB (%d MB + %d callbacks × %d B)",
			float64(heapAfter-heapBefore)/mb, float64(heapLimit)/mb, soakHeapSlackMB, goodDelivered, soakHeapPerCallback)
	}
	if limit := before.goroutines + soakConc*soakGoroutinesPerConn; during.maxG > limit {
		t.Errorf("Traefik ran %d goroutines during the run, more than %d (%d before + %d connections × %d)",
			during.maxG, limit, before.goroutines, soakConc, soakGoroutinesPerConn)
	}
	if after.goroutines > before.goroutines+soakGoroutineMargin {
		t.Errorf("Traefik has %d goroutines 20 s after the run with its connections closed, %d before: a leak",
			after.goroutines, before.goroutines)
	}
}
