// Package pluginload loads the plugin the way Traefik v3 loads a local plugin: the
// repository laid out in a GOPATH, a Yaegi v0.16.1 interpreter with the standard
// library's symbols, the manifest's import and basePkg, CreateConfig, Traefik's
// mapstructure settings, then New. It follows traefik/v3 v3.6.12's pkg/plugins
// (newInterpreter, yaegiMiddlewareBuilder.createConfig and newHandler).
package pluginload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/syscall"
	"github.com/traefik/yaegi/stdlib/unrestricted"
	"gopkg.in/yaml.v3"
)

// Manifest is .traefik.yml, as Traefik and the plugin catalog read it.
type Manifest struct {
	DisplayName string         `yaml:"displayName"`
	Type        string         `yaml:"type"`
	Runtime     string         `yaml:"runtime"`
	Import      string         `yaml:"import"`
	BasePkg     string         `yaml:"basePkg"`
	Summary     string         `yaml:"summary"`
	IconPath    string         `yaml:"iconPath"`
	BannerPath  string         `yaml:"bannerPath"`
	TestData    map[string]any `yaml:"testData"`
}

// Plugin is the plugin loaded into one interpreter, as Traefik makes one per plugin at
// start-up: package-level state is shared by every middleware built from it.
type Plugin struct {
	Manifest Manifest
	fnNew    reflect.Value
	fnCreate reflect.Value
}

// RepoRoot is the repository's root, found from this file's place in it.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ReadManifest reads .traefik.yml at root.
func ReadManifest(root string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(root, ".traefik.yml"))
	if err != nil {
		return m, err
	}
	err = yaml.Unmarshal(b, &m)
	return m, err
}

// ModulePath reads the module line of root's go.mod.
func ModulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1], nil
		}
	}
	return "", errors.New("go.mod has no module line")
}

// LayOut copies what Traefik needs of the module at root (go.mod, .traefik.yml and the
// imported package's non-test sources) to goPath/src/<module path>, the place
// experimental.localPlugins reads from (plugins-local is such a GOPATH). It returns the
// manifest and the module path.
func LayOut(root, goPath string) (Manifest, string, error) {
	return layOut(root, goPath, false)
}

// layOut is LayOut; withTests copies the package whole, tests and test data included,
// and the repository's internal/ and testdata/, which the plugin's tests use.
func layOut(root, goPath string, withTests bool) (Manifest, string, error) {
	m, err := ReadManifest(root)
	if err != nil {
		return m, "", err
	}
	mod, err := ModulePath(root)
	if err != nil {
		return m, "", err
	}
	if !strings.HasPrefix(m.Import, mod) {
		return m, "", fmt.Errorf("import %q is not under module %q", m.Import, mod)
	}
	dst := filepath.Join(goPath, "src", filepath.FromSlash(mod))
	pkgDir := strings.TrimPrefix(strings.TrimPrefix(m.Import, mod), "/")
	keep := func(rel string, dir bool) bool {
		return withTests || !dir && filepath.Dir(rel) == "." && strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")
	}
	dirs := []string{pkgDir}
	if withTests {
		dirs = append(dirs, "internal", "testdata")
	}
	for _, dir := range dirs {
		if err := copyTree(filepath.Join(root, dir), filepath.Join(dst, dir), keep); err != nil {
			return m, "", err
		}
	}
	for _, f := range []string{"go.mod", ".traefik.yml"} {
		if err := copyFile(filepath.Join(root, f), filepath.Join(dst, f)); err != nil {
			return m, "", err
		}
	}
	return m, mod, nil
}

// copyTree copies the regular files under from that keep accepts (by their path below
// from) to to; a folder keep refuses is not walked.
func copyTree(from, to string, keep func(rel string, dir bool) bool) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		switch {
		case info.IsDir() && rel != "." && !keep(rel, true):
			return filepath.SkipDir
		case info.IsDir():
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		case !info.Mode().IsRegular() || !keep(rel, false):
			return nil
		}
		return copyFile(p, filepath.Join(to, rel))
	})
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// newInterpreter is Traefik's interpreter for plugins under goPath, with the symbols
// given. What the plugin writes with the log package or to os.Stderr is dropped: Traefik
// would log it, and the tests check answers, not logs.
func newInterpreter(goPath string, tags []string, symbols ...interp.Exports) (*interp.Interpreter, error) {
	i := interp.New(interp.Options{GoPath: goPath, BuildTags: tags, Env: os.Environ(), Stdout: io.Discard, Stderr: io.Discard})
	for _, syms := range symbols {
		if err := i.Use(syms); err != nil {
			return nil, fmt.Errorf("failed to load symbols: %w", err)
		}
	}
	return i, nil
}

// Load lays the module at root out in a new GOPATH under tmp and loads the plugin.
func Load(root, tmp string) (*Plugin, error) {
	goPath, err := os.MkdirTemp(tmp, "gopath")
	if err != nil {
		return nil, err
	}
	m, _, err := LayOut(root, goPath)
	if err != nil {
		return nil, err
	}
	i, err := newInterpreter(goPath, nil, stdlib.Symbols)
	if err != nil {
		return nil, err
	}
	if _, err := i.Eval(fmt.Sprintf(`import "%s"`, m.Import)); err != nil {
		return nil, fmt.Errorf("failed to import plugin code %q: %w", m.Import, err)
	}
	basePkg := m.BasePkg
	if basePkg == "" {
		basePkg = strings.ReplaceAll(path.Base(m.Import), "-", "_")
	}
	fnNew, err := i.Eval(basePkg + `.New`)
	if err != nil {
		return nil, fmt.Errorf("failed to eval New: %w", err)
	}
	fnCreate, err := i.Eval(basePkg + `.CreateConfig`)
	if err != nil {
		return nil, fmt.Errorf("failed to eval CreateConfig: %w", err)
	}
	return &Plugin{Manifest: m, fnNew: fnNew, fnCreate: fnCreate}, nil
}

var (
	sharedOnce   sync.Once
	sharedPlugin *Plugin
	sharedErr    error
)

// Shared returns the plugin loaded once for the whole test process, as Traefik loads it
// once for its whole life.
func Shared() (*Plugin, error) {
	sharedOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "zegocallback-yaegi")
		if err != nil {
			sharedErr = err
			return
		}
		sharedPlugin, sharedErr = Load(RepoRoot(), tmp)
	})
	return sharedPlugin, sharedErr
}

// CreateConfig calls the plugin's CreateConfig and decodes config over it with Traefik's
// settings: StringToSliceHookFunc(","), WeaklyTypedInput, nothing decoded for an empty
// configuration.
func (p *Plugin) CreateConfig(config map[string]any) (reflect.Value, error) {
	results := p.fnCreate.Call(nil)
	if len(results) != 1 {
		return reflect.Value{}, fmt.Errorf("invalid number of return for the CreateConfig function: %d", len(results))
	}
	vConfig := results[0]
	if len(config) == 0 {
		return vConfig, nil
	}
	decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           vConfig.Interface(),
	})
	if err != nil {
		return reflect.Value{}, fmt.Errorf("failed to create configuration decoder: %w", err)
	}
	if err := decoder.Decode(config); err != nil {
		return reflect.Value{}, fmt.Errorf("failed to decode configuration: %w", err)
	}
	return vConfig, nil
}

// NewHandler calls the plugin's New as Traefik does, through reflection.
func (p *Plugin) NewHandler(ctx context.Context, next http.Handler, cfg reflect.Value, name string) (http.Handler, error) {
	results := p.fnNew.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), cfg, reflect.ValueOf(name)})
	if len(results) > 1 && results[1].Interface() != nil {
		err, ok := results[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type: %T", results[0].Interface())
		}
		return nil, err
	}
	h, ok := results[0].Interface().(http.Handler)
	if !ok {
		return nil, fmt.Errorf("invalid handler type: %T", results[0].Interface())
	}
	return h, nil
}

// Build decodes config and calls New.
func (p *Plugin) Build(ctx context.Context, config map[string]any, next http.Handler, name string) (http.Handler, error) {
	cfg, err := p.CreateConfig(config)
	if err != nil {
		return nil, err
	}
	return p.NewHandler(ctx, next, cfg, name)
}

// UnitTests loads the plugin package's own tests, its _test.go files but those built
// with the yaegi tag excluded (the behaviour table's runners, benchmarks and the source
// checks, which run natively and through Build already), into an interpreter laid out
// under goPath, and returns its Test functions and its BenchmarkPiece functions: the
// same code as go test runs, interpreted as Traefik interprets the plugin. Besides the
// standard library, the interpreter has syscall and the unrestricted os/exec the tests'
// Redis helper needs; the plugin's own code uses neither (TestNoYaegiTraps and the real
// Traefik hold it to the standard library).
func UnitTests(root, goPath string) ([]testing.InternalTest, []testing.InternalBenchmark, error) {
	m, _, err := layOut(root, goPath, true)
	if err != nil {
		return nil, nil, err
	}
	i, err := newInterpreter(goPath, []string{"yaegi"}, stdlib.Symbols, syscall.Symbols, unrestricted.Symbols)
	if err != nil {
		return nil, nil, err
	}
	if err := i.EvalTest(m.Import); err != nil {
		return nil, nil, err
	}
	var tests []testing.InternalTest
	var benchmarks []testing.InternalBenchmark
	for name, sym := range i.Symbols(m.Import)[m.Import] {
		if fn, ok := sym.Interface().(func(*testing.T)); ok && strings.HasPrefix(name, "Test") {
			tests = append(tests, testing.InternalTest{Name: name, F: fn})
		}
		if fn, ok := sym.Interface().(func(*testing.B)); ok && strings.HasPrefix(name, "BenchmarkPiece") {
			benchmarks = append(benchmarks, testing.InternalBenchmark{Name: name, F: fn})
		}
	}
	sort.Slice(tests, func(a, b int) bool { return tests[a].Name < tests[b].Name })
	sort.Slice(benchmarks, func(a, b int) bool { return benchmarks[a].Name < benchmarks[b].Name })
	return tests, benchmarks, nil
}

// BaselineModule is the module path a baseline copy of the plugin gets, so that Traefik
// can load it beside the plugin itself.
const BaselineModule = "github.com/zegocallback/traefik-zego-callback-baseline"

// Baseline writes the plugin as it was at git revision rev (go.mod, .traefik.yml and the
// package) into dir, under BaselineModule, and returns dir: what a benchmark measures
// side by side with the plugin as it is.
func Baseline(root, rev, dir string) (string, error) {
	tarball := filepath.Join(dir, "baseline.tar")
	defer os.RemoveAll(tarball)
	for _, cmd := range []*exec.Cmd{
		exec.Command("git", "-C", root, "archive", "--output", tarball, rev, "go.mod", ".traefik.yml", "plugin"),
		exec.Command("tar", "-x", "-f", tarball, "-C", dir),
	} {
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	mod, err := ModulePath(root)
	if err != nil {
		return "", err
	}
	for _, f := range []string{"go.mod", ".traefik.yml"} {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), mod, BaselineModule)), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}
