package zegocallback

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
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
	store NonceStore
	ttl   time.Duration // how long the store remembers a callback: twice the tolerance
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
		next:  next,
		name:  name,
		s:     s,
		store: memoryStores.get(name, s.capacity),
		ttl:   2 * s.tolerance,
		now:   time.Now,
	}, nil
}

// ServeHTTP runs the checks in the order the README gives and forwards what passes.
func (m *Middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	s := m.s
	// Whatever happens next, no client-sent header with the prefix reaches the backend.
	s.headers.strip(req.Header)

	var failure error
	if req.Method != http.MethodPost {
		failure = ErrMethodNotAllowed
		if !s.reportOnly {
			m.reject(rw, req, nil, failure)
			return
		}
	}

	body, err := readBody(req, s.maxBodyBytes)
	if err != nil {
		// Not even reportOnly forwards what it could not read whole.
		m.reject(rw, req, nil, err)
		return
	}

	cb, err := ParseCallback(body)
	now := m.now()
	var key string
	if err == nil {
		var sig []byte
		sig, err = Verify(s.secrets, cb)
		if err == nil {
			key = string(sig)
			err = checkFreshness(cb.Timestamp, now, s.tolerance)
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
			m.reject(rw, req, cb, failure)
			return
		}
		m.forwardUnverified(rw, req, body, cb, failure)
		return
	}

	claim, err := m.store.Claim(key, now, m.ttl)
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
		if !s.reportOnly {
			m.reject(rw, req, cb, err)
			return
		}
		m.forwardUnverified(rw, req, body, cb, err)
		return
	}
	switch claim {
	case InFlight:
		m.duplicate(rw, req, body, cb, false)
		return
	case Delivered:
		m.duplicate(rw, req, body, cb, s.ackDuplicates)
		return
	}

	h := req.Header
	h[s.headers.verified] = []string{"true"}
	s.headers.annotate(h, cb.Fields)
	setBody(req, body)
	rec := &statusRecorder{ResponseWriter: rw}
	// Deferred so that a panic in the chain (http.ErrAbortHandler when a client goes
	// away) still settles the claim instead of leaving it in flight.
	defer m.settle(key, rec)
	m.next.ServeHTTP(rec, req)
	rec.returned = true
}

// settle records the outcome of a delivery: a 2xx keeps the callback as delivered;
// anything else forgets it, so that ZEGO's retry gets through.
func (m *Middleware) settle(key string, rec *statusRecorder) {
	status := rec.status
	if status == 0 && rec.returned {
		status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	var err error
	if status >= 200 && status < 300 {
		err = m.store.Confirm(key, m.now(), m.ttl)
	} else {
		err = m.store.Forget(key, m.now())
	}
	if err != nil {
		log.Printf("zegocallback: middleware=%s nonce store could not record a delivery (status %d): %v", m.name, status, err)
	}
}

// duplicate answers a verified callback that was seen before: 200 without forwarding
// when ack is set (the callback was delivered), else 409. reportOnly forwards it, marked,
// and leaves the store as it was.
func (m *Middleware) duplicate(rw http.ResponseWriter, req *http.Request, body []byte, cb *Callback, ack bool) {
	if m.s.reportOnly {
		req.Header[m.s.headers.duplicate] = []string{"true"}
		m.forwardUnverified(rw, req, body, cb, ErrDuplicate)
		return
	}
	if !ack {
		m.reject(rw, req, cb, ErrDuplicate)
		return
	}
	logRejection(m.name, "duplicate", false, req, cb, errors.New("acknowledged with 200, not forwarded"))
	h := rw.Header()
	h.Set("Content-Type", "application/json")
	h[m.s.headers.duplicate] = []string{"true"}
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(duplicateAck)
}

// reject answers the client with failure's status and logs one line.
func (m *Middleware) reject(rw http.ResponseWriter, req *http.Request, cb *Callback, failure error) {
	r := rejectionFor(failure)
	logRejection(m.name, r.code, false, req, cb, failure)
	writeRejection(rw, r)
}

// forwardUnverified is reportOnly's path: the request goes on, marked with what would
// have rejected it, and annotated when its body parsed. The store is not touched.
func (m *Middleware) forwardUnverified(rw http.ResponseWriter, req *http.Request, body []byte, cb *Callback, failure error) {
	r := rejectionFor(failure)
	logRejection(m.name, r.code, true, req, cb, failure)
	h := req.Header
	h[m.s.headers.verified] = []string{"false"}
	h[m.s.headers.rejection] = []string{r.code}
	if cb != nil {
		m.s.headers.annotate(h, cb.Fields)
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

// setBody puts the bytes read back as the request's body, with their length: a chunked
// request goes on with a Content-Length.
func setBody(req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	req.Header["Content-Length"] = []string{strconv.Itoa(len(body))}
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
