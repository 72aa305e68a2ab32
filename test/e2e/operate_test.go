package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/load"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
	"gopkg.in/yaml.v3"
)

// TestFloodLogsStayBounded sends forged and malformed callbacks through Traefik for 5 s,
// as fast as 32 connections go: the middleware writes at most 100 lines for them, and a
// genuine callback refused for another reason (stale, here) in the middle of the flood
// has its line all the same.
func TestFloodLogsStayBounded(t *testing.T) {
	backend := &conformance.Backend{}
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "flood", Backend: upstream(t, backend),
		Plugin: conformance.Config()}}, traefiktest.Options{})
	d := &load.Driver{URL: tr.URL + "/flood", Conc: 32, Count: 10000000, Until: time.Now().Add(5 * time.Second), Kind: func(i int) load.Kind { return []load.Kind{load.Forged, load.Malformed}[i%2] }}
	stale := make(chan load.Answer, 1)
	go func() {
		time.Sleep(2500 * time.Millisecond)
		body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now().Add(-time.Hour))).Body
		stale <- load.Post(context.Background(), http.DefaultClient, tr.URL+"/flood", body)
	}()
	sent := d.Run(context.Background())
	if a := <-stale; a.Status != http.StatusUnauthorized || a.Code != "stale_timestamp" {
		t.Errorf("the stale callback got %v", a)
	}
	refused := 0
	for _, s := range sent {
		if s.Answer.Code == "invalid_signature" || s.Answer.Code == "malformed_body" {
			refused++
		}
	}
	time.Sleep(200 * time.Millisecond) // the last lines reach the log
	lines := 0
	for _, line := range strings.Split(tr.Logs(), "\n") {
		if strings.Contains(line, "middleware=flood@file") {
			lines++
		}
	}
	t.Logf("%d forged callbacks refused in 5 s (%.0f/s) wrote %d lines", refused, float64(refused)/5, lines)
	if refused < 1000 {
		t.Errorf("only %d forged callbacks were refused: the flood did not flood", refused)
	}
	if lines > 100 {
		t.Errorf("the flood wrote %d lines, want at most 100", lines)
	}
	if !strings.Contains(tr.Logs(), "code=stale_timestamp") {
		t.Errorf("the stale callback's line was suppressed")
	}
	if !strings.Contains(tr.Logs(), "not written in the last") {
		t.Errorf("no line says how many were not written")
	}
}

// TestSecretRotationUnderLoad rotates the secret in a Kubernetes-style Secret volume
// (the file a symbolic link to a folder swapped whole) while callbacks signed with the
// old and the new secret arrive from 8 connections: no callback signed with a secret
// the file lists is refused once the change applied, which takes at most about 2 s, and
// the old secret stops passing once it is removed.
func TestSecretRotationUnderLoad(t *testing.T) {
	const oldSecret, newSecret = "0ld5ecret0000000000000000000000a", "new5ecret0000000000000000000000b"
	volume := t.TempDir()
	version := 0
	publish := func(content string) time.Time {
		version++
		dir := fmt.Sprintf("..v%d", version)
		if err := os.Mkdir(filepath.Join(volume, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(volume, dir, "secrets"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, filepath.Join(volume, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(volume, "..data_tmp"), filepath.Join(volume, "..data")); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	publish(oldSecret + "\n")
	if err := os.Symlink(filepath.Join("..data", "secrets"), filepath.Join(volume, "secrets")); err != nil {
		t.Fatal(err)
	}
	backend := &conformance.Backend{}
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "rotate", Backend: upstream(t, backend),
		Plugin: map[string]any{"secretsFile": filepath.Join(volume, "secrets")}}}, traefiktest.Options{})

	type result struct {
		secret string
		at     time.Time
		answer load.Answer
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var n atomic.Int64
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				secret := oldSecret
				if n.Add(1)%2 == 0 {
					secret = newSecret
				}
				at := time.Now()
				a := load.Post(context.Background(), client, tr.URL+"/rotate", zegotest.New("mix_start.json", secret, zegotest.Seconds(at)).Body)
				mu.Lock()
				results = append(results, result{secret, at, a})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	added := publish(oldSecret + "\n" + newSecret + "\n")
	time.Sleep(4 * time.Second)
	removed := publish(newSecret + "\n")
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	const applies = 2500 * time.Millisecond // two looks a second apart, and a margin
	var firstNew, lastOld time.Time
	for _, r := range results {
		ok := r.answer.Status == http.StatusOK
		switch {
		case r.answer.Err != nil || !ok && r.answer.Code != "invalid_signature":
			t.Errorf("a callback signed with the %s secret got %v", map[bool]string{true: "old", false: "new"}[r.secret == oldSecret], r.answer)
		case r.secret == oldSecret && ok && r.at.After(lastOld):
			lastOld = r.at
		case r.secret == oldSecret && !ok && r.at.Before(removed):
			t.Errorf("a callback signed with the old secret, sent %v before it was removed, got %v", removed.Sub(r.at), r.answer)
		case r.secret == oldSecret && ok && r.at.After(removed.Add(applies)):
			t.Errorf("a callback signed with the old secret, sent %v after it was removed, was forwarded", r.at.Sub(removed))
		case r.secret == newSecret && ok && (firstNew.IsZero() || r.at.Before(firstNew)):
			firstNew = r.at
		case r.secret == newSecret && !ok && r.at.After(added.Add(applies)):
			t.Errorf("a callback signed with the new secret, sent %v after it was added, got %v", r.at.Sub(added), r.answer)
		}
	}
	t.Logf("%d callbacks; the new secret passed %v after it was added, the old one last %v after it was removed",
		len(results), firstNew.Sub(added).Round(time.Millisecond), lastOld.Sub(removed).Round(time.Millisecond))
	if firstNew.IsZero() || firstNew.Before(added) {
		t.Errorf("the new secret passed at %v, before it was added (%v)", firstNew, added)
	}

	// On a quiet route, a change made while no callback came is taken by the first one
	// after it.
	const quietSecret = "quiet5ecret000000000000000000000c"
	publish(quietSecret + "\n")
	time.Sleep(1500 * time.Millisecond)
	if a := load.Post(context.Background(), http.DefaultClient, tr.URL+"/rotate",
		zegotest.New("mix_start.json", quietSecret, zegotest.Seconds(time.Now())).Body); a.Status != http.StatusOK {
		t.Errorf("the first callback after a change on a quiet route: %v, want 200", a)
	}
}

// TestNoSecretInAnyOutput sets every option that holds a secret to a marker (an inline
// secret, a secrets file's line, a Redis password in a file, in a URL, a wrong one),
// sends every kind of request through a real Traefik at DEBUG, and looks for the
// markers in every log line, answer, header and forwarded request, and in Traefik's
// API: the secrets read from files appear nowhere; inline ones and the URL's password
// appear only where Traefik itself shows its configuration, as the README warns.
func TestNoSecretInAnyOutput(t *testing.T) {
	const (
		inlineSecret = "markerInlineSecret0000000000001"
		fileSecret   = "markerFileSecret00000000000002"
		filePassword = "markerFilePassword00003"
		urlPassword  = "markerUrlPassword00004"
		wrongPass    = "markerWrongPassword00005"
	)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	byFile := redistest.Start(t, redistest.Options{Password: filePassword})
	byURL := redistest.Start(t, redistest.Options{Password: urlPassword})
	secrets := write("secrets", "# secrets\n"+fileSecret+"\n")
	base := map[string]any{"secrets": []string{inlineSecret}, "secretsFile": secrets}
	with := func(over map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range over {
			out[k] = v
		}
		return out
	}
	var forwarded bytes.Buffer
	var fmu sync.Mutex
	backend := http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		fmu.Lock()
		_ = req.Header.Write(&forwarded)
		forwarded.Write(body)
		fmu.Unlock()
	})
	routes := []traefiktest.Route{
		{Name: "memory", Plugin: base},
		{Name: "redisfile", Plugin: with(map[string]any{"nonceStore": "redis", "redis": map[string]any{"address": byFile.Addr, "passwordFile": write("redis-password", filePassword+"\n")}})},
		{Name: "redisurl", Plugin: with(map[string]any{"nonceStore": "redis", "redis": map[string]any{"address": "redis://:" + urlPassword + "@" + byURL.Addr + "/0"}})},
		{Name: "rediswrong", Plugin: with(map[string]any{"nonceStore": "redis", "redis": map[string]any{"address": byFile.Addr, "passwordFile": write("wrong-password", wrongPass+"\n")}})},
		{Name: "brokenurl", Plugin: with(map[string]any{"nonceStore": "redis", "redis": map[string]any{"address": "redis://zego:" + urlPassword + "@" + byURL.Addr, "password": "x"}})},
		{Name: "brokenbare", Plugin: with(map[string]any{"nonceStore": "redis", "redis": map[string]any{"address": "zego:" + urlPassword + "@" + byURL.Addr}})},
	}
	backendSrv := httptest.NewServer(backend)
	t.Cleanup(backendSrv.Close)
	for i := range routes {
		routes[i].Backend = backendSrv.URL
	}
	tr := traefiktest.Start(t, routes, traefiktest.Options{LogLevel: "DEBUG", Debug: true})

	var answers bytes.Buffer
	client := &http.Client{Timeout: 10 * time.Second}
	for _, route := range []string{"memory", "redisfile", "redisurl", "rediswrong"} {
		now := time.Now()
		ts := zegotest.Seconds(now)
		kinds := [][]byte{
			zegotest.New("mix_start.json", inlineSecret, ts).Body,
			zegotest.New("mix_start.json", fileSecret, ts).Body,
			zegotest.New("mix_start.json", "not-the-secret", ts).Body,
			zegotest.New("mix_start.json", fileSecret, zegotest.Seconds(now.Add(-time.Hour))).Body,
			[]byte(`{"event":"x"`),
		}
		kinds = append(kinds, kinds[0]) // a duplicate
		for _, body := range kinds {
			resp, err := conformance.Post(context.Background(), client, tr.URL+"/"+route, conformance.Request{Body: body})
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Header.Write(&answers)
			answers.Write(resp.Body)
		}
	}
	api := func(path string) string {
		resp, err := http.Get(tr.PingURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	apiText := api("/api/http/middlewares") + api("/api/http/routers")
	time.Sleep(200 * time.Millisecond)

	// Traefik itself shows its configuration (at DEBUG, and in its API): the inline
	// secret and the URL's password are there, which is why the README says to use files.
	configLine := func(line string) bool {
		return strings.Contains(line, "Configuration received") || strings.Contains(line, `"providerName":`)
	}
	fmu.Lock()
	outputs := map[string]string{"answers": answers.String(), "forwarded requests": forwarded.String()}
	fmu.Unlock()
	var pluginLines []string
	sc := bufio.NewScanner(strings.NewReader(tr.Logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		for _, marker := range []string{fileSecret, filePassword, wrongPass} {
			if strings.Contains(line, marker) {
				t.Errorf("a secret read from a file (%s) is in Traefik's log: %s", marker, line)
			}
		}
		for _, marker := range []string{inlineSecret, urlPassword} {
			if strings.Contains(line, marker) && !configLine(line) {
				t.Errorf("a secret (%s) is in a log line: %s", marker, line)
			}
		}
		if strings.Contains(line, "zegocallback") {
			pluginLines = append(pluginLines, line)
		}
	}
	for what, text := range outputs {
		for _, marker := range []string{inlineSecret, fileSecret, filePassword, urlPassword, wrongPass} {
			if strings.Contains(text, marker) {
				t.Errorf("a secret (%s) is in the %s", marker, what)
			}
		}
	}
	for _, marker := range []string{fileSecret, filePassword, wrongPass} {
		if strings.Contains(apiText, marker) {
			t.Errorf("a secret read from a file (%s) is in Traefik's API", marker)
		}
	}
	// What was sent did reach the log: refusals, an AUTH failure, and both broken routes.
	for _, want := range []string{"code=invalid_signature", "code=stale_timestamp", "code=malformed_body", "AUTH", "brokenurl@file", "brokenbare@file"} {
		if !strings.Contains(strings.Join(pluginLines, "\n")+tr.Logs(), want) {
			t.Errorf("Traefik's log has nothing for %s", want)
		}
	}
	var mws []map[string]any
	_ = json.Unmarshal([]byte(api("/api/http/middlewares")), &mws)
	t.Logf("%d plugin lines checked; the API lists %d middlewares", len(pluginLines), len(mws))
}

// TestAccessLogRecordsTheCode runs Traefik with the access log of the sample static
// configuration (testdata/traefik/traefik.yml): a refused callback's line holds its code,
// from the X-Zego-Rejection answer header, and an acknowledged duplicate's says so. With
// the request's X-Zego-Event kept too, only the callback forwarded has one: a refused
// body's fields, which the plain reading writes as it reads, are taken out again.
func TestAccessLogRecordsTheCode(t *testing.T) {
	var static struct {
		AccessLog map[string]any `yaml:"accessLog"`
	}
	content, err := os.ReadFile(filepath.Join(pluginload.RepoRoot(), "testdata", "traefik", "traefik.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(content, &static); err != nil || static.AccessLog == nil {
		t.Fatalf("the sample has no accessLog: %v", err)
	}
	accessLog := filepath.Join(t.TempDir(), "access.log")
	static.AccessLog["filePath"] = accessLog
	names := static.AccessLog["fields"].(map[string]any)["headers"].(map[string]any)["names"].(map[string]any)
	names["X-Zego-Event"] = "keep"
	backend := &conformance.Backend{}
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "logged", Backend: upstream(t, backend), Plugin: conformance.Config()}},
		traefiktest.Options{Static: map[string]any{"accessLog": static.AccessLog}})
	srv := conformance.Remote(tr.URL+"/logged", backend)
	now := time.Now()
	compact := func(secret string, at time.Time) []byte {
		return conformance.CompactMixStart(zegotest.New("mix_start.json", secret, zegotest.Seconds(at)).Body)
	}
	genuine := compact(zegotest.Secret, now)
	for _, body := range [][]byte{compact(zegotest.OtherSecret, now), compact(zegotest.Secret, now.Add(-time.Hour)), genuine, genuine} {
		srv.Do(t, conformance.Request{Body: body})
	}
	// What each line says: its rejection or duplicate header, and the request's event.
	want := map[string]string{"invalid_signature": "", "stale_timestamp": "", "duplicate": "", "forwarded": "mix_start"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]string{}
		b, _ := os.ReadFile(accessLog)
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var entry map[string]any
			if json.Unmarshal(line, &entry) != nil || entry["RequestMethod"] != "POST" {
				continue // Traefik's readiness probes are GETs
			}
			kind, _ := entry["downstream_X-Zego-Rejection"].(string)
			if entry["downstream_X-Zego-Duplicate"] == "true" {
				kind = "duplicate"
			} else if kind == "" {
				kind = "forwarded"
			}
			got[kind], _ = entry["request_X-Zego-Event"].(string)
		}
		if len(got) == len(want) {
			for kind, event := range want {
				if got[kind] != event {
					t.Errorf("the access log's %s line has request_X-Zego-Event %q, want %q:\n%s", kind, got[kind], event, b)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log has lines for %v, want %d kinds:\n%s", got, len(want), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
