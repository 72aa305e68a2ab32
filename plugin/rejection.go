package zegocallback

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
)

// The errors the request path returns, one per rejection code. Compare with errors.Is:
// the middleware wraps them with the detail that goes to its log, never to the client.
var (
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrBodyTooLarge     = errors.New("body too large")
	// ErrUnsupportedMediaType is a body sent compressed or as multipart.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	ErrMalformedBody        = errors.New("malformed body")
	ErrInvalidSignature     = errors.New("invalid signature")
	ErrStaleTimestamp       = errors.New("stale timestamp")
	ErrEventNotAllowed      = errors.New("event not allowed")
	ErrDuplicate            = errors.New("duplicate callback")
	ErrSignatureReused      = errors.New("signature reused with another body")
	ErrStoreUnavailable     = errors.New("nonce store unavailable")
)

// rejection is what the client gets for one kind of error: its status, the code that
// X-Zego-Rejection and the log carry, and the JSON body, built once.
type rejection struct {
	err    error
	status int
	code   string
	body   []byte
}

func newRejection(err error, status int, code, message string) rejection {
	body := `{"error":` + strconv.Quote(code) + `,"message":` + strconv.Quote(message) + "}\n"
	return rejection{err: err, status: status, code: code, body: []byte(body)}
}

// rejections is read-only after package initialisation.
var rejections = []rejection{
	newRejection(ErrMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "only POST is accepted"),
	newRejection(ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than this endpoint accepts"),
	newRejection(ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be sent as it is, JSON or a URL-encoded form"),
	newRejection(ErrMalformedBody, http.StatusBadRequest, "malformed_body", "the body is not a well-formed ZEGO callback"),
	newRejection(ErrInvalidSignature, http.StatusUnauthorized, "invalid_signature", "the signature does not match"),
	newRejection(ErrStaleTimestamp, http.StatusUnauthorized, "stale_timestamp", "the timestamp is outside the accepted window"),
	newRejection(ErrEventNotAllowed, http.StatusForbidden, "event_not_allowed", "this event is not accepted here"),
	newRejection(ErrDuplicate, http.StatusConflict, "duplicate", "this callback was already received"),
	newRejection(ErrSignatureReused, http.StatusConflict, "signature_reused", "this signature came before with another body"),
	newRejection(ErrStoreUnavailable, http.StatusServiceUnavailable, "nonce_store_unavailable", "replay protection is unavailable; retry later"),
}

// rejectionFor maps an error from the request path to what the client gets. An error
// that is none of the sentinels (which would be a bug) is answered as a store failure:
// 503 makes ZEGO retry instead of losing the callback.
func rejectionFor(err error) rejection {
	for _, r := range rejections {
		if errors.Is(err, r.err) {
			return r
		}
	}
	return rejections[len(rejections)-1]
}

// duplicateAck is the answer to a callback that was already delivered, when duplicates
// are acknowledged: ZEGO stops retrying, and the backend does not get it twice.
var duplicateAck = []byte(`{"status":"duplicate","message":"this callback was already delivered; it was not forwarded again"}` + "\n")

// writeRejection answers the client. It never includes err's text, a secret, the
// expected signature or the body.
func writeRejection(rw http.ResponseWriter, r rejection) {
	h := rw.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	rw.WriteHeader(r.status)
	_, _ = rw.Write(r.body)
}

// The actions a log line names.
const (
	actionRejected     = "rejected"
	actionWouldReject  = "would reject (reportOnly)"
	actionAcknowledged = "acknowledged"
	// redis.failOpen: Redis could not answer and the callback went on unchecked.
	actionForwardedUnchecked = "forwarded without replay check (redis.failOpen)"
)

// logRejection writes the one line a rejected (or, in reportOnly, would-be rejected, or
// an acknowledged duplicate) callback gets. It writes to the log package's writer, which Yaegi gives each plugin
// and Traefik shows at ERROR level (a plugin's stdout shows only at DEBUG), without the
// log package's own date: Traefik stamps the line. event and appid come from the body,
// so they are bounded and quoted; err's text names fields, never their values.
func logRejection(middleware, action, code string, req *http.Request, cb *Callback, err error) {
	event, appID := "", ""
	if cb != nil {
		event, appID = logValue(cb.Event), logValue(cb.AppID)
	}
	_, _ = fmt.Fprintf(log.Writer(), "zegocallback: middleware=%s %s code=%s remote=%s event=%q appid=%q reason=%q\n",
		middleware, action, code, req.RemoteAddr, event, appID, errorDetail(err))
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
