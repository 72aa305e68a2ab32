// Package traefikload loads the plugin the way Traefik v3 loads a local plugin: the
// repository laid out in a GOPATH, a Yaegi v0.16.1 interpreter with the standard
// library's symbols, the manifest's import and basePkg, CreateConfig, Traefik's
// mapstructure settings, then New. It follows traefik/v3 v3.6.12's pkg/plugins
// (newInterpreter, yaegiMiddlewareBuilder.createConfig and newHandler).
package traefikload

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
	Manifest   Manifest
	ModulePath string
	interp     *interp.Interpreter
	fnNew      reflect.Value
	fnCreate   reflect.Value
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

// LayOut copies what Traefik needs of the repository at root (go.mod, .traefik.yml and
// the plugin package's non-test sources) to goPath/src/<module path>, the place
// experimental.localPlugins reads from (plugins-local is such a GOPATH).
func LayOut(root, goPath string) (Manifest, string, error) {
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
	if err := os.MkdirAll(filepath.Join(dst, pkgDir), 0o755); err != nil {
		return m, "", err
	}
	for _, f := range []string{"go.mod", ".traefik.yml"} {
		if err := copyFile(filepath.Join(root, f), filepath.Join(dst, f)); err != nil {
			return m, "", err
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, pkgDir))
	if err != nil {
		return m, "", err
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		if err := copyFile(filepath.Join(root, pkgDir, n), filepath.Join(dst, pkgDir, n)); err != nil {
			return m, "", err
		}
	}
	return m, mod, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Log receives what the plugin writes with the log package or to os.Stderr: Yaegi sends
// both to the interpreter's Stderr, which Traefik turns into ERROR-level log lines. Tests
// that check the log swap its writer; it discards by default.
var Log = &SwitchWriter{w: io.Discard}

// SwitchWriter is an io.Writer whose destination can change while it is in use.
type SwitchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes to the current destination.
func (s *SwitchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Set changes the destination and returns the previous one.
func (s *SwitchWriter) Set(w io.Writer) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.w
	s.w = w
	return old
}

// Load lays the repository at root out in a new GOPATH under tmp and loads the plugin.
func Load(root, tmp string) (*Plugin, error) {
	goPath, err := os.MkdirTemp(tmp, "gopath")
	if err != nil {
		return nil, err
	}
	m, mod, err := LayOut(root, goPath)
	if err != nil {
		return nil, err
	}
	i := interp.New(interp.Options{GoPath: goPath, Env: os.Environ(), Stdout: Log, Stderr: Log})
	if err := i.Use(stdlib.Symbols); err != nil {
		return nil, fmt.Errorf("failed to load symbols: %w", err)
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
	return &Plugin{Manifest: m, ModulePath: mod, interp: i, fnNew: fnNew, fnCreate: fnCreate}, nil
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
// with the yaegi tag excluded (the behaviour table's runners, benchmarks and the
// source checks, which run natively and through Build already), into an interpreter,
// laid out under goPath, and returns them: the same tests as go test runs, interpreted as Traefik interprets
// the plugin. Besides the standard library, the interpreter has syscall and the
// unrestricted os/exec the tests' Redis helper needs; the plugin's own code uses
// neither (TestNoYaegiTraps and the real Traefik hold it to the standard library).
func UnitTests(root, goPath string) ([]testing.InternalTest, error) {
	mod, err := ModulePath(root)
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(root)
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(goPath, "src", filepath.FromSlash(mod))
	for _, dir := range []string{strings.TrimPrefix(strings.TrimPrefix(m.Import, mod), "/"), "internal", "testdata"} {
		if err := copyTree(filepath.Join(root, dir), filepath.Join(dst, dir)); err != nil {
			return nil, err
		}
	}
	if err := copyFile(filepath.Join(root, "go.mod"), filepath.Join(dst, "go.mod")); err != nil {
		return nil, err
	}
	i := interp.New(interp.Options{GoPath: goPath, BuildTags: []string{"yaegi"}, Env: os.Environ(), Stdout: Log, Stderr: Log})
	for _, syms := range []interp.Exports{stdlib.Symbols, syscall.Symbols, unrestricted.Symbols} {
		if err := i.Use(syms); err != nil {
			return nil, err
		}
	}
	if err := i.EvalTest(m.Import); err != nil {
		return nil, err
	}
	var tests []testing.InternalTest
	for name, sym := range i.Symbols(m.Import)[m.Import] {
		if fn, ok := sym.Interface().(func(*testing.T)); ok && strings.HasPrefix(name, "Test") {
			tests = append(tests, testing.InternalTest{Name: name, F: fn})
		}
		if fn, ok := sym.Interface().(func(*testing.B)); ok && strings.HasPrefix(name, "BenchmarkPiece") {
			tests = append(tests, testing.InternalTest{Name: name, F: func(t *testing.T) {}})
			benchmarks[name] = fn
		}
	}
	sort.Slice(tests, func(a, b int) bool { return tests[a].Name < tests[b].Name })
	return tests, nil
}

// benchmarks are the plugin's BenchmarkPiece functions UnitTests loaded, interpreted.
var benchmarks = map[string]func(*testing.B){}

// Benchmarks returns the interpreted BenchmarkPiece functions UnitTests loaded.
func Benchmarks() map[string]func(*testing.B) { return benchmarks }

// copyTree copies the regular files under from to to.
func copyTree(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(to, rel))
	})
}

// BaselineModule is the module path a baseline copy of the plugin gets, so that Traefik
// can load it beside the plugin itself.
const BaselineModule = "github.com/zegocallback/traefik-zego-callback-baseline"

// Baseline writes the plugin as it was at git revision rev (go.mod, .traefik.yml and the
// package) into dir, under BaselineModule, and returns dir: what a benchmark measures
// side by side with the plugin as it is.
func Baseline(root, rev, dir string) (string, error) {
	archive := exec.Command("git", "-C", root, "archive", rev, "go.mod", ".traefik.yml", "plugin")
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr, untar.Stderr = &stderr, &stderr
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", rev, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("untar %s: %v: %s", rev, err, stderr.String())
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
