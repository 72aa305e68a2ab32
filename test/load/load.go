// Package load sends callbacks to one route of a Traefik from many connections at once:
// the soak and reload tests and cmd/loadgen drive it, each with its own mix of callbacks
// and its own bounds in count and time. Each callback is signed just before it goes, or
// before the run starts for a measurement. It reports what each callback got and never
// fails a test itself: it runs in many goroutines.
package load

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// Kind is what a callback is.
type Kind int

// The kinds of callback, each with the answer it must get (Want).
const (
	Good      Kind = iota
	Forged         // signed with another secret
	Stale          // signed, but stamped an hour ago
	Replayed       // a copy of a good callback the client saw delivered
	Malformed      // broken JSON, or a signed field missing
)

func (k Kind) String() string {
	return [...]string{"good", "forged", "stale", "replayed", "malformed"}[k]
}

// Want is the answer a callback of the kind must get, as Answer.String writes it.
func (k Kind) Want() string {
	return [...]string{"200", "401 invalid_signature", "401 stale_timestamp", "200 duplicate", "400 malformed_body"}[k]
}

// Answer is what the client got for one callback; Err is a failure to get one
// (connection refused or reset, timeout).
type Answer struct {
	Status    int
	Code      string // the "error" of a JSON rejection
	Duplicate bool   // X-Zego-Duplicate: true
	Err       error
}

func (a Answer) String() string {
	switch {
	case a.Err != nil:
		return "error: " + a.Err.Error()
	case a.Duplicate:
		return fmt.Sprintf("%d duplicate", a.Status)
	case a.Code != "":
		return fmt.Sprintf("%d %s", a.Status, a.Code)
	}
	return strconv.Itoa(a.Status)
}

// Sent is one callback sent and what came of it.
type Sent struct {
	Kind    Kind
	Nonce   string
	Hash    uint64 // of a good one's body, to check the upstream got it byte for byte
	Answer  Answer
	Latency time.Duration
}

// Driver sends callbacks to URL, a route (they go to URL + "/callback").
type Driver struct {
	URL   string
	Conc  int             // connections sending at once, each kept open
	Count int             // callbacks in all, at most
	Until time.Time       // none starts after it; zero for no bound but Count and the context
	Stop  <-chan struct{} // none starts once it is closed; nil for none
	Pause time.Duration   // each connection waits this long before each callback
	// Kind says what callback i is; Good for all when nil.
	Kind func(i int) Kind
	// Bodies, when set, are the good callbacks, signed beforehand: callback i is
	// Bodies[i], so that no signing runs while a measurement's clock does.
	Bodies [][]byte

	ringOnce sync.Once
	ring     *ring
}

// delivered returns the good callbacks whose delivery the client saw.
func (d *Driver) delivered() *ring {
	d.ringOnce.Do(func() { d.ring = newRing(1024) })
	return d.ring
}

// Run sends callbacks until Count are sent, Until passes, Stop closes or ctx ends, and
// returns each one sent with its answer. ctx ends the callbacks in flight too.
func (d *Driver) Run(ctx context.Context) []Sent {
	client := &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: 2 * d.Conc, MaxIdleConnsPerHost: 2 * d.Conc, IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}
	defer client.CloseIdleConnections()
	results := make([][]Sent, d.Conc)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < d.Conc; w++ {
		w := w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && (d.Until.IsZero() || time.Now().Before(d.Until)) {
				if d.Pause > 0 || d.Stop != nil {
					select {
					case <-d.Stop:
						return
					case <-ctx.Done():
						return
					case <-time.After(d.Pause):
					}
				}
				i := int(next.Add(1)) - 1
				if i >= d.Count {
					return
				}
				s, body, ok := d.callback(ctx, i)
				if !ok {
					return // the context ended before any delivery to replay
				}
				start := time.Now()
				s.Answer = Post(ctx, client, d.URL, body)
				s.Latency = time.Since(start)
				if s.Kind == Good && s.Answer.String() == "200" {
					d.delivered().add(s.Nonce, body)
				}
				results[w] = append(results[w], s)
			}
		}()
	}
	wg.Wait()
	var all []Sent
	for _, r := range results {
		all = append(all, r...)
	}
	return all
}

// Post sends one callback to url + "/callback" and reads its answer.
func Post(ctx context.Context, client *http.Client, url string, body []byte) Answer {
	resp, err := conformance.Post(ctx, client, url, conformance.Request{Body: body})
	return Answer{Status: resp.Status, Code: resp.Code, Duplicate: resp.Duplicate(), Err: err}
}

// Latest returns the good callback whose delivery the client saw last, waiting for the
// first; ok is false when ctx ends first.
func (d *Driver) Latest(ctx context.Context) (nonce string, body []byte, ok bool) {
	return d.delivered().latest(ctx)
}

// callback builds callback i.
func (d *Driver) callback(ctx context.Context, i int) (Sent, []byte, bool) {
	s := Sent{Kind: Good}
	if d.Kind != nil {
		s.Kind = d.Kind(i)
	}
	secret, at, template := zegotest.Secret, time.Now(), mixTemplate
	switch s.Kind {
	case Good:
		if d.Bodies != nil {
			return Sent{Kind: Good, Nonce: NonceOf(d.Bodies[i]), Hash: Hash(d.Bodies[i])}, d.Bodies[i], true
		}
	case Forged:
		secret = zegotest.OtherSecret
	case Stale:
		at = at.Add(-time.Hour)
	case Replayed:
		var body []byte
		var ok bool
		s.Nonce, body, ok = d.delivered().pick(ctx, i)
		return s, body, ok
	case Malformed:
		template = brokenTemplates[(i/40)%len(brokenTemplates)]
	}
	s.Nonce = zegotest.Nonce()
	body := zegotest.Fill(template, secret, zegotest.Seconds(at), s.Nonce)
	if s.Kind == Good {
		s.Hash = Hash(body)
	}
	return s, body, true
}

// mixTemplate is the mix_start sample on one line: the bodies are smaller, and the nonce
// is found in them with one search (see NonceOf).
var mixTemplate = strings.ReplaceAll(zegotest.Template("mix_start.json"), "\n", "")

// brokenTemplates are the malformed callbacks, in turn: JSON cut short, and a body
// without its timestamp, or without its signature.
var brokenTemplates = func() []string {
	broken := []string{
		strings.TrimSuffix(mixTemplate, "}"),
		strings.Replace(mixTemplate, `,"timestamp": "{{timestamp}}"`, "", 1),
		strings.Replace(mixTemplate, `"signature": "{{signature}}",`, "", 1),
	}
	for _, b := range broken {
		if b == mixTemplate {
			// A change to the sample must not quietly make them good.
			panic("load: the mix_start sample changed; the malformed callbacks no longer break it")
		}
	}
	return broken
}()

// Signed returns n good callbacks, signed now, each with a nonce of its own.
func Signed(n int) [][]byte {
	bodies := make([][]byte, n)
	ts := zegotest.Seconds(time.Now())
	for i := range bodies {
		bodies[i] = zegotest.Fill(mixTemplate, zegotest.Secret, ts, zegotest.Nonce())
	}
	return bodies
}

// NonceOf returns the text of the body's "nonce" field, "" when it has none.
func NonceOf(body []byte) string {
	_, rest, ok := strings.Cut(string(body), `"nonce":`)
	rest = strings.TrimLeft(rest, " ")
	if !ok || !strings.HasPrefix(rest, `"`) {
		return ""
	}
	nonce, _, ok := strings.Cut(rest[1:], `"`)
	if !ok {
		return ""
	}
	return nonce
}

// Hash is a hash of a body, to check that the upstream got it byte for byte.
func Hash(body []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(body)
	return h.Sum64()
}

// Percentile of durations, p in [0, 100].
func Percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// ring keeps the latest good callbacks whose delivery the client saw (200, not a
// duplicate), for replays: a replay must be of a callback already delivered.
type ring struct {
	mu     sync.Mutex
	nonces []string
	bodies [][]byte
	next   int           // where the next one goes
	first  chan struct{} // closed on the first delivery
	once   sync.Once
}

func newRing(size int) *ring {
	return &ring{nonces: make([]string, 0, size), bodies: make([][]byte, 0, size), first: make(chan struct{})}
}

func (r *ring) add(nonce string, body []byte) {
	r.mu.Lock()
	if len(r.bodies) < cap(r.bodies) {
		r.nonces = append(r.nonces, nonce)
		r.bodies = append(r.bodies, body)
	} else {
		r.nonces[r.next], r.bodies[r.next] = nonce, body
	}
	r.next = (r.next + 1) % cap(r.bodies)
	r.mu.Unlock()
	r.once.Do(func() { close(r.first) })
}

// pick returns one of the kept callbacks (which one depends on i), waiting for the first
// delivery; ok is false when ctx ends first.
func (r *ring) pick(ctx context.Context, i int) (nonce string, body []byte, ok bool) {
	return r.at(ctx, func() int { return (i * 7919) % len(r.bodies) })
}

// latest returns the callback delivered last, waiting for the first delivery; ok is
// false when ctx ends first.
func (r *ring) latest(ctx context.Context) (nonce string, body []byte, ok bool) {
	return r.at(ctx, func() int { return (r.next + len(r.bodies) - 1) % len(r.bodies) })
}

// at returns the callback at the index which gives, once there is one.
func (r *ring) at(ctx context.Context, which func() int) (nonce string, body []byte, ok bool) {
	select {
	case <-r.first:
	case <-ctx.Done():
		return "", nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	j := which()
	return r.nonces[j], r.bodies[j], true
}
