package conformance

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The kinds of request BenchServeHTTP sends.
const (
	BenchNew       = "new"       // a fresh, valid callback each time
	BenchDuplicate = "duplicate" // the same delivered callback each time
	BenchForged    = "forged"    // a callback signed with another secret
)

// BenchServeHTTP measures the middleware's ServeHTTP on the ~700-byte mix_start example
// (compacted, as ZEGO sends it), with every request signed and built before the timer
// starts. config is added to the base configuration.
func BenchServeHTTP(b *testing.B, build Builder, kind string, config map[string]any) {
	next := http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) })
	h, err := build(b, merge(BaseConfig(), config), next, UniqueName("bench-"+kind))
	if err != nil {
		b.Fatal(err)
	}
	now := zegotest.Seconds(time.Now())
	body := func(secret string) []byte {
		return CompactMixStart(zegotest.New("mix_start.json", secret, now).Body)
	}
	reqs := make([]*http.Request, b.N)
	dup := body(zegotest.Secret)
	for i := range reqs {
		var p []byte
		switch kind {
		case BenchNew:
			p = body(zegotest.Secret)
		case BenchDuplicate:
			p = dup
		case BenchForged:
			p = body(zegotest.OtherSecret)
		}
		reqs[i] = httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(p))
		reqs[i].Header.Set("Content-Type", "application/json")
	}
	if kind == BenchDuplicate {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(dup)))
	}
	want := map[string]int{BenchNew: 200, BenchDuplicate: 200, BenchForged: 401}[kind]
	b.ReportAllocs()
	b.SetBytes(int64(len(dup)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, reqs[i])
		if rw.Code != want {
			b.Fatalf("request %d: %d, want %d: %s", i, rw.Code, want, rw.Body)
		}
	}
}

// CompactMixStart removes the line breaks of the pretty-printed example.
func CompactMixStart(body []byte) []byte {
	return bytes.ReplaceAll(body, []byte("\n"), nil)
}
