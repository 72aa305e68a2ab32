// Command benchreport runs the benchmarks make bench runs and writes BENCHMARKS.md from
// what they print, so that the figures there are the last run's, never typed by hand:
// the native and interpreted benchmarks (the median of their counts), the budget of a
// genuine callback's path (cmd/budget), and the load generator through a real Traefik
// (cmd/loadgen), each run once, in this order, on this machine.
//
//	make bench   (or: cd test && go run ./cmd/benchreport -out ../BENCHMARKS.md)
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "../BENCHMARKS.md", "the report to write")
	benchtime := flag.String("benchtime", "2s", "go test -benchtime")
	count := flag.Int("count", 3, "go test -count: the report gives the median")
	loadArgs := flag.String("loadgen", "-duration 5s -rounds 3 -conc 16,64", "the load generator's flags")
	flag.Parse()
	if err := run(*out, *benchtime, *count, strings.Fields(*loadArgs)); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(out, benchtime string, count int, loadArgs []string) error {
	var doc bytes.Buffer
	rev, _ := output("..", "git", "rev-parse", "--short", "HEAD")
	goVersion, _ := output(".", "go", "env", "GOVERSION")
	fmt.Fprintf(&doc, "# Benchmarks\n\nWritten by `make bench` (`test/cmd/benchreport`) on %s, at commit %s: %d CPUs (%s), %s, Traefik v3.6.12. "+
		"Each go benchmark ran %d times for %s; the tables give the median. The machine is shared: compare figures of one run, side by side, not across runs.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(rev), runtime.NumCPU(), cpuModel(), strings.TrimSpace(goVersion), count, benchtime)

	native, err := benchmarks("..", "./plugin", "ServeHTTP$|MemoryStore|Hostile|IdleClients", benchtime, count)
	if err != nil {
		return err
	}
	interpreted, err := benchmarks(".", ".", "Interpreted", benchtime, count)
	if err != nil {
		return err
	}
	budget, err := output(".", "go", "run", "./cmd/budget")
	if err != nil {
		return err
	}
	load, err := output(".", "go", append([]string{"run", "./cmd/loadgen"}, loadArgs...)...)
	if err != nil {
		return err
	}
	summary(&doc, native, interpreted, budget, load)
	doc.WriteString("## A request, natively and through Yaegi\n\n`BenchmarkServeHTTP` (plugin) and `BenchmarkInterpretedServeHTTP` (test module, the plugin loaded into Yaegi as Traefik loads it): ZEGO's documented `mix_start` callback, about 700 bytes, in front of a backend that answers 200. `new` is a fresh callback, `new-3-fields` the same with `fields: [event, appid, task_id]`, `duplicate` one already delivered, `forged` one signed with another secret.\n\n")
	table(&doc, append(pick(native, "BenchmarkServeHTTP/"), pick(interpreted, "BenchmarkInterpretedServeHTTP/")...))
	doc.WriteString("\n## Each piece of a genuine callback's path, through Yaegi\n\n`BenchmarkInterpretedPieces` runs the plugin's `BenchmarkPiece*` functions in the interpreter: where the time of a callback goes.\n\n")
	table(&doc, pick(interpreted, "BenchmarkInterpretedPieces/"))
	doc.WriteString("\n## What a forged megabyte costs\n\nBodies of about 1 MB that need no secret, each the worst of its kind found for what it costs before the signature is checked, beside a plain body of the same size.\n\n")
	table(&doc, append(pick(native, "BenchmarkHostile/"), pick(interpreted, "BenchmarkInterpretedHostile/")...))
	doc.WriteString("\n## Memory\n\nThe memory store's bytes per remembered callback, and what idle clients that each declared the largest body hold (`bytes/client`).\n\n")
	table(&doc, append(append(pick(native, "BenchmarkMemoryStore/"), pick(native, "BenchmarkIdleClients")...), pick(interpreted, "BenchmarkInterpretedIdleClients")...))

	doc.WriteString("\n## The budget of a genuine callback\n\n`cmd/budget`: the plugin functions a genuine callback runs, counted exactly with Go's coverage counters, and the slots of each one's frame, estimated from the source. Yaegi allocates every slot of a function's frame on each call (see DESIGN.md).\n\n")
	doc.WriteString(budget)

	doc.WriteString("\n## Through a real Traefik\n\n`cmd/loadgen`: one Traefik, one upstream, routes without middleware (`bare`), with a pass-through Yaegi plugin (`passthrough`), with this middleware (`zego`, and `zego-3` with three fields), driven in turn, round after round, on loopback.\n\n")
	doc.WriteString(load)
	return os.WriteFile(out, doc.Bytes(), 0o644)
}

// summary writes the per-request budget of a genuine callback, from the figures below it:
// the interpreted calls on its path, its allocations and bytes through Yaegi, its time
// natively, and, through Traefik, the share of bare Traefik's throughput beside the
// pass-through plugin's and the p99 it adds, all from this one run.
func summary(w io.Writer, native, interpreted []result, budget, load string) {
	metric := func(rs []result, name, unit string) string {
		for _, r := range rs {
			if r.name == name {
				if v, ok := r.metrics[unit]; ok {
					return strconv.FormatFloat(v, 'f', 0, 64)
				}
			}
		}
		return "?"
	}
	calls := "?"
	if i := strings.Index(budget, " interpreted calls"); i > 0 {
		f := strings.Fields(budget[:i])
		calls = f[len(f)-1]
	}
	// The load generator's medians, by its row labels, for its first concurrency.
	median := func(label string) string {
		for _, line := range strings.Split(load, "\n") {
			if cells := strings.Split(line, "|"); len(cells) > 4 && strings.TrimSpace(cells[2]) == label {
				return strings.Trim(strings.TrimSpace(cells[4]), "*")
			}
		}
		return "?"
	}
	fmt.Fprintf(w, "## Per-request budget of a genuine callback\n\n"+
		"| figure | every field annotated | `fields: [event, appid, task_id]` |\n|---|---:|---:|\n"+
		"| interpreted calls on its path (`cmd/budget`) | %s | |\n"+
		"| allocations through Yaegi | %s | %s |\n"+
		"| bytes through Yaegi | %s | %s |\n"+
		"| ns natively | %s | %s |\n"+
		"| ns through Yaegi | %s | %s |\n"+
		"| share of bare Traefik's throughput | %s | %s |\n"+
		"| pass-through plugin's share, same run | %s | |\n"+
		"| p99 added over bare (ms) | %s | |\n\n",
		calls,
		metric(interpreted, "BenchmarkInterpretedServeHTTP/new", "allocs/op"), metric(interpreted, "BenchmarkInterpretedServeHTTP/new-3-fields", "allocs/op"),
		metric(interpreted, "BenchmarkInterpretedServeHTTP/new", "B/op"), metric(interpreted, "BenchmarkInterpretedServeHTTP/new-3-fields", "B/op"),
		metric(native, "BenchmarkServeHTTP/new", "ns/op"), metric(native, "BenchmarkServeHTTP/new-3-fields", "ns/op"),
		metric(interpreted, "BenchmarkInterpretedServeHTTP/new", "ns/op"), metric(interpreted, "BenchmarkInterpretedServeHTTP/new-3-fields", "ns/op"),
		median("zego / bare throughput"), median("zego-3 / bare throughput"),
		median("passthrough / bare throughput"), median("zego p99 - bare p99 (ms)"))
}

// result is one benchmark's median figures, by unit (ns/op, B/op, allocs/op, and any
// metric it reports).
type result struct {
	name    string
	metrics map[string]float64
	units   []string
}

// benchmarks runs go test -bench pattern in dir and returns each benchmark's medians, in
// the order they ran.
func benchmarks(dir, pkg, pattern, benchtime string, count int) ([]result, error) {
	text, err := output(dir, "go", "test", "-run", "^$", "-bench", pattern, "-benchmem", "-benchtime", benchtime, "-count", strconv.Itoa(count), pkg)
	if err != nil {
		return nil, err
	}
	samples := map[string]map[string][]float64{}
	units := map[string][]string{}
	var order []string
	scan := bufio.NewScanner(strings.NewReader(text))
	for scan.Scan() {
		f := strings.Fields(scan.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		if samples[name] == nil {
			samples[name] = map[string][]float64{}
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			unit := f[i+1]
			if samples[name][unit] == nil {
				units[name] = append(units[name], unit)
			}
			samples[name][unit] = append(samples[name][unit], v)
		}
	}
	var out []result
	for _, name := range order {
		r := result{name: name, metrics: map[string]float64{}, units: units[name]}
		for unit, vs := range samples[name] {
			r.metrics[unit] = median(vs)
		}
		out = append(out, r)
	}
	return out, nil
}

func pick(rs []result, prefix string) []result {
	var out []result
	for _, r := range rs {
		if strings.HasPrefix(r.name, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// table writes results as one markdown table, a column per unit any of them reports.
func table(w io.Writer, rs []result) {
	var units []string
	seen := map[string]bool{}
	for _, r := range rs {
		for _, u := range r.units {
			if !seen[u] {
				seen[u] = true
				units = append(units, u)
			}
		}
	}
	fmt.Fprintf(w, "| benchmark | %s |\n|---|%s\n", strings.Join(units, " | "), strings.Repeat("---:|", len(units)))
	for _, r := range rs {
		cells := make([]string, len(units))
		for i, u := range units {
			if v, ok := r.metrics[u]; ok {
				cells[i] = strconv.FormatFloat(v, 'f', -1, 64)
				if v >= 100 {
					cells[i] = strconv.FormatFloat(v, 'f', 0, 64)
				}
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", r.name, strings.Join(cells, " | "))
	}
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// output runs a command in dir, its output passed through to stderr as it comes (the
// runs are long), and returns its standard output.
func output(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s (in %s): %w", name, strings.Join(args, " "), filepath.Clean(dir), err)
	}
	return stdout.String(), nil
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.Index(line, ":"); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return runtime.GOARCH
}
