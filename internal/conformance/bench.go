package conformance

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The kinds of request BenchServeHTTP sends.
const (
	BenchNew       = "new"       // a fresh, valid callback each time
	BenchDuplicate = "duplicate" // the same delivered callback each time
	BenchForged    = "forged"    // a callback signed with another secret
	BenchForm      = "form"      // a fresh, valid callback as ZEGO's form mode sends it
)

// BenchKinds runs BenchServeHTTP for each kind of request, and for new ones with the
// fields limited to three.
func BenchKinds(b *testing.B, build Builder) {
	b.Run("new", func(b *testing.B) { BenchServeHTTP(b, build, BenchNew, nil) })
	b.Run("new-3-fields", func(b *testing.B) {
		BenchServeHTTP(b, build, BenchNew, map[string]any{"fields": []string{"event", "appid", "task_id"}})
	})
	b.Run("duplicate", func(b *testing.B) { BenchServeHTTP(b, build, BenchDuplicate, nil) })
	b.Run("forged", func(b *testing.B) { BenchServeHTTP(b, build, BenchForged, nil) })
	b.Run("form", func(b *testing.B) { BenchServeHTTP(b, build, BenchForm, nil) })
	b.Run("report-only", func(b *testing.B) { BenchServeHTTP(b, build, BenchNew, map[string]any{"reportOnly": true}) })
	b.Run("app-secrets", func(b *testing.B) {
		// Each app's secrets: the lookup of the body's app id (111111) among three.
		BenchServeHTTP(b, build, BenchNew, map[string]any{"secrets": []string{}, "appSecrets": map[string]any{
			"111111": []string{zegotest.Secret}, "222222": []string{zegotest.OtherSecret}, "333333": []string{"0123456789abcdef0123456789abcdef"},
		}})
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b, redistest.Options{})
		defer srv.Stop()
		BenchServeHTTP(b, build, BenchNew, map[string]any{"nonceStore": "redis",
			"redis": map[string]any{"address": srv.Addr, "keyPrefix": UniqueName("bench") + ":"}})
	})
}

// BenchServeHTTP measures the middleware's ServeHTTP on the ~700-byte mix_start example
// (compacted, as ZEGO sends it), with every request signed and built before the timer
// starts. config is added to the base configuration.
func BenchServeHTTP(b *testing.B, build Builder, kind string, config map[string]any) {
	h := benchHandler(b, build, Config(config), "bench-"+kind)
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
		contentType := "application/json"
		if kind == BenchForm {
			p, _ = AsForm(body(zegotest.Secret))
			contentType = "application/x-www-form-urlencoded"
		}
		reqs[i] = httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(p))
		reqs[i].Header.Set("Content-Type", contentType)
	}
	if kind == BenchDuplicate {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(dup)))
	}
	want := map[string]int{BenchNew: 200, BenchDuplicate: 200, BenchForged: 401, BenchForm: 200}[kind]
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

// benchHandler builds the middleware in front of a backend that answers 200, under a
// name of its own made from label.
func benchHandler(b *testing.B, build Builder, config map[string]any, label string) http.Handler {
	next := http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusOK) })
	h, err := build(b, config, next, UniqueName(label))
	if err != nil && (strings.Contains(err.Error(), "unknown key") || strings.Contains(err.Error(), "no CallbackSecret")) {
		// A baseline from before an option refuses it, or drops it without a word and
		// finds no secret (appSecrets).
		b.Skipf("this build of the plugin has no such option (a baseline before it): %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// CompactMixStart removes the line breaks of the pretty-printed example.
func CompactMixStart(body []byte) []byte {
	return bytes.ReplaceAll(body, []byte("\n"), nil)
}

// BenchIdleClients measures the memory held by clients that each declare the largest
// body (maxBodyBytes, 1 MiB) and send one byte of it, then nothing: n of them in
// ServeHTTP at once, reported as bytes of live heap per client.
func BenchIdleClients(b *testing.B, build Builder, n int) {
	h := benchHandler(b, build, Config(), "bench-idle")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		release := make(chan struct{})
		var started, done sync.WaitGroup
		runtime.GC()
		var before, during runtime.MemStats
		runtime.ReadMemStats(&before)
		for c := 0; c < n; c++ {
			started.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				body := &slowBody{first: []byte("{"), started: &started, release: release}
				req := httptest.NewRequest(http.MethodPost, "/callback", body)
				req.ContentLength = 1 << 20
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
		}
		started.Wait()
		runtime.GC()
		runtime.ReadMemStats(&during)
		close(release)
		done.Wait()
		b.ReportMetric(float64(during.HeapAlloc-before.HeapAlloc)/float64(n), "heap-bytes/client")
	}
}

// slowBody gives its first bytes, then blocks until release, then ends early.
type slowBody struct {
	first   []byte
	sent    bool
	started *sync.WaitGroup
	release chan struct{}
}

func (s *slowBody) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		return copy(p, s.first), nil
	}
	s.started.Done()
	<-s.release
	return 0, io.ErrUnexpectedEOF
}

// HostileShapes are bodies of about 1 MB that need no secret, each the worst of its kind
// found for what it costs before the signature is checked, beside a plain body of the
// same size: what a forged megabyte can cost the middleware. The -64k ones are as large
// as a body the plain reading takes (under readChunk): a plain body, and one of empty
// strings, its quotes as many as the bytes allow, which the walk's bound must hold.
var HostileShapes = []string{"plain", "spaced-keys", "escaped-keys", "quoted-colons", "deep-nesting", "form-fields", "form-typed-json",
	"form-plus-run", "spaces-in-string", "spaced-nonce", "plain-64k", "quotes-64k"}

// plainReadable is the size of the -64k HostileShapes: the largest body the plain
// reading takes is one byte under 64 KiB.
const plainReadable = 64<<10 - 1

// hostileBody builds one HostileShapes body of about size bytes and its Content-Type.
func hostileBody(shape string, size int) ([]byte, string) {
	forgedTail := `"timestamp":"1","nonce":"1","signature":"` + strings.Repeat("0", 40) + `"`
	var b strings.Builder
	ct := "application/json"
	switch shape {
	case "plain":
		b.WriteString(`{"event":"x","blob":"` + strings.Repeat("a", size) + `",` + forgedTail + `}`)
	case "form-plus-run": // '&' then a name of '+' (spaces, decoded) as long as the body
		ct = "application/x-www-form-urlencoded"
		b.WriteString("event=x&" + strings.Repeat("+", size) + "=1&timestamp=1&nonce=1&signature=" + strings.Repeat("0", 40))
	case "spaces-in-string":
		b.WriteString(`{"event":"x","blob":"a` + strings.Repeat(" ", size) + `a",` + forgedTail + `}`)
	case "spaced-nonce": // a named text whose checks step through its spaces
		b.WriteString(`{"event":"x","timestamp":"1","nonce":"1` + strings.Repeat(" ", size) + `1","signature":"` + strings.Repeat("0", 40) + `"}`)
	case "plain-64k":
		b.WriteString(`{"event":"x","blob":"` + strings.Repeat("a", plainReadable-len(forgedTail)-24) + `",` + forgedTail + `}`)
	case "quotes-64k": // ["","",...]: a piece for every quote, but for the walk's bound
		b.WriteString(`{"event":"x","blob":[""`)
		for b.Len() < plainReadable-len(forgedTail)-5 {
			b.WriteString(`,""`)
		}
		b.WriteString(`],` + forgedTail + `}`)
	case "spaced-keys": // "k" :1, which `":` does not count: refused at the key limit
		b.WriteString("{")
		for i := 0; b.Len() < size; i++ {
			b.WriteString(`"k` + strconv.Itoa(i) + `" :1,`)
		}
		b.WriteString(forgedTail + "}")
	case "escaped-keys": // 9 990 top-level keys written with an escape: the exact walk
		b.WriteString("{")
		pad := size/9990 - 20
		for i := 0; i < 9990; i++ {
			b.WriteString(`"\u006b` + strconv.Itoa(i) + `":"` + strings.Repeat("v", pad) + `",`)
		}
		b.WriteString(forgedTail + "}")
	case "quoted-colons": // key ends inside strings: the exact count with the strings taken out
		b.WriteString("{")
		for i := 0; b.Len() < size; i++ {
			b.WriteString(`"q` + strconv.Itoa(i) + `":"\":\":\":\":",`)
		}
		b.WriteString(forgedTail + "}")
	case "deep-nesting":
		depth := 9998
		b.WriteString(`{"deep":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `,"blob":"` + strings.Repeat("a", size-2*depth) + `",` + forgedTail + `}`)
	case "form-fields": // 999 fields, each long
		ct = "application/x-www-form-urlencoded"
		pad := size/999 - 16
		for i := 0; i < 996; i++ {
			b.WriteString("f" + strconv.Itoa(i) + "=" + strings.Repeat("v", pad) + "&")
		}
		b.WriteString("timestamp=1&nonce=1&signature=" + strings.Repeat("0", 40))
	case "form-typed-json": // JSON sent as a form: read as one too, 999 pairs
		ct = "application/x-www-form-urlencoded"
		pad := size/999 - 16
		b.WriteString(`{"event":"x","blob":"`)
		for i := 0; i < 998; i++ {
			b.WriteString("+%20x" + strings.Repeat("v", pad) + "=1&")
		}
		b.WriteString(`",` + forgedTail + `}`)
	}
	return []byte(b.String()), ct
}

// BenchHostile measures ServeHTTP on a HostileShapes body of about 1 MB.
func BenchHostile(b *testing.B, build Builder, shape string) {
	h := benchHandler(b, build, Config(), "bench-hostile")
	body, ct := hostileBody(shape, 1<<20-4096)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		if rw.Code != http.StatusUnauthorized && rw.Code != http.StatusBadRequest {
			b.Fatalf("%s: %d, want 401 or 400: %s", shape, rw.Code, rw.Body)
		}
	}
}
