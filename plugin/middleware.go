package zegocallback

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Middleware verifies ZEGO callbacks and forwards the genuine ones to next. What every
// request reads of its settings is a field of its own: each selector is a frame slot
// under Yaegi (DESIGN.md).
type middleware struct {
	next    http.Handler
	name    string
	s       *settings
	headers *headerBuilder // s.headers
	// readLimit is the longest body ServeHTTP reads at once, by its declared length:
	// maxBodyBytes, at most readChunk (a longer one is readBody's); 0 in reportOnly, whose
	// requests the general reading reads, since their annotation does not wait for the
	// signature.
	readLimit uint64
	mem     *memoryStore   // the replay store: in memory,
	redis   *redisPool     // or in Redis, when nonceStore is redis
	ttlMs   int64          // how long the store remembers a callback from its arrival (see New)
	now     func() time.Time
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
		next:    next,
		name:    name,
		s:       s,
		headers: s.headers,
		// A declared length up to readChunk is allocated at once; a longer one grows as
		// the bytes come (readBody).
		readLimit: uint64(s.maxBodyBytes),
		// A callback stamped ts passes from ts-tolerance until ts+tolerance, and until
		// the end of that second for a timestamp in whole seconds: its first copy may
		// arrive at the start of that window and a replay at its end. Replicas sharing
		// Redis may also differ in their clocks: 5 s more covers both.
		ttlMs: 2*s.toleranceMs + 5000,
		now:   now,
	}
	if m.readLimit > readChunk {
		m.readLimit = readChunk
	}
	if s.reportOnly {
		m.readLimit = 0
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

// ServeHTTP runs the steps of the README's "Each request, in order", numbered alike, and
// forwards what passes. Its functions (this one, serveVerified, readPlain, the store's)
// hold only a genuine callback's path, in as few calls and expressions as it takes:
// under Yaegi every call allocates its frame, one slot per local and expression,
// whichever branches run (DESIGN.md). A request that is not a plain POST of JSON goes
// to serveGeneral at once; every other outcome is in outcome.go and runs only then.
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// 1. Whatever happens next, no client-sent header with the prefix reaches the backend.
	h := req.Header
	stripPrefixed(m.headers, h)
	cb := &callback{header: h}
	// 2-4. A POST of JSON, as ZEGO sends it, of a declared length up to readChunk (and
	// maxBodyBytes), needs no other look at the request; anything else serveGeneral's.
	if types := h["Content-Type"]; req.Method != http.MethodPost || len(types) != 1 || types[0] != "application/json" ||
		h["Content-Encoding"] != nil || uint64(req.ContentLength-1) >= m.readLimit {
		serveGeneral(m, rw, req, cb)
		return
	}
	body := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, body); err != nil {
		refuse(m, rw, req, cb, errBodyRead)
		return
	}
	cb.body = body
	// 5. The plain reading (plain_json.go) takes the callbacks ZEGO sends; the general
	// one (serveRead) reads the rest.
	if body[0] != '{' || !readPlain(cb, m.headers, body) {
		serveRead(m, rw, req, cb, nil)
		return
	}
	cb.parsed = true
	// 6. The signature (signature.go), against the secrets in force (secretsFile read
	// again when it changed): a forged body goes no further.
	cb.receivedMs = m.now().UnixMilli()
	secrets := m.s.secrets
	if m.s.secretsFile != nil {
		secrets = watchedValue(m.s.secretsFile, cb.receivedMs)
	}
	if key := verifySignature(secrets, cb); key != "" {
		serveVerified(m, rw, req, cb, key)
		return
	}
	refuse(m, rw, req, cb, signatureError(cb))
}


// serveVerified runs steps 7 to 10 for a callback whose signature holds, key its decoded
// bytes: what the reading left to check, freshness, the event, the replay store's claim,
// and the forward, settled on the backend's answer. Apart from ServeHTTP, so that a
// forged body's frames do not hold its slots.
func serveVerified(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, key string) {
	cb.verified = true
	s := m.s
	// What the reading left to check once the signature holds, when there is any: for a
	// body the plain reading took, its keys; for another, what checkReading checks.
	if cb.recheck {
		if err := recheck(m, cb, cb.body); err != nil {
			refuse(m, rw, req, cb, err)
			return
		}
	}
	// The store's key and the body's digest, which tells a replay from another body under
	// the same triple.
	sum := sha256.Sum256(cb.body)
	cb.digest = binary.BigEndian.Uint64(sum[:8])
	if s.bodyInKey {
		key = bodyPlaceKey(key, cb.digest)
	}
	cb.key = key
	// 7. Fresh: the timestamp within timestampTolerance of now, either way, in the
	// configured unit; in seconds, against now truncated to the second as ZEGO's is. One
	// unsigned comparison holds both bounds, and a timestamp too large for an int64 reads
	// as far in the past or the future.
	if uint64(cb.receivedMs/s.unitMs-int64(cb.timestamp)-s.minSkew) > s.skewSpan { //nolint:gosec // see above
		refuse(m, rw, req, cb, checkFreshness(cb, cb.receivedMs, s.toleranceMs, s.millis))
		return
	}
	// 8. The event.
	if s.events != nil {
		if err := checkEvent(s, cb); err != nil {
			refuse(m, rw, req, cb, err)
			return
		}
	}
	// 9. Replays: the memory store's claim, or Redis's.
	claim := claimed
	if m.mem != nil {
		claim = claimMemory(m.mem, cb, s.inFlightMs)
	} else {
		claim = claimInRedis(m, cb)
	}
	if claim != claimed {
		refuseSeen(m, rw, req, cb, claim)
		return
	}
	// 10. Forward, with the fields as headers (the plain reading wrote them already), and
	// settle the claim on the answer. The body is read whole, so the server has answered
	// a client's Expect: 100-continue; sent on, it would make the backend answer 100,
	// which would take the recorder's place as the final status and lose the backend's
	// answer.
	h := cb.header
	h[m.headers.verified] = verifiedTrue
	delete(h, "Expect")
	if cb.pieces == nil {
		annotate(m.headers, h, cb)
	}
	setBody(req, cb.body)
	// The backend answers into a compiled recorder, and the answer is then copied to the
	// client: a callback's answer is small, and every call Traefik's proxy would make on
	// an interpreted writer crosses Yaegi's reflection bridge. Settled in a deferred call,
	// so that a panic in the chain (http.ErrAbortHandler when the backend goes away
	// mid-answer) still settles the claim instead of leaving it in flight, which would
	// turn ZEGO's retries away until it lapsed.
	answer := httptest.NewRecorder()
	answer.Code = 0 // stays 0 until the backend writes a status
	cb.answer = answer
	defer settle(m, cb)
	m.next.ServeHTTP(answer, req)
	cb.returned = true
	// The answer to the client: the recorded headers, status and body. A backend that
	// wrote no status gets net/http's 200; one whose informational answer (103 Early
	// Hints) took the recorder's place gets 502, its claim forgotten (forgetDelivery).
	// Trailers are not relayed: a callback's answer has none.
	h = rw.Header()
	for name, values := range answer.HeaderMap { //nolint:staticcheck // the map Header() returns, without the call
		h[name] = values
	}
	status := answer.Code
	if status == 0 {
		status = http.StatusOK
	} else if status < 200 {
		status = http.StatusBadGateway
	}
	rw.WriteHeader(status)
	_, _ = answer.Body.WriteTo(rw)
}

// verifiedTrue is the value of the prefix's Verified header on a verified callback: one
// slice for every request (a backend that adds to it makes an array of its own).
var verifiedTrue = []string{"true"}

// serveGeneral serves a request that is not a plain POST of JSON: another method (in
// reportOnly the checks go on, so that the forwarded request is annotated), a body whose
// headers say it is not the bytes it holds (inspectUnusual), one of unknown length or
// past readChunk (readBody), a form's Content-Type; then serveRead.
func serveGeneral(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback) {
	failure, stop := inspectUnusual(m, req, cb)
	if stop {
		refuse(m, rw, req, cb, failure)
		return
	}
	body, err := readBody(req, m.s.maxBodyBytes)
	if err != nil {
		refuse(m, rw, req, cb, err)
		return
	}
	cb.body = body
	serveRead(m, rw, req, cb, failure)
}

// serveRead is the general reading of a body read whole (callback.go), and what follows
// it: the signature, then serveVerified. failure is a check that failed already (a
// method, in reportOnly), which the answer gives first.
func serveRead(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, failure error) {
	err := parseInto(cb, cb.body)
	if err == nil {
		cb.parsed = true
		if failure != nil {
			// Parsed to annotate it in reportOnly; the check that failed answers.
		} else if key := verifySignature(secretsAt(m, cb), cb); key != "" {
			serveVerified(m, rw, req, cb, key)
			return
		} else {
			err = signatureError(cb)
		}
	}
	if failure == nil {
		failure = err
	}
	refuse(m, rw, req, cb, failure)
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
		confirmMemory(m.mem, cb)
	}
}

// secretsAt stamps cb with the time it is checked at, and returns the secrets in force
// then, as ServeHTTP does: for the general reading.
func secretsAt(m *middleware, cb *callback) []string {
	cb.receivedMs = m.now().UnixMilli()
	if m.s.secretsFile != nil {
		return watchedValue(m.s.secretsFile, cb.receivedMs)
	}
	return m.s.secrets
}
