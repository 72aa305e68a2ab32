// Package e2e runs the middleware inside a real Traefik v3 binary.
package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// upstream starts a recording backend on 127.0.0.1.
func upstream(t *testing.T, b *conformance.Backend) string {
	t.Helper()
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runRows runs rows through Traefik: each middleware of each row on a router of its own
// (and a second router using it, where the row asks), in front of a recording upstream
// of its own. With a store (Redis: redis is its server), its settings are added, and a
// second Traefik with the same routes runs as a replica.
func runRows(t *testing.T, rows []conformance.Row, store conformance.StoreConfig, redis *redistest.Server) *traefiktest.Traefik {
	t.Helper()
	if store == nil {
		store = func(string) map[string]any { return nil }
	}
	var routes []traefiktest.Route
	settings := func(route string, over map[string]any) map[string]any { return conformance.Config(store(route), over) }
	type served struct {
		route   int // its index in routes
		backend *conformance.Backend
	}
	mws := make([][]served, len(rows))
	for i, r := range rows {
		for j, mw := range r.Middlewares() {
			name, b := fmt.Sprintf("row%d-%d", i, j), mw.NewBackend()
			mws[i] = append(mws[i], served{len(routes), b})
			routes = append(routes, traefiktest.Route{Name: name, Backend: upstream(t, b), Plugin: settings(name, mw.Config)})
			if r.Twins {
				routes = append(routes, traefiktest.Route{Name: name + "-twin", Backend: routes[len(routes)-1].Backend, Middleware: name})
			}
		}
	}
	instances := []*traefiktest.Traefik{traefiktest.Start(t, routes, traefiktest.Options{})}
	if redis != nil {
		instances = append(instances, traefiktest.Start(t, routes, traefiktest.Options{}))
	}
	reloads := 0
	for i, r := range rows {
		e := &conformance.Env{Redis: redis, Memory: redis == nil}
		for _, m := range mws[i] {
			name := routes[m.route].Name
			e.Srv = append(e.Srv, conformance.Remote(instances[0].URL+"/"+name, m.backend))
			e.Twin = append(e.Twin, conformance.Remote(instances[0].URL+"/"+name+"-twin", m.backend))
			if redis != nil {
				e.Replica = append(e.Replica, conformance.Remote(instances[1].URL+"/"+name, m.backend))
			}
		}
		// A reload is applied once a route it adds is served.
		e.Reload = func(t *testing.T, j int, over map[string]any) {
			m := mws[i][j]
			routes[m.route].Plugin = settings(routes[m.route].Name, over)
			reloads++
			routes = append(routes, traefiktest.Route{Name: fmt.Sprintf("reload%d", reloads), Backend: routes[m.route].Backend})
			for _, tr := range instances {
				tr.SetRoutes(t, routes)
				tr.WaitRoutes(t, routes)
			}
		}
		run := r.Run
		t.Run(r.Desc, func(t *testing.T) { run(t, e) })
	}
	return instances[0]
}

// TestConformanceThroughTraefik runs the whole behaviour table, the documented callbacks
// and the flows through one Traefik, with the memory store.
func TestConformanceThroughTraefik(t *testing.T) {
	file := conformance.SecretsFile(t)
	tr := runRows(t, conformance.AllRows(file), nil, nil)
	// One line per rejection, at Traefik's default level (ERROR), with the middleware's
	// name and the code: as many invalid_signature lines as the table sent forged callbacks
	// that were not reportOnly, and every plugin line marked ERR.
	logs := tr.Logs()
	forged := 0
	for _, c := range conformance.Cases(time.Now(), file) {
		for _, st := range c.Steps {
			if st.Code == "invalid_signature" {
				forged++
			}
		}
	}
	forged += len(conformance.CorpusCallbacks()) // each documented callback is also sent forged
	// The table's rows and the documented callbacks come first (row0 on), the flows after
	// them, whose forged callbacks (some sent while a rotated file is awaited) are not
	// counted here.
	counted := len(conformance.Cases(time.Now(), file)) + len(conformance.CorpusCallbacks())
	rowOf := regexp.MustCompile(`middleware=row(\d+)-`)
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "zegocallback: middleware=") {
			continue
		}
		if !strings.Contains(line, "ERR") {
			t.Errorf("a plugin line not at Traefik's ERROR level: %s", line)
		}
		m := rowOf.FindStringSubmatch(line)
		if row, err := strconv.Atoi(append(m, "", "")[1]); err == nil && row < counted && strings.Contains(line, "rejected code=invalid_signature") {
			lines++
		}
	}
	if lines != forged {
		t.Errorf("Traefik's log has %d invalid_signature lines for %d forged callbacks", lines, forged)
	}
	for _, want := range []string{"code=stale_timestamp", "code=malformed_body", "code=signature_reused", `event="4"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("Traefik's log has no %q", want)
		}
	}
	for _, secret := range []string{zegotest.Secret, zegotest.OtherSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("Traefik's log holds a secret")
		}
	}
}

// TestStoreRowsThroughTraefikWithRedis runs the rows that concern the replay store (the
// table's, the documented callbacks, the flows, the replicas) through two Traefik
// replicas sharing one Redis, then what concerns Redis itself: an outage, a busy pool.
func TestStoreRowsThroughTraefikWithRedis(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{Password: conformance.RedisPassword})
	slow := redistest.StartProxy(t, redis.Addr, conformance.SlowRedisDelay).Addr
	rows := append(conformance.StoreRows(conformance.SecretsFile(t)), conformance.RedisRows(redis.Addr, conformance.RedisPassword, slow)...)
	runRows(t, rows, conformance.RedisStore(redis.Addr, conformance.RedisPassword), redis)
}

// TestBadConfigLeavesOnlyItsRouteUnserved: a middleware whose configuration New refuses
// leaves its own router unserved (404), while the others keep working, and Traefik's log
// says, for each, what to write instead: the mistakes that would otherwise load and
// weaken the protection among them.
func TestBadConfigLeavesOnlyItsRouteUnserved(t *testing.T) {
	backend := &conformance.Backend{}
	url := upstream(t, backend)
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	broken := []struct {
		config  map[string]any
		wantLog string
	}{
		{map[string]any{"timestampTolerance": "5m"}, "secrets: no CallbackSecret configured"},
		{conformance.Config(map[string]any{"timestampTolerance": "300"}), `timestampTolerance: "300" is not a duration`},
		{conformance.Config(map[string]any{"timestampTolerence": "10s"}), `unknown key "timestampTolerence" (did you mean timestampTolerance?)`},
		{conformance.Config(map[string]any{"redis": map[string]any{"address": "redis:6379", "passwordFile": filepath.Join(dir, "missing")}}),
			"redis.address, redis.passwordFile set, but nonceStore is memory: set nonceStore: redis"},
		{map[string]any{"secretsFile": file("comma", zegotest.Secret+","+zegotest.OtherSecret+"\n")}, "secretsFile: line 1 holds white space, a comma"},
		{map[string]any{"secretsFile": file("space", zegotest.Secret+" "+zegotest.OtherSecret+"\n")}, "secretsFile: line 1 holds white space, a comma"},
		{conformance.Config(map[string]any{"timestampTolerance": "1500000h"}), `timestampTolerance: "1500000h" is not between 1s and 1h0m0s`},
		{conformance.Config(map[string]any{"timestampTolerance": "1000000h"}), `timestampTolerance: "1000000h" is not between 1s and 1h0m0s`},
	}
	routes := []traefiktest.Route{
		{Name: "good", Backend: url, Plugin: conformance.Config()},
		{Name: "plain", Backend: url},
		{Name: "typo", Backend: url, Plugin: conformance.Config(map[string]any{"events": []string{"mix_strat"}})},
	}
	for i, b := range broken {
		routes = append(routes, traefiktest.Route{Name: fmt.Sprintf("broken%d", i), Backend: url, Plugin: b.config})
	}
	tr := traefiktest.Start(t, routes, traefiktest.Options{})
	body := conformance.Fresh()
	conformance.CheckStep(t, "the good route", conformance.Remote(tr.URL+"/good", backend), conformance.Delivered(body))
	if r := conformance.Remote(tr.URL+"/plain", backend).Do(t, conformance.Request{Method: http.MethodGet}); r.Status != http.StatusOK {
		t.Errorf("a route without the middleware: %d", r.Status)
	}
	// An event misspelt in events is no error New can see: every mix_start gets 403,
	// and the log line names the list.
	conformance.CheckStep(t, "a mix_start where events holds mix_strat", conformance.Remote(tr.URL+"/typo", backend),
		conformance.Step{Req: conformance.Request{Body: conformance.Fresh()}, Status: 403, Code: "event_not_allowed"})
	logs := func() string { return tr.Logs() }
	waitForLog(t, logs, `reason="event not allowed: \"mix_start\" is not in events [mix_strat]"`)
	for i, b := range broken {
		name := fmt.Sprintf("broken%d", i)
		if r := conformance.Remote(tr.URL+"/"+name, backend).Do(t, conformance.Request{Body: conformance.Fresh()}); r.Status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (not served)", name, r.Status)
		}
		line := lineWith(logs(), name+"@file")
		if !strings.Contains(line, b.wantLog) {
			t.Errorf("%s: Traefik's log says %q, want it to say %q", name, line, b.wantLog)
		}
	}
}

// lineWith returns the first line of logs that holds s, with the quotes Traefik escapes
// in an error's text (error="...") unescaped.
func lineWith(logs, s string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, s) {
			return strings.ReplaceAll(line, `\"`, `"`)
		}
	}
	return ""
}

// waitForLog waits, at most 5 s, until logs() holds want.
func waitForLog(t *testing.T, logs func() string, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("Traefik's log does not say %s:\n%s", want, logs())
			return
		}
	}
}

// TestFullStoreThroughTraefik fills a memory store of 50 through Traefik: the 51st new
// callback gets 503 nonce_store_unavailable and is not forwarded, and a replay of one of
// the first 50 is still acknowledged as a duplicate.
func TestFullStoreThroughTraefik(t *testing.T) {
	backend := &conformance.Backend{}
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "small", Backend: upstream(t, backend), Plugin: conformance.Config(map[string]any{"nonceCapacity": 50})}},
		traefiktest.Options{})
	srv := conformance.Remote(tr.URL+"/small", backend)
	var first []byte
	for i := 0; i < 50; i++ {
		body := conformance.Fresh()
		if i == 0 {
			first = body
		}
		conformance.CheckStep(t, fmt.Sprintf("callback %d of 50", i+1), srv, conformance.Delivered(body))
	}
	for i := 0; i < 2; i++ {
		body := conformance.Fresh()
		conformance.CheckStep(t, fmt.Sprintf("new callback %d with the store full", i+1), srv,
			conformance.Step{Req: conformance.Request{Body: body}, Status: 503, Code: "nonce_store_unavailable"})
	}
	conformance.CheckStep(t, "a replay of the first with the store full", srv, conformance.Acked(first))
	if n := len(backend.Calls()); n != 50 {
		t.Errorf("the backend got %d callbacks, want the first 50", n)
	}
	if logs := tr.Logs(); !strings.Contains(logs, "code=nonce_store_unavailable") {
		t.Errorf("Traefik's log has no line for the refused callbacks:\n%s", logs)
	}
}
