// Command budget prints what a genuine callback's path costs in interpreted calls: for
// each plugin function it runs, the calls per callback and the slots of its frame.
//
// Yaegi allocates every slot of a function's frame (each local, each non-constant
// expression's value) on every call, whichever branches run, so calls × slots is most of
// the allocations a callback costs under Yaegi. The calls are counted exactly, with Go's
// coverage counters over BenchmarkPieceServeHTTP (a function's first block runs once
// per call), as the difference of two runs; the slots are estimated from the AST, the
// way Yaegi's compiler assigns them.
//
//	go run ./cmd/budget [-repo ..] [-top 25]
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
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	repo := flag.String("repo", "..", "the repository's root")
	top := flag.Int("top", 25, "functions listed, by slots × calls")
	flag.Parse()
	if err := run(*repo, *top); err != nil {
		fmt.Fprintln(os.Stderr, "budget:", err)
		os.Exit(1)
	}
}

// A function of the plugin package: its name, where its body lies, its frame's slots.
type function struct {
	name       string
	file       string
	start, end token.Position
	slots      int
	calls      float64
}

func run(repo string, top int) error {
	pkgDir := filepath.Join(repo, "plugin")
	funcs, err := pluginFunctions(pkgDir)
	if err != nil {
		return err
	}
	const few, many = 100, 1100
	lo, err := coverCounts(pkgDir, few)
	if err != nil {
		return err
	}
	hi, err := coverCounts(pkgDir, many)
	if err != nil {
		return err
	}
	// A function's calls are the count of its body's first block.
	for _, f := range funcs {
		first := ""
		for block := range hi {
			b := parseBlock(block)
			if b.file != f.file || !inside(b, f) || innerFunction(funcs, f, b) {
				continue
			}
			if first == "" || before(b, parseBlock(first)) {
				first = block
			}
		}
		if first != "" {
			f.calls = float64(hi[first]-lo[first]) / (many - few)
		}
	}
	sort.Slice(funcs, func(i, j int) bool {
		return funcs[i].calls*float64(funcs[i].slots) > funcs[j].calls*float64(funcs[j].slots)
	})
	calls, slots := 0.0, 0.0
	ran := 0
	for _, f := range funcs {
		if f.calls > 0 {
			ran++
			calls += f.calls
			slots += f.calls * float64(f.slots)
		}
	}
	fmt.Printf("A genuine callback's path (ZEGO's mix_start example, every field annotated, the memory store):\n")
	fmt.Printf("%d plugin functions run, %.0f interpreted calls, %.0f frame slots allocated (estimated)\n\n", ran, calls, slots)
	fmt.Printf("| function | calls | frame slots | slots × calls |\n|---|---:|---:|---:|\n")
	for i, f := range funcs {
		if i == top || f.calls == 0 {
			break
		}
		fmt.Printf("| `%s` | %.0f | %d | %.0f |\n", f.name, f.calls, f.slots, f.calls*float64(f.slots))
	}
	return nil
}

// coverCounts runs BenchmarkPieceServeHTTP n times under coverage and returns each
// block's count.
func coverCounts(pkgDir string, n int) (map[string]int, error) {
	profile := filepath.Join(os.TempDir(), fmt.Sprintf("budget-%d-%d.cov", os.Getpid(), n))
	defer os.Remove(profile)
	cmd := exec.Command("go", "test", "-count=1", "-run", "^$", "-bench", "^BenchmarkPieceServeHTTP$",
		"-benchtime", strconv.Itoa(n)+"x", "-covermode=count", "-coverprofile="+profile, ".")
	cmd.Dir = pkgDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
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
	file               string
	line0, col0, line1 int
	col1               int
}

func parseBlock(s string) block {
	colon := strings.LastIndex(s, ":")
	var b block
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
