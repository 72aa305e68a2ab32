package conformance

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// requestBudget is how long any one hostile request may take, client to answer: far
// above what the largest takes (a 1 MB body of 100 000 keys, interpreted, with -race),
// far below what work growing with the square of the input would take.
const requestBudget = 8 * time.Second

// The hostile inputs that need no signature are built once per process.
var (
	hugeOnce   sync.Once
	hugeNumber []byte // a 10 MB JSON number in an object: over the default maxBodyBytes
	bigDigits  string // 900 KB of digits: a number within the default maxBodyBytes
	manyKeys   string // 100 000 distinct keys "00000".."99999", each with its last digit, no braces
	someKeys   string // the first 9 000 of them: within the 10 000 keys a body may have
	fewKeys    string // the first 990: within the 1 000 keys walked one by one
	deepArrays string // 100 000 nested arrays
	// Keys spaced or escaped so that `":` does not find them, 10 001 of them: each must
	// still count against the limit, at a cost that follows the body's bytes.
	spacedKeys, tabbedKeys, newlineKeys, escapedKeys, nestedSpacedKeys, backslashKeys string
	// 9 990 keys, each value a string full of `\":`, which counts as a key end: the
	// exact count must tell them from keys and let the body through.
	quotedColons string
)

// keysWith writes n keys "k0".."k<n-1>" with value 1, each key followed by sep before its
// colon, and each name written through name.
func keysWith(n int, sep string, name func(i int) string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + name(i) + `"` + sep + `:1`)
	}
	return b.String()
}

func huge() {
	hugeOnce.Do(func() {
		hugeNumber = []byte(`{"n":` + strings.Repeat("9", 10<<20) + `}`)
		bigDigits = "1" + strings.Repeat("0", 900<<10)
		var b strings.Builder
		b.Grow(100000 * 10)
		for i := 0; i < 100000; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + fmt.Sprintf("%05d", i) + `":` + strconv.Itoa(i%10))
		}
		manyKeys = b.String()
		someKeys = manyKeys[:strings.Index(manyKeys, `"09000"`)-1]
		fewKeys = manyKeys[:strings.Index(manyKeys, `"00990"`)-1]
		deepArrays = strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
		plainName := func(i int) string { return "k" + strconv.Itoa(i) }
		spacedKeys = keysWith(10001, " ", plainName)
		tabbedKeys = keysWith(10001, "\t", plainName)
		newlineKeys = keysWith(10001, "\r\n ", plainName)
		escapedKeys = keysWith(10001, "", func(i int) string { return `\u006b` + strconv.Itoa(i) })
		nestedSpacedKeys = `"nested" : {` + keysWith(10001, " ", plainName) + `}`
		backslashKeys = keysWith(10001, "", func(i int) string { return "k" + strconv.Itoa(i) + `\\` })
		var q strings.Builder
		for i := 0; i < 9990; i++ {
			q.WriteString(`"q` + strconv.Itoa(i) + `":"a\":b\":c",`)
		}
		quotedColons = strings.TrimSuffix(q.String(), ",")
	})
}

// AdversarialCases returns hostile requests and what each must come to, signed for a
// clock reading now (build them just before they run, as CaseAt does). Where a body is
// signed, it is signed properly, so that the hostile part alone decides. Each status is
// the one README.md's "Each request, in order" and "Status codes" give; the rows come in
// the order of those steps, and each row's name starts with its step's number.
func AdversarialCases(now time.Time) []Case {
	huge() // the bodies that need no signature, which the groups take
	return joinRows(
		hostileStripCases(now),
		hostileMethodCases(now),
		hostileMediaCases(now),
		hostileSizeCases(now),
		hostileDepthCases(now),
		hostileKeyCountCases(now),
		hostileByteCases(now),
		hostileTwiceCases(now),
		hostileSignedTextCases(now),
		hostileSignatureCases(now),
		hostileFreshnessCases(now),
		hostileForwardCases(now),
	)
}

// RunAdversarial runs AdversarialCases as RunServeHTTP runs Cases (each signed just
// before it runs, checked by CheckStep), and also checks that no request takes longer
// than requestBudget, that every forwarded request's prefixed headers are within the
// bounds, and that the middleware never panics. Then it runs RawCases.
func RunAdversarial(t *testing.T, build Builder) {
	n := len(AdversarialCases(time.Now()))
	for i := 0; i < n; i++ {
		c := AdversarialCases(time.Now())[i]
		t.Run(c.Desc, func(t *testing.T) {
			config := Config(c.Config)
			srv, g := startGuarded(t, build, config, UniqueName("adversarial"))
			for j, st := range c.Steps {
				label := fmt.Sprintf("request %d", j+1)
				start := time.Now()
				CheckStep(t, label, srv, st)
				if d := time.Since(start); d > requestBudget {
					t.Errorf("%s took %v, budget %v", label, d, requestBudget)
				}
			}
			checkBounds(t, srv.Backend.Calls(), config)
			g.check(t)
		})
	}
	t.Run("raw", func(t *testing.T) { RunRaw(t, build) })
}

// checkBounds checks what the backend got against the header bounds: at most
// maxHeaderFields field headers with the prefix (the middleware's own and the named
// fields' aside), each value
// free of control bytes and within maxHeaderValueBytes before %XX-encoding (so at most
// three times that after), and X-Zego-Verified exactly "true".
func checkBounds(t *testing.T, calls []Received, config map[string]any) {
	t.Helper()
	prefix, fields, value := "X-Zego-", 64, 1024
	if p, ok := config["headerPrefix"].(string); ok {
		prefix = p
	}
	if n, ok := config["maxHeaderFields"].(int); ok {
		fields = n
	}
	if n, ok := config["maxHeaderValueBytes"].(int); ok {
		value = n
	}
	own := map[string]bool{}
	for _, h := range []string{"Verified", "Duplicate", "Rejection", "Event", "Event-Type", "Timestamp", "Nonce", "Appid", "App-Id"} {
		own[http.CanonicalHeaderKey(prefix+h)] = true
	}
	for i, got := range calls {
		n := 0
		for name, vs := range got.Header {
			if len(name) < len(prefix) || !strings.EqualFold(strings.ReplaceAll(name[:len(prefix)], "_", "-"), prefix) {
				continue
			}
			if !own[name] {
				n++
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f") ||
					len(v) > 3*value {
					t.Errorf("call %d: header %s value %.60q... holds a control byte or is too long", i+1, name, v)
				}
			}
		}
		if n > fields {
			t.Errorf("call %d: %d field headers with the prefix, maxHeaderFields %d", i+1, n, fields)
		}
		want := "true"
		if config["reportOnly"] == true {
			want = "false" // the reportOnly rows here are forged
		}
		if vs := got.Header[http.CanonicalHeaderKey(prefix+"Verified")]; len(vs) != 1 || vs[0] != want {
			t.Errorf("call %d: %sVerified = %q, want exactly %s", i+1, prefix, vs, want)
		}
	}
}

// guard records panics in the middleware and counts the requests it has finished.
type guard struct {
	mu     sync.Mutex
	panics []string
	served chan struct{}
}

// startGuarded is Start with the middleware wrapped in a guard.
func startGuarded(t *testing.T, build Builder, config map[string]any, name string) (*Server, *guard) {
	t.Helper()
	srv := Start(t, build, config, name)
	g := &guard{served: make(chan struct{}, 64)}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	h := srv.h
	srv.h = http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		defer func() {
			r := recover()
			select {
			case g.served <- struct{}{}:
			default:
			}
			if r != nil {
				if r != http.ErrAbortHandler { //nolint:errorlint // a panic value, compared as net/http does
					g.mu.Lock()
					g.panics = append(g.panics, fmt.Sprintf("%v\n%s", r, debug.Stack()))
					g.mu.Unlock()
				}
				panic(r)
			}
		}()
		h.ServeHTTP(rw, req)
	})
	return srv, g
}

// check fails the test for every panic the guard saw.
func (g *guard) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.panics {
		t.Errorf("the middleware panicked: %s", p)
	}
}

// waitServed waits until the middleware has finished n requests, at most d.
func (g *guard) waitServed(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-g.served:
		case <-deadline.C:
			t.Fatalf("the middleware finished %d of %d requests within %v", i, n, d)
		}
	}
}
