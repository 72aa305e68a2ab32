package zegocallback

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The pieces of a genuine callback's path, each measured alone: natively with go test
// -bench, and interpreted by the test module (BenchmarkInterpretedPieces), which loads
// these same functions into Yaegi. What each piece costs under Yaegi is where the time
// of a callback goes.

// pieceBody is ZEGO's documented mix_start example, compacted, signed now.
func pieceBody() []byte {
	return bytes.ReplaceAll(zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body, []byte("\n"), nil)
}

func pieceMiddleware(b *testing.B) *middleware {
	cfg := CreateConfig()
	cfg.Secrets = []string{zegotest.Secret}
	h, err := New(context.Background(), http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(200) }), cfg, b.Name()+"@pieces")
	if err != nil {
		b.Fatal(err)
	}
	return h.(*middleware)
}

func BenchmarkPieceStrip(b *testing.B) {
	m := pieceMiddleware(b)
	h := http.Header{"Content-Type": {"application/json"}, "Content-Length": {"700"}, "User-Agent": {"Go-http-client/1.1"}, "Accept-Encoding": {"gzip"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		stripPrefixed(m.s.headers, h)
	}
}

func BenchmarkPieceBodyHeaders(b *testing.B) {
	h := http.Header{"Content-Type": {"application/json"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = bodyHeaders(h)
	}
}

func BenchmarkPieceReadBody(b *testing.B) {
	body := pieceBody()
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = readBody(reqs[i], 1<<20)
	}
}

func BenchmarkPieceParse(b *testing.B) {
	body := pieceBody()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseCallback(body, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPieceClaimAndSettle(b *testing.B) {
	s := newMemoryStore(1<<20, 605000)
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = strconv.Itoa(i) + "-0123456789abcdefghi"
	}
	now := time.Now().UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, _ := claimAt(s, keys[i], 7, now, 20000); r != claimed {
			b.Fatal(r)
		}
		confirmAt(s, keys[i], 7)
	}
}

func BenchmarkPieceAnnotate(b *testing.B) {
	m := pieceMiddleware(b)
	cb, err := parseCallback(pieceBody(), false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		annotate(m.s.headers, http.Header{}, cb)
	}
}

func BenchmarkPieceServeHTTP(b *testing.B) {
	m := pieceMiddleware(b)
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(pieceBody()))
		reqs[i].Header.Set("Content-Type", "application/json")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rw := httptest.NewRecorder()
		m.ServeHTTP(rw, reqs[i])
		if rw.Code != 200 {
			b.Fatal(rw.Code, rw.Body.String())
		}
	}
}

func BenchmarkPieceSignature(b *testing.B) {
	m := pieceMiddleware(b)
	cb, _ := parseCallback(pieceBody(), false)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		verifySignature(m.s.secrets, nil, cb)
	}
}

func BenchmarkPieceDecodeJSON(b *testing.B) {
	body := pieceBody()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = decodeJSON(&callback{}, body)
	}
}

func BenchmarkPieceReadNamed(b *testing.B) {
	cb := &callback{}
	_ = decodeJSON(cb, pieceBody())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = readNamed(cb)
	}
}

func BenchmarkPieceReadPlain(b *testing.B) {
	m := pieceMiddleware(b)
	body := pieceBody()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cb := &callback{header: http.Header{}}
		if readPlain(cb, m.s.headers, body); !cb.parsed {
			b.Fatal("not plain")
		}
	}
}

func BenchmarkPieceAnnotatePlain(b *testing.B) {
	m := pieceMiddleware(b)
	body := pieceBody()
	cb := &callback{body: body, header: http.Header{}}
	if readPlain(cb, m.s.headers, body); !cb.parsed || plainKeys(m.s.headers, cb) != nil {
		b.Fatal("not plain")
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		annotatePlain(m.s.headers, cb.header, cb)
	}
}
