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
	plain   bool           // the plain reading may take a body: not reportOnly
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
		plain:   !s.reportOnly,
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

// ServeHTTP runs the checks in the order the README gives ("Each request, in order") and
// forwards what passes. The functions of this file hold only a genuine callback's path,
// in as few calls and expressions as it takes: under Yaegi every call allocates its
// frame, one slot per local and expression whichever branches run (DESIGN.md). Every
// other outcome is in outcome.go and runs only then.
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// 1. Whatever happens next, no client-sent header with the prefix reaches the backend.
	h := req.Header
	stripPrefixed(m.headers, h)
	cb := &callback{header: h}
	// 2-8. The request, its body and its reading, the signature, freshness, the event.
	if failure := inspect(m, req, cb); failure != nil {
		refuse(m, rw, req, cb, failure)
		return
	}
	// 9. Replays.
	claim, err := claimed, error(nil)
	if m.mem != nil {
		claim, err = claimMemory(m.mem, cb, m.s.inFlightMs)
	} else {
		claim, err = claimInRedis(m, cb)
	}
	if claim != claimed || err != nil {
		refuseSeen(m, rw, req, cb, claim, err)
		return
	}
	// 10. Forward, with the fields as headers, and settle the claim on the answer.
	forward(m, rw, req, cb)
}

// inspect runs steps 2 to 8 into cb: the request (2-4), the body read whole and its
// reading (5), then verify (6-8); it returns the first check that failed. In reportOnly
// the checks go on past a wrong method, so that the forwarded request is annotated.
func inspect(m *middleware, req *http.Request, cb *callback) error {
	// 2-4. A POST of JSON, as ZEGO sends by default, needs no other look at the request:
	// the method, the headers that say what the body is (inspectUnusual).
	var failure error
	h := cb.header
	if types := h["Content-Type"]; req.Method != http.MethodPost || len(types) != 1 || types[0] != "application/json" || h["Content-Encoding"] != nil {
		stop := false
		if failure, stop = inspectUnusual(m, req, cb); stop {
			return failure
		}
	}
	// 4. The body, whole: a declared length up to readChunk at once, else readOtherBody.
	var body []byte
	if n := req.ContentLength; n > 0 && n <= m.s.maxBodyBytes && n <= readChunk {
		body = make([]byte, n)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			return errBodyRead
		}
	} else if b, err := readOtherBody(req, m.s.maxBodyBytes); err != nil {
		return err
	} else {
		body = b
	}
	cb.body = body
	// 5. The reading: the plain one (plain_json.go) takes the callbacks ZEGO sends; the
	// general one reads the rest, and every request in reportOnly, whose annotation does
	// not wait for the signature.
	if failure != nil || !m.plain || cb.formTyped || len(body) == 0 || body[0] != '{' || !readPlain(cb, m.headers, body) {
		return inspectGeneral(m, cb, body, failure)
	}
	cb.parsed = true
	return verify(m, cb, body)
}

// inspectGeneral is inspect's end for a body the general reading reads (callback.go),
// and for a request that failed a check already (reportOnly goes on, to annotate it).
func inspectGeneral(m *middleware, cb *callback, body []byte, failure error) error {
	err := parseInto(cb, body)
	if err == nil {
		cb.parsed = true
		err = verify(m, cb, body)
	}
	if failure == nil {
		failure = err
	}
	return failure
}

// verify runs steps 6 to 8 on a parsed callback, and keeps what the store needs: the
// callback's key (its decoded signature, and with replayKey signatureAndBody the body's
// place) and the body's digest, which tells a replay from another body under the same
// triple.
func verify(m *middleware, cb *callback, body []byte) error {
	s := m.s
	now := m.now().UnixMilli()
	cb.receivedMs = now
	secrets := s.secrets
	if s.secretsFile != nil {
		secrets = watchedValue(s.secretsFile, now)
	}
	// 6. The signature (signature.go); a forged body goes no further.
	key := verifySignature(secrets, cb)
	if key == "" {
		return signatureError(cb)
	}
	return verified(m, cb, key, body)
}

// verified runs what follows a signature that holds, key its decoded bytes: what the
// reading left to check, freshness (7) and the event (8), and the store's key and digest.
// Apart from verify, so that a forged body's frame does not hold its slots (DESIGN.md).
func verified(m *middleware, cb *callback, key string, body []byte) error {
	cb.verified = true
	s := m.s
	// What the reading left to check once the signature holds, when there is any: for a
	// body the plain reading took, its keys; for another, what checkReading checks.
	if cb.recheck {
		if err := recheck(m, cb, body); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(body)
	cb.digest = binary.BigEndian.Uint64(sum[:8])
	if s.bodyInKey {
		key = bodyPlaceKey(key, cb.digest)
	}
	cb.key = key
	// 7. Fresh: within timestampTolerance of now, either way, in the configured unit; in
	// seconds, compared with now truncated to the second as ZEGO's is. (A timestamp past
	// maxTimestamp is refused before its skew could overflow.)
	if skew := cb.receivedMs/s.unitMs - int64(cb.timestamp); cb.timestamp > s.maxTimestamp || skew > s.maxSkew || skew < s.minSkew { //nolint:gosec // bounded by maxTimestamp
		return checkFreshness(cb, cb.receivedMs, s.toleranceMs, s.millis)
	}
	// 8. The event.
	if s.events != nil {
		return checkEvent(s, cb)
	}
	return nil
}

// verifiedTrue is the value of the prefix's Verified header on a verified callback: one
// slice for every request (a backend that adds to it makes an array of its own).
var verifiedTrue = []string{"true"}

// forward sends a verified, claimed callback on, annotated, and settles its claim on the
// backend's answer. The backend answers into a compiled recorder, and the answer is then
// copied to the client: a callback's answer is small, and every call Traefik's proxy would
// make on an interpreted writer crosses Yaegi's reflection bridge.
func forward(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback) {
	h := cb.header
	h[m.headers.verified] = verifiedTrue
	// The body is read whole, so the server has answered a client's Expect: 100-continue;
	// sent on, it would make the backend answer 100, which would take the recorder's place
	// as the final status and lose the backend's answer.
	delete(h, "Expect")
	if cb.pieces == nil {
		annotate(m.headers, h, cb) // the plain reading annotated the request already
	}
	setBody(req, cb.body)
	answer := httptest.NewRecorder()
	answer.Code = 0 // stays 0 until the backend writes a status
	cb.answer = answer
	// Deferred so that a panic in the chain (http.ErrAbortHandler when the backend goes
	// away mid-answer) still settles the claim instead of leaving it in flight, which
	// would turn ZEGO's retries away until it lapsed.
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
	_, _ = rw.Write(answer.Body.Bytes())
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
