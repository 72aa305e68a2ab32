// Command demo shows the middleware working inside a real Traefik: it starts Traefik with
// the plugin on 127.0.0.1:8080 in front of a small backend that prints every callback it
// receives with its X-Zego-* headers, sends a signed mix_start, a forged one and a
// replay, shows what each got, and keeps Traefik running for your own tries until Ctrl-C.
//
//	make demo          (or: cd test && go run ./cmd/demo)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
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
	if l, err := net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("%s is taken (%w): stop what listens there, or run with -addr", addr, err)
	} else {
		l.Close()
	}
	c := &traefiktest.Command{}
	defer c.Close()
	dir := c.TempDir()
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

	tr := traefiktest.Start(c, []traefiktest.Route{{Name: "zego", Backend: "http://" + backend.Addr().String(),
		Plugin: map[string]any{"secretsFile": secretsFile, "timestampTolerance": "5m"}}},
		traefiktest.Options{Addr: addr, Log: traefikLines{}, Color: isTerminal(os.Stdout)})
	ready.Store(true)
	url := tr.URL + "/zego/callback"
	say("Traefik (%s) runs the plugin from this checkout.\n", traefiktest.Binary(c))
	say("  %s  ->  middleware zego  ->  backend http://%s\n\n", url, backend.Addr())

	ts := zegotest.Seconds(time.Now())
	genuine := zegotest.New("mix_start.json", secret, ts).Body
	forged := zegotest.New("mix_start.json", randomSecret(), ts).Body
	step("1. A mix_start callback signed with the CallbackSecret", tr.URL+"/zego", genuine, "forwarded to the backend, with its fields as X-Zego-* headers")
	step("2. The same kind of callback signed with a wrong secret (forged)", tr.URL+"/zego", forged, "rejected at the edge: the backend never sees it")
	step("3. The first callback again (a replay)", tr.URL+"/zego", genuine, "acknowledged with 200 so that ZEGO stops retrying, and not forwarded twice")

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
func step(title, route string, body []byte, meaning string) {
	say("%s\n", title)
	resp, err := conformance.Post(context.Background(), &http.Client{Timeout: 10 * time.Second}, route, conformance.Request{Body: body})
	if err != nil {
		say("   request failed: %v\n\n", err)
		return
	}
	extra := ""
	if d := resp.Header.Get("X-Zego-Duplicate"); d != "" {
		extra = "  X-Zego-Duplicate: " + d
	}
	say("   -> %d %s%s  %s\n", resp.Status, http.StatusText(resp.Status), extra, strings.TrimSpace(string(resp.Body)))
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

// isTerminal reports whether f is a terminal: Traefik's colours only mean something there.
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// traefikLines writes Traefik's own lines (errors only, at log level ERROR: the plugin's
// rejections among them) marked as such, once the demo is ready: before, they are the
// readiness probe's.
type traefikLines struct{}

func (traefikLines) Write(p []byte) (int, error) {
	if ready.Load() {
		for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
			say("   traefik | %s\n", line)
		}
	}
	return len(p), nil
}
