package zegocallback

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// The errors the request path returns, one per rejection code. Compare with errors.Is:
// the middleware wraps them with the detail that goes to its log, never to the client.
var (
	errMethodNotAllowed = errors.New("method not allowed")
	errBodyTooLarge     = errors.New("body too large")
	// errUnsupportedMediaType is a body sent compressed or as multipart.
	errUnsupportedMediaType = errors.New("unsupported media type")
	errMalformedBody        = errors.New("malformed body")
	// errFieldInQuery is a query string holding a parameter that a backend reads as a
	// named field (formAlias): Flask's request.values, Rails' params, a servlet's
	// getParameter and Go's FormValue read the query string with the body, or before it.
	errFieldInQuery     = errors.New("a named field in the query string")
	errInvalidSignature = errors.New("invalid signature")
	errStaleTimestamp   = errors.New("stale timestamp")
	errEventNotAllowed  = errors.New("event not allowed")
	errDuplicate        = errors.New("duplicate callback")
	errSignatureReused  = errors.New("signature reused with another body")
	errStoreUnavailable = errors.New("replay store unavailable")
)

// rejection is what the client gets for one kind of error: its status, the code that
// X-Zego-Rejection and the log carry, and the JSON body, built once.
type rejection struct {
	err       error
	status    int
	code      string
	codeValue []string // the code as a header's value, one slice for every answer
	body      []byte
}

func newRejection(err error, status int, code, message string) *rejection {
	body := `{"error":` + strconv.Quote(code) + `,"message":` + strconv.Quote(message) + "}\n"
	return &rejection{err: err, status: status, code: code, codeValue: []string{code}, body: []byte(body)}
}

// rejections is read-only after package initialisation.
var rejections = []*rejection{
	newRejection(errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "only POST is accepted"),
	newRejection(errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than this endpoint accepts"),
	newRejection(errUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be sent as it is, JSON or a URL-encoded form"),
	newRejection(errMalformedBody, http.StatusBadRequest, "malformed_body", "the body is not a well-formed ZEGO callback"),
	newRejection(errFieldInQuery, http.StatusBadRequest, "field_in_query", "the query string holds a callback field, which a backend could read in place of the body's"),
	newRejection(errInvalidSignature, http.StatusUnauthorized, "invalid_signature", "the signature does not match"),
	newRejection(errStaleTimestamp, http.StatusUnauthorized, "stale_timestamp", "the timestamp is outside the accepted window"),
	newRejection(errEventNotAllowed, http.StatusForbidden, "event_not_allowed", "this event is not accepted here"),
	newRejection(errDuplicate, http.StatusConflict, "duplicate", "this callback was already received"),
	newRejection(errSignatureReused, http.StatusConflict, "signature_reused", "this signature came before with another body"),
	newRejection(errStoreUnavailable, http.StatusServiceUnavailable, "nonce_store_unavailable", "replay protection is unavailable; retry later"),
}

// rejectionFor maps an error from the request path to what the client gets. An error
// that is none of the sentinels (which would be a bug) is answered as a store failure:
// 503 makes ZEGO retry instead of losing the callback.
func rejectionFor(err error) *rejection {
	for i := 0; i < len(rejections); i++ {
		if err == rejections[i].err {
			return rejections[i] // the sentinel itself, as most are returned
		}
	}
	for i := 0; i < len(rejections); i++ {
		if errors.Is(err, rejections[i].err) {
			return rejections[i]
		}
	}
	return rejections[len(rejections)-1]
}

// The values of the headers every rejection carries, one slice for every answer.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
	allowPost       = []string{http.MethodPost}
)

// duplicateAck is the answer to a callback that was already delivered, when duplicates
// are acknowledged: ZEGO stops retrying, and the backend does not get it twice.
var duplicateAck = []byte(`{"status":"duplicate","message":"this callback was already delivered; it was not forwarded again"}` + "\n")

// writeRejection answers the client, with the code also in the prefix's Rejection
// header, which Traefik's access log can record (see the README's Logs). It never
// includes err's text, a secret, the expected signature or the body.
func writeRejection(m *middleware, rw http.ResponseWriter, r *rejection) {
	h := rw.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	h[m.headers.rejection] = r.codeValue
	if r.status == http.StatusMethodNotAllowed {
		h["Allow"] = allowPost
	}
	rw.WriteHeader(r.status)
	_, _ = rw.Write(r.body)
}

// The actions a log line names.
const (
	actionRejected     = "rejected"
	actionWouldReject  = "would reject (reportOnly)"
	actionAcknowledged = "acknowledged"
	// retryOn noAnswer: what asks ZEGO to try again closes the connection instead.
	actionClosed = "closed without an answer (retryOn: noAnswer)"
	// redis.failOpen: Redis could not answer, and the callback was claimed in this
	// Traefik's memory only.
	actionFellBack = "checked against this Traefik's memory only (redis.failOpen)"
)

// logRejection writes the line a rejected (or, in reportOnly, would-be rejected) callback
// gets, at ERROR, or a duplicate's, at DEBUG: ZEGO retries a callback whose answer it
// missed or is late, and that is no error. The lines of each code are bounded (see
// lineLimiter). event and appid come from the body, so they are bounded and quoted;
// err's text names fields, never their values.
func logRejection(m *middleware, action, code string, req *http.Request, cb *callback, err error) {
	reason := reasonUnverified
	if cb.key != "" { // the signature held
		reason = code
	}
	note := lineAllowed(m.s.log, reason, cb.receivedMs)
	if note == lineSuppressed {
		return
	}
	level := levelError
	if code == "duplicate" {
		level = levelDebug
	}
	writeLine(m.s.log, level, fmt.Sprintf("%s code=%s remote=%s event=%q appid=%q reason=%q%s",
		action, code, req.RemoteAddr, logValue(cb.texts[fieldEvent]), logValue(cb.texts[fieldAppID]), errorDetail(err), note))
}

func errorDetail(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// logValue bounds what an untrusted body can put into a log line.
func logValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// The paths of requests that are not forwarded as verified: they run only then, so they
// cost the path of a genuine callback nothing (see ServeHTTP).

// refuse answers a request that failed a check: the rejection, or in reportOnly the
// request forwarded and marked. A body that could not be read whole, or is too large,
// is refused even in reportOnly: there is nothing whole to forward.
func refuse(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, failure error) {
	if !m.s.reportOnly || cb.body == nil {
		reject(m, rw, req, cb, failure)
		return
	}
	wouldReject(m, rw, req, cb, failure)
}

// inspectUnusual is inspect for a request that is not a POST of JSON. Another method is
// refused (in reportOnly the checks go on, so that the request is annotated). A body
// sent compressed or as multipart is refused, or in reportOnly read into cb and
// forwarded, marked, unparsed (its bytes are not what a parser would read). A form's
// Content-Type is noted. stop says inspect has nothing more to do.
func inspectUnusual(m *middleware, req *http.Request, cb *callback) (failure error, stop bool) {
	failure = nil // a result is not zeroed at each call under Yaegi (DESIGN.md)
	if req.Method != http.MethodPost {
		failure = errMethodNotAllowed
		if !m.s.reportOnly {
			return failure, true
		}
	}
	formTyped, err := bodyHeaders(req.Header)
	if err == nil {
		cb.formTyped = formTyped
		return failure, false
	}
	if !m.s.reportOnly {
		return err, true
	}
	body, rerr := readBody(req, m.s.maxBodyBytes)
	if rerr != nil {
		return rerr, true
	}
	cb.body = body
	if failure == nil {
		failure = err
	}
	return failure, true
}

// refuseSeen answers a verified callback the store did not let through: seen before
// (in flight, or delivered), or the store failed (with redis.failOpen, only this
// Traefik's memory full, or its pool's connections all busy: see claimFailingOpen).
func refuseSeen(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, claim claimResult) {
	err := cb.storeErr
	if err != nil {
		refuse(m, rw, req, cb, fmt.Errorf("%w: %w", errStoreUnavailable, err))
		return
	}
	if claim == reused {
		refuse(m, rw, req, cb, errSignatureReusedDetail)
		return
	}
	answerDuplicate(m, rw, req, cb, claim)
}

// undelivered answers a delivery the backend did not acknowledge with what ZEGO takes for
// "try again": 502 for an informational answer that hid the backend's own; with retryOn
// noAnswer, no answer at all, for that and for a 5xx (a backend that failed, or that
// Traefik could not reach), since those products would take any status for a delivery.
// It returns the status to write, 0 when it closed the connection. The claim is
// forgotten either way (settleMemory, settleRedis), before the connection closes.
func undelivered(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, status int) int {
	if !m.noAnswer {
		return http.StatusBadGateway
	}
	// Settled before the connection closes, so that ZEGO's retry, which comes at once,
	// finds the claim forgotten; the deferred settlement then has none to settle.
	if m.mem != nil {
		settleMemory(m, cb)
	} else {
		settleRedis(m, cb)
	}
	cb.key = ""
	cb.claim = ""
	m.s.log.printf(levelError, "backend_unanswered", "%s code=backend_%d remote=%s reason=%q",
		actionClosed, status, req.RemoteAddr, "the backend did not acknowledge the callback; ZEGO retries one that gets no answer")
	if status < 200 {
		status = http.StatusBadGateway // the proxy would send an informational status at once
	}
	closeWithoutAnswer(rw, req, status)
	return 0
}

// errSignatureReusedDetail is what the log says of a signature reused with another body.
var errSignatureReusedDetail = fmt.Errorf("%w: the signed timestamp and nonce came before with another body: a nonce collision (set replayKey: signatureAndBody if ZEGO's nonces are short) or a captured signature reused", errSignatureReused)

// unsigned is why no secret in force yields a callback's signature.
func unsigned(m *middleware, cb *callback) error {
	if m.appSecrets != nil {
		return appSignatureError(m, cb)
	}
	return signatureError(cb)
}

// eventAllowed is step 8 when the events option lists events: it refuses a callback
// whose event it does not list, naming the list in the log, where a misspelt event would
// show, and reports whether the callback goes on.
func eventAllowed(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback) bool {
	s := m.s
	if s.events[cb.texts[fieldEvent]] {
		return true
	}
	refuse(m, rw, req, cb, fmt.Errorf("%w: %q is not in events %s", errEventNotAllowed, logValue(cb.texts[fieldEvent]), s.eventList))
	return false
}

// answerDuplicate answers a verified callback that was seen before, not forwarded. One
// delivered gets the answer the backend gave it, when the store remembers it (whatever
// duplicates says: ZIM's before_send_msg reads its result from it); else, with duplicates
// acknowledge, 200 and the middleware's own body, or 409. One in flight gets 409, or with
// retryOn noAnswer no answer. reportOnly forwards it, marked, and leaves the store as it was.
func answerDuplicate(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, claim claimResult) {
	if m.s.reportOnly {
		req.Header[m.s.headers.duplicate] = []string{"true"}
		wouldReject(m, rw, req, cb, errDuplicate)
		return
	}
	if claim == delivered && writeRemembered(m, rw, cb.remembered) {
		if cb.pieces != nil {
			stripWritten(m.s.headers, cb) // not forwarded
		}
		logRejection(m, actionAcknowledged, "duplicate", req, cb, errAnsweredAsBefore)
		return
	}
	ackOrReject(m, rw, req, cb, claim)
}

// ackOrReject is answerDuplicate for a duplicate without a remembered answer.
func ackOrReject(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, claim claimResult) {
	if claim != delivered || !m.s.ackDuplicates {
		if claim == inFlight && m.noAnswer {
			// The products that retry only without an answer would take 409 for one: the
			// copy in flight may yet fail.
			if cb.pieces != nil {
				stripWritten(m.s.headers, cb)
			}
			logRejection(m, actionClosed, "duplicate", req, cb, errDuplicate)
			closeWithoutAnswer(rw, req, http.StatusConflict)
			return
		}
		reject(m, rw, req, cb, errDuplicate)
		return
	}
	if cb.remembered == answerTooLong {
		m.s.log.printf(levelError, "answer_not_remembered", "a duplicate got the middleware's acknowledgement: the backend's answer to its delivery was longer than rememberAnswerBytes (%d), encoded (Content-Encoding), or cut short; raise it if ZEGO reads that answer", m.s.answerBytes)
	}
	logRejection(m, actionAcknowledged, "duplicate", req, cb, errAcknowledged)
	if cb.pieces != nil {
		stripWritten(m.s.headers, cb) // not forwarded, as reject's
	}
	h := rw.Header()
	h.Set("Content-Type", "application/json")
	h[m.s.headers.duplicate] = []string{"true"}
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(duplicateAck)
}

// errAcknowledged is what the log line of an acknowledged duplicate says.
var errAcknowledged = errors.New("already delivered; answered 200, not forwarded")

// errAnsweredAsBefore is the log line's of a duplicate that got its delivery's answer.
var errAnsweredAsBefore = errors.New("already delivered; answered what the backend answered, not forwarded")

// reject answers the client with failure's status and logs one line. The headers the
// plain reading wrote are taken out of the request: they came from a body refused, and an
// access log that records request headers would show them.
func reject(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, failure error) {
	if cb.pieces != nil {
		stripWritten(m.s.headers, cb)
	}
	r := rejectionFor(failure)
	if m.noAnswer && r.err == errStoreUnavailable {
		// The products that retry only without an answer would take 503 for one.
		logRejection(m, actionClosed, r.code, req, cb, failure)
		closeWithoutAnswer(rw, req, r.status)
		return
	}
	logRejection(m, actionRejected, r.code, req, cb, failure)
	writeRejection(m, rw, r)
}

// wouldReject is reportOnly's answer to a request a check failed: it goes on, marked
// with what would have rejected it, and the store is not touched.
func wouldReject(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, failure error) {
	r := rejectionFor(failure)
	logRejection(m, actionWouldReject, r.code, req, cb, failure)
	forwardUnsettled(m, rw, req, cb, "false", r.code)
}

// noteUndelivered logs a delivery whose answer was an informational status (a backend's
// 103 Early Hints, which the recorder keeps as final): it hid the backend's own answer,
// and every retry will reach the backend again. The claim is forgotten, as for any
// delivery the backend did not acknowledge, so that ZEGO's retry gets through.
func noteUndelivered(m *middleware, cb *callback) {
	if code := cb.answer.Code; code >= 100 && code < 200 {
		m.s.log.printf(levelError, "backend_informational", "the backend answered %d before its final answer, which was lost; answered 502 (or the connection was closed) and the claim forgotten, so that ZEGO retries", code)
	}
}

// forwardUnsettled forwards a request that is not a genuine delivery, whose answer the
// replay store does not settle: reportOnly's, and redis.failOpen's. verified is what
// X-Zego-Verified says, rejection what X-Zego-Rejection says ("" for none). The body is
// annotated when it parsed.
func forwardUnsettled(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback, verified, rejection string) {
	h := req.Header
	h[m.s.headers.verified] = []string{verified}
	if rejection != "" {
		h[m.s.headers.rejection] = []string{rejection}
	}
	if cb.parsed && (cb.pieces == nil || cb.recheck) {
		annotateVerified(m.s.headers, h, cb) // else the plain reading wrote them all
	}
	setBody(req, cb.body)
	m.next.ServeHTTP(rw, req)
}
