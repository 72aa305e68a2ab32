// Command demo shows the middleware working inside a real Traefik: it starts Traefik with
// the plugin on 127.0.0.1:8080 in front of a small backend that prints every callback it
// receives with its X-Zego-* headers, sends a signed mix_start, a forged one and a
// replay, shows what each got, and keeps Traefik running for your own tries until Ctrl-C.
//
//	make demo          (or: cd test && go run ./cmd/demo)
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/traefikload"
)

const path = "/zego/callback"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "Traefik's entry point")
	noWait := flag.Bool("no-wait", false, "stop after the three callbacks instead of waiting for Ctrl-C")
	flag.Parse()
	if err := run(*addr, *noWait); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var (
	out   sync.Mutex  // keeps the backend's lines and the demo's apart
	ready atomic.Bool // Traefik's lines show once the demo has started
)

func say(format string, args ...any) {
	out.Lock()
	fmt.Printf(format, args...)
	out.Unlock()
}

func run(addr string, noWait bool) error {
	say("== ZEGOCLOUD callback verifier: demo ==\n\n")
	bin, err := traefikBinary()
	if err != nil {
		return err
	}
	if l, err := net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("%s is taken (%w): stop what listens there, or run with -addr", addr, err)
	} else {
		l.Close()
	}

	dir, err := os.MkdirTemp("", "zego-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secret := randomSecret()
	secretsFile := filepath.Join(dir, "callback-secrets")
	if err := os.WriteFile(secretsFile, []byte("# the demo's CallbackSecret\n"+secret+"\n"), 0o600); err != nil {
		return err
	}

	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(backend, http.HandlerFunc(printCallback)) }()

	_, module, err := traefikload.LayOut(traefikload.RepoRoot(), filepath.Join(dir, "plugins-local"))
	if err != nil {
		return err
	}
	ping := freeAddr()
	static := fmt.Sprintf(`global: {checkNewVersion: false, sendAnonymousUsage: false}
entryPoints:
  web: {address: "%s"}
  traefik: {address: "%s"}
ping: {entryPoint: traefik}
log: {level: ERROR}
providers:
  file: {filename: "%s", watch: true}
experimental:
  localPlugins:
    zegocallback: {moduleName: %s}
`, addr, ping, filepath.Join(dir, "dynamic.yml"), module)
	dynamic := fmt.Sprintf(`http:
  routers:
    zego-callbacks:
      entryPoints: [web]
      rule: Path(`+"`%s`"+`)
      middlewares: [zego-callback]
      service: callback-backend
  services:
    callback-backend:
      loadBalancer:
        servers: [{url: "http://%s"}]
  middlewares:
    zego-callback:
      plugin:
        zegocallback:
          secretsFile: %s
          timestampTolerance: 5m
`, path, backend.Addr(), secretsFile)
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "dynamic.yml"), []byte(dynamic), 0o644); err != nil {
		return err
	}

	cmd := exec.Command(bin, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir
	cmd.Stdout = prefixed("traefik | ")
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	url := "http://" + addr + path
	if err := waitReady("http://"+ping+"/ping", url); err != nil {
		return err
	}
	ready.Store(true)
	say("Traefik (%s) runs the plugin from this checkout.\n", bin)
	say("  %s  ->  middleware zego-callback  ->  backend http://%s\n\n", url, backend.Addr())

	ts := zegotest.Seconds(time.Now())
	genuine := zegotest.New("mix_start.json", secret, ts).Body
	forged := zegotest.New("mix_start.json", randomSecret(), ts).Body
	step("1. A mix_start callback signed with the CallbackSecret", url, genuine, "forwarded to the backend, with its fields as X-Zego-* headers")
	step("2. The same kind of callback signed with a wrong secret (forged)", url, forged, "rejected at the edge: the backend never sees it")
	step("3. The first callback again (a replay)", url, genuine, "acknowledged with 200 so that ZEGO stops retrying, and not forwarded twice")

	if noWait {
		return nil
	}
	say("Traefik keeps running: send your own callbacks.\n")
	say("  URL:     %s\n  Secret:  %s   (in %s)\n", url, secret, secretsFile)
	say("  Try:     ZEGO_CALLBACK_SECRET=%s go run ./cmd/zegosign -url %s\n", secret, url)
	say("           (from the repository's root; add -body your-callback.json for your own body)\n")
	say("Ctrl-C stops Traefik and the backend.\n")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	say("\nstopping.\n")
	return nil
}

// step sends one callback through Traefik and shows what came back.
func step(title, url string, body []byte, meaning string) {
	say("%s\n", title)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		say("   request failed: %v\n\n", err)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	extra := ""
	if d := resp.Header.Get("X-Zego-Duplicate"); d != "" {
		extra = "  X-Zego-Duplicate: " + d
	}
	say("   -> %s%s  %s\n", resp.Status, extra, strings.TrimSpace(string(answer)))
	say("   (%s)\n\n", meaning)
}

// printCallback is the demo backend: it prints what it receives.
func printCallback(rw http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var names []string
	for k := range req.Header {
		if strings.HasPrefix(k, "X-Zego-") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "   [backend] %s %s, %d bytes of body, with:\n", req.Method, req.URL.Path, len(body))
	for _, k := range names {
		fmt.Fprintf(&b, "   [backend]   %s: %s\n", k, strings.Join(req.Header[k], " | "))
	}
	say("%s", b.String())
	_, _ = io.WriteString(rw, "success")
}

func traefikBinary() (string, error) {
	script := filepath.Join(traefikload.RepoRoot(), "scripts", "traefik-bin")
	cmd := exec.Command("bash", script)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("getting Traefik: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func waitReady(ping, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if resp, err := client.Get(ping); err == nil {
			resp.Body.Close()
			// GET on the route answers 405 once the middleware is up, 404 before.
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusMethodNotAllowed {
					return nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("traefik did not serve %s within 60 s", url)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:8082"
	}
	defer l.Close()
	return l.Addr().String()
}

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// prefixed writes Traefik's own lines (errors only, at log level ERROR: the plugin's
// rejections among them) marked as such, once the demo is ready: before, they are the
// readiness probe's.
func prefixed(prefix string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if !ready.Load() {
			return len(p), nil
		}
		for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
			say("   %s%s\n", prefix, line)
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
