package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	zegocallback "github.com/zegocallback/traefik-zego-callback/plugin"
)

// The signature of ZEGO's published example, through the tool.
func TestSignPublishedVector(t *testing.T) {
	body, _, err := Sign([]byte(`{"event":"x","timestamp":"1","nonce":"1","signature":"0"}`), "secret", "1470820198", "123412")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got["signature"] != "5bd59fd62953a8059fb7eaba95720f66d19e4517" || got["timestamp"] != "1470820198" || got["nonce"] != "123412" {
		t.Errorf("signed body %s", body)
	}
}

func TestSignKeepsSpellingAndKinds(t *testing.T) {
	body, kind, err := Sign([]byte(`{"Event":"e","Timestamp":1,"Nonce":"n","Signature":"s","Big":1912124734317838339}`), "k", "1700000000000", "42")
	if err != nil || kind != "json" {
		t.Fatal(kind, err)
	}
	s := string(body)
	for _, want := range []string{`"Timestamp":1700000000000`, `"Nonce":"42"`, `"Big":1912124734317838339`, `"Signature":"` + zegocallback.Sign("k", "1700000000000", "42") + `"`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if strings.Contains(s, `"timestamp"`) {
		t.Errorf("added a lower-case field: %s", s)
	}
	form, kind, err := Sign([]byte("event=a+b&timestamp=1"), "k", "5", "6")
	if err != nil || kind != "form" || !strings.Contains(string(form), "signature="+zegocallback.Sign("k", "5", "6")) {
		t.Errorf("form: %s %s %v", form, kind, err)
	}
}

// The tool's output passes the middleware: sign, then send it through the plugin.
func TestBuiltInExampleVerifies(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("# comment\nmy-secret-0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-secret-file", secretFile}, nil, &out, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := zegocallback.CreateConfig()
	cfg.Secrets = []string{"my-secret-0123456789abcdef0123"}
	var got http.Header
	next := http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) { got = req.Header })
	h, err := zegocallback.New(context.Background(), next, cfg, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(bytes.TrimSpace(out.Bytes())))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || got == nil {
		t.Fatalf("the tool's body got %d, forwarded %v: %s\n%s", rec.Code, got != nil, rec.Body, out.String())
	}
	if event, nonce := got.Get("X-Zego-Event"), got.Get("X-Zego-Nonce"); event != "mix_start" || len(nonce) != 19 {
		t.Errorf("event %q nonce %q", event, nonce)
	}
}

func TestPostsAndPrintsTheAnswer(t *testing.T) {
	received := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		buf := new(bytes.Buffer)
		_, _ = buf.ReadFrom(r.Body)
		received <- buf.Bytes()
		rw.Header().Set("X-Zego-Duplicate", "true")
		_, _ = rw.Write([]byte("ok"))
	}))
	defer srv.Close()
	var out bytes.Buffer
	t.Setenv("ZEGO_CALLBACK_SECRET", "env-secret")
	if err := run([]string{"-url", srv.URL, "-nonce", "77", "-timestamp", "1700000000"}, nil, &out, &out, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "200 OK") || !strings.Contains(out.String(), "X-Zego-Duplicate: true") || !strings.Contains(out.String(), "ok") {
		t.Errorf("output:\n%s", out.String())
	}
	if got := <-received; !bytes.Contains(got, []byte(zegocallback.Sign("env-secret", "1700000000", "77"))) {
		t.Errorf("posted %s", got)
	}
}

func TestRandomNonceHas19Digits(t *testing.T) {
	for i := 0; i < 2000; i++ {
		n, err := randomNonce()
		if err != nil || len(n) != 19 || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("nonce %q, %v", n, err)
		}
	}
}

func TestNoSecret(t *testing.T) {
	t.Setenv("ZEGO_CALLBACK_SECRET", "")
	if err := run(nil, nil, &bytes.Buffer{}, &bytes.Buffer{}, time.Now()); err == nil || !strings.Contains(err.Error(), "no secret") {
		t.Errorf("err = %v", err)
	}
}

// The exit status follows the answer, so that the tool serves as a smoke test: a refused
// callback is an error, printed all the same; -h is not one.
func TestAnswerDecidesTheError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("X-Zego-Rejection", "invalid_signature")
		rw.WriteHeader(http.StatusUnauthorized)
		_, _ = rw.Write([]byte(`{"error":"invalid_signature"}`))
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := run([]string{"-secret", "k", "-url", srv.URL}, nil, &out, &out, time.Now())
	if !errors.Is(err, errNot2xx) || !strings.Contains(out.String(), "401 Unauthorized") || !strings.Contains(out.String(), "X-Zego-Rejection: invalid_signature") {
		t.Errorf("a 401: error %v, output:\n%s", err, out.String())
	}
	if err := run([]string{"-h"}, nil, &out, &out, time.Now()); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp (which main exits 0 on)", err)
	}
}

// TestMainExitStatus runs main in a child process: 0 for -h and a 2xx, 1 for a 401.
func TestMainExitStatus(t *testing.T) {
	if args := os.Getenv("ZEGOSIGN_ARGS"); args != "" {
		os.Args = append([]string{"zegosign"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(int(status.Load())) }))
	defer srv.Close()
	for _, tc := range []struct {
		args   string
		status int
		want   int
	}{{"-h", 200, 0}, {"-secret k -url " + srv.URL, 200, 0}, {"-secret k -url " + srv.URL, 401, 1}, {"-no-such-flag", 200, 1}} {
		status.Store(int32(tc.status))
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainExitStatus$")
		cmd.Env = append(os.Environ(), "ZEGOSIGN_ARGS="+tc.args)
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Errorf("zegosign %s with a %d answer exited %d, want %d", tc.args, tc.status, code, tc.want)
		}
	}
}
