// Command loadgen measures what the middleware costs inside a real Traefik. It starts one
// Traefik with one upstream and six routes, drives each in turn at a fixed concurrency for
// a fixed time, alternating the routes over several rounds, and reports requests per
// second, p50 and p99 latency, and the ratios against the route without middleware and
// the route with a pass-through Yaegi plugin, per round and their median:
//
//	bare         no middleware
//	passthrough  a Yaegi plugin that only calls next (what any Yaegi plugin costs)
//	floor        a Yaegi plugin that does a genuine callback's work in one function and no
//	             more (test/floor): the floor of this job, measured beside the middleware
//	floor-3      the same, writing three fields as headers
//	zego         this middleware, default configuration (every field annotated)
//	zego-3       this middleware with fields limited to event, appid and task_id
//
// With -baseline <rev>, two more: base and base-3, zego and zego-3 for the plugin as it was
// at that git revision, with the ratios and the p99 added of the baseline beside this
// code's, in the same run.
//
// Every callback is signed before its run starts (test/load), each with its own nonce (one body sent
// again and again would only measure the duplicate path). Traffic goes to 127.0.0.1 only.
//
//	make bench   (or: cd test && go run ./cmd/loadgen -duration 5s -rounds 3 [-baseline d1b6120])
package main

import (
	"context"
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
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/load"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

var routes = []string{"bare", "passthrough", "floor", "floor-3", "zego", "zego-3"}

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
	c := &traefiktest.Command{}
	defer c.Close()
	if err := run(c, *duration, *rounds, parseInts(*concs), *warmup); err != nil {
		c.Fatalf("%v", err)
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

func run(c *traefiktest.Command, duration time.Duration, rounds int, concs []int, warmup time.Duration) error {
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
		{Name: "floor", Backend: backend, Plugins: map[string]map[string]any{"floor": {"secrets": []string{zegotest.Secret}}}},
		{Name: "floor-3", Backend: backend, Plugins: map[string]map[string]any{"floor": {"secrets": []string{zegotest.Secret}, "fields": []string{"event", "appid", "task_id"}}}},
		{Name: "zego", Backend: backend, Plugin: cfg},
		{Name: "zego-3", Backend: backend, Plugin: three},
	}
	locals := map[string]string{
		"passthrough": filepath.Join(pluginload.RepoRoot(), "test", "passthrough"),
		"floor":       filepath.Join(pluginload.RepoRoot(), "test", "floor"),
	}
	if baseline != "" {
		dir, err := pluginload.Baseline(pluginload.RepoRoot(), baseline, c.TempDir())
		if err != nil {
			return err
		}
		locals["zegobase"] = dir
		traefikRoutes = append(traefikRoutes,
			traefiktest.Route{Name: "base", Backend: backend, Plugins: map[string]map[string]any{"zegobase": cfg}},
			traefiktest.Route{Name: "base-3", Backend: backend, Plugins: map[string]map[string]any{"zegobase": three}})
		routes = append(routes, "base", "base-3")
	}
	tr := traefiktest.Start(c, traefikRoutes, traefiktest.Options{Debug: profileRoute != "", LocalPlugins: locals})

	pingURL = tr.PingURL
	fmt.Printf("Traefik %s, %d CPUs, each run %v, %d rounds, concurrency %v\n\n", tr.URL, numCPU(), duration, rounds, concs)

	for _, route := range routes {
		drive(tr.URL, route, 16, warmup, 0)
	}
	var results []result
	fmt.Printf("| round | conc | route | req/s | p50 | p99 | errors |\n|---|---|---|---|---|---|---|\n")
	for round := 1; round <= rounds; round++ {
		for _, conc := range concs {
			// Rotate the order each round, so no route always runs right after another.
			for i := range routes {
				route := routes[(i+round)%len(routes)]
				res := drive(tr.URL, route, conc, duration, round)
				results = append(results, res)
				fmt.Printf("| %d | %d | %s | %.0f | %v | %v | %d%s |\n", round, conc, route, res.rps,
					res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), res.errors, res.unexpected)
			}
		}
	}
	report(results, concs, rounds)
	return nil
}

// drive sends callbacks to one route with conc connections for d.
func drive(base, route string, conc int, d time.Duration, round int) result {
	// Enough signed callbacks for the fastest route at this concurrency: no signing
	// while the clock runs.
	bodies := load.Signed(int(d.Seconds()*20000) + 1000)
	if route == profileRoute && round == 1 {
		profileRoute = ""
		go profile(route, d)
	}
	start := time.Now()
	driver := &load.Driver{URL: base + "/" + route, Conc: conc, Count: len(bodies), Until: start.Add(d), Bodies: bodies}
	sent := driver.Run(context.Background())
	res := result{route: route, conc: conc, round: round, requests: len(sent), elapsed: time.Since(start)}
	var lat []time.Duration
	for _, s := range sent {
		if s.Answer.Err == nil {
			lat = append(lat, s.Latency)
		}
		if a := s.Answer.String(); a != "200" {
			res.errors++
			res.unexpected = fmt.Sprintf(" (e.g. %.60s)", a)
		}
	}
	if len(sent) == len(bodies) {
		res.unexpected = " (ran out of signed callbacks)"
	}
	res.p50, res.p99 = load.Percentile(lat, 50), load.Percentile(lat, 99)
	res.rps = float64(len(lat)) / res.elapsed.Seconds()
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
		pairs := [][2]string{{"zego", "bare"}, {"zego", "passthrough"}, {"zego-3", "bare"}, {"zego-3", "passthrough"}, {"passthrough", "bare"},
			{"floor", "bare"}, {"floor-3", "bare"}, {"zego", "floor"}, {"zego-3", "floor-3"}}
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
		added := []string{"zego", "floor"}
		if baseline != "" {
			added = append(added, "base")
		}
		for _, route := range added {
			var dp99 []float64
			for round := 1; round <= rounds; round++ {
				dp99 = append(dp99, float64(get(route, conc, round).p99-get("bare", conc, round).p99)/1e6)
			}
			fmt.Printf("| %d | %s p99 - bare p99 (ms) | %s | **%.2f** |\n", conc, route, floats(dp99), median(dp99))
		}
	}
}

// profile fetches a CPU profile of Traefik while the route runs.
func profile(route string, d time.Duration) {
	secs := max(int(d.Seconds())-1, 1)
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

func parseInts(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
