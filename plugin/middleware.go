package zegocallback

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Middleware verifies ZEGO callbacks and forwards the genuine ones to next.
type Middleware struct {
	next  http.Handler
	name  string
	s     *settings
	mem   *memoryStore
	ttlMs int64 // how long the store remembers a callback (see New)
	now   func() time.Time
}

// New builds the middleware from a configuration Traefik has decoded. It fails, so that
// Traefik serves nothing through a misconfigured middleware, with an error that names the
// key at fault. It starts no goroutine or timer: Traefik calls it for every router and on
// every reload, without teardown. The replay store is shared by every instance with the
// same name (see memoryStores).
func New(ctx context.Context, next http.Handler, config *Config, name string) (handler http.Handler, err error) {
	// A panic here would stop Traefik from applying any of the new configuration.
	defer func() {
		if r := recover(); r != nil {
			handler = nil
			err = fmt.Errorf("zegocallback %s: internal error while configuring: %v", name, r)
		}
	}()
	if next == nil {
		return nil, fmt.Errorf("zegocallback %s: no next handler", name)
	}
	s, err := compile(config)
	if err != nil {
		return nil, fmt.Errorf("zegocallback %s: %w", name, err)
	}
	return &Middleware{
		next: next,
		name: name,
		s:    s,
		mem:  memoryStores.get(name, s.capacity),
		// A callback stamped ts passes from ts-tolerance until ts+tolerance, and until
		// the end of that second for a timestamp in whole seconds: its first copy may
		// arrive at the start of that window and a replay at its end.
		ttlMs: 2*s.toleranceMs + 1000,
		now:   time.Now,
	}, nil
}

// ServeHTTP runs the checks in the order the README gives and forwards what passes. It
// is written flat, with plain functions for helpers: Traefik interprets every line of it,
// and an interpreted method call or defer costs microseconds (see the README's design
// notes).
func (m *Middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	s := m.s
	// 1. Whatever happens next, no client-sent header with the prefix reaches the backend.
	stripPrefixed(s.headers, req.Header)

	// 2. POST only.
	var failure error
	if req.Method != http.MethodPost {
		failure = ErrMethodNotAllowed
		if !s.reportOnly {
			reject(m, rw, req, nil, failure)
			return
		}
	}

	// 3. The body, whole, within maxBodyBytes. Not even reportOnly forwards one it could
	// not read or that is too large.
	body, err := readBody(req, s.maxBodyBytes)
	if err != nil {
		reject(m, rw, req, nil, err)
		return
	}

	// 4-7. Parse, signature, freshness, event.
	nowMs := m.now().UnixMilli()
	cb, err := ParseCallback(body)
	var key string
	if err == nil {
		key, err = Verify(s.secrets, cb)
		if err == nil {
			err = checkFreshness(cb, nowMs, s.toleranceMs)
		}
		if err == nil && s.events != nil && !s.events[cb.Event] {
			err = fmt.Errorf("%w: %q", ErrEventNotAllowed, logValue(cb.Event))
		}
	}
	if failure == nil {
		failure = err
	}
	if failure != nil {
		if !s.reportOnly {
			reject(m, rw, req, cb, failure)
			return
		}
		forwardUnverified(m, rw, req, body, cb, failure)
		return
	}

	// 8. Replays.
	claim, err := claimMemory(m.mem, key, nowMs, m.ttlMs)
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
		if !s.reportOnly {
			reject(m, rw, req, cb, err)
			return
		}
		forwardUnverified(m, rw, req, body, cb, err)
		return
	}
	if claim != Claimed {
		answerDuplicate(m, rw, req, body, cb, claim == Delivered && s.ackDuplicates)
		return
	}

	// 9. Forward, with the fields as headers, and settle the claim on the answer.
	h := req.Header
	h[s.headers.verified] = []string{"true"}
	annotate(s.headers, h, cb)
	setBody(req, body)
	rec := &statusRecorder{ResponseWriter: rw}
	// Deferred so that a panic in the chain (http.ErrAbortHandler when a client or the
	// backend goes away mid-answer) still settles the claim instead of leaving it in
	// flight, which would turn ZEGO's retries away until it expired.
	defer settle(m, key, rec)
	m.next.ServeHTTP(rec, req)
	rec.returned = true
}

// settle records the outcome of a delivery: a 2xx keeps the callback as delivered;
// anything else forgets it, so that ZEGO's retry gets through.
func settle(m *Middleware, key string, rec *statusRecorder) {
	status := rec.status
	if status == 0 && rec.returned {
		status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	if status >= 200 && status < 300 {
		confirmMemory(m.mem, key, m.now().UnixMilli(), m.ttlMs)
		return
	}
	forgetMemory(m.mem, key)
}

// answerDuplicate answers a verified callback that was seen before: 200 without
// forwarding when ack is set (the callback was delivered), else 409. reportOnly forwards
// it, marked, and leaves the store as it was.
func answerDuplicate(m *Middleware, rw http.ResponseWriter, req *http.Request, body []byte, cb *Callback, ack bool) {
	if m.s.reportOnly {
		req.Header[m.s.headers.duplicate] = []string{"true"}
		forwardUnverified(m, rw, req, body, cb, ErrDuplicate)
		return
	}
	if !ack {
		reject(m, rw, req, cb, ErrDuplicate)
		return
	}
	logRejection(m.name, actionAcknowledged, "duplicate", req, cb, errAcknowledged)
	h := rw.Header()
	h.Set("Content-Type", "application/json")
	h[m.s.headers.duplicate] = []string{"true"}
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(duplicateAck)
}

var errAcknowledged = errors.New("already delivered; answered 200, not forwarded")

// reject answers the client with failure's status and logs one line.
func reject(m *Middleware, rw http.ResponseWriter, req *http.Request, cb *Callback, failure error) {
	r := rejectionFor(failure)
	logRejection(m.name, actionRejected, r.code, req, cb, failure)
	writeRejection(rw, r)
}

// forwardUnverified is reportOnly's path: the request goes on, marked with what would
// have rejected it, and annotated when its body parsed. The store is not touched.
func forwardUnverified(m *Middleware, rw http.ResponseWriter, req *http.Request, body []byte, cb *Callback, failure error) {
	r := rejectionFor(failure)
	logRejection(m.name, actionWouldReject, r.code, req, cb, failure)
	h := req.Header
	h[m.s.headers.verified] = []string{"false"}
	h[m.s.headers.rejection] = []string{r.code}
	if cb != nil {
		annotate(m.s.headers, h, cb)
	}
	setBody(req, body)
	m.next.ServeHTTP(rw, req)
}

// errBodyRead is a body that could not be read to its end (the client went away).
var errBodyRead = fmt.Errorf("%w: the body could not be read", ErrMalformedBody)

// readBody reads the whole body, at most limit bytes; a body with no Content-Length
// (chunked) is read until it passes the limit.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d", ErrBodyTooLarge, req.ContentLength)
	}
	if req.Body == nil || req.Body == http.NoBody {
		return []byte{}, nil
	}
	if req.ContentLength >= 0 {
		body := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			return nil, errBodyRead
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, errBodyRead
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	return body, nil
}

// setBody puts the bytes read back as the request's body. A chunked request goes on with
// a Content-Length.
func setBody(req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	if req.ContentLength != int64(len(body)) || req.TransferEncoding != nil {
		req.ContentLength = int64(len(body))
		req.TransferEncoding = nil
		req.Header["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
}

// statusRecorder notes the status the backend answered.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	returned bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Flush lets a streaming backend's answer through as it comes.
func (r *statusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is the underlying writer's, where it has one.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := r.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, fmt.Errorf("zegocallback: %T cannot be hijacked", r.ResponseWriter)
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}
