// Package traefiktest runs a real Traefik v3 binary with the plugin in local-plugin mode
// (experimental.localPlugins, the repository laid out under plugins-local/src), on
// 127.0.0.1 and ephemeral ports, with a watched dynamic configuration file the tests
// write. It never skips: without a Traefik binary the test fails.
package traefiktest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/proctest"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"gopkg.in/yaml.v3"
)

// TB is what the harness needs of a test: testing.TB has it, and so does the load
// generator's stand-in.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// PluginAlias is the name the static configuration gives the plugin, and the key under a
// middleware's plugin section.
const PluginAlias = "zegocallback"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of a Traefik binary: scripts/traefik-bin prints it ($TRAEFIK_BIN,
// a cached build, or a build from the Go module proxy).
func Binary(t TB) string {
	t.Helper()
	binOnce.Do(func() {
		script := filepath.Join(pluginload.RepoRoot(), "scripts", "traefik-bin")
		cmd := exec.Command("bash", script)
		cmd.Stderr = os.Stderr // the build's progress, when there is one
		out, err := cmd.Output()
		if err != nil {
			binErr = fmt.Errorf("%s: %w", script, err)
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	if binErr != nil {
		t.Fatalf("no Traefik binary for the end-to-end tests: %v", binErr)
	}
	return binPath
}

// Route is one router of the dynamic configuration: requests whose path starts with
// /<Name>/ go through the middleware (when Plugin or Middleware is set) to Backend.
type Route struct {
	Name       string
	Backend    string         // the upstream's URL
	Plugin     map[string]any // this route's own middleware, named after the route
	Middleware string         // or a middleware defined by another route
	Plugins    map[string]map[string]any
}

// Traefik is one running Traefik process.
type Traefik struct {
	URL     string // the web entry point, http://127.0.0.1:port
	TLSURL  string // the websecure entry point, https://127.0.0.1:port (Traefik's own certificate)
	PingURL string // the traefik entry point (ping, and pprof with Options.Debug)
	dynamic string // the watched dynamic configuration file
	proc    *proctest.Process
}

// Options adds to the static configuration.
type Options struct {
	// Addr is the web entry point's address; a free port of 127.0.0.1 when empty.
	Addr string
	// Log, when set, also gets Traefik's output as it comes.
	Log io.Writer
	// LocalPlugins are more local plugins, by alias: the folder of each one's module,
	// with its .traefik.yml and go.mod.
	LocalPlugins map[string]string
	// Debug serves Go's pprof at PingURL + /debug/pprof/ (api.debug).
	Debug bool
	// ProvidersThrottle is providers.providersThrottleDuration: how often Traefik applies
	// a provider's changes at most (Traefik's default is 2s).
	ProvidersThrottle string
	// Color lets Traefik colour its log lines (for a terminal); they are plain text
	// otherwise.
	Color bool
	// LogLevel is log.level; ERROR when empty.
	LogLevel string
	// Static adds sections to the static configuration (accessLog, say).
	Static map[string]any
}

// Start starts Traefik with routes and waits until every route is served (or, for a
// route whose middleware is expected to fail, until the others are).
func Start(t TB, routes []Route, opts Options) *Traefik {
	t.Helper()
	tr := start(t, "dynamic.yml", opts, func(tr *Traefik) { tr.SetRoutes(t, routes) })
	tr.WaitRoutes(t, routes)
	return tr
}

// StartFile starts Traefik with a dynamic configuration file of its own, called name
// (its extension, .yml or .toml, says its format), and waits until each of paths is
// served on the websecure entry point (TLSURL).
func StartFile(t TB, name, content string, opts Options, paths ...string) *Traefik {
	t.Helper()
	tr := start(t, name, opts, func(tr *Traefik) {
		if err := os.WriteFile(tr.dynamic, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	for _, p := range paths {
		tr.waitFor(t, tr.TLSURL+p, func(status int) bool { return status != http.StatusNotFound })
	}
	return tr
}

// start starts Traefik with the plugin, its dynamic configuration in the file called
// dynamic, which write writes, and waits for its ping.
func start(t TB, dynamic string, opts Options, write func(*Traefik)) *Traefik {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	plugins := map[string]string{PluginAlias: pluginload.RepoRoot()}
	for alias, from := range opts.LocalPlugins {
		plugins[alias] = from
	}
	locals := map[string]any{}
	for alias, from := range plugins {
		_, module, err := pluginload.LayOut(from, filepath.Join(dir, "plugins-local"))
		if err != nil {
			t.Fatal(err)
		}
		locals[alias] = map[string]any{"moduleName": module}
	}
	web, secure, ping := opts.Addr, freeAddr(t), freeAddr(t)
	if web == "" {
		web = freeAddr(t)
	}
	static := map[string]any{
		"global": map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
		"entryPoints": map[string]any{
			"web": map[string]any{"address": web}, "websecure": map[string]any{"address": secure},
			"traefik": map[string]any{"address": ping},
		},
		"ping":         map[string]any{"entryPoint": "traefik"},
		"log":          map[string]any{"level": "ERROR", "noColor": !opts.Color},
		"providers":    map[string]any{"file": map[string]any{"filename": filepath.Join(dir, dynamic), "watch": true}},
		"experimental": map[string]any{"localPlugins": locals},
	}
	if opts.LogLevel != "" {
		static["log"].(map[string]any)["level"] = opts.LogLevel
	}
	for k, v := range opts.Static {
		static[k] = v
	}
	if opts.Debug {
		static["api"] = map[string]any{"debug": true, "insecure": true}
	}
	if opts.ProvidersThrottle != "" {
		static["providers"].(map[string]any)["providersThrottleDuration"] = opts.ProvidersThrottle
	}
	tr := &Traefik{URL: "http://" + web, TLSURL: "https://" + secure, PingURL: "http://" + ping, dynamic: filepath.Join(dir, dynamic)}
	writeYAML(t, filepath.Join(dir, "traefik.yml"), static)
	write(tr)

	cmd := exec.Command(bin, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir
	also := opts.Log
	if also == nil {
		also = io.Discard
	}
	var err error
	if tr.proc, err = proctest.Start(cmd, also); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Stop()
		if t.Failed() {
			t.Logf("Traefik's log:\n%s", tr.Logs())
		}
	})
	tr.waitFor(t, "http://"+ping+"/ping", func(status int) bool { return status == http.StatusOK })
	return tr
}

// SetRoutes rewrites the watched dynamic configuration; Traefik reloads it.
func (tr *Traefik) SetRoutes(t TB, routes []Route) {
	t.Helper()
	routers, services, middlewares := map[string]any{}, map[string]any{}, map[string]any{}
	for _, r := range routes {
		router := map[string]any{"entryPoints": []string{"web"}, "rule": fmt.Sprintf("PathPrefix(`/%s/`)", r.Name), "service": r.Name}
		mw := r.Middleware
		if r.Plugin != nil {
			mw = r.Name
			middlewares[r.Name] = map[string]any{"plugin": map[string]any{PluginAlias: r.Plugin}}
		}
		for alias, cfg := range r.Plugins {
			mw = r.Name
			middlewares[r.Name] = map[string]any{"plugin": map[string]any{alias: cfg}}
		}
		if mw != "" {
			router["middlewares"] = []string{mw}
		}
		routers[r.Name] = router
		services[r.Name] = map[string]any{"loadBalancer": map[string]any{"servers": []map[string]any{{"url": r.Backend}}}}
	}
	http := map[string]any{"routers": routers, "services": services}
	if len(middlewares) > 0 {
		http["middlewares"] = middlewares
	}
	// Written whole, then renamed: the watcher never reads half a file.
	tmp := tr.dynamic + ".tmp"
	writeYAML(t, tmp, map[string]any{"http": http})
	if err := os.Rename(tmp, tr.dynamic); err != nil {
		t.Fatal(err)
	}
}

// WaitRoutes waits until every route is served: a router whose middleware failed is
// not, and answers 404, so a route named with the prefix "broken" is waited for as
// answering 404, after the others.
func (tr *Traefik) WaitRoutes(t TB, routes []Route) {
	t.Helper()
	for _, r := range routes {
		if strings.HasPrefix(r.Name, "broken") {
			continue
		}
		tr.waitFor(t, tr.URL+"/"+r.Name+"/ready", func(status int) bool { return status != http.StatusNotFound })
	}
}

func (tr *Traefik) waitFor(t TB, url string, ok func(int) bool) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: InsecureTransport}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-tr.proc.Exited:
			t.Fatalf("Traefik exited:\n%s", tr.Logs())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s (last: %v)\n%s", url, err, tr.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// InsecureTransport reaches the websecure entry point, whose certificate is Traefik's own
// self-signed one.
var InsecureTransport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // Traefik's default certificate, on loopback

// Stop stops Traefik: SIGTERM, then SIGKILL to its process group after 10 s.
func (tr *Traefik) Stop() { tr.proc.Stop(syscall.SIGTERM, 10*time.Second) }

// Kill kills Traefik at once (SIGKILL to its process group), as an OOM kill or a
// node failure would, and waits for it to exit.
func (tr *Traefik) Kill() { tr.proc.Stop(syscall.SIGKILL, 10*time.Second) }

// Pid is the Traefik process's id.
func (tr *Traefik) Pid() int { return tr.proc.Cmd.Process.Pid }

// Logs returns what Traefik has written so far.
func (tr *Traefik) Logs() string { return tr.proc.Output.String() }

func freeAddr(t TB) string {
	t.Helper()
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func writeYAML(t TB, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Command is the TB of a command run outside go test (the demo, the load generator):
// Fatal runs the cleanups and exits.
type Command struct {
	mu       sync.Mutex
	cleanups []func()
}

func (c *Command) Helper()                         {}
func (c *Command) Fatal(args ...any)               { c.Fatalf("%s", fmt.Sprint(args...)) }
func (c *Command) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (c *Command) Failed() bool                    { return false }

// Cleanup registers f for Close.
func (c *Command) Cleanup(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, f)
}

// Fatalf prints the message, runs the cleanups and exits with status 1.
func (c *Command) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, filepath.Base(os.Args[0])+": "+format+"\n", args...)
	c.Close()
	os.Exit(1)
}

// TempDir makes a folder that Close removes.
func (c *Command) TempDir() string {
	dir, err := os.MkdirTemp("", "zego-callback-")
	if err != nil {
		c.Fatalf("%v", err)
	}
	c.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Close runs the cleanups, the last registered first.
func (c *Command) Close() {
	c.mu.Lock()
	fs := c.cleanups
	c.cleanups = nil
	c.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
