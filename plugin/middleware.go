package zegocallback

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"
)

// Middleware verifies ZEGO callbacks and forwards the genuine ones to next.
type middleware struct {
	next  http.Handler
	name  string
	s     *settings
	mem   *memoryStore // the replay store: in memory,
	redis *redisPool   // or in Redis, when nonceStore is redis
	ttlMs int64        // how long the store remembers a callback from its arrival (see New)
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
	now := time.Now
	s, err := compile(config, name, now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("zegocallback %s: %w", name, err)
	}
	m := &middleware{
		next: next,
		name: name,
		s:    s,
		// A callback stamped ts passes from ts-tolerance until ts+tolerance, and until
		// the end of that second for a timestamp in whole seconds: its first copy may
		// arrive at the start of that window and a replay at its end. Replicas sharing
		// Redis may also differ in their clocks: 5 s more covers both.
		ttlMs: 2*s.toleranceMs + 5000,
		now:   now,
	}
	if s.redis != nil {
		// Connections are made on first use: Redis may come up after Traefik, and a wrong
		// password shows on each request (503 and a log line), not as a failed New.
		m.redis = sharedRedisPool(ctx, s.redis)
	} else {
		m.mem = memoryStores.get(name, s.capacity, m.ttlMs)
	}
	return m, nil
}

// ServeHTTP runs the checks in the order the README gives and forwards what passes. The
// functions here hold only a genuine callback's path; every other outcome is in
// outcome.go and runs only then (see DESIGN.md on why).
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// 1. Whatever happens next, no client-sent header with the prefix reaches the backend.
	stripPrefixed(m.s.headers, req.Header)
	// 2-7. Method, size, parse, signature, freshness, event.
	cb := &callback{}
	if failure := inspect(m, req, cb); failure != nil {
		refuse(m, rw, req, cb, failure)
		return
	}
	// 8. Replays.
	var claim claimResult
	var err error
	if m.redis == nil {
		claim, err = claimMemory(m.mem, cb.key, cb.digest, cb.receivedMs, m.s.inFlightMs)
	} else {
		claim, err = claimInRedis(m, cb)
	}
	if claim != claimed || err != nil {
		refuseSeen(m, rw, req, cb, claim, err)
		return
	}
	// 9. Forward, with the fields as headers, and settle the claim on the answer.
	forward(m, rw, req, cb)
}

// inspect runs steps 2 to 7 into cb: the body as received, then the callback parsed from
// it; it returns the first check that failed. In reportOnly the checks go on past a
// wrong method, so that the forwarded request is annotated.
func inspect(m *middleware, req *http.Request, cb *callback) error {
	// A POST of JSON, as ZEGO sends by default, needs no other look at the request.
	var failure error
	if types := req.Header["Content-Type"]; req.Method != http.MethodPost || len(types) != 1 || types[0] != "application/json" || req.Header["Content-Encoding"] != nil {
		var stop bool
		if failure, stop = inspectUnusual(m, req, cb); stop {
			return failure
		}
	}
	body, err := readBody(req, m.s.maxBodyBytes)
	if err != nil {
		return err
	}
	cb.body = body
	if err = parseInto(cb, body); err == nil {
		cb.parsed = true
		err = verify(m, cb, body)
	}
	if failure == nil {
		failure = err
	}
	return failure
}

// verify runs steps 5 to 7 on a parsed callback and keeps what the store needs: the
// callback's key (its signature, and with replayKey signatureAndBody the body's digest)
// and the body's digest, which tells a replay from another body under the same triple.
func verify(m *middleware, cb *callback, body []byte) error {
	s := m.s
	cb.receivedMs = m.now().UnixMilli()
	secrets := s.secrets
	if s.secretsFile != nil {
		secrets = watchedValue(s.secretsFile, cb.receivedMs)
	}
	key, err := verifySignature(secrets, cb)
	if err != nil {
		return err
	}
	cb.verified = true
	// What parsing left to check once the signature holds, when there is any.
	if cb.recheck {
		if err := checkReading(cb, body); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(body)
	cb.digest = binary.BigEndian.Uint64(sum[:8])
	if s.bodyInKey {
		key = bodyPlaceKey(key, cb.digest)
	}
	cb.key = key
	// Fresh: within timestampTolerance of now, either way, in the configured unit; in
	// seconds, compared with now truncated to the second as ZEGO's is. (A timestamp
	// past maxTimestamp is refused before its skew could overflow.)
	skewMs := (cb.receivedMs/s.unitMs - int64(cb.timestamp)) * s.unitMs //nolint:gosec // bounded by maxTimestamp
	if cb.timestamp > s.maxTimestamp || skewMs > s.toleranceMs || skewMs < -s.toleranceMs {
		return checkFreshness(cb, cb.receivedMs, s.toleranceMs, s.millis)
	}
	if s.events != nil {
		return checkEvent(s, cb)
	}
	return nil
}

// forward sends a verified, claimed callback on, annotated, and settles its claim on the
// backend's answer. The backend answers into a compiled recorder, and the answer is then
// copied to the client: a callback's answer is small, and every call Traefik's proxy would
// make on an interpreted writer crosses Yaegi's reflection bridge.
func forward(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback) {
	req.Header[m.s.headers.verified] = []string{"true"}
	// The body is read whole, so the server has answered a client's Expect: 100-continue;
	// sent on, it would make the backend answer 100, which would take the recorder's place
	// as the final status and lose the backend's answer.
	delete(req.Header, "Expect")
	annotate(m.s.headers, req.Header, cb)
	setBody(req, cb.body)
	cb.answer = httptest.NewRecorder()
	cb.answer.Code = 0 // stays 0 until the backend writes a status
	// Deferred so that a panic in the chain (http.ErrAbortHandler when the backend goes
	// away mid-answer) still settles the claim instead of leaving it in flight, which
	// would turn ZEGO's retries away until it lapsed.
	defer settle(m, cb)
	m.next.ServeHTTP(cb.answer, req)
	cb.returned = true
	// The answer to the client: the recorded headers, status and body. A backend that
	// wrote no status gets net/http's 200; one whose informational answer (103 Early
	// Hints) took the recorder's place gets 502, its claim forgotten (forgetDelivery).
	// Trailers are not relayed: a callback's answer has none.
	h := rw.Header()
	for name, values := range cb.answer.Header() {
		h[name] = values
	}
	status := cb.answer.Code
	if status == 0 {
		status = http.StatusOK
	} else if status < 200 {
		status = http.StatusBadGateway
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(cb.answer.Body.Bytes())
}

// settle records the outcome of a delivery: a 2xx keeps the callback as delivered (a
// handler that returned without writing gets net/http's 200); anything else, a panic
// included, forgets it (forgetDelivery), so that ZEGO's retry gets through.
func settle(m *middleware, cb *callback) {
	code := cb.answer.Code
	if code/100 != 2 && (code != 0 || !cb.returned) {
		forgetDelivery(m, cb)
	} else if m.redis != nil {
		settleRedis(m, cb, true)
	} else {
		confirmMemory(m.mem, cb.key, cb.digest)
	}
}
