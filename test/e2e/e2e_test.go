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

// TestConformanceThroughTraefik runs the whole behaviour table through one Traefik:
// each case gets its own router, middleware and recording upstream.
func TestConformanceThroughTraefik(t *testing.T) {
	file := conformance.SecretsFile(t)
	cases := conformance.Cases(time.Now(), file)
	routes := make([]traefiktest.Route, len(cases))
	backends := make([]*conformance.Backend, len(cases))
	for i, c := range cases {
		backends[i] = &conformance.Backend{}
		routes[i] = traefiktest.Route{Name: fmt.Sprintf("case%d", i), Backend: upstream(t, backends[i]), Plugin: config(c.Config)}
	}
	tr := traefiktest.Start(t, routes, traefiktest.Options{})
	for i := range cases {
		i := i
		c := conformance.CaseAt(i, file) // signed now, not before Traefik started
		t.Run(c.Desc, func(t *testing.T) {
			srv := conformance.Remote(tr.URL+"/"+routes[i].Name, backends[i])
			for j, st := range c.Steps {
				conformance.CheckStep(t, fmt.Sprintf("request %d", j+1), srv, st)
			}
		})
	}
	// One line per rejection, at Traefik's default level (ERROR), with the middleware's
	// name and the code: as many invalid_signature lines as the table sent forged callbacks
	// that were not reportOnly, and every plugin line marked ERR.
	logs := tr.Logs()
	forged := 0
	for _, c := range cases {
		for _, st := range c.Steps {
			if st.Code == "invalid_signature" {
				forged++
			}
		}
	}
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "zegocallback: middleware=") {
			continue
		}
		if !strings.Contains(line, "ERR") {
			t.Errorf("a plugin line not at Traefik's ERROR level: %s", line)
		}
		if strings.Contains(line, "rejected code=invalid_signature") && strings.Contains(line, "middleware=case") {
			lines++
		}
	}
	if lines != forged {
		t.Errorf("Traefik's log has %d invalid_signature lines for %d forged callbacks", lines, forged)
	}
	for _, want := range []string{"code=stale_timestamp", "code=malformed_body"} {
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

// TestDuplicateInFlightThroughTraefik holds the first copy at the backend while a
// second arrives: 409; once the first is delivered, copies are acknowledged.
func TestDuplicateInFlightThroughTraefik(t *testing.T) {
	backend := &conformance.Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 4)}
	url := upstream(t, backend)
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "held", Backend: url, Plugin: config(nil)}}, traefiktest.Options{})
	// The readiness probe (a GET, 405) never reaches the backend.
	srv := conformance.Remote(tr.URL+"/held", backend)
	body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	first := make(chan conformance.Response, 1)
	go func() { first <- srv.Do(t, conformance.Request{Body: body}) }()
	select {
	case <-backend.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first copy never reached the backend")
	}
	if r := srv.Do(t, conformance.Request{Body: body}); r.Status != 409 || r.Code != "duplicate" {
		t.Errorf("copy while in flight: %d %q, want 409 duplicate", r.Status, r.Code)
	}
	close(backend.Hold)
	if r := <-first; r.Status != 200 {
		t.Errorf("first copy: %d", r.Status)
	}
	if r := srv.Do(t, conformance.Request{Body: body}); r.Status != 200 || r.Header.Get("X-Zego-Duplicate") != "true" {
		t.Errorf("copy after delivery: %d %v", r.Status, r.Header)
	}
	if n := len(backend.Calls()); n != 1 {
		t.Errorf("the backend got %d copies, want 1", n)
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
