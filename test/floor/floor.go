// Package floor is a Traefik plugin that does a genuine ZEGO callback's work in one
// function, as compactly as Yaegi allows, and no more: strip the prefixed headers, check
// the request, read the body, the plain reading's checks (compiled passes and json.Valid),
// one walk over the quotes writing each string field as a header, the signature in
// constant time against each secret, the timestamp's window, a claim in a mutex-guarded
// map, the forward into a recorder and its answer relayed, the claim settled by a deferred
// call. It has none of the middleware's other work (the general reading, named fields
// under other spellings, a cache that learns names, the store's bounds and expiry, events,
// Redis, a secrets file, the refusals' codes and log lines). The load generator drives it
// beside the middleware (routes floor and floor-3): the floor of this job, measured, as
// DESIGN.md's "A floor is what you measured" asks.
package floor

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Config holds the secrets, and the fields written as headers (every field without it).
type Config struct {
	Secrets []string
	Fields  []string
}

// CreateConfig returns an empty configuration.
func CreateConfig() *Config { return &Config{} }

type fieldName struct {
	header string
	id     int
	named  int
	use    bool
}

type entry struct {
	key    string
	v      int64
	digest [32]byte
}

type callback struct {
	texts   [5]string
	seen    [512]bool
	ts      uint64
	key     string
	digest  [32]byte
	recv    int64
	body    []byte
	answer  *httptest.ResponseRecorder
	e       *entry
	recheck bool
}

type floor struct {
	next    http.Handler
	secrets []string
	names   map[string]*fieldName
	mu      sync.Mutex
	entries map[string]*entry
	order   []*entry
}

var spaceEdge = regexp.MustCompile(` (?:"[\s,:\]}]|:)`)
var quoteSpace = []byte(`" `)
var verified = []string{"true"}

// New builds the floor for mix_start's fields.
func New(_ context.Context, next http.Handler, c *Config, _ string) (http.Handler, error) {
	f := &floor{next: next, secrets: c.Secrets, names: map[string]*fieldName{}, entries: map[string]*entry{}}
	sel := map[string]bool{}
	for _, s := range c.Fields {
		sel[s] = true
	}
	for i, k := range []string{"appid", "channel_id", "event", "hdl_url", "hdl_urls", "hls_url", "hls_urls", "mix_stream_alias", "mix_url", "nonce", "publish_id", "rtmp_url", "rtmp_urls", "seq", "signature", "stream_alias", "task_id", "timestamp"} {
		f.names[k] = &fieldName{header: http.CanonicalHeaderKey("X-Zego-" + k), named: -1, id: i, use: len(sel) == 0 || sel[k]}
	}
	f.names["signature"].named, f.names["signature"].use = 0, false
	f.names["timestamp"].named = 1
	f.names["nonce"].named = 2
	f.names["event"].named = 3
	f.names["appid"].named = 4
	return f, nil
}

func settle(f *floor, cb *callback) {
	if cb.answer.Code/100 != 2 {
		return
	}
	f.mu.Lock()
	cb.e.v = cb.e.v&^3 | 2
	f.mu.Unlock()
}

func (f *floor) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	for name := range h {
		if len(name) >= 7 && name[5]|0x20 == 'o' && strings.EqualFold(name[:7], "x-zego-") {
			delete(h, name)
		}
	}
	cb := &callback{}
	if req.Method != http.MethodPost || len(h["Content-Type"]) != 1 || h["Content-Type"][0] != "application/json" ||
		h["Content-Encoding"] != nil || uint64(req.ContentLength-1) >= 65536 {
		http.Error(rw, "no", 400)
		return
	}
	body := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, body); err != nil {
		http.Error(rw, "no", 400)
		return
	}
	if body[0] != '{' || bytes.ContainsAny(body[1:], "\\%+\x7f\t\r\n{") || !utf8.Valid(body) || utf8.RuneCount(body) != len(body) ||
		bytes.Contains(body, quoteSpace) || spaceEdge.Match(body) || !json.Valid(body) {
		http.Error(rw, "no", 400)
		return
	}
	p := strings.Split(string(body), `"`)
	var n *fieldName
	var values []string
	sep := ""
	i, j, size := 0, 0, 0
	for i = 1; i < len(p); i += 2 {
		if sep = p[i+1]; sep[0] != ':' {
			continue
		}
		if n = f.names[p[i]]; n == nil || cb.seen[n.id] {
			cb.recheck = true
			continue
		}
		cb.seen[n.id] = true
		if n.named >= 0 {
			cb.texts[n.named] = p[i+2]
		}
		if !n.use {
			continue
		}
		if sep == ": " || sep == ":" {
			if len(p[i+2]) <= 1024 {
				h[n.header] = p[i+2 : i+3 : i+3]
				continue
			}
		} else if sep == ": [" || sep == ":[" {
			values = nil
			size = 1
			for j = i + 2; ; j += 2 {
				values = append(values, p[j])
				if size += len(p[j]) + 3; p[j+1] != "," {
					break
				}
			}
			if size <= 1024 && p[j+1][0] == ']' {
				h[n.header] = values
				continue
			}
		}
		cb.recheck = true
	}
	ts, err := strconv.ParseUint(cb.texts[1], 10, 64)
	if err != nil || cb.texts[2] == "" {
		http.Error(rw, "no", 400)
		return
	}
	cb.recv = time.Now().UnixMilli()
	got, err := hex.DecodeString(cb.texts[0])
	if err != nil || len(got) != 20 {
		http.Error(rw, "no", 401)
		return
	}
	lo, hi := cb.texts[1], cb.texts[2]
	if lo > hi {
		lo = cb.texts[2]
		hi = cb.texts[1]
	}
	var want [20]byte
	key, signed, secret := "", "", ""
	for i = 0; i < len(f.secrets); i++ {
		secret = f.secrets[i]
		if secret > hi {
			signed = lo + hi + secret
		} else if secret > lo {
			signed = lo + secret + hi
		} else {
			signed = secret + lo + hi
		}
		want = sha1.Sum([]byte(signed))
		if subtle.ConstantTimeCompare(want[:], got) == 1 {
			key = string(got)
		}
	}
	if key == "" {
		http.Error(rw, "no", 401)
		return
	}
	cb.digest = sha256.Sum256(body)
	if uint64(cb.recv/1000+300)-ts > 600 {
		http.Error(rw, "stale", 401)
		return
	}
	f.mu.Lock()
	if e := f.entries[key]; e != nil {
		f.mu.Unlock()
		http.Error(rw, "dup", 409)
		return
	}
	cb.e = &entry{key: key, v: cb.recv<<2 | 1, digest: cb.digest}
	f.entries[key] = cb.e
	f.order = append(f.order, cb.e)
	if len(f.order) > 200000 { // a bound, not an expiry: enough for a benchmark
		f.order = nil
		f.entries = map[string]*entry{}
	}
	f.mu.Unlock()
	h["X-Zego-Verified"] = verified
	delete(h, "Expect")
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.Trailer = nil
	answer := &httptest.ResponseRecorder{HeaderMap: rw.Header(), Body: new(bytes.Buffer)}
	cb.answer = answer
	defer settle(f, cb)
	f.next.ServeHTTP(answer, req)
	status := answer.Code
	if status == 0 {
		status = 200
		answer.Code = 200
	} else if status < 200 {
		status = 502
	}
	rw.WriteHeader(status)
	_, _ = answer.Body.WriteTo(rw)
}
