package zegocallback

import (
	"net/http"
	"net/http/httptest"
)

// relayAnswer sends the client the backend's answer, recorded: its headers, status (200
// when it wrote none) and body. Trailers are not relayed: a callback's answer has none.
func relayAnswer(rw http.ResponseWriter, answer *httptest.ResponseRecorder) {
	h := rw.Header()
	for name, values := range answer.Header() {
		h[name] = values
	}
	code := answer.Code
	if code == 0 {
		code = http.StatusOK
	}
	rw.WriteHeader(code)
	_, _ = rw.Write(answer.Body.Bytes())
}
