//go:build !yaegi
// +build !yaegi

package zegocallback

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoYaegiTraps type-checks the plugin's sources and refuses what Yaegi v0.16.1, the
// interpreter Traefik runs the plugin in, gets wrong or cannot run, or what leaks on
// every reload. The interpreted test run catches a trap on the paths it takes; this
// catches it on every path, including those no test reaches. Each rule says why.
func TestNoYaegiTraps(t *testing.T) {
	fset := token.NewFileSet()
	var files []*ast.File
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(".", name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for _, problem := range yaegiTraps(t, fset, files) {
		t.Error(problem)
	}
}

// TestYaegiTrapRulesCatchEachTrap feeds the rules a package holding one of each trap:
// each must be reported, or the check above proves nothing.
func TestYaegiTrapRulesCatchEachTrap(t *testing.T) {
	const src = `package traps

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"
)

var errs = [2]error{errors.New("a"), errors.New("b")}

var pairA, pairB = two()

func two() (int, int) { return 1, 2 }

type T struct{}

func (T) UnmarshalJSON([]byte) error { return nil }

func traps(s []int, err error) (int, int) {
	for i := range 10 {
		_ = i
	}
	_ = min(1, 2)
	slices.Sort(s)
	var p atomic.Pointer[int]
	_ = p
	var target *T
	_ = errors.As(err, &target)
	go func() {}()
	_ = time.NewTicker(time.Second)
	var a, b error
	a, b = err, nil
	_, _ = a, b
	for _, v := range s {
		go func() { _ = v }()
	}
	_ = time.AfterFunc(time.Second, func() {})
	for _, c := range []chan int{} {
		_ = c
	}
	_, _ = pairA, pairB
	select {
	case <-time.After(time.Second):
	}
	m := map[int]int{}
	for _, k := range s {
		v, _ := m[k]
		_ = v
	}
	return 1, len(s)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "traps.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(yaegiTraps(t, fset, []*ast.File{f}), "\n")
	for _, want := range []string{"range over an integer", "min and max builtins", "slices.Sort", "atomic.Pointer",
		"errors.As", "a goroutine", "time.NewTicker", "literal nil", "loop variable v", "builtin call (len)",
		"UnmarshalJSON", "errors kept in an array", "time.AfterFunc: a timer not stopped", "a select statement", "slice of channels", "from one call of several results", "found flag dropped"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the rules missed %q; they reported:\n%s", want, problems)
		}
	}
}

// yaegiTraps returns one line per trap found in files, type-checked as one package.
func yaegiTraps(t *testing.T, fset *token.FileSet, files []*ast.File) []string {
	t.Helper()
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil), GoVersion: "go1.22"}
	if _, err := conf.Check(files[0].Name.Name, fset, files, info); err != nil {
		t.Fatal(err)
	}
	var problems []string
	report := func(n ast.Node, rule string) {
		problems = append(problems, fset.Position(n.Pos()).String()+": "+rule)
	}
	forbidden := map[string]string{
		"slices.Sort": "missing in Yaegi v0.16.1", "slices.SortFunc": "missing in Yaegi v0.16.1",
		"slices.BinarySearch": "missing in Yaegi v0.16.1", "slices.Min": "missing in Yaegi v0.16.1",
		"slices.Max": "missing in Yaegi v0.16.1", "maps.Clone": "missing in Yaegi v0.16.1",
		"sync.OnceValue": "missing in Yaegi v0.16.1", "sync.OnceValues": "missing in Yaegi v0.16.1",
		"atomic.Pointer": "missing in Yaegi v0.16.1",
		"errors.As":      "panics in Yaegi with the plugin's own error types; compare sentinels with errors.Is",
		"time.NewTicker": "a ticker per New leaks on every reload", "time.Tick": "a ticker per New leaks on every reload",
	}
	builtinsInResults := map[string]bool{"len": true, "cap": true, "append": true, "make": true, "new": true, "copy": true,
		"complex": true, "real": true, "imag": true, "min": true, "max": true}

	for _, f := range files {
		for _, imp := range f.Imports {
			if imp.Path.Value == `"unsafe"` {
				report(imp, `imports "unsafe": Traefik gives plugins no unsafe`)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.RangeStmt:
				if tv, ok := info.Types[n.X]; ok {
					if b, ok := tv.Type.Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 {
						report(n, "range over an integer: Yaegi panics at import, which kills the whole Traefik process")
					}
					if _, ok := tv.Type.Underlying().(*types.Signature); ok {
						report(n, "range over a function: not supported by Yaegi")
					}
					if sl, ok := tv.Type.Underlying().(*types.Slice); ok && n.Value != nil {
						if _, isChan := sl.Elem().Underlying().(*types.Chan); isChan {
							report(n, "a range with a value over a slice of channels: Yaegi v0.16.1 panics (reflect: Len of int); walk it by index")
						}
					}
				}
				checkLoopClosures(info, n.Body, loopVars(info, n.Key, n.Value), report)
			case *ast.ForStmt:
				if init, ok := n.Init.(*ast.AssignStmt); ok && init.Tok == token.DEFINE {
					checkLoopClosures(info, n.Body, loopVars(info, init.Lhs...), report)
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok {
					if b, ok := info.Uses[id].(*types.Builtin); ok && (b.Name() == "min" || b.Name() == "max") {
						report(n, "the min and max builtins are undefined in Yaegi v0.16.1")
					}
				}
				if name := qualified(n.Fun); forbidden[name] != "" {
					report(n, name+": "+forbidden[name])
				}
			case *ast.IndexExpr:
				if name := qualified(n.X); forbidden[name] != "" {
					report(n, name+": "+forbidden[name])
				}
			case *ast.GoStmt:
				report(n, "a goroutine in the plugin: one per New or per request leaks or is not allowed")
			case *ast.AssignStmt:
				if ix, ok := singleRHS(n).(*ast.IndexExpr); ok && len(n.Lhs) == 2 && isBlank(n.Lhs[1]) {
					if _, isMap := info.Types[ix.X].Type.Underlying().(*types.Map); isMap {
						report(n, "a map lookup's value taken with its found flag dropped: on a miss Yaegi v0.16.1 leaves the value of the last hit in a loop; use the one-valued form, or read the value only when found")
					}
				}
				if len(n.Rhs) > 1 {
					for _, r := range n.Rhs {
						if id, ok := r.(*ast.Ident); ok && id.Name == "nil" {
							report(n, "multiple assignment with a literal nil: Yaegi panics or leaves the value unchanged; assign separately")
						}
					}
				}
			case *ast.ReturnStmt:
				for i, r := range n.Results {
					if call, ok := r.(*ast.CallExpr); ok && i > 0 {
						if id, ok := call.Fun.(*ast.Ident); ok {
							if _, isBuiltin := info.Uses[id].(*types.Builtin); isBuiltin && builtinsInResults[id.Name] {
								report(n, "a builtin call ("+id.Name+") after the first result of a return: Yaegi v0.16.1 evaluates it into the first result's place")
							}
						}
					}
				}
			case *ast.SelectStmt:
				report(n, "a select statement: Yaegi v0.16.1 shares its cases between the goroutines that run it, so two requests in one select race (one may wait on the other's timer)")
			case *ast.FuncDecl:
				if n.Recv != nil && n.Name.Name == "UnmarshalJSON" {
					report(n, "a custom UnmarshalJSON: methods of interpreted types are invisible to encoding/json under Yaegi")
				}
				checkTimersStopped(n, report)
			case *ast.ValueSpec:
				if len(n.Names) > 1 && len(n.Values) == 1 {
					if obj, ok := info.Defs[n.Names[0]].(*types.Var); ok && obj.Parent() == obj.Pkg().Scope() {
						report(n, "package-level variables from one call of several results: Yaegi v0.16.1 reads the call as returning none; declare them apart")
					}
				}
				for _, name := range n.Names {
					if obj, ok := info.Defs[name].(*types.Var); ok && obj.Parent() == obj.Pkg().Scope() {
						if arr, ok := obj.Type().Underlying().(*types.Array); ok && types.Identical(arr.Elem(), types.Universe.Lookup("error").Type()) {
							report(n, "errors kept in an array at package level stop matching errors.Is under Yaegi; build them where they are returned")
						}
					}
				}
			}
			return true
		})
	}
	return problems
}

// singleRHS is an assignment's only right-hand side, nil when it has several.
func singleRHS(n *ast.AssignStmt) ast.Expr {
	if len(n.Rhs) != 1 {
		return nil
	}
	return n.Rhs[0]
}

// isBlank reports whether e is the blank identifier.
func isBlank(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "_"
}

// checkTimersStopped refuses a time.AfterFunc whose timer the function that starts it
// does not stop: one started per New leaks on every reload. A timer assigned to a
// variable the same function calls Stop on lives no longer than the call.
func checkTimersStopped(fn *ast.FuncDecl, report func(ast.Node, string)) {
	if fn.Body == nil {
		return
	}
	stopped := map[string]bool{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Stop" {
				if id, ok := sel.X.(*ast.Ident); ok {
					stopped[id.Name] = true
				}
			}
		}
		return true
	})
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || qualified(call.Fun) != "time.AfterFunc" && qualified(call.Fun) != "time.NewTimer" {
			return true
		}
		// Only `t := time.AfterFunc(...)` with t.Stop() in the same function passes.
		ok = false
		ast.Inspect(fn.Body, func(m ast.Node) bool {
			if as, isAssign := m.(*ast.AssignStmt); isAssign && len(as.Rhs) == 1 && as.Rhs[0] == call {
				if id, isIdent := as.Lhs[0].(*ast.Ident); isIdent && stopped[id.Name] {
					ok = true
				}
			}
			return true
		})
		if !ok {
			report(call, qualified(call.Fun)+": a timer not stopped in the function that starts it; one per New leaks on every reload")
		}
		return true
	})
}

// loopVars returns the variables a loop declares.
func loopVars(info *types.Info, exprs ...ast.Expr) map[types.Object]bool {
	vars := map[types.Object]bool{}
	for _, e := range exprs {
		if id, ok := e.(*ast.Ident); ok {
			if obj := info.Defs[id]; obj != nil {
				vars[obj] = true
			}
		}
	}
	return vars
}

// checkLoopClosures refuses a function literal in a loop's body that uses the loop's
// variable: Yaegi keeps Go's pre-1.22 meaning, so the closure sees the last value.
func checkLoopClosures(info *types.Info, body *ast.BlockStmt, vars map[types.Object]bool, report func(ast.Node, string)) {
	if len(vars) == 0 || body == nil {
		return
	}
	ast.Inspect(body, func(n ast.Node) bool {
		lit, ok := n.(*ast.FuncLit)
		if !ok {
			return true
		}
		ast.Inspect(lit.Body, func(m ast.Node) bool {
			if id, ok := m.(*ast.Ident); ok && vars[info.Uses[id]] {
				report(id, "a closure uses the loop variable "+id.Name+": under Yaegi it sees the last value; copy it first")
			}
			return true
		})
		return false
	})
}

// qualified returns "pkg.Name" for a selector on an imported package, else "".
func qualified(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return pkg.Name + "." + sel.Sel.Name
}
