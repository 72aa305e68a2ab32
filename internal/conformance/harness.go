// Package conformance is the behaviour table of the middleware, written once and run
// twice: natively by the plugin's tests and, from the test module, through the Yaegi
// interpreter the way Traefik loads the plugin. Each case puts the middleware behind a
// real HTTP server on 127.0.0.1 in front of a recording backend and checks what the
// client got and whether, and with what, the backend was called.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Builder makes a middleware from a configuration given as Traefik's providers hand it
// over (a map of keys to values), in front of next, under the middleware name.
type Builder func(t testing.TB, config map[string]any, next http.Handler, name string) (http.Handler, error)

// Received is what the backend got from one forwarded request.
type Received struct {
	Method           string
	Header           http.Header
	Body             []byte
	ContentLength    int64
	TransferEncoding []string
}

// Backend records what reaches it and answers with Status (200 when zero).
type Backend struct {
	mu     sync.Mutex
	got    []Received
	Status int
	// Body and Type, when Body is set, are the answer's body and Content-Type
	// ("backend answered\n", text/plain otherwise).
	Body, Type string
	Hold       chan struct{} // when set, each request waits for it to close or yield
	Entered    chan struct{} // when set, receives once per request on arrival
	// Plan, when set, answers the n-th request (from 0) with Plan[n]: its status, and
	// whether it waits for Hold. Requests past the plan get Status without waiting.
	Plan     []Answer
	readErrs int
}

// Answer is how a Backend answers one request of its Plan.
type Answer struct {
	Status int
	Hold   bool
}

func (b *Backend) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	b.mu.Lock()
	if err != nil {
		b.readErrs++
	}
	n := len(b.got)
	b.got = append(b.got, Received{
		Method: req.Method, Header: req.Header.Clone(), Body: body,
		ContentLength: req.ContentLength, TransferEncoding: req.TransferEncoding,
	})
	status, hold, answer, contentType := b.Status, b.Hold != nil, b.Body, b.Type
	if b.Plan != nil {
		hold = false
		if n < len(b.Plan) {
			status, hold = b.Plan[n].Status, b.Plan[n].Hold
		}
	}
	b.mu.Unlock()
	if b.Entered != nil {
		b.Entered <- struct{}{}
	}
	if hold {
		<-b.Hold
	}
	if status == 0 {
		status = http.StatusOK
	}
	if answer == "" {
		answer, contentType = "backend answered\n", "text/plain"
	}
	// No Content-Type: net/http's server sniffs one, as a backend's would.
	if contentType != "" {
		rw.Header().Set("Content-Type", contentType)
	}
	rw.WriteHeader(status)
	_, _ = io.WriteString(rw, answer)
}

// SetAnswer sets the body and Content-Type the backend answers from now on (its own when
// body is "").
func (b *Backend) SetAnswer(body, contentType string) {
	b.mu.Lock()
	b.Body, b.Type = body, contentType
	b.mu.Unlock()
}

// WaitEntered waits, at most 10 s, for a request to reach a backend that has Entered.
func (b *Backend) WaitEntered(t testing.TB, what string) {
	t.Helper()
	select {
	case <-b.Entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never reached the backend", what)
	}
}

// SetStatus sets what the backend answers from now on (200 when zero).
func (b *Backend) SetStatus(status int) {
	b.mu.Lock()
	b.Status = status
	b.mu.Unlock()
}

// Calls returns what the backend received so far.
func (b *Backend) Calls() []Received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Received(nil), b.got...)
}

// Server is a middleware behind a real HTTP server on 127.0.0.1, or (Remote) behind a
// real Traefik.
type Server struct {
	URL     string
	Backend *Backend

	mu sync.Mutex
	h  http.Handler // the middleware Start built, replaced by a reload
	// The headers with the middleware's prefix each request sent by Do kept once the
	// middleware returned, by the request's leftHeader: what an access log that records
	// request headers would show. Local servers only (nil for Remote).
	left   map[string][]string
	prefix string // the middleware's headerPrefix, lower case
	// crashes are the panics other than http.ErrAbortHandler the middleware raised, not
	// yet reported (Crashes).
	crashes []string
}

// leftHeader numbers a request Do sends to a local server, so that the server can tell
// which request kept which headers.
const leftHeader = "Conformance-Request"

var leftSeq atomic.Int64

// Start builds the middleware and serves it. It fails the test when New fails.
func Start(t testing.TB, build Builder, config map[string]any, name string) *Server {
	t.Helper()
	return StartWith(t, build, config, name, &Backend{})
}

// StartWith is Start with a backend set up beforehand.
func StartWith(t testing.TB, build Builder, config map[string]any, name string, backend *Backend) *Server {
	t.Helper()
	s := &Server{Backend: backend, left: map[string][]string{}}
	s.rebuild(t, build, config, name)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		id := req.Header.Get(leftHeader)
		defer func() {
			// A panic closes the connection as http.ErrAbortHandler does (retryOn
			// noAnswer): only that one is meant; CheckStep fails on any other.
			if r := recover(); r != nil {
				if r != http.ErrAbortHandler {
					s.mu.Lock()
					s.crashes = append(s.crashes, fmt.Sprintf("%T %v", r, r))
					s.mu.Unlock()
				}
				panic(r)
			}
		}()
		h.ServeHTTP(rw, req)
		if id == "" {
			return
		}
		var kept []string
		for k := range req.Header {
			if strings.HasPrefix(strings.ToLower(k), s.prefix) {
				kept = append(kept, k)
			}
		}
		s.mu.Lock()
		s.left[id] = kept
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Crashes returns the panics other than http.ErrAbortHandler the middleware raised since
// the last call.
func (s *Server) Crashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.crashes
	s.crashes = nil
	return c
}

// rebuild builds the middleware again, as Traefik does on a reload, and serves it.
func (s *Server) rebuild(t testing.TB, build Builder, config map[string]any, name string) {
	t.Helper()
	h, err := build(t, config, s.Backend, name)
	if err != nil {
		t.Fatalf("New(%v): %v", redact(config), err)
	}
	prefix, _ := config["headerPrefix"].(string)
	if prefix == "" {
		prefix = "X-Zego-"
	}
	s.mu.Lock()
	s.h = h
	s.prefix = strings.ToLower(prefix)
	s.mu.Unlock()
}

// Remote is a middleware served elsewhere (behind a real Traefik, say) at url, in front
// of backend: Do and CheckStep then work on it as on one Start serves.
func Remote(url string, backend *Backend) *Server {
	return &Server{URL: url, Backend: backend}
}

// Response is what the client got.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Code   string // the "error" of a JSON rejection
	// NoAnswer says the connection was closed without an answer (retryOn noAnswer).
	NoAnswer bool
	// Left are the headers with the prefix the request still held once the middleware
	// returned (Server.Do to a local server only).
	Left []string
}

// Duplicate reports whether the middleware acknowledged the request as a duplicate.
func (r Response) Duplicate() bool { return r.Header.Get("X-Zego-Duplicate") == "true" }

// Request describes one request to send.
type Request struct {
	Method  string // POST when empty
	Body    []byte
	Header  map[string][]string
	Chunked bool   // send without Content-Length
	Query   string // the query string, without its '?'
}

// Post sends req to url + "/callback" with client and reads the answer: the one client
// of the tests, the load driver, the demo and the load generator. It never fails a
// test, so that any goroutine may call it.
func Post(ctx context.Context, client *http.Client, url string, req Request) (Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	if req.Chunked && body != nil {
		body = io.MultiReader(body) // hides the length: chunked
	}
	target := url + "/callback"
	if req.Query != "" {
		target += "?" + req.Query
	}
	hr, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return Response{}, err
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs // as given, not canonicalised: odd cases reach the server
	}
	if _, given := req.Header["Content-Type"]; !given && req.Body != nil { // given empty: none sent
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(hr)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return Response{NoAnswer: true}, nil // closed before a status line came
		}
		return Response{}, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: rb, Code: jsonError(rb)}, err
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// Do sends req and returns the response; it fails the test when no answer comes.
func (s *Server) Do(t testing.TB, req Request) Response {
	t.Helper()
	id := ""
	if s.left != nil {
		id = strconv.FormatInt(leftSeq.Add(1), 10)
		header := make(map[string][]string, len(req.Header)+1)
		for k, v := range req.Header {
			header[k] = v
		}
		header[leftHeader] = []string{id}
		req.Header = header
	}
	resp, err := Post(context.Background(), testClient, s.URL, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, s.URL, err)
	}
	if id != "" {
		s.mu.Lock()
		resp.Left = s.left[id]
		delete(s.left, id)
		s.mu.Unlock()
	}
	return resp
}

// redact hides secrets in a configuration printed by a failing test.
func redact(config map[string]any) map[string]any {
	out := make(map[string]any, len(config))
	for k, v := range config {
		if strings.EqualFold(k, "secrets") {
			v = "<redacted>"
		}
		out[k] = v
	}
	return out
}
