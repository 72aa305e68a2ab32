package e2e

// What the soak and reload tests send and count: they drive one Traefik for a long while
// from many goroutines, so they count deliveries at an upstream that keeps no bodies and
// send with a client that never fails the test from a worker goroutine. Traefik's memory
// and goroutines are sampled by sampler_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// envInt reads a positive count from the environment, def when unset. A value that does
// not parse fails the test rather than running some other size.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// envDuration reads a positive Go duration from the environment, def when unset.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 90s", name, v)
	}
	return d
}

// mixTemplate is the mix_start sample on one line: the bodies are smaller, and the nonce
// is found in them with one search (see bodyNonce).
var mixTemplate = strings.ReplaceAll(zegotest.Template("mix_start.json"), "\n", "")

// signedNow is a good callback: mix_start signed with the tests' secret, stamped now, with
// a nonce of its own. Signing costs a SHA-1: the long tests sign each callback just before
// sending it, so none can go stale however long the run.
func signedNow() (nonce string, body []byte) {
	nonce = zegotest.Nonce()
	return nonce, zegotest.Fill(mixTemplate, zegotest.Secret, zegotest.Seconds(time.Now()), nonce)
}

// bodyNonce returns the text of the body's "nonce" field, "" when it has none.
func bodyNonce(body []byte) string {
	i := bytes.Index(body, []byte(`"nonce":`))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(body[i+len(`"nonce":`):], " ")
	if len(rest) == 0 || rest[0] != '"' {
		return ""
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 {
		return ""
	}
	return string(rest[1 : 1+end])
}

func bodyHash(body []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(body)
	return h.Sum64()
}

// deliveries is an upstream that counts the callbacks reaching it by the nonce in their
// body, and keeps a hash of the first body per nonce (not the bodies: a soak delivers
// 100 000). A request that is not a verified callback whose X-Zego-Nonce header matches
// its body is an anomaly, and so is one marked X-Zego-Duplicate.
type deliveries struct {
	mu        sync.Mutex
	byNonce   map[string]int
	hashes    map[string]uint64
	total     int
	anomalies int
	examples  []string // the first few anomalies, for the failure message
}

func newDeliveries() *deliveries {
	return &deliveries{byNonce: make(map[string]int), hashes: make(map[string]uint64)}
}

func (d *deliveries) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	nonce := bodyNonce(body)
	var problem string
	switch {
	case err != nil:
		problem = "the body could not be read: " + err.Error()
	case nonce == "":
		problem = fmt.Sprintf("a request without a nonce in its body: %s %s, %d bytes", req.Method, req.URL.Path, len(body))
	case req.Header.Get("X-Zego-Verified") != "true":
		problem = fmt.Sprintf("nonce %s: X-Zego-Verified %q", nonce, req.Header.Get("X-Zego-Verified"))
	case req.Header.Get("X-Zego-Nonce") != nonce:
		problem = fmt.Sprintf("nonce %s: X-Zego-Nonce %q", nonce, req.Header.Get("X-Zego-Nonce"))
	case req.Header.Get("X-Zego-Duplicate") != "":
		problem = fmt.Sprintf("nonce %s: forwarded with X-Zego-Duplicate", nonce)
	}
	d.mu.Lock()
	d.total++
	if problem != "" {
		d.anomalies++
		if len(d.examples) < 10 {
			d.examples = append(d.examples, problem)
		}
	}
	if nonce != "" {
		d.byNonce[nonce]++
		if d.byNonce[nonce] == 1 {
			d.hashes[nonce] = bodyHash(body)
		}
	}
	d.mu.Unlock()
	rw.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(rw, "delivered\n")
}

// count is how many times the callback with this nonce reached the upstream.
func (d *deliveries) count(nonce string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byNonce[nonce]
}

// hash is the hash of the first body delivered with this nonce, 0 when none was.
func (d *deliveries) hash(nonce string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hashes[nonce]
}

// totals returns the requests received, the distinct nonces, and the anomalies.
func (d *deliveries) totals() (total, distinct, anomalies int, examples []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total, len(d.byNonce), d.anomalies, append([]string(nil), d.examples...)
}

// answer is what the client got for one callback; err is a failure to get an answer
// (connection refused or reset, timeout).
type answer struct {
	status    int
	code      string // the "error" of a JSON rejection
	duplicate bool   // X-Zego-Duplicate: true
	err       error
}

func (a answer) String() string {
	switch {
	case a.err != nil:
		return "error: " + a.err.Error()
	case a.duplicate:
		return fmt.Sprintf("%d duplicate", a.status)
	case a.code != "":
		return fmt.Sprintf("%d %s", a.status, a.code)
	}
	return strconv.Itoa(a.status)
}

// loadClient keeps one connection per worker open to Traefik.
func loadClient(conc int) *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: 2 * conc, MaxIdleConnsPerHost: 2 * conc, IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}
}

// post sends one callback. It is safe from any goroutine: it reports, never fails.
func post(ctx context.Context, client *http.Client, url string, body []byte) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{status: resp.StatusCode, err: err}
	}
	a := answer{status: resp.StatusCode, duplicate: resp.Header.Get("X-Zego-Duplicate") == "true"}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rb, &e) == nil {
			a.code = e.Error
		}
	}
	return a
}

// delivered keeps the latest good callbacks whose delivery the client saw (200, not a
// duplicate), for replays: a replay must be of a callback already delivered.
type delivered struct {
	mu     sync.Mutex
	nonces []string
	bodies [][]byte
	next   int
	first  chan struct{} // closed on the first delivery
	once   sync.Once
}

func newDelivered(size int) *delivered {
	return &delivered{nonces: make([]string, 0, size), bodies: make([][]byte, 0, size), first: make(chan struct{})}
}

func (d *delivered) add(nonce string, body []byte) {
	d.mu.Lock()
	if len(d.bodies) < cap(d.bodies) {
		d.nonces = append(d.nonces, nonce)
		d.bodies = append(d.bodies, body)
	} else {
		d.nonces[d.next], d.bodies[d.next] = nonce, body
		d.next = (d.next + 1) % len(d.bodies)
	}
	d.mu.Unlock()
	d.once.Do(func() { close(d.first) })
}

// pick returns one of the kept callbacks (which one depends on i), waiting for the first
// delivery; ok is false when ctx ends first.
func (d *delivered) pick(ctx context.Context, i int) (nonce string, body []byte, ok bool) {
	select {
	case <-d.first:
	case <-ctx.Done():
		return "", nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	j := (i * 7919) % len(d.bodies)
	return d.nonces[j], d.bodies[j], true
}

// latest returns the callback delivered last, waiting for the first delivery; ok is false
// when ctx ends first.
func (d *delivered) latest(ctx context.Context) (nonce string, body []byte, ok bool) {
	select {
	case <-d.first:
	case <-ctx.Done():
		return "", nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	j := len(d.bodies) - 1
	if len(d.bodies) == cap(d.bodies) {
		j = (d.next + len(d.bodies) - 1) % len(d.bodies)
	}
	return d.nonces[j], d.bodies[j], true
}
