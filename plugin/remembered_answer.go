package zegocallback

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
)

// A delivered callback's entry in the replay store keeps the backend's answer, so that a
// duplicate gets that answer back: ZIM's before_send_msg reads its result from the body
// (a blocked message must stay blocked on a retry), mini-game callbacks expect
// {"Code":200}. The answer is remembered as one string, which both stores keep as it is
// (Redis in the delivered key's value):
//
//	<status, 3 digits><type><body>
//
// where <type> is one byte naming a usual Content-Type (answerTypes, from 'a'), or '~',
// the Content-Type and '\n' for another. An answer whose body passes rememberAnswerBytes
// is remembered as answerTooLong; with rememberAnswerBytes 0, as "" (none).

// answerTooLong is what a delivered entry keeps when the backend's answer was longer than
// rememberAnswerBytes, encoded, or cut short: a duplicate then gets the middleware's own
// acknowledgement, and a log line says why.
const answerTooLong = "!"

// answerTypes are the Content-Types a remembered answer names by one byte: those the usual
// backends write ("" for none), so that a short answer costs its body and four bytes.
var answerTypes = []string{
	"", "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8",
	"application/json; charset=UTF-8", "text/plain; charset=utf-8", "text/plain",
	"text/html; charset=UTF-8", "text/html; charset=utf-8", "text/plain;charset=UTF-8",
	"application/json;charset=UTF-8",
}

// answerTypeCodes maps each of answerTypes to its byte, as a string of one byte.
var answerTypeCodes = func() map[string]string {
	codes := make(map[string]string, len(answerTypes))
	for i, t := range answerTypes {
		codes[t] = string(rune('a' + i))
	}
	return codes
}()

// rememberedAnswer is what the store keeps of a delivery's answer (a 2xx), within limit
// bytes of body and Content-Type (limit is -1 with rememberAnswerBytes 0); whole says the
// backend's answer came to its end (the chain did not panic after the status). The usual
// answer, whole, short, of a usual Content-Type and not encoded, is one lookup and one
// concatenation; unusualAnswer takes the others.
func rememberedAnswer(answer *httptest.ResponseRecorder, limit int, whole bool) string {
	code, usual := answerTypeCodes[answer.HeaderMap.Get("Content-Type")]
	if usual && whole && answer.Body.Len() <= limit && answer.HeaderMap["Content-Encoding"] == nil {
		return answerStatus[answer.Code-200] + code + answer.Body.String()
	}
	return unusualAnswer(answer, limit, whole)
}

// unusualAnswer is rememberedAnswer for the others: none kept with rememberAnswerBytes
// 0; answerTooLong for one cut short, longer than limit, or encoded (its Content-Encoding
// would be lost): their duplicates get the middleware's acknowledgement; another
// Content-Type written out.
func unusualAnswer(answer *httptest.ResponseRecorder, limit int, whole bool) string {
	h := answer.HeaderMap
	contentType := h.Get("Content-Type")
	switch {
	case limit < 0:
		return ""
	case !whole || answer.Body.Len()+len(contentType) > limit,
		len(h["Content-Encoding"]) != 0 && h.Get("Content-Encoding") != "identity":
		return answerTooLong
	}
	if code, usual := answerTypeCodes[contentType]; usual {
		return answerStatus[answer.Code-200] + code + answer.Body.String()
	}
	return answerStatus[answer.Code-200] + "~" + contentType + "\n" + answer.Body.String()
}

// answerStatus is each 2xx status as a remembered answer starts with it: made once.
var answerStatus = func() []string {
	out := make([]string, 100)
	for i := range out {
		out[i] = strconv.Itoa(200 + i)
	}
	return out
}()

// writeRemembered answers a duplicate with the answer its delivery got, and reports
// whether it could: a remembered answer of a usual Content-Type is one lookup for its
// status and one for its type; another is writeRememberedOther's.
func writeRemembered(m *middleware, rw http.ResponseWriter, remembered string) bool {
	if len(remembered) < 4 || answerStatusCodes[remembered[:3]] == 0 || remembered[3] == '~' {
		return writeRememberedOther(m, rw, remembered)
	}
	h := rw.Header()
	if t := int(remembered[3]) - 'a'; t > 0 && t < len(answerTypes) {
		h["Content-Type"] = answerTypeValues[t]
	}
	h[m.headers.duplicate] = verifiedTrue
	rw.WriteHeader(answerStatusCodes[remembered[:3]])
	_, _ = io.WriteString(rw, remembered[4:])
	return true
}

// writeRememberedOther is writeRemembered for an answer of another Content-Type, and for
// none or one of another shape (a value another version wrote in Redis): false.
func writeRememberedOther(m *middleware, rw http.ResponseWriter, remembered string) bool {
	if len(remembered) < 4 || answerStatusCodes[remembered[:3]] == 0 || remembered[3] != '~' {
		return false
	}
	end := strings.IndexByte(remembered, '\n')
	if end < 0 {
		return false
	}
	h := rw.Header()
	h["Content-Type"] = []string{remembered[4:end]}
	h[m.headers.duplicate] = verifiedTrue
	rw.WriteHeader(answerStatusCodes[remembered[:3]])
	_, _ = io.WriteString(rw, remembered[end+1:])
	return true
}

// answerStatusCodes reads a remembered answer's status: each 2xx's text, made once.
var answerStatusCodes = func() map[string]int {
	out := make(map[string]int, 100)
	for i := 200; i < 300; i++ {
		out[strconv.Itoa(i)] = i
	}
	return out
}()

// answerTypeValues are answerTypes as header values, one slice each for every answer.
var answerTypeValues = func() [][]string {
	out := make([][]string, len(answerTypes))
	for i, t := range answerTypes {
		out[i] = []string{t}
	}
	return out
}()

// closeWithoutAnswer leaves the client without an answer, for retryOn noAnswer: the
// products that retry only a callback that got none (cloud player, cloud recording, super
// board) would take any status for a delivery. Over HTTP/1 it closes the connection it
// takes from the server. Else net/http resets the stream (HTTP/2) when a handler panics
// with http.ErrAbortHandler after its status,
// which it has not sent yet; Traefik's recovery lets that through without an answer. The
// panic must come from compiled code: one raised under Yaegi carries a reflect.Value, which
// neither net/http nor Traefik knows for ErrAbortHandler (each would log a stack and
// Traefik answer 500). httputil.ReverseProxy raises it when the body of the answer it
// relays fails; abortTransport gives it one that fails at once. Under a server that is not
// net/http's (a test's recorder), the proxy does not panic: the status it wrote stands.
func closeWithoutAnswer(rw http.ResponseWriter, req *http.Request, status int) {
	// HTTP/1: the connection taken from the server and closed, whatever wraps rw (Traefik's
	// buffering middleware before this one would turn the panic below into a 500).
	if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	// Under Yaegi, an interpreted type reaches a compiled interface field through a
	// variable of the interface's type (a composite literal would not convert it).
	var transport http.RoundTripper = abortTransport{status: status}
	proxy := &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}}
	proxy.Transport = transport
	proxy.ServeHTTP(rw, req)
}

// abortTransport answers closeWithoutAnswer's proxy with status and a body that fails at
// its first read, never reaching a network.
type abortTransport struct {
	status int
}

func (t abortTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, w := io.Pipe()
	// context.Canceled is the one read error the proxy does not log (the middleware has
	// logged why); log.New's logger, which would take the others, cannot be made under
	// Yaegi.
	_ = w.CloseWithError(context.Canceled)
	return &http.Response{
		StatusCode: t.status, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
		Body: body, ContentLength: 1, Request: req,
	}, nil
}
