package e2e

// What the soak and reload tests send and count: they drive one Traefik for a long while
// from many goroutines, so they count deliveries at an upstream that keeps no bodies and
// send with a client that never fails the test from a worker goroutine. Traefik's memory
// and goroutines are sampled by sampler_test.go.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/test/load"
)

// envInt reads a positive count from the environment, def when unset. A value that does
// not parse fails the test rather than running some other size.
func envInt(t *testing.T, name string, def int) int {
	return envValue(t, name, def, strconv.Atoi, "a positive whole number")
}

// envDuration reads a positive Go duration from the environment, def when unset.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	return envValue(t, name, def, time.ParseDuration, "a positive Go duration such as 90s")
}

func envValue[T int | time.Duration](t *testing.T, name string, def T, parse func(string) (T, error), want string) T {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := parse(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want %s", name, v, want)
	}
	return n
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
	nonce := load.NonceOf(body)
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
			d.hashes[nonce] = load.Hash(body)
		}
	}
	d.mu.Unlock()
	rw.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(rw, "delivered\n")
}

// got is how many times the callback with this nonce reached the upstream, and the hash
// of the first body delivered with it (0 when none was).
func (d *deliveries) got(nonce string) (int, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byNonce[nonce], d.hashes[nonce]
}

// totals returns the requests received, the distinct nonces, and the anomalies.
func (d *deliveries) totals() (total, distinct, anomalies int, examples []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total, len(d.byNonce), d.anomalies, append([]string(nil), d.examples...)
}

// tally holds what the client got for each callback against what reached the upstream.
type tally struct {
	answers                 map[string]int // by kind and answer
	good, replays           int
	wrong, lost, duplicated int
	altered, badForwarded   int
	replayForwarded         int
	examples                []string // the first few problems, for the failure message
}

func (ty *tally) note(format string, args ...any) {
	if len(ty.examples) < 10 {
		ty.examples = append(ty.examples, fmt.Sprintf(format, args...))
	}
}

// tallyOf counts, for each callback sent, whether its answer is the one its kind must
// get, and whether it reached the upstream as it must: a good one once, byte for byte, a
// replay no more than the delivery it copies, the others never.
func tallyOf(sent []load.Sent, up *deliveries) *tally {
	ty := &tally{answers: map[string]int{}}
	for _, s := range sent {
		ty.answers[s.Kind.String()+" "+s.Answer.String()]++
		if s.Answer.String() != s.Kind.Want() {
			ty.wrong++
			ty.note("%s %s: %v, want %s", s.Kind, s.Nonce, s.Answer, s.Kind.Want())
		}
		c, hash := up.got(s.Nonce)
		switch s.Kind {
		case load.Good:
			ty.good++
			switch {
			case c == 0:
				ty.lost++
				ty.note("good %s: %v, never reached the upstream", s.Nonce, s.Answer)
			case c > 1:
				ty.duplicated++
				ty.note("good %s: reached the upstream %d times", s.Nonce, c)
			case hash != s.Hash:
				ty.altered++
				ty.note("good %s: the upstream got another body", s.Nonce)
			}
		case load.Replayed:
			ty.replays++
			if c != 1 {
				ty.replayForwarded++
				ty.note("replay of %s: the upstream got it %d times", s.Nonce, c)
			}
		default:
			if c != 0 {
				ty.badForwarded++
				ty.note("%s %s: reached the upstream", s.Kind, s.Nonce)
			}
		}
	}
	return ty
}

// check fails the test for every callback that was not answered or delivered as it must.
func (ty *tally) check(t *testing.T, up *deliveries) {
	t.Helper()
	if ty.wrong+ty.lost+ty.duplicated+ty.altered+ty.badForwarded+ty.replayForwarded > 0 {
		t.Errorf("answered otherwise than documented %d; good ones lost %d, delivered more than once %d, altered %d; "+
			"bad ones forwarded %d; replays forwarded %d; e.g.\n%s",
			ty.wrong, ty.lost, ty.duplicated, ty.altered, ty.badForwarded, ty.replayForwarded, strings.Join(ty.examples, "\n"))
	}
	total, distinct, anomalies, examples := up.totals()
	if delivered := ty.good - ty.lost; total != delivered || distinct != delivered || anomalies != 0 {
		t.Errorf("the upstream got %d requests (%d distinct nonces, %d not a verified callback), want %d: the good ones once each; e.g. %v",
			total, distinct, anomalies, delivered, examples)
	}
}

// summary writes the answers counted, in a stable order.
func (ty *tally) summary() string {
	parts := make([]string, 0, len(ty.answers))
	for a, c := range ty.answers {
		parts = append(parts, fmt.Sprintf("%d × %s", c, a))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
