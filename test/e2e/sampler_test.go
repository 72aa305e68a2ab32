package e2e

// Traefik's resident memory and goroutine count, sampled while the soak and reload tests
// run, and its live heap after a collection: what they assert stays within bounds.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// sample is one reading of Traefik's process.
type sample struct {
	at         time.Duration // since the sampler was made
	rssKB      int64
	goroutines int
}

// sampler reads Traefik's resident memory (/proc/<pid>/status, VmRSS) and goroutine count
// (the first line of its goroutine profile, served with Options.Debug).
type sampler struct {
	pid     int
	url     string
	client  *http.Client
	start   time.Time
	mu      sync.Mutex
	samples []sample
	errs    []string
	stop    chan struct{}
	done    chan struct{} // closed when the sampling goroutine ends; nil before every
	once    sync.Once
}

func newSampler(t *testing.T, tr *traefiktest.Traefik) *sampler {
	s := &sampler{
		pid: tr.Pid(), url: tr.PingURL + "/debug/pprof/goroutine?debug=1",
		client: &http.Client{Timeout: 10 * time.Second}, start: time.Now(),
		stop: make(chan struct{}),
	}
	t.Cleanup(func() { s.finish() })
	return s
}

// take reads Traefik once.
func (s *sampler) take() (sample, error) {
	at := time.Since(s.start)
	rss, err := readRSS(s.pid)
	if err != nil {
		return sample{}, err
	}
	resp, err := s.client.Get(s.url)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return sample{}, fmt.Errorf("goroutine profile: %w", err)
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		return sample{}, fmt.Errorf("goroutine profile's first line %q: %w", line, err)
	}
	return sample{at: at, rssKB: rss, goroutines: n}, nil
}

// mustTake is take from the test's goroutine.
func (s *sampler) mustTake(t *testing.T) sample {
	t.Helper()
	sm, err := s.take()
	if err != nil {
		t.Fatalf("sampling Traefik: %v", err)
	}
	return sm
}

// every samples Traefik now and then at this interval until finish, which takes a last
// sample: however short the run, it has two.
func (s *sampler) every(interval time.Duration) {
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			s.record()
			select {
			case <-s.stop:
				s.record()
				return
			case <-tick.C:
			}
		}
	}()
}

func (s *sampler) record() {
	sm, err := s.take()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err.Error())
		return
	}
	s.samples = append(s.samples, sm)
}

// finish stops the sampling and returns the samples and the failed readings.
func (s *sampler) finish() ([]sample, []string) {
	s.once.Do(func() { close(s.stop) })
	if s.done != nil {
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...), append([]string(nil), s.errs...)
}

// waitGoroutines samples until Traefik's goroutines are at most limit (connections
// closed by the test take a moment to end on Traefik's side), for at most d; it returns
// the last sample.
func (s *sampler) waitGoroutines(t *testing.T, limit int, d time.Duration) sample {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		sm := s.mustTake(t)
		if sm.goroutines <= limit || time.Now().After(deadline) {
			return sm
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// span is the range of a run of samples.
type span struct {
	n                  int
	minRSSKB, maxRSSKB int64
	minG, maxG         int
}

func spanOf(samples []sample) span {
	if len(samples) == 0 {
		return span{}
	}
	sp := span{n: len(samples), minRSSKB: samples[0].rssKB, maxRSSKB: samples[0].rssKB, minG: samples[0].goroutines, maxG: samples[0].goroutines}
	for _, s := range samples[1:] {
		sp.minRSSKB = min(sp.minRSSKB, s.rssKB)
		sp.maxRSSKB = max(sp.maxRSSKB, s.rssKB)
		sp.minG = min(sp.minG, s.goroutines)
		sp.maxG = max(sp.maxG, s.goroutines)
	}
	return sp
}

func (sp span) String() string {
	return fmt.Sprintf("RSS %.1f-%.1f MB, goroutines %d-%d (%d samples)",
		float64(sp.minRSSKB)/1024, float64(sp.maxRSSKB)/1024, sp.minG, sp.maxG, sp.n)
}

// liveHeap has Traefik collect its garbage (the heap profile's gc=1, twice: what
// sync.Pools hold survives one collection) and returns the bytes its heap then holds
// (expvar's memstats.HeapAlloc, served with Options.Debug).
func liveHeap(t *testing.T, tr *traefiktest.Traefik) int64 {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < 2; i++ {
		resp, err := client.Get(tr.PingURL + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatalf("heap profile: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := client.Get(tr.PingURL + "/debug/vars")
	if err != nil {
		t.Fatalf("expvar: %v", err)
	}
	defer resp.Body.Close()
	var vars struct {
		Memstats struct {
			HeapAlloc int64
		} `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil || vars.Memstats.HeapAlloc == 0 {
		t.Fatalf("expvar's memstats.HeapAlloc: %v", err)
	}
	return vars.Memstats.HeapAlloc
}

const mb = 1 << 20
