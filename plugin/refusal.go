package zegocallback

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
)

// The paths of requests that are not forwarded as verified: they run only then, so they
// cost the path of a genuine callback nothing (see ServeHTTP).

// refuse answers a request that failed a check: the rejection, or in reportOnly the
// request forwarded and marked. A body that could not be read whole, or is too large,
// is refused even in reportOnly: there is nothing whole to forward.
func refuse(m *Middleware, rw http.ResponseWriter, req *http.Request, cb *Callback, body []byte, failure error) {
	if !m.s.reportOnly || body == nil {
		reject(m, rw, req, cb, failure)
		return
	}
	forwardUnverified(m, rw, req, body, cb, failure)
}

// inspectUnsupported is inspect for a body sent compressed or as multipart: refused, or
// in reportOnly read and forwarded, marked, unparsed (its bytes are not what a parser
// would read).
func inspectUnsupported(m *Middleware, req *http.Request, failure, err error) (*Callback, []byte, error) {
	if !m.s.reportOnly {
		return nil, nil, err
	}
	body, rerr := readBody(req, m.s.maxBodyBytes)
	if rerr != nil {
		return nil, nil, rerr
	}
	if failure == nil {
		failure = err
	}
	return nil, body, failure
}

// refuseSeen answers a verified callback the store did not let through: seen before
// (in flight, or delivered), or the store failed.
//
// redis.failOpen forwards only when Redis itself failed: a pool whose connections are
// all busy is this Traefik's own limit, and a flood of copies of one callback must not
// get replays through it.
func refuseSeen(m *Middleware, rw http.ResponseWriter, req *http.Request, cb *Callback, body []byte, claim claimResult, err error) {
	if err != nil && m.redis != nil && m.s.redis.failOpen && !m.s.reportOnly && !errors.Is(err, errRedisBusy) {
		forwardUnclaimed(m, rw, req, cb, body, err)
		return
	}
	if err != nil {
		refuse(m, rw, req, cb, body, fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		return
	}
	if claim == reused {
		refuse(m, rw, req, cb, body, errSignatureReusedDetail)
		return
	}
	answerDuplicate(m, rw, req, body, cb, claim == delivered && m.s.ackDuplicates)
}

// errSignatureReusedDetail is what the log says of a signature reused with another body.
var errSignatureReusedDetail = fmt.Errorf("%w: the signed timestamp and nonce came before with another body: a nonce collision (set replayKey: signatureAndBody if ZEGO's nonces are short) or a captured signature reused", ErrSignatureReused)

// forwardUnclaimed is redis.failOpen: Redis could not answer, and the verified callback
// goes on without a replay check, logged.
func forwardUnclaimed(m *Middleware, rw http.ResponseWriter, req *http.Request, cb *Callback, body []byte, err error) {
	logRejection(m.name, actionForwardedUnchecked, "nonce_store_unavailable", req, cb, err)
	req.Header[m.s.headers.verified] = []string{"true"}
	annotate(m.s.headers, req.Header, cb)
	setBody(req, body)
	m.next.ServeHTTP(rw, req)
}

// settleRedis records a delivery's outcome in Redis; a failure is logged: the claim then
// lapses on its own after inFlightTimeout.
func settleRedis(m *Middleware, cb *Callback, ok bool) {
	var err error
	if ok {
		err = confirmRedis(m.redis, cb.key, strconv.FormatUint(cb.digest, 16), m.ttlMs)
	} else {
		err = forgetRedis(m.redis, cb.key, cb.claim)
	}
	if err != nil {
		_, _ = fmt.Fprintf(log.Writer(), "zegocallback: middleware=%s replay store could not record a delivery (delivered=%v): %v; the claim lapses after inFlightTimeout\n", m.name, ok, err)
	}
}

func eventNotAllowed(cb *Callback) error {
	return fmt.Errorf("%w: %q", ErrEventNotAllowed, logValue(cb.Event))
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

// errAcknowledged is what the log line of an acknowledged duplicate says.
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
