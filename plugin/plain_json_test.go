package zegocallback

import (
	"net/http"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
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

// The cache of names learns only from callbacks forwarded: a forged body, and a captured
// triple however old, under keys never seen, must leave it as it was, or anyone could fill
// it (and push the names of genuine callbacks out of it) without a secret.
func TestRefusedBodiesTeachTheCacheNothing(t *testing.T) {
	now := time.Now()
	m := clocked(t, nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &now)
	cached := func() int { return len(m.s.headers.names.Load().(map[string]*fieldName)) }
	template := `{"event":"x","new_a":"1","new_b":"2","new_a":"3","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`
	stale := zegotest.Seconds(now.Add(-time.Hour))
	once := `{"event":"x","new_c":"1","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`
	before := cached()
	for _, c := range []struct {
		desc string
		body []byte
		code int
	}{
		{"forged", zegotest.Fill(template, zegotest.OtherSecret, zegotest.Seconds(now), zegotest.Nonce()), http.StatusUnauthorized},
		{"a key twice", zegotest.Fill(template, zegotest.Secret, zegotest.Seconds(now), zegotest.Nonce()), http.StatusBadRequest},
		{"stale", zegotest.Fill(once, zegotest.Secret, stale, zegotest.Nonce()), http.StatusUnauthorized},
	} {
		if rw := post(m, c.body); rw.Code != c.code {
			t.Fatalf("%s: %d, want %d: %s", c.desc, rw.Code, c.code, rw.Body)
		}
		if n := cached(); n != before {
			t.Errorf("%s: the cache holds %d names, %d before", c.desc, n, before)
		}
	}
	// A callback forwarded does teach it: the check above can fail.
	genuine := zegotest.Fill(`{"event":"x","new_a":"1","new_b":"2","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`,
		zegotest.Secret, zegotest.Seconds(now), zegotest.Nonce())
	if rw := post(m, genuine); rw.Code != http.StatusOK {
		t.Fatalf("genuine: %d: %s", rw.Code, rw.Body)
	}
	if n := cached(); n != before+2 {
		t.Errorf("after a genuine callback the cache holds %d names, want %d", n, before+2)
	}
}
