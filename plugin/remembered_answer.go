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
// bytes of body and Content-Type; whole says the backend's answer came to its end (the
// chain did not panic after the status). One that did not, one longer than limit, and one
// encoded (its Content-Encoding would be lost) are remembered as answerTooLong: their
// duplicates get the middleware's acknowledgement.
func rememberedAnswer(answer *httptest.ResponseRecorder, limit int, whole bool) string {
	if limit == 0 {
		return ""
	}
	h := answer.HeaderMap
	if !whole || answer.Body.Len() > limit || len(h["Content-Encoding"]) != 0 && h.Get("Content-Encoding") != "identity" {
		return answerTooLong
	}
	code, known := answerTypeCodes[h.Get("Content-Type")]
	if !known {
		if answer.Body.Len()+len(h.Get("Content-Type")) > limit {
			return answerTooLong
		}
		code = "~" + h.Get("Content-Type") + "\n"
	}
	return answerStatus[answer.Code-200] + code + answer.Body.String()
}

// answerStatus is each 2xx status as a remembered answer starts with it: made once.
var answerStatus = func() []string {
	out := make([]string, 100)
	for i := range out {
		out[i] = strconv.Itoa(200 + i)
	}
	return out
}()

// parseAnswer reads a remembered answer back; ok is false for none, one too long, and one
// of another shape (a value another version wrote in Redis).
func parseAnswer(remembered string) (status int, contentType, body string, ok bool) {
	if len(remembered) < 4 || remembered[0] != '2' {
		return 0, "", "", false
	}
	status, err := strconv.Atoi(remembered[:3])
	if err != nil || status < 200 || status > 299 {
		return 0, "", "", false
	}
	rest := remembered[3:]
	if rest[0] == '~' {
		end := strings.IndexByte(rest, '\n')
		if end < 0 {
			return 0, "", "", false
		}
		return status, rest[1:end], rest[end+1:], true
	}
	i := int(rest[0]) - 'a'
	if i < 0 || i >= len(answerTypes) {
		return 0, "", "", false
	}
	return status, answerTypes[i], rest[1:], true
}

// writeRemembered answers a duplicate with the answer its delivery got, and reports
// whether there was one to give.
func writeRemembered(m *middleware, rw http.ResponseWriter, remembered string) bool {
	status, contentType, body, ok := parseAnswer(remembered)
	if !ok {
		return false
	}
	h := rw.Header()
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h[m.s.headers.duplicate] = []string{"true"}
	rw.WriteHeader(status)
	_, _ = io.WriteString(rw, body)
	return true
}

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
