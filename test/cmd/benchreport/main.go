// Command benchreport runs the benchmarks make bench runs and writes BENCHMARKS.md from
// what they print, so that the figures there are the last run's, never typed by hand:
// the native and interpreted benchmarks (the median of their counts), the budget of each
// path (cmd/budget), and the load generator through a real Traefik (cmd/loadgen), each run
// once, in this order, on this machine. With a baseline (-baseline, or
// $ZEGO_BENCH_BASELINE), the plugin as it was at that git revision is measured in the same
// run, through Yaegi (BenchmarkInterpretedBaseline) and through Traefik (loadgen's base
// routes), and the summary sets its figures beside this code's and the targets.
//
//	make bench   (or: cd test && go run ./cmd/benchreport -out ../BENCHMARKS.md -baseline d1b6120)
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
	"slices"
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
	baseline := flag.String("baseline", os.Getenv("ZEGO_BENCH_BASELINE"), "the git revision measured beside this code (default $ZEGO_BENCH_BASELINE; empty for none)")
	flag.Parse()
	if err := run(*out, *benchtime, *count, strings.Fields(*loadArgs), *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(out, benchtime string, count int, loadArgs []string, baseline string) error {
	var doc bytes.Buffer
	rev, _ := output("..", nil, "git", "rev-parse", "--short", "HEAD")
	goVersion, _ := output(".", nil, "go", "env", "GOVERSION")
	base := "no baseline (set `BENCH_BASELINE`)"
	if baseline != "" {
		short, err := output("..", nil, "git", "rev-parse", "--short", baseline+"^{commit}")
		if err != nil {
			return fmt.Errorf("the baseline %q: %w", baseline, err)
		}
		base = "beside the baseline, the plugin at " + strings.TrimSpace(short) + " (`BENCH_BASELINE=" + baseline + "`), in the same run"
		if !slices.Contains(loadArgs, "-baseline") {
			loadArgs = append(loadArgs, "-baseline", baseline)
		}
	}
	fmt.Fprintf(&doc, "# Benchmarks\n\nWritten by `make bench` (`test/cmd/benchreport`) on %s, at commit %s, %s: %d CPUs (%s), %s, Traefik v3.6.12. "+
		"Each go benchmark ran %d times for %s; the tables give the median. The machine is shared: compare figures of one run, side by side, not across runs.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(rev), base, runtime.NumCPU(), cpuModel(), strings.TrimSpace(goVersion), count, benchtime)

	native, err := benchmarks("..", nil, "./plugin", "ServeHTTP$|MemoryStore|RedisKeyBytes|Hostile|IdleClients", benchtime, count)
	if err != nil {
		return err
	}
	interpreted, err := benchmarks(".", []string{"ZEGO_BENCH_BASELINE=" + baseline}, ".", "Interpreted", benchtime, count)
	if err != nil {
		return err
	}
	budget, err := output(".", nil, "go", "run", "./cmd/budget")
	if err != nil {
		return err
	}
	load, err := output(".", nil, "go", append([]string{"run", "./cmd/loadgen"}, loadArgs...)...)
	if err != nil {
		return err
	}
	summary(&doc, interpreted, budget, load, baseline)
	doc.WriteString("## A request, natively and through Yaegi\n\n`BenchmarkServeHTTP` (plugin) and `BenchmarkInterpretedServeHTTP` (test module, the plugin loaded into Yaegi as Traefik loads it), and `BenchmarkInterpretedBaseline`, the same through Yaegi for the baseline: ZEGO's documented `mix_start` callback, about 700 bytes, in front of a backend that answers 200. " +
		"`new` is a fresh callback, `new-3-fields` the same with `fields: [event, appid, task_id]`, `duplicate` one already delivered, `forged` one signed with another secret, `form` a fresh one as ZEGO's form mode sends it, `report-only` a fresh one with `reportOnly: true`, `redis` a fresh one with `nonceStore: redis` against a real redis-server.\n\n")
	table(&doc, append(append(pick(native, "BenchmarkServeHTTP/"), pick(interpreted, "BenchmarkInterpretedServeHTTP/")...), pick(interpreted, "BenchmarkInterpretedBaseline/")...))
	doc.WriteString("\n## Each piece of a request's path, through Yaegi\n\n`BenchmarkInterpretedPieces` runs the plugin's `BenchmarkPiece*` functions in the interpreter: where the time of a callback goes. The `ServeHTTP` ones are the whole requests whose paths `cmd/budget` counts.\n\n")
	table(&doc, pick(interpreted, "BenchmarkInterpretedPieces/"))
	doc.WriteString("\n## What a forged megabyte costs\n\nBodies of about 1 MB that need no secret, each the worst of its kind found for what it costs before the signature is checked, beside a plain body of the same size.\n\n")
	table(&doc, append(pick(native, "BenchmarkHostile/"), pick(interpreted, "BenchmarkInterpretedHostile/")...))
	doc.WriteString("\n## Memory\n\nThe memory store's bytes per remembered callback (delivered, with the backend's 20-byte answer), a real Redis's bytes per key for the same (`MEMORY USAGE`), and what idle clients that each declared the largest body hold (`bytes/client`).\n\n")
	table(&doc, append(append(append(pick(native, "BenchmarkMemoryStore/"), pick(native, "BenchmarkRedisKeyBytes")...), pick(native, "BenchmarkIdleClients")...), pick(interpreted, "BenchmarkInterpretedIdleClients")...))

	doc.WriteString("\n## The budget of each path\n\n`cmd/budget`: the plugin functions a request runs on each path, counted exactly with Go's coverage counters, and the slots of each one's frame, estimated from the source. Yaegi allocates every slot of a function's frame on each call (see DESIGN.md).\n\n")
	doc.WriteString(budget)

	doc.WriteString("\n## Through a real Traefik\n\n`cmd/loadgen`: one Traefik, one upstream, routes without middleware (`bare`), with a pass-through Yaegi plugin (`passthrough`), with this middleware (`zego`, and `zego-3` with three fields) and, with a baseline, with the plugin at the baseline (`base` and `base-3`), driven in turn, round after round, on loopback.\n\n")
	doc.WriteString(load)
	return os.WriteFile(out, doc.Bytes(), 0o644)
}

// The paths the summary gives, as conformance.BenchKinds names its sub-benchmarks, and
// the issue's target for each one's allocations through Yaegi: a number, or 0 for "no
// more than the baseline".
var summaryPaths = []struct {
	name   string
	what   string
	target int
	// over, when set, makes target a number of allocations over that path's (issue
	// #22's "a handful" over a genuine callback's).
	over string
}{
	{"new", "genuine, every field annotated", 600, ""},
	{"new-3-fields", "genuine, `fields: [event, appid, task_id]`", 560, ""},
	{"duplicate", "duplicate (already delivered)", 812, ""},
	{"forged", "forged (another secret)", 706, ""},
	{"form", "genuine, sent as a form", 0, ""},
	{"report-only", "genuine, `reportOnly: true`", 0, ""},
	{"redis", "genuine, `nonceStore: redis`", 0, ""},
	{"app-secrets", "genuine, `appSecrets` (three apps)", 10, "new"},
}

// The targets through Traefik, at targetConc connections.
const (
	targetConc    = 16
	targetShare   = 0.52 // zego / bare throughput
	targetShare3  = 0.56 // zego-3 / bare throughput
	targetAddedMs = 4.0  // zego p99 - bare p99
)

// summary writes the per-request budget of each path, from the figures below it: the
// interpreted calls on its path (cmd/budget), its allocations and time through Yaegi
// beside the baseline's, and the target; then, through Traefik, the shares of bare
// Traefik's throughput and the p99 added, beside the baseline's and the targets, all from
// this one run.
func summary(w io.Writer, interpreted []result, budget, load, baseline string) {
	metric := func(name, unit string) (float64, bool) {
		for _, r := range interpreted {
			if r.name == name {
				v, ok := r.metrics[unit]
				return v, ok
			}
		}
		return 0, false
	}
	cell := func(v float64, ok bool) string {
		if !ok {
			return "?"
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	// The budget's summary rows: | path | functions run | interpreted calls | slots |.
	calls := map[string]string{}
	if i := strings.Index(budget, "\n### "); i >= 0 {
		budget = budget[:i] // the sections of the paths follow
	}
	for _, line := range strings.Split(budget, "\n") {
		if cells := strings.Split(line, "|"); len(cells) == 6 {
			calls[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[3])
		}
	}
	baseCol := "baseline"
	if baseline != "" {
		baseCol = "at `" + baseline + "`"
	}
	fmt.Fprintf(w, "## Per-request budget\n\nThrough Yaegi, `BenchmarkInterpretedServeHTTP` beside `BenchmarkInterpretedBaseline` (the plugin at the baseline, the same requests), the interpreted calls `cmd/budget` counts on the path, and issue #18's targets.\n\n")
	fmt.Fprintf(w, "| path | request | interpreted calls | allocations | %s | target | met | ns | %s |\n|---|---|---:|---:|---:|---:|---|---:|---:|\n", baseCol, baseCol)
	for _, p := range summaryPaths {
		allocs, ok := metric("BenchmarkInterpretedServeHTTP/"+p.name, "allocs/op")
		baseAllocs, baseOK := metric("BenchmarkInterpretedBaseline/"+p.name, "allocs/op")
		ns, nsOK := metric("BenchmarkInterpretedServeHTTP/"+p.name, "ns/op")
		baseNs, baseNsOK := metric("BenchmarkInterpretedBaseline/"+p.name, "ns/op")
		target, limit, limitOK := "≤ baseline", baseAllocs, baseOK
		if p.target > 0 && p.over != "" {
			over, overOK := metric("BenchmarkInterpretedServeHTTP/"+p.over, "allocs/op")
			target, limit, limitOK = fmt.Sprintf("≤ %s + %d", p.over, p.target), over+float64(p.target), overOK
		} else if p.target > 0 {
			target, limit, limitOK = "≤ "+strconv.Itoa(p.target), float64(p.target), true
		}
		met := "?"
		if ok && limitOK {
			met = yesNo(allocs <= limit)
		}
		c := calls[p.name]
		if c == "" {
			c = "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p.name, p.what, c,
			cell(allocs, ok), cell(baseAllocs, baseOK), target, met, cell(ns, nsOK), cell(baseNs, baseNsOK))
	}

	// The load generator's medians, by concurrency and row label.
	medians := map[string]map[string]float64{}
	var concs []string
	for _, line := range strings.Split(load, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || !strings.HasPrefix(strings.TrimSpace(cells[4]), "**") {
			continue
		}
		v, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(cells[4]), "*"), 64)
		if err != nil {
			continue
		}
		conc := strings.TrimSpace(cells[1])
		if medians[conc] == nil {
			medians[conc] = map[string]float64{}
			concs = append(concs, conc)
		}
		medians[conc][strings.TrimSpace(cells[2])] = v
	}
	conc := strconv.Itoa(targetConc)
	if medians[conc] == nil && len(concs) > 0 {
		conc = concs[0] // the targets' concurrency was not run: the first that was
	}
	loadCell := func(label string) (string, float64, bool) {
		v, ok := medians[conc][label]
		if !ok {
			return "?", 0, false
		}
		return strconv.FormatFloat(v, 'f', 2, 64), v, true
	}
	fmt.Fprintf(w, "\nThrough a real Traefik (`cmd/loadgen`), at %s connections: the medians over the rounds, and issue #18's targets.\n\n", conc)
	fmt.Fprintf(w, "| figure | this code | %s | target | met |\n|---|---:|---:|---:|---|\n", baseCol)
	rows := []struct {
		what, label, baseLabel string
		target                 float64
		atLeast                bool
	}{
		{"share of bare Traefik's throughput, every field annotated", "zego / bare throughput", "base / bare throughput", targetShare, true},
		{"share of bare Traefik's throughput, `fields: [event, appid, task_id]`", "zego-3 / bare throughput", "base-3 / bare throughput", targetShare3, true},
		{"p99 added over bare (ms)", "zego p99 - bare p99 (ms)", "base p99 - bare p99 (ms)", targetAddedMs, false},
		{"pass-through plugin's share, same run", "passthrough / bare throughput", "", 0, false},
		{"the floor's share, every field (`test/floor`), same run", "floor / bare throughput", "", 0, false},
		{"the floor's share, three fields, same run", "floor-3 / bare throughput", "", 0, false},
		{"the floor's p99 added over bare (ms), same run", "floor p99 - bare p99 (ms)", "", 0, false},
		{"this code's throughput over the floor's, every field", "zego / floor throughput", "", 0, false},
		{"this code's throughput over the floor's, three fields", "zego-3 / floor-3 throughput", "", 0, false},
	}
	for _, r := range rows {
		text, v, ok := loadCell(r.label)
		baseText := ""
		if r.baseLabel != "" {
			baseText, _, _ = loadCell(r.baseLabel)
		}
		target, met := "", ""
		switch {
		case r.target == 0:
		case r.atLeast:
			target = "≥ " + strconv.FormatFloat(r.target, 'f', 2, 64)
			met = yesNo(ok && v >= r.target)
		default:
			target = "≤ " + strconv.FormatFloat(r.target, 'f', 0, 64)
			met = yesNo(ok && v <= r.target)
		}
		if !ok && met != "" {
			met = "?"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.what, text, baseText, target, met)
	}
	fmt.Fprintln(w)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// result is one benchmark's median figures, by unit (ns/op, B/op, allocs/op, and any
// metric it reports).
type result struct {
	name    string
	metrics map[string]float64
	units   []string
}

// benchmarks runs go test -bench pattern in dir, with env, and returns each benchmark's medians, in
// the order they ran.
func benchmarks(dir string, env []string, pkg, pattern, benchtime string, count int) ([]result, error) {
	text, err := output(dir, env, "go", "test", "-run", "^$", "-bench", pattern, "-benchmem", "-benchtime", benchtime, "-count", strconv.Itoa(count), pkg)
	if err != nil {
		return nil, err
	}
	return parseBenchmarks(text), nil
}

// parseBenchmarks returns the medians of each benchmark go test printed in text, in the
// order they ran.
func parseBenchmarks(text string) []result {
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
	return out
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

// output runs a command in dir, with env added to the environment, its output passed
// through to stderr as it comes (the runs are long), and returns its standard output.
func output(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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
