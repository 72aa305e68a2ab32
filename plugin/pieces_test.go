package zegocallback

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
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
	return pieceMiddlewareWith(context.Background(), b, CreateConfig())
}

// pieceMiddlewareWith builds the middleware of cfg, with the tests' secret, in front of a
// backend that answers 200.
func pieceMiddlewareWith(ctx context.Context, b *testing.B, cfg *Config) *middleware {
	cfg.Secrets = []string{zegotest.Secret}
	h, err := New(ctx, http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(200) }), cfg, b.Name()+"@pieces")
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

// The BenchmarkPieceServeHTTP functions are a whole request, one per path cmd/budget
// counts: a genuine callback with every field annotated (BenchmarkPieceServeHTTP), with
// fields: [event, appid, task_id], a duplicate, a forged body and a genuine callback with
// the Redis store. Every request is built before the timer starts. cmd/budget counts the
// calls of a path as the difference of two runs of one of them, so whatever a run does
// once (New, the first delivery of the duplicate, the first log lines, the first
// connection to Redis) drops out, and each request of a run must take the same path.

func BenchmarkPieceServeHTTP(b *testing.B) {
	pieceServe(b, pieceMiddleware(b), nil, http.StatusOK)
}

func BenchmarkPieceServeHTTP3Fields(b *testing.B) {
	cfg := CreateConfig()
	cfg.Fields = []string{"event", "appid", "task_id"}
	pieceServe(b, pieceMiddlewareWith(context.Background(), b, cfg), nil, http.StatusOK)
}

// BenchmarkPieceServeHTTPDuplicate sends a callback already delivered, acknowledged (the
// default duplicates: acknowledge); its log line is suppressed, as in any run of more
// than a few duplicates (see pieceQuietLog).
func BenchmarkPieceServeHTTPDuplicate(b *testing.B) {
	m := pieceMiddleware(b)
	body := pieceBody()
	pieceQuietLog(b, m, body, http.StatusOK)
	pieceServe(b, m, body, http.StatusOK)
}

// BenchmarkPieceServeHTTPForged sends the callback signed with another secret, refused
// 401; its log line is suppressed, as under a flood of them (see pieceQuietLog).
func BenchmarkPieceServeHTTPForged(b *testing.B) {
	m := pieceMiddleware(b)
	body := bytes.ReplaceAll(zegotest.New("mix_start.json", zegotest.OtherSecret, zegotest.Seconds(time.Now())).Body, []byte("\n"), nil)
	pieceQuietLog(b, m, body, http.StatusUnauthorized)
	pieceServe(b, m, body, http.StatusUnauthorized)
}

// BenchmarkPieceServeHTTPRedis sends genuine callbacks with nonceStore: redis, against a
// real redis-server of its own.
func BenchmarkPieceServeHTTPRedis(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // before the server is killed: the pool lets its connections go
	cfg := CreateConfig()
	cfg.NonceStore = "redis"
	cfg.Redis.Address = srv.Addr
	cfg.Redis.KeyPrefix = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	pieceServe(b, pieceMiddlewareWith(ctx, b, cfg), nil, http.StatusOK)
}

// BenchmarkPieceServeHTTPRedisCluster is BenchmarkPieceServeHTTPRedis against a real
// Redis Cluster of three primaries: each command goes to its key's slot.
func BenchmarkPieceServeHTTPRedisCluster(b *testing.B) {
	c := redistest.StartCluster(b, 3, 0, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	cfg := CreateConfig()
	cfg.NonceStore = "redis"
	cfg.Redis.Address = c.Nodes[0].Addr
	cfg.Redis.KeyPrefix = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	pieceServe(b, pieceMiddlewareWith(ctx, b, cfg), nil, http.StatusOK)
}

// BenchmarkPieceRedisSlot is the hash slot of a store key: what routing a command in a
// cluster adds to it, twice per callback (the claim, the settlement).
func BenchmarkPieceRedisSlot(b *testing.B) {
	key := "zego-callback:" + hex.EncodeToString([]byte(redisTestKey("slot")))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if redisSlot(key) < 0 {
			b.Fatal("no slot")
		}
	}
}

// pieceServe sends b.N requests to m, each body (a fresh genuine callback when body is
// nil) as JSON, and expects want of each.
func pieceServe(b *testing.B, m *middleware, body []byte, want int) {
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		p := body
		if p == nil {
			p = pieceBody()
		}
		reqs[i] = pieceRequest(p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rw := httptest.NewRecorder()
		m.ServeHTTP(rw, reqs[i])
		if rw.Code != want {
			b.Fatal(rw.Code, rw.Body.String())
		}
	}
}

// pieceRequest is a POST of body as JSON, as ZEGO sends it.
func pieceRequest(body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// pieceQuietLog gives m a line limiter of its own, which writes nowhere, and a clock that
// stands still, then sends body (answered want) until the limiter has written its burst
// and suppressed a line, and moves the clock on by a millisecond: every request then
// takes the path a flood's does, whose line the limiter's first look suppresses, however
// long the run and wherever it starts (a real clock would let a line through each
// second, which the difference of two runs would not cancel). A duplicate's body is
// delivered by the first of these requests.
func pieceQuietLog(b *testing.B, m *middleware, body []byte, want int) {
	clock := time.Now()
	m.now = func() time.Time { return clock }
	m.s.log = &lineLimiter{name: m.name, reasons: make(map[string]*reasonLines), now: m.now, out: [2]io.Writer{io.Discard, io.Discard}}
	for i := 0; i <= logBurst+1; i++ {
		rw := httptest.NewRecorder()
		m.ServeHTTP(rw, pieceRequest(body))
		if rw.Code != want {
			b.Fatal(rw.Code, rw.Body.String())
		}
	}
	clock = clock.Add(time.Millisecond)
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
