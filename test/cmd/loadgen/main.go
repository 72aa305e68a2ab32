// Command loadgen measures what the middleware costs inside a real Traefik. It starts one
// Traefik with one upstream and four routes, drives each in turn at a fixed concurrency for
// a fixed time, alternating the routes over several rounds, and reports requests per
// second, p50 and p99 latency, and the ratios against the route without middleware and
// the route with a pass-through Yaegi plugin, per round and their median:
//
//	bare         no middleware
//	passthrough  a Yaegi plugin that only calls next (what any Yaegi plugin costs)
//	zego         this middleware, default configuration (every field annotated)
//	zego-3       this middleware with fields limited to event, appid and task_id
//
// Every callback is signed before its run starts, each with its own nonce (one body sent
// again and again would only measure the duplicate path). Traffic goes to 127.0.0.1 only.
//
//	make bench   (or: cd test && go run ./cmd/loadgen -duration 5s -rounds 3)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/traefikload"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

var routes = []string{"bare", "passthrough", "zego", "zego-3"}

var (
	profileRoute string
	pingURL      string
	baseline     string
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each route is driven in each run")
	rounds := flag.Int("rounds", 3, "rounds over all routes and concurrencies")
	concs := flag.String("conc", "16,64", "concurrency levels")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up per route before the first round")
	flag.StringVar(&profileRoute, "profile", "", "write a CPU profile of Traefik (profile-<route>.pprof) during this route's first run")
	flag.StringVar(&baseline, "baseline", "", "also drive the plugin as it was at this git revision (routes base and base-3), side by side")
	flag.Parse()
	r := &runner{}
	defer r.cleanup()
	if err := run(r, *duration, *rounds, parseInts(*concs), *warmup); err != nil {
		r.cleanup()
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// result is one run: a route at a concurrency for a duration.
type result struct {
	route      string
	conc       int
	round      int
	requests   int
	errors     int
	elapsed    time.Duration
	p50, p99   time.Duration
	rps        float64
	unexpected string
}

func run(r *runner, duration time.Duration, rounds int, concs []int, warmup time.Duration) error {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		_ = http.Serve(upstream, http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = io.WriteString(rw, "ok")
		}))
	}()
	backend := "http://" + upstream.Addr().String()
	cfg := map[string]any{"secrets": []string{zegotest.Secret}}
	three := map[string]any{"secrets": []string{zegotest.Secret}, "fields": []string{"event", "appid", "task_id"}}
	traefikRoutes := []traefiktest.Route{
		{Name: "bare", Backend: backend},
		{Name: "passthrough", Backend: backend, Plugins: map[string]map[string]any{"passthrough": {}}},
		{Name: "zego", Backend: backend, Plugin: cfg},
		{Name: "zego-3", Backend: backend, Plugin: three},
	}
	locals := map[string]traefiktest.LocalPlugin{
		"passthrough": {Dir: filepath.Join(traefikload.RepoRoot(), "test", "passthrough"), Module: "github.com/zegocallback/passthrough"},
	}
	if baseline != "" {
		dir, err := traefikload.Baseline(traefikload.RepoRoot(), baseline, r.TempDir())
		if err != nil {
			return err
		}
		locals["zegobase"] = traefiktest.LocalPlugin{Dir: dir, Module: traefikload.BaselineModule}
		traefikRoutes = append(traefikRoutes,
			traefiktest.Route{Name: "base", Backend: backend, Plugins: map[string]map[string]any{"zegobase": cfg}},
			traefiktest.Route{Name: "base-3", Backend: backend, Plugins: map[string]map[string]any{"zegobase": three}})
		routes = append(routes, "base", "base-3")
	}
	tr := traefiktest.Start(r, traefikRoutes, traefiktest.Options{Debug: profileRoute != "", LocalPlugins: locals})

	pingURL = tr.PingURL
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
	fmt.Printf("Traefik %s, %d CPUs, each run %v, %d rounds, concurrency %v\n\n", tr.URL, numCPU(), duration, rounds, concs)

	for _, route := range routes {
		drive(client, tr.URL, route, 16, warmup, 0)
	}
	var results []result
	fmt.Printf("| round | conc | route | req/s | p50 | p99 | errors |\n|---|---|---|---|---|---|---|\n")
	for round := 1; round <= rounds; round++ {
		for _, conc := range concs {
			// Rotate the order each round, so no route always runs right after another.
			for i := range routes {
				route := routes[(i+round)%len(routes)]
				res := drive(client, tr.URL, route, conc, duration, round)
				results = append(results, res)
				fmt.Printf("| %d | %d | %s | %.0f | %v | %v | %d%s |\n", round, conc, route, res.rps,
					res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), res.errors, res.unexpected)
			}
		}
	}
	report(results, concs, rounds)
	return nil
}

// drive sends callbacks to one route with conc workers for d.
func drive(client *http.Client, base, route string, conc int, d time.Duration, round int) result {
	// Enough signed callbacks for the fastest route at this concurrency: no signing
	// while the clock runs.
	n := int(d.Seconds()*20000) + 1000
	bodies := make([][]byte, n)
	ts := zegotest.Seconds(time.Now())
	template := string(bytes.ReplaceAll([]byte(zegotest.Template("mix_start.json")), []byte("\n"), nil))
	for i := range bodies {
		bodies[i] = zegotest.Fill(template, zegotest.Secret, ts, zegotest.Nonce())
	}
	url := base + "/" + route + "/callback"
	var next atomic.Int64
	var errs atomic.Int64
	var unexpected atomic.Value
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(d)
	start := time.Now()
	if route == profileRoute && round == 1 {
		profileRoute = ""
		go profile(route, d)
	}
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		w := w
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[w] = make([]time.Duration, 0, n/conc+1)
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					unexpected.Store(" (ran out of signed callbacks)")
					return
				}
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					errs.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				if resp.StatusCode != 200 || string(b) != "ok" {
					errs.Add(1)
					unexpected.Store(fmt.Sprintf(" (e.g. %d %q)", resp.StatusCode, truncate(string(b))))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := result{route: route, conc: conc, round: round, requests: len(all), errors: int(errs.Load()), elapsed: elapsed}
	if u, ok := unexpected.Load().(string); ok {
		res.unexpected = u
	}
	if len(all) > 0 {
		res.p50 = all[len(all)/2]
		res.p99 = all[len(all)*99/100]
	}
	res.rps = float64(len(all)) / elapsed.Seconds()
	return res
}

// report prints, per concurrency, the ratios of each round and their median.
func report(results []result, concs []int, rounds int) {
	get := func(route string, conc, round int) result {
		for _, r := range results {
			if r.route == route && r.conc == conc && r.round == round {
				return r
			}
		}
		return result{}
	}
	fmt.Printf("\n| conc | ratio | per round | median |\n|---|---|---|---|\n")
	for _, conc := range concs {
		pairs := [][2]string{{"zego", "bare"}, {"zego", "passthrough"}, {"zego-3", "bare"}, {"zego-3", "passthrough"}, {"passthrough", "bare"}}
		if baseline != "" {
			pairs = append(pairs, [2]string{"base", "bare"}, [2]string{"base-3", "bare"}, [2]string{"zego", "base"}, [2]string{"zego-3", "base-3"})
		}
		for _, pair := range pairs {
			var ratios []float64
			var parts []string
			for round := 1; round <= rounds; round++ {
				a, b := get(pair[0], conc, round), get(pair[1], conc, round)
				if b.rps > 0 {
					ratios = append(ratios, a.rps/b.rps)
					parts = append(parts, fmt.Sprintf("%.2f", a.rps/b.rps))
				}
			}
			fmt.Printf("| %d | %s / %s throughput | %s | **%.2f** |\n", conc, pair[0], pair[1], strings.Join(parts, ", "), median(ratios))
		}
		var dp99 []float64
		for round := 1; round <= rounds; round++ {
			dp99 = append(dp99, float64(get("zego", conc, round).p99-get("bare", conc, round).p99)/1e6)
		}
		fmt.Printf("| %d | zego p99 - bare p99 (ms) | %s | **%.2f** |\n", conc, floats(dp99), median(dp99))
	}
}

// profile fetches a CPU profile of Traefik while the route runs.
func profile(route string, d time.Duration) {
	secs := int(d.Seconds()) - 1
	if secs < 1 {
		secs = 1
	}
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pingURL, secs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create("profile-" + route + ".pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func floats(v []float64) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = fmt.Sprintf("%.2f", f)
	}
	return strings.Join(parts, ", ")
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

func parseInts(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// runner stands in for testing.T for the Traefik harness.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
}

func (r *runner) Helper()                         {}
func (r *runner) Fatal(args ...any)               { r.Fatalf("%s", fmt.Sprint(args...)) }
func (r *runner) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (r *runner) Failed() bool                    { return false }
func (r *runner) Cleanup(f func())                { r.mu.Lock(); r.cleanups = append(r.cleanups, f); r.mu.Unlock() }
func (r *runner) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	r.cleanup()
	os.Exit(1)
}

func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp("", "zego-loadgen-")
	if err != nil {
		r.Fatalf("%v", err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (r *runner) cleanup() {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
