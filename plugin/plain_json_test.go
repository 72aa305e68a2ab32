package zegocallback

import (
	"net/http"
	"testing"
	"time"
)

// readPlain keeps its working variables as results, which Yaegi v0.16.1 does not zero when
// one place calls the function again in the same frame: each must be set before it is
// read. Called again and again from one loop, as this test calls it (natively and, with
// the plugin's other tests, through Yaegi), it must read each body alike.
func TestReadPlainCalledAgainFromOnePlace(t *testing.T) {
	now := time.Now()
	m := clocked(t, nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &now)
	body := pieceBody()
	want := -1
	for i := 0; i < 6; i++ {
		cb := &callback{header: http.Header{}}
		readPlain(cb, m.s.headers, body)
		if !cb.parsed {
			t.Fatalf("call %d: the body was not read", i+1)
		}
		if want == -1 {
			want = cb.keys
		}
		if cb.keys != want || len(cb.header) == 0 {
			t.Fatalf("call %d: %d keys, %d headers; the first call read %d keys", i+1, cb.keys, len(cb.header), want)
		}
	}
}
