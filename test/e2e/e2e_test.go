// Package e2e runs the middleware inside a real Traefik v3 binary.
package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
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

func config(over map[string]any) map[string]any {
	c := conformance.BaseConfig()
	for k, v := range over {
		c[k] = v
	}
	return c
}

// row is one behaviour run through Traefik: its middleware's configuration, its
// backend, and what it sends.
type row struct {
	name    string
	config  map[string]any // the plugin's, whole
	backend *conformance.Backend
	run     func(t *testing.T, srv *conformance.Server)
}

// runRows runs rows through one Traefik, each on a router of its own, with its own
// middleware and recording upstream.
func runRows(t *testing.T, rows []row) *traefiktest.Traefik {
	t.Helper()
	routes := make([]traefiktest.Route, len(rows))
	for i, r := range rows {
		routes[i] = traefiktest.Route{Name: fmt.Sprintf("row%d", i), Backend: upstream(t, r.backend), Plugin: r.config}
	}
	tr := traefiktest.Start(t, routes, traefiktest.Options{})
	for i, r := range rows {
		srv := conformance.Remote(tr.URL+"/"+routes[i].Name, r.backend)
		run := r.run
		t.Run(r.name, func(t *testing.T) { run(t, srv) })
	}
	return tr
}

// stepsOf runs the steps of the case make builds, built when the row runs: signed now.
func stepsOf(make func() conformance.Case) func(t *testing.T, srv *conformance.Server) {
	return func(t *testing.T, srv *conformance.Server) {
		for j, st := range make().Steps {
			conformance.CheckStep(t, fmt.Sprintf("request %d", j+1), srv, st)
		}
	}
}

// tableRows are the behaviour table's rows (only those that exercise the replay store
// when storeOnly), the documented callbacks and the flows, with store's settings.
func tableRows(t *testing.T, store conformance.StoreConfig, storeOnly bool) []row {
	file := conformance.SecretsFile(t)
	var rows []row
	for i, c := range conformance.Cases(time.Now(), file) {
		if storeOnly && !c.Store {
			continue
		}
		i := i
		rows = append(rows, row{name: c.Desc, config: withStore(c.Config, store, len(rows)), backend: &conformance.Backend{},
			run: stepsOf(func() conformance.Case { return conformance.CaseAt(i, file) })})
	}
	for _, cr := range conformance.CorpusRows() {
		cr := cr
		c := cr.Case(time.Now())
		rows = append(rows, row{name: c.Desc, config: withStore(c.Config, store, len(rows)), backend: &conformance.Backend{},
			run: stepsOf(func() conformance.Case { return cr.Case(time.Now()) })})
	}
	for _, f := range conformance.Flows() {
		rows = append(rows, row{name: f.Desc, config: withStore(f.Config, store, len(rows)), backend: f.NewBackend(), run: f.Run})
	}
	return rows
}

// withStore is the base configuration with over and the store's settings for the row.
func withStore(over map[string]any, store conformance.StoreConfig, i int) map[string]any {
	c := config(over)
	if store != nil {
		for k, v := range store(fmt.Sprintf("row%d", i)) {
			c[k] = v
		}
	}
	return c
}

// TestConformanceThroughTraefik runs the whole behaviour table, the documented callbacks
// and the flows through one Traefik, with the memory store.
func TestConformanceThroughTraefik(t *testing.T) {
	rows := tableRows(t, nil, false)
	tr := runRows(t, rows)
	// One line per rejection, at Traefik's default level (ERROR), with the middleware's
	// name and the code: as many invalid_signature lines as the table sent forged callbacks
	// that were not reportOnly, and every plugin line marked ERR.
	logs := tr.Logs()
	file := conformance.SecretsFile(t)
	forged := 0
	for _, c := range conformance.Cases(time.Now(), file) {
		for _, st := range c.Steps {
			if st.Code == "invalid_signature" {
				forged++
			}
		}
	}
	forged += len(conformance.CorpusRows()) // each documented callback is also sent forged
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "zegocallback: middleware=") {
			continue
		}
		if !strings.Contains(line, "ERR") {
			t.Errorf("a plugin line not at Traefik's ERROR level: %s", line)
		}
		if strings.Contains(line, "rejected code=invalid_signature") && strings.Contains(line, "middleware=row") {
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

// TestConcurrentCopiesThroughTraefik sends 50 copies of one callback at once through
// two routers that share the middleware: exactly one reaches the backend.
func TestConcurrentCopiesThroughTraefik(t *testing.T) {
	backend := &conformance.Backend{}
	url := upstream(t, backend)
	tr := traefiktest.Start(t, []traefiktest.Route{
		{Name: "one", Backend: url, Plugin: config(nil)},
		{Name: "two", Backend: url, Middleware: "one"},
	}, traefiktest.Options{})
	body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for i := 0; i < 50; i++ {
		route := []string{"one", "two"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- conformance.Remote(tr.URL+"/"+route, backend).Do(t, conformance.Request{Body: body}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 && s != 409 {
			t.Errorf("a copy got %d", s)
		}
	}
	if n := len(backend.Calls()); n != 1 {
		t.Errorf("the backend got %d of 50 copies, want 1", n)
	}
}

// TestReloadKeepsTheReplayStore edits the watched dynamic configuration: Traefik calls
// New again, and a callback delivered before the reload is still a replay after it,
// through the same router and through a router added by the reload.
func TestReloadKeepsTheReplayStore(t *testing.T) {
	backend := &conformance.Backend{}
	url := upstream(t, backend)
	routes := []traefiktest.Route{{Name: "zego", Backend: url, Plugin: config(nil)}}
	tr := traefiktest.Start(t, routes, traefiktest.Options{})
	srv := conformance.Remote(tr.URL+"/zego", backend)
	body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	conformance.CheckStep(t, "before the reload", srv, conformance.Step{Req: conformance.Request{Body: body}, Status: 200, Forwarded: true})

	// An unrelated change, then a change of the middleware's own settings.
	routes = append(routes, traefiktest.Route{Name: "added", Backend: url, Middleware: "zego"})
	tr.SetRoutes(t, routes)
	tr.WaitRoutes(t, routes)
	conformance.CheckStep(t, "after an unrelated reload", srv, conformance.Step{Req: conformance.Request{Body: body}, Status: 200,
		RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
	conformance.CheckStep(t, "through the added router", conformance.Remote(tr.URL+"/added", backend),
		conformance.Step{Req: conformance.Request{Body: body}, Status: 200, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})

	routes[0].Plugin = config(map[string]any{"duplicates": "reject", "fields": []string{"event"}})
	routes = append(routes, traefiktest.Route{Name: "marker", Backend: url})
	tr.SetRoutes(t, routes)
	tr.WaitRoutes(t, routes)
	conformance.CheckStep(t, "after the middleware's own settings changed", srv,
		conformance.Step{Req: conformance.Request{Body: body}, Status: 409, Code: "duplicate"})
	fresh := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	conformance.CheckStep(t, "a new callback after the reloads", srv, conformance.Step{Req: conformance.Request{Body: fresh}, Status: 200,
		Forwarded: true, Got: map[string][]string{"X-Zego-Event": {"mix_start"}}, NotGot: []string{"X-Zego-Appid"}})
}

// TestBadConfigLeavesOnlyItsRouteUnserved: a middleware whose configuration New refuses
// leaves its own router unserved (404), while the others keep working, and Traefik's log
// says why.
func TestBadConfigLeavesOnlyItsRouteUnserved(t *testing.T) {
	backend := &conformance.Backend{}
	url := upstream(t, backend)
	tr := traefiktest.Start(t, []traefiktest.Route{
		{Name: "good", Backend: url, Plugin: config(nil)},
		{Name: "plain", Backend: url},
		{Name: "broken", Backend: url, Plugin: map[string]any{"timestampTolerance": "5m"}},
		{Name: "broken2", Backend: url, Plugin: config(map[string]any{"timestampTolerance": "300"})},
	}, traefiktest.Options{})
	body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	conformance.CheckStep(t, "the good route", conformance.Remote(tr.URL+"/good", backend),
		conformance.Step{Req: conformance.Request{Body: body}, Status: 200, Forwarded: true})
	for _, broken := range []string{"broken", "broken2"} {
		resp, err := http.Post(tr.URL+"/"+broken+"/callback", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (not served)", broken, resp.StatusCode)
		}
	}
	resp, err := http.Get(tr.URL + "/plain/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a route without the middleware: %d", resp.StatusCode)
	}
	logs := tr.Logs()
	for _, want := range []string{"secrets", "timestampTolerance"} {
		if !strings.Contains(logs, want) {
			t.Errorf("Traefik's log does not name %q:\n%s", want, logs)
		}
	}
}
