// Command budget prints what each path of a request costs in interpreted calls: for each
// plugin function a request runs, its calls per request and the slots of its frame. The
// paths: a genuine callback with every field annotated, the same with fields: [event,
// appid, task_id], a duplicate (a callback already delivered), a forged body (signed with
// another secret), and a genuine callback with the Redis store (against a real
// redis-server, internal/redistest).
//
// Yaegi allocates every slot of a function's frame (each local, each non-constant
// expression's value) on every call, whichever branches run, so calls × slots is most of
// the allocations a request costs under Yaegi. The calls are counted exactly, with Go's
// coverage counters over the path's BenchmarkPieceServeHTTP function (plugin/pieces_test.go;
// a function's first block runs once per call), as the difference of two runs, which
// cancels what a run does once; the slots are estimated from the AST, the way Yaegi's
// compiler assigns them. A count that is not a whole number would say that the requests of
// a run did not all take one path: it is printed with its decimals.
//
//	go run ./cmd/budget [-repo ..] [-top 25] [-path new,forged]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A path a request takes, its name that of conformance.BenchKinds's sub-benchmark for the
// same request, and the plugin's benchmark that sends it.
type path struct {
	name, bench, what string
}

var paths = []path{
	{"new", "BenchmarkPieceServeHTTP", "a genuine callback (ZEGO's mix_start example), every field annotated, the memory store"},
	{"new-3-fields", "BenchmarkPieceServeHTTP3Fields", "a genuine callback with `fields: [event, appid, task_id]`, the memory store"},
	{"duplicate", "BenchmarkPieceServeHTTPDuplicate", "a callback already delivered, acknowledged, its log line suppressed as under a flood"},
	{"forged", "BenchmarkPieceServeHTTPForged", "a callback signed with another secret, refused, its log line suppressed as under a flood"},
	{"redis", "BenchmarkPieceServeHTTPRedis", "a genuine callback, every field annotated, `nonceStore: redis` against a real redis-server"},
}

func main() {
	repo := flag.String("repo", "..", "the repository's root")
	top := flag.Int("top", 25, "functions listed per path, by slots × calls")
	only := flag.String("path", "", "the paths to count, comma-separated (default all: "+pathNames()+")")
	flag.Parse()
	if err := run(*repo, *top, *only); err != nil {
		fmt.Fprintln(os.Stderr, "budget:", err)
		os.Exit(1)
	}
}

func pathNames() string {
	var names []string
	for _, p := range paths {
		names = append(names, p.name)
	}
	return strings.Join(names, ",")
}

// A function of the plugin package: its name, where its body lies, its frame's slots.
type function struct {
	name       string
	file       string
	start, end token.Position
	slots      int
}

// A path's count: the calls of each function, by index in the functions.
type count struct {
	path  path
	calls []float64
}

func run(repo string, top int, only string) error {
	pkgDir, err := filepath.Abs(filepath.Join(repo, "plugin"))
	if err != nil {
		return err
	}
	funcs, err := pluginFunctions(pkgDir)
	if err != nil {
		return err
	}
	chosen := paths
	if only != "" {
		chosen = nil
		for _, name := range strings.Split(only, ",") {
			found := false
			for _, p := range paths {
				if p.name == strings.TrimSpace(name) {
					chosen = append(chosen, p)
					found = true
				}
			}
			if !found {
				return fmt.Errorf("no path %q (the paths: %s)", name, pathNames())
			}
		}
	}
	// The plugin's tests, built once with coverage counters, then run twice per path.
	dir, err := os.MkdirTemp("", "budget")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "plugin.test")
	build := exec.Command("go", "test", "-c", "-covermode=count", "-o", bin, ".")
	build.Dir = pkgDir
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c: %v: %s", err, out)
	}
	var counts []count
	for _, p := range chosen {
		calls, err := pathCalls(bin, pkgDir, dir, p, funcs)
		if err != nil {
			return err
		}
		counts = append(counts, count{path: p, calls: calls})
	}

	fmt.Printf("| path | functions run | interpreted calls | frame slots allocated (estimated) |\n|---|---:|---:|---:|\n")
	for _, c := range counts {
		ran, calls, slots := totals(funcs, c.calls)
		fmt.Printf("| %s | %d | %s | %s |\n", c.path.name, ran, number(calls), number(slots))
	}
	for _, c := range counts {
		ran, calls, slots := totals(funcs, c.calls)
		fmt.Printf("\n### %s\n\n%s (`%s`): %d plugin functions run, %s interpreted calls, %s frame slots allocated (estimated)\n\n",
			c.path.name, strings.ToUpper(c.path.what[:1])+c.path.what[1:], c.path.bench, ran, number(calls), number(slots))
		order := make([]int, len(funcs))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(i, j int) bool {
			a, b := order[i], order[j]
			return c.calls[a]*float64(funcs[a].slots) > c.calls[b]*float64(funcs[b].slots)
		})
		fmt.Printf("| function | calls | frame slots | slots × calls |\n|---|---:|---:|---:|\n")
		for i, k := range order {
			if i == top || c.calls[k] == 0 {
				break
			}
			f := funcs[k]
			fmt.Printf("| `%s` | %s | %d | %s |\n", f.name, number(c.calls[k]), f.slots, number(c.calls[k]*float64(f.slots)))
		}
	}
	return nil
}

// totals are the functions a path runs, its calls and its frame slots.
func totals(funcs []*function, calls []float64) (ran int, total, slots float64) {
	for i, f := range funcs {
		if calls[i] > 0 {
			ran++
			total += calls[i]
			slots += calls[i] * float64(f.slots)
		}
	}
	return ran, total, slots
}

// number prints a whole count as one, and any other with its decimals.
func number(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// pathCalls counts each function's calls per request of path p: the count of its body's
// first block, in a run of many requests less that in a run of few, over the difference.
func pathCalls(bin, pkgDir, tmp string, p path, funcs []*function) ([]float64, error) {
	const few, many = 100, 1100
	lo, err := coverCounts(bin, pkgDir, tmp, p.bench, few)
	if err != nil {
		return nil, err
	}
	hi, err := coverCounts(bin, pkgDir, tmp, p.bench, many)
	if err != nil {
		return nil, err
	}
	blocks := make([]block, 0, len(hi))
	for name := range hi {
		blocks = append(blocks, parseBlock(name))
	}
	calls := make([]float64, len(funcs))
	for i, f := range funcs {
		first := -1
		for j, b := range blocks {
			if b.file != f.file || !inside(b, f) || innerFunction(funcs, f, b) {
				continue
			}
			if first < 0 || before(b, blocks[first]) {
				first = j
			}
		}
		if first >= 0 {
			calls[i] = float64(hi[blocks[first].name]-lo[blocks[first].name]) / (many - few)
		}
	}
	return calls, nil
}

// coverCounts runs the test binary's benchmark bench n times under coverage and returns
// each block's count.
func coverCounts(bin, pkgDir, tmp, bench string, n int) (map[string]int, error) {
	profile := filepath.Join(tmp, fmt.Sprintf("%s-%d.cov", bench, n))
	cmd := exec.Command(bin, "-test.count=1", "-test.run=^$", "-test.bench=^"+bench+"$",
		"-test.benchtime="+strconv.Itoa(n)+"x", "-test.coverprofile="+profile)
	cmd.Dir = pkgDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", bench, err, out)
	}
	file, err := os.Open(profile)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	counts := map[string]int{}
	scan := bufio.NewScanner(file)
	for scan.Scan() {
		line := scan.Text()
		if strings.HasPrefix(line, "mode:") {
			continue
		}
		// file:l.c,l.c statements count
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		count, _ := strconv.Atoi(fields[2])
		counts[fields[0]] += count
	}
	return counts, scan.Err()
}

type block struct {
	name               string // as the profile writes it
	file               string
	line0, col0, line1 int
	col1               int
}

func parseBlock(s string) block {
	colon := strings.LastIndex(s, ":")
	b := block{name: s}
	b.file = filepath.Base(s[:colon])
	fmt.Sscanf(s[colon+1:], "%d.%d,%d.%d", &b.line0, &b.col0, &b.line1, &b.col1)
	return b
}

func inside(b block, f *function) bool {
	return after(b.line0, b.col0, f.start.Line, f.start.Column) && after(f.end.Line, f.end.Column, b.line1, b.col1)
}

// innerFunction reports whether b lies in a function literal inside f.
func innerFunction(funcs []*function, f *function, b block) bool {
	for _, g := range funcs {
		if g != f && g.file == f.file && inside(b, g) &&
			after(g.start.Line, g.start.Column, f.start.Line, f.start.Column) && after(f.end.Line, f.end.Column, g.end.Line, g.end.Column) {
			return true
		}
	}
	return false
}

func before(a, b block) bool { return a.line0 < b.line0 || a.line0 == b.line0 && a.col0 < b.col0 }

// after reports whether l0.c0 is at or after l1.c1.
func after(l0, c0, l1, c1 int) bool { return l0 > l1 || l0 == l1 && c0 >= c1 }

// pluginFunctions parses the plugin's non-test files and estimates each function's frame.
func pluginFunctions(dir string) ([]*function, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			files = append(files, f)
		}
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("plugin", fset, files, info); err != nil {
		return nil, err
	}
	var funcs []*function
	for _, file := range files {
		var outer string
		ast.Inspect(file, func(n ast.Node) bool {
			var body *ast.BlockStmt
			var ftype *ast.FuncType
			name := ""
			switch n := n.(type) {
			case *ast.FuncDecl:
				body, ftype, name = n.Body, n.Type, n.Name.Name
				if n.Recv != nil && len(n.Recv.List) == 1 {
					name = strings.TrimPrefix(types.ExprString(n.Recv.List[0].Type), "*") + "." + name
				}
				outer = name
			case *ast.FuncLit:
				body, ftype, name = n.Body, n.Type, outer+".func"
			default:
				return true
			}
			if body == nil {
				return false
			}
			funcs = append(funcs, &function{
				name: name, file: filepath.Base(fset.Position(body.Lbrace).Filename),
				start: fset.Position(body.Lbrace), end: fset.Position(body.Rbrace),
				slots: frameSlots(info, ftype, body),
			})
			return true
		})
	}
	return funcs, nil
}

// frameSlots estimates the slots of a function's frame as Yaegi's compiler assigns them:
// one per parameter, result and local variable, one per value a non-constant expression
// yields (a call one per result), two more per range loop. Function literals inside
// have frames of their own.
func frameSlots(info *types.Info, ftype *ast.FuncType, body *ast.BlockStmt) int {
	slots := 0
	for _, list := range []*ast.FieldList{ftype.Params, ftype.Results} {
		if list == nil {
			continue
		}
		for _, field := range list.List {
			if len(field.Names) == 0 {
				slots++
			}
			slots += len(field.Names)
		}
	}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			slots++
			return false
		case *ast.Ident:
			if _, isVar := info.Defs[n].(*types.Var); isVar && n.Name != "_" {
				slots++
			}
		case *ast.RangeStmt:
			slots += 2
		case *ast.CallExpr:
			tv := info.Types[n]
			if tv.IsType() || tv.Value != nil {
				return true
			}
			if tuple, ok := tv.Type.(*types.Tuple); ok {
				slots += tuple.Len()
			} else if tv.Type != nil {
				slots++
			}
		case *ast.BinaryExpr, *ast.UnaryExpr, *ast.IndexExpr, *ast.SliceExpr, *ast.StarExpr,
			*ast.CompositeLit, *ast.TypeAssertExpr, *ast.SelectorExpr:
			if tv, ok := info.Types[n.(ast.Expr)]; ok && tv.Value == nil && !tv.IsType() && tv.Type != nil {
				if _, isSig := tv.Type.(*types.Signature); !isSig {
					slots++
				}
			}
		}
		return true
	})
	return slots
}
