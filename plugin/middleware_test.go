package zegocallback

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

func TestNewNeverPanics(t *testing.T) {
	if _, err := New(context.Background(), http.NotFoundHandler(), nil, "nil@test"); err == nil {
		t.Error("New(nil config) succeeded")
	}
	cfg := CreateConfig()
	cfg.Secrets = []string{"s"}
	if _, err := New(context.Background(), nil, cfg, "nil-next@test"); err == nil {
		t.Error("New(nil next) succeeded")
	}
}

// clocked builds a middleware whose clock reads *now.
func clocked(t *testing.T, cfg *Config, next http.Handler, now *time.Time) *middleware {
	t.Helper()
	if cfg == nil {
		cfg = CreateConfig()
		cfg.Secrets = []string{zegotest.Secret}
	}
	h, err := New(context.Background(), next, cfg, t.Name()+"@test")
	if err != nil {
		t.Fatal(err)
	}
	m := h.(*middleware)
	m.now = func() time.Time { return *now }
	return m
}

func post(m http.Handler, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(body)))
	return rec
}

func TestToleranceBoundariesThroughServeHTTP(t *testing.T) {
	now := time.Unix(1700000000, 999e6)
	m := clocked(t, nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &now)
	for _, tt := range []struct {
		offset time.Duration
		status int
	}{
		{-300 * time.Second, 200}, {-301 * time.Second, 401}, {300 * time.Second, 200}, {301 * time.Second, 401},
	} {
		ts := zegotest.Seconds(time.Unix(now.Unix(), 0).Add(tt.offset))
		if got := post(m, zegotest.New("mix_stop.json", zegotest.Secret, ts).Body).Code; got != tt.status {
			t.Errorf("timestamp now%+v: %d, want %d", tt.offset, got, tt.status)
		}
	}
}

func TestReplayRememberedAcrossTheWholeWindow(t *testing.T) {
	now := time.Unix(1700000000, 0)
	calls := 0
	m := clocked(t, nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }), &now)
	// Signed at the far future edge of the window, replayed at the far past edge.
	body := zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(5*time.Minute))).Body
	if got := post(m, body).Code; got != 200 {
		t.Fatalf("first: %d", got)
	}
	now = now.Add(10 * time.Minute)
	if rec := post(m, body); rec.Code != 200 || rec.Header().Get("X-Zego-Duplicate") != "true" || calls != 1 {
		t.Errorf("replay 10 min later: %d %v, %d calls; want a duplicate", rec.Code, rec.Header(), calls)
	}
	now = now.Add(time.Second)
	if got := post(m, body).Code; got != 401 {
		t.Errorf("one second later the callback is stale: %d, want 401", got)
	}
}

func TestRejectionLogLine(t *testing.T) {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	defer log.SetOutput(io.Discard)
	now := time.Now()
	m := clocked(t, nil, http.NotFoundHandler(), &now)
	forged := zegotest.New("mix_stop.json", zegotest.OtherSecret, zegotest.Seconds(now))
	post(m, forged.Body)
	post(m, []byte(`{"event":"x\r\nINJECTED"`))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 2 rejections:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"middleware=" + t.Name() + "@test", "code=invalid_signature", `event="mix_stop"`, `appid="111111"`, "remote="} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line lacks %s: %s", want, lines[0])
		}
	}
	if !strings.Contains(lines[1], "code=malformed_body") {
		t.Errorf("second line: %s", lines[1])
	}
	for _, secret := range []string{zegotest.Secret, zegotest.OtherSecret, forged.Signature, Sign(zegotest.Secret, forged.Timestamp, forged.Nonce)} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log holds a secret or a signature: %s", buf.String())
		}
	}
}

// TestSettleOnTheBackendsAnswer: the claim is kept for a 2xx, net/http's 200 included,
// and forgotten for anything else, so that ZEGO's retry gets through.
func TestSettleOnTheBackendsAnswer(t *testing.T) {
	var logs bytes.Buffer
	log.SetOutput(&logs)
	defer log.SetOutput(io.Discard)
	now := time.Now()
	var behaviour func(http.ResponseWriter)
	m := clocked(t, nil, http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { behaviour(rw) }), &now)
	serve := func(body []byte) (recovered any) {
		defer func() { recovered = recover() }()
		post(m, body)
		return nil
	}
	fresh := func() []byte { return zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now)).Body }
	delivered := func(what string, body []byte) {
		t.Helper()
		behaviour = func(http.ResponseWriter) { t.Errorf("%s: a delivered callback was forwarded again", what) }
		if rec := post(m, body); rec.Header().Get("X-Zego-Duplicate") != "true" {
			t.Errorf("%s: %d %v, want a duplicate", what, rec.Code, rec.Header())
		}
	}

	// The backend is gone before answering: forgotten, so the retry gets through.
	body := fresh()
	behaviour = func(http.ResponseWriter) { panic(http.ErrAbortHandler) }
	// The panic goes on (Yaegi re-panics with its own value, natively it is http.ErrAbortHandler).
	if r := serve(body); r == nil {
		t.Fatalf("the panic was swallowed: %v", r)
	}
	behaviour = func(rw http.ResponseWriter) { rw.WriteHeader(204) }
	if got := post(m, body).Code; got != 204 {
		t.Errorf("retry after an aborted delivery: %d, want it forwarded (204)", got)
	}

	// The backend answered 2xx, then the client went away: delivered.
	body = fresh()
	behaviour = func(rw http.ResponseWriter) { rw.WriteHeader(200); panic(http.ErrAbortHandler) }
	serve(body)
	delivered("after a 2xx", body)

	// A handler that writes nothing gets net/http's 200: delivered.
	body = fresh()
	behaviour = func(http.ResponseWriter) {}
	post(m, body)
	delivered("after no answer written", body)

	// An informational answer (103 Early Hints) takes the recorder's place as the final
	// status and hides the backend's own: 502, one log line, forgotten.
	body = fresh()
	behaviour = func(rw http.ResponseWriter) { rw.WriteHeader(http.StatusEarlyHints); rw.WriteHeader(200) }
	if got := post(m, body).Code; got != http.StatusBadGateway {
		t.Errorf("a 103 before the answer: %d, want 502", got)
	}
	if !strings.Contains(logs.String(), "middleware="+t.Name()+"@test the backend answered 103") {
		t.Errorf("log: %q", logs.String())
	}
	behaviour = func(rw http.ResponseWriter) { rw.WriteHeader(200) }
	if got := post(m, body).Code; got != 200 {
		t.Errorf("retry after a 103: %d, want it forwarded (200)", got)
	}
}

// TestDigitShiftOfTheHostileReview replays the review's case with its own numbers: a
// callback of 20 July 2023 (timestamp 1689834748) whose nonce ends in 179, on 11 October
// 2026, when 1791689834748 is now in milliseconds. Moving those three digits to the
// front of the timestamp keeps the signature. A seconds route refuses it as stale; the
// digit count no longer picks the unit.
//
// A milliseconds route that shares the secret takes it: the residual risk SECURITY.md
// states for a project whose products use both units under one CallbackSecret.
func TestDigitShiftOfTheHostileReview(t *testing.T) {
	now := time.UnixMilli(1791689834748)
	const ts, nonce = "1689834748", "0020000000000000179"
	sig := Sign(zegotest.OtherSecret, ts, nonce)
	if Sign(zegotest.OtherSecret, "179"+ts, nonce[:16]) != sig {
		t.Fatal("the shifted triple does not share the signature")
	}
	shifted := zegotest.FillSigned(zegotest.Template("mix_stop.json"), "179"+ts, nonce[:16], sig)
	for _, tt := range []struct {
		unit   string
		status int
	}{{"seconds", http.StatusUnauthorized}, {"milliseconds", http.StatusOK}} {
		cfg := CreateConfig()
		cfg.Secrets = []string{zegotest.OtherSecret}
		cfg.TimestampUnit = tt.unit
		m := clocked(t, cfg, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &now)
		if got := post(m, shifted).Code; got != tt.status {
			t.Errorf("timestampUnit %s: %d, want %d", tt.unit, got, tt.status)
		}
	}
}
