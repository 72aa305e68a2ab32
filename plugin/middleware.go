package zegocallback

import (
	"bytes"
	"context"
	"crypto/sha256"
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
	// verifiedHeader is the prefix's Verified header.
	verifiedHeader string
	// readLimit is the longest body ServeHTTP reads at once, by its declared length:
	// maxBodyBytes, at most readChunk (a longer one is readBody's); 0 in reportOnly, whose
	// requests the general reading reads, since their annotation does not wait for the
	// signature.
	readLimit uint64
	// What a genuine callback's steps read of s.
	secrets        []string
	secretsFile    *watchedFile
	appSecrets     map[string][]string // nil without appSecrets: then secrets are every app's
	appSecretsFile *watchedFile
	// everyAppFile is secretsFile with appSecrets (secretsFile is then nil: appSecretsOf
	// adds what it holds to the app's secrets).
	everyAppFile   *watchedFile
	appFiles       bool // appSecretsFile or everyAppFile: appSecretsOf reads them
	unitMs         int64
	toleranceUnits int64
	windowUnits    uint64
	events         map[string]bool
	bodyInKey      bool
	inFlightMs     int64
	mem            *memoryStore // the replay store: in memory,
	room           *storeRoom   // (this middleware's room in it)
	redis          *redisPool   // or in Redis, when nonceStore is redis
	fallback       *memoryStore // with redis.failOpen: this Traefik's memory too
	fallbackRoom   *storeRoom
	ttlMs          int64 // how long the store remembers a callback from its arrival (see New)
	answerBytes    int   // rememberAnswerBytes, -1 for 0 (rememberedAnswer)
	noAnswer       bool  // retryOn noAnswer
	closeFrom      int   // the backend's statuses from which undelivered answers: 500 with noAnswer
	now            func() time.Time
}

// New builds the middleware from a configuration Traefik has decoded. It fails, so that
// Traefik serves nothing through a misconfigured middleware, with an error that names the
// key at fault. It starts no goroutine or timer: Traefik calls it for every router and on
// every reload, without teardown. Every middleware that keeps its replay store in memory
// shares the process's one (see memoryStores).
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
		next:           next,
		name:           name,
		s:              s,
		headers:        s.headers,
		verifiedHeader: s.headers.verified,
		// A declared length up to readChunk is allocated at once; a longer one grows as
		// the bytes come (readBody).
		readLimit:      uint64(s.maxBodyBytes),
		secrets:        s.secrets,
		secretsFile:    s.secretsFile,
		appSecrets:     s.appSecrets,
		appSecretsFile: s.appSecretsFile,
		unitMs:         s.unitMs,
		toleranceUnits: s.toleranceUnits,
		windowUnits:    s.windowUnits,
		events:         s.events,
		bodyInKey:      s.bodyInKey,
		inFlightMs:     s.inFlightMs,
		// A callback stamped ts passes from ts-tolerance until ts+tolerance, and until
		// the end of that second for a timestamp in whole seconds: its first copy may
		// arrive at the start of that window and a replay at its end. Replicas sharing
		// Redis may also differ in their clocks: 5 s more covers both.
		ttlMs:       2*s.toleranceMs + 5000,
		answerBytes: s.answerBytes,
		noAnswer:    s.noAnswer,
		now:         now,
	}
	if m.appSecrets != nil {
		m.everyAppFile = s.secretsFile
		m.secretsFile = nil // a pair with nil would not run under Yaegi
		m.appFiles = m.appSecretsFile != nil || m.everyAppFile != nil
	}
	m.closeFrom = 1000
	if m.noAnswer {
		m.closeFrom = http.StatusInternalServerError
	}
	if m.answerBytes == 0 {
		m.answerBytes = -1 // keeps none: see rememberedAnswer
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
		if s.redis.failOpen {
			// What Redis cannot answer for is checked against this Traefik's memory
			// (claimFailingOpen), which remembers every callback while failOpen is on.
			m.fallback, m.fallbackRoom = memoryStores.get(name, CreateConfig().NonceCapacity, m.ttlMs, s.bodyInKey)
		}
	} else {
		m.mem, m.room = memoryStores.get(name, s.capacity, m.ttlMs, s.bodyInKey)
	}
	return m, nil
}

// ServeHTTP runs the steps of the README's "Each request, in order", numbered alike, and
// forwards what passes. It holds a genuine callback's whole path, and only that, in as
// few calls and expressions as it takes: under Yaegi every call allocates its frame, one
// slot per local and expression, whichever branches run (DESIGN.md). The plain reading
// (plain_json.go), the signature's check and the store's claim are calls of their own;
// a request that is not a plain POST of JSON is readGeneral's, and every outcome other
// than a delivery is in outcome.go and runs only then.
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// 1. Whatever happens next, no client-sent header with the prefix reaches the backend.
	h := req.Header
	stripPrefixed(m.headers, h)
	cb := &callback{header: h}
	// 2-5. A POST of JSON, as ZEGO sends it, of a declared length up to readChunk (and
	// maxBodyBytes), without a query string, is read whole at once, and its body by the
	// plain reading. Any other request, and any body the plain reading does not take, is
	// readGeneral's, which answers what it refuses.
	if uint64(req.ContentLength-1) < m.readLimit && req.Method == http.MethodPost && len(h["Content-Type"]) == 1 &&
		h["Content-Type"][0] == "application/json" && h["Content-Encoding"] == nil && req.URL.RawQuery == "" {
		body := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			refuse(m, rw, req, cb, errBodyRead)
			return
		}
		cb.body = body
		if body[0] == '{' {
			readPlain(cb, m.headers, body)
		}
	}
	if !cb.parsed && !readGeneral(m, rw, req, cb) {
		return
	}
	// 6. The signature (signature.go), against the secrets in force (secretsFile read
	// again when it changed): a forged body goes no further.
	// With appSecrets, the secrets of the app id the body names, then (on a failure) the
	// secrets option's, accepted for every app (app_secrets.go).
	cb.receivedMs = m.now().UnixMilli()
	secrets := m.secrets
	if m.appSecrets != nil {
		if secrets = m.appSecrets[cb.texts[fieldAppID]]; secrets == nil || m.appFiles {
			secrets = appSecretsOf(m, cb)
		}
	}
	verifySignature(secrets, m.secretsFile, cb)
	if cb.key == "" {
		refuse(m, rw, req, cb, unsigned(m, cb))
		return
	}
	// What the reading left to check once the signature holds, when there is any: for a
	// body the plain reading took, its keys; for another, what checkReading checks.
	if cb.recheck && !rechecked(m, rw, req, cb) {
		return
	}
	// The body's digest, which tells a replay from another body under the same
	// signature.
	cb.digest = sha256.Sum256(cb.body)
	// 7. Fresh: the timestamp within timestampTolerance of now, in the past or the
	// future, in the configured unit; in seconds, against now truncated to the second as
	// ZEGO's is. One unsigned comparison holds both bounds: how far the timestamp lies
	// before the window's end, which wraps past the window's width for one after it.
	if uint64(cb.receivedMs/m.unitMs+m.toleranceUnits)-cb.timestamp > m.windowUnits { //nolint:gosec // see above
		refuse(m, rw, req, cb, freshnessError(m, cb))
		return
	}
	// 8. The event, when the events option lists them.
	if m.events != nil && !eventAllowed(m, rw, req, cb) {
		return
	}
	// 9. Replays: the replay store's claim, in memory or in Redis.
	claim := claimed
	if m.mem != nil {
		claim = claimMemory(m.mem, cb, m.room, m.inFlightMs)
	} else {
		claim = claimInRedis(m, cb)
	}
	if claim != claimed {
		refuseSeen(m, rw, req, cb, claim)
		return
	}
	// 10. Forward, with the fields as headers (the plain reading wrote them already, unless
	// it left the body to plainKeys), and
	// settle the claim on the answer. The body is read whole, so the server has answered
	// a client's Expect: 100-continue; sent on, it would make the backend answer 100,
	// which would take the recorder's place as the final status and lose the backend's
	// answer. Trailers could carry prefixed headers past step 1; a callback has none.
	h[m.verifiedHeader] = verifiedTrue
	delete(h, "Expect")
	if cb.pieces == nil {
		annotate(m.headers, h, cb)
	} else if cb.recheck {
		annotatePlain(m.headers, h, cb)
	}
	req.Body = io.NopCloser(bytes.NewReader(cb.body))
	req.Trailer = nil
	// The backend answers into a compiled recorder, whose headers are the client's, and
	// its status and body are then copied to the client: a callback's answer is small,
	// and every call Traefik's proxy would make on an interpreted writer crosses Yaegi's
	// reflection bridge. Settled in a deferred call, so that a panic in the chain
	// (http.ErrAbortHandler when the backend goes away mid-answer) still settles the
	// claim, as not delivered unless a 2xx was written, instead of leaving it in flight,
	// which would turn ZEGO's retries away until it lapsed.
	answer := &httptest.ResponseRecorder{HeaderMap: rw.Header(), Body: new(bytes.Buffer)} // Code 0 until the backend writes a status
	cb.answer = answer
	if m.mem != nil {
		defer settleMemory(m, cb)
	} else {
		defer settleRedis(m, cb)
	}
	m.next.ServeHTTP(answer, req)
	cb.answered = true // not after a panic: a body cut short is not remembered
	// A backend that wrote no status gets net/http's 200: delivered, as a 2xx is, even if
	// the chain panics after it. The answer to the client: the recorded status and body
	// (the headers are in place). A backend whose informational answer (103 Early Hints)
	// took the recorder's place gets 502, its claim forgotten (noteUndelivered); with
	// retryOn noAnswer, that and a 5xx close the connection instead (undelivered).
	// Trailers are not relayed: a callback's answer has none.
	status := answer.Code
	if status == 0 {
		status = http.StatusOK
		answer.Code = status
	} else if status < 200 || status >= m.closeFrom {
		if status = undelivered(m, rw, req, cb, status); status == 0 {
			return
		}
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(answer.Body.Bytes()) // kept for the settlement, which remembers it
}

// verifiedTrue is the value of the prefix's Verified header on a verified callback: one
// slice for every request (a backend that adds to it makes an array of its own).
var verifiedTrue = []string{"true"}

// readGeneral reads a request the plain way does not take into cb, and reports whether
// its signature is to be checked; it answers a request it refuses. The body, when not read
// yet: another method (in reportOnly the checks go on, so that the forwarded request is
// annotated), a body whose headers say it is not the bytes it holds (inspectUnusual), one
// of unknown length or past readChunk (readBody, a chunked one going on with its
// Content-Length), a form's Content-Type. Then the general reading (callback.go).
func readGeneral(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback) bool {
	var failure error
	if cb.body == nil {
		var stop bool
		if failure, stop = inspectUnusual(m, req, cb); stop {
			refuse(m, rw, req, cb, failure)
			return false
		}
		if failure == nil && req.URL.RawQuery != "" && formAlias([]byte(req.URL.RawQuery), false) {
			failure = errFieldInQuery // answered once the body is read, as a method in reportOnly
		}
		body, err := readBody(req, m.s.maxBodyBytes)
		if err != nil {
			refuse(m, rw, req, cb, err)
			return false
		}
		cb.body = body
		if req.ContentLength != int64(len(body)) || req.TransferEncoding != nil {
			setLength(req, len(body))
		}
	}
	err := parseInto(cb, cb.body)
	cb.parsed = err == nil // to annotate it in reportOnly, whatever answers
	if failure == nil {
		failure = err
	}
	if failure != nil {
		// A check that failed before the reading (a method, in reportOnly) answers first.
		refuse(m, rw, req, cb, failure)
		return false
	}
	return true
}
