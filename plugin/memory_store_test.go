package zegocallback

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const testTTL = 10 * time.Minute

// testInFlight is a claim's lifetime in the tests that do not let claims lapse.
const testInFlight = int64(testTTL / time.Millisecond)

func ms(t time.Time) int64 { return t.UnixMilli() }

// wantClaim claims key at (Unix ms) for the body with digest, each claim lasting
// inFlightMs, and fails the test unless the store answers want, without an error.
func wantClaim(t *testing.T, s *memoryStore, key string, digest uint64, at, inFlightMs int64, want claimResult, what string) {
	t.Helper()
	if got, err := claimAt(s, key, digest, at, inFlightMs); got != want || err != nil {
		t.Errorf("%s: %v, %v; want %v", what, got, err, want)
	}
}

func TestMemoryStoreStates(t *testing.T) {
	s := newMemoryStore(10, testTTL.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	claim := func(at time.Time, want claimResult) {
		t.Helper()
		wantClaim(t, s, "k", 1, ms(at), testInFlight, want, fmt.Sprintf("claim at +%v", at.Sub(t0)))
	}
	claim(t0, claimed)
	claim(t0.Add(time.Second), inFlight)
	forgetMemory(s, "k", ms(t0))
	claim(t0.Add(2*time.Second), claimed) // ZEGO's retry after a failed delivery
	confirmAt(s, "k", 1)
	claim(t0.Add(4*time.Second), delivered)
	claim(t0.Add(2*time.Second+testTTL-time.Millisecond), delivered) // remembered for the TTL from its claim
	claim(t0.Add(2*time.Second+testTTL), claimed)                    // then it is gone
	if n := len(s.entries); n != 1 {
		t.Errorf("entries = %d, want 1", n)
	}
}

func TestMemoryStoreExpiresFromTheQueueHead(t *testing.T) {
	ttl := time.Minute
	s := newMemoryStore(1000, ttl.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	for i := 0; i < 500; i++ {
		wantClaim(t, s, fmt.Sprint(i), 1, ms(t0.Add(time.Duration(i)*time.Millisecond)), testInFlight, claimed, "a new key")
	}
	// A claim just after the first 100 expired sweeps exactly those.
	wantClaim(t, s, "late", 1, ms(t0.Add(ttl+99*time.Millisecond)), testInFlight, claimed, "a new key")
	if n := len(s.entries); n != 401 {
		t.Errorf("entries = %d, want 401", n)
	}
	if len(s.rooms[0].order)-s.rooms[0].head != len(s.entries) {
		t.Errorf("queue holds %d keys, the map %d", len(s.rooms[0].order)-s.rooms[0].head, len(s.entries))
	}
	// Everything expired: a claim leaves only itself, and the queue's array is reused.
	wantClaim(t, s, "later", 1, ms(t0.Add(time.Hour)), testInFlight, claimed, "a new key")
	if n := len(s.entries); n != 1 || s.rooms[0].head != 0 || len(s.rooms[0].order) != 1 {
		t.Errorf("entries %d, head %d, queue %d; want 1, 0, 1", n, s.rooms[0].head, len(s.rooms[0].order))
	}
}

func TestMemoryStoreclaimedAgainMovesInTheQueue(t *testing.T) {
	ttl := time.Minute
	s := newMemoryStore(10, ttl.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	_, _ = claimAt(s, "a", 1, ms(t0), testInFlight)
	forgetMemory(s, "a", ms(t0))
	_, _ = claimAt(s, "a", 1, ms(t0.Add(30*time.Second)), testInFlight) // the retry: remembered until +90 s
	_, _ = claimAt(s, "b", 1, ms(t0.Add(61*time.Second)), testInFlight)
	wantClaim(t, s, "a", 1, ms(t0.Add(62*time.Second)), testInFlight, inFlight, "an entry claimed again was swept at its first claim's expiry")
	if len(s.rooms[0].order)-s.rooms[0].head != len(s.entries) {
		t.Errorf("queue holds %d keys, the map %d", len(s.rooms[0].order)-s.rooms[0].head, len(s.entries))
	}
	wantClaim(t, s, "a", 1, ms(t0.Add(91*time.Second)), testInFlight, claimed, "at +91 s")
}

// A reload that raises timestampTolerance must lengthen the memory of callbacks already
// there: they stay fresh longer, so they could otherwise be replayed.
func TestMemoryStoreLongerTTLOnReloadCoversWhatIsThere(t *testing.T) {
	r := newStoreRegistry()
	s, _ := r.get("zego@file", 10, (10 * time.Second).Milliseconds(), false)
	t0 := time.Unix(1700000000, 0)
	_, _ = claimAt(s, "k", 1, ms(t0), testInFlight)
	confirmAt(s, "k", 1)
	r.get("zego@file", 10, time.Minute.Milliseconds(), false) // the reload
	wantClaim(t, s, "k", 1, ms(t0.Add(30*time.Second)), testInFlight, delivered, "30 s later, after the TTL grew to a minute")
	r.get("zego@file", 10, time.Second.Milliseconds(), false) // a shorter one keeps the longer memory
	wantClaim(t, s, "k", 1, ms(t0.Add(59*time.Second)), testInFlight, delivered, "after a reload that lowered the TTL")
	wantClaim(t, s, "k", 1, ms(t0.Add(60*time.Second)), testInFlight, claimed, "after a minute")
}

func TestMemoryStoreFull(t *testing.T) {
	s := newMemoryStore(2, time.Minute.Milliseconds())
	t0 := ms(time.Unix(1700000000, 0))
	_, _ = claimAt(s, "a", 1, t0, testInFlight)
	_, _ = claimAt(s, "b", 1, t0, testInFlight)
	if _, err := claimAt(s, "c", 1, t0, testInFlight); !errors.Is(err, errStoreFull) {
		t.Fatalf("third claim: %v, want errStoreFull", err)
	}
	wantClaim(t, s, "a", 1, t0, testInFlight, inFlight, "a full store forgot a")
	forgetMemory(s, "a", t0)
	wantClaim(t, s, "a", 1, t0, testInFlight, claimed, "a forgotten entry's slot")
	wantClaim(t, s, "c", 1, t0+time.Minute.Milliseconds(), testInFlight, claimed, "after expiry")
	s.setLimits(s.rooms[0], 1, 0, false)
	if _, err := claimAt(s, "d", 1, t0+time.Minute.Milliseconds(), testInFlight); !errors.Is(err, errStoreFull) {
		t.Errorf("lowered capacity: %v, want errStoreFull", err)
	}
}

// claimHundred claims the keys "0" to "99" and counts the ones it won.
func claimHundred(s *memoryStore, now int64, wg *sync.WaitGroup, mu *sync.Mutex, won map[string]int) {
	defer wg.Done()
	for i := 0; i < 100; i++ {
		k := fmt.Sprint(i)
		if r, err := claimAt(s, k, 1, now, testInFlight); err == nil && r == claimed {
			mu.Lock()
			won[k]++
			mu.Unlock()
		}
	}
}

func TestMemoryStoreConcurrentClaims(t *testing.T) {
	s := newMemoryStore(1000, time.Minute.Milliseconds())
	now := ms(time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]int{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go claimHundred(s, now, &wg, &mu, won) // a plain function (DESIGN.md, Yaegi's traps)
	}
	wg.Wait()
	for i := 0; i < 100; i++ {
		if n := won[fmt.Sprint(i)]; n != 1 {
			t.Errorf("key %d claimed %d times", i, n)
		}
	}
}

// One store for the process: a callback delivered through one middleware is a duplicate
// through another, whatever their names. Each name has a room, whose nonceCapacity bounds
// what it claimed and whose time to remember is its own, at its latest values.
func TestStoreRegistry(t *testing.T) {
	r := newStoreRegistry()
	s, a := r.get("a@file", 1, 1000, false)
	if again, room := r.get("a@file", 2, 2000, false); again != s || room != a {
		t.Error("a second get made a second store or room")
	}
	if a.capacity != 2 || a.ttlMs != 2000 {
		t.Errorf("capacity %d, ttl %d; want the reloaded 2 and 2000", a.capacity, a.ttlMs)
	}
	other, b := r.get("b@file", 1, 1000, false)
	if other != s || b == a {
		t.Fatalf("b: store shared %v, room its own %v", other == s, b != a)
	}
	now := ms(time.Unix(1700000000, 0))
	claim := func(key string, room *storeRoom, at int64, want claimResult, what string) {
		t.Helper()
		cb := &callback{key: key, digest: digestOf(1), receivedMs: at}
		if got := claimMemory(s, cb, room, testInFlight); got != want {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	claim("1", a, now, claimed, "a's first")
	claim("2", a, now, claimed, "a's second")
	claim("3", a, now, unavailable, "a's third, past its room")
	claim("3", b, now, claimed, "b's first, in its own room")
	claim("1", b, now, inFlight, "a's callback through b")
	claim("4", b, now, unavailable, "b's second, past its room")
	// b remembers for its own time (1 s), not a's (2 s): its room is free again.
	claim("4", b, now+1000, claimed, "b's after its own time")
	claim("5", a, now+1000, unavailable, "a's room still full after 1 s")
	claim("5", a, now+2000, claimed, "a's after its own time")
}

func TestMemoryStoreTellsAnotherBody(t *testing.T) {
	s := newMemoryStore(10, testTTL.Milliseconds())
	t0 := ms(time.Unix(1700000000, 0))
	for _, step := range []struct {
		desc   string
		digest uint64
		at     int64
		want   claimResult
	}{
		{"first body", 1, t0, claimed},
		{"another body while in flight", 2, t0 + 1, reused},
		{"the same body while in flight", 1, t0 + 2, inFlight},
	} {
		wantClaim(t, s, "k", step.digest, step.at, testInFlight, step.want, step.desc)
	}
	confirmAt(s, "k", 1)
	wantClaim(t, s, "k", 2, t0+3, testInFlight, reused, "another body once delivered")
	wantClaim(t, s, "k", 1, t0+4, testInFlight, delivered, "the same body once delivered")
}

func TestMemoryStoreClaimsLapse(t *testing.T) {
	s := newMemoryStore(10, testTTL.Milliseconds())
	t0 := ms(time.Unix(1700000000, 0))
	const inFlightMs = 20000
	wantClaim(t, s, "k", 1, t0, inFlightMs, claimed, "first claim")
	wantClaim(t, s, "k", 1, t0+inFlightMs-1, inFlightMs, inFlight, "just before the claim lapses")
	// The owner died (or its backend hangs): ZEGO's retry at 30 s is claimed anew.
	wantClaim(t, s, "k", 1, t0+30000, inFlightMs, claimed, "after the claim lapsed")
	// The first owner's failure does not forget the retry's claim...
	forgetMemory(s, "k", t0)
	wantClaim(t, s, "k", 1, t0+30001, inFlightMs, inFlight, "a stale owner's forget took the retry's claim")
	// ...the retry's own failure does.
	forgetMemory(s, "k", t0+30000)
	wantClaim(t, s, "k", 1, t0+30002, inFlightMs, claimed, "after the retry's own forget")
	// A delivery counts whatever became of its claim.
	confirmAt(s, "k", 1)
	wantClaim(t, s, "k", 1, t0+90000, inFlightMs, delivered, "a delivered callback lapsed")
	// The first body owns the key: another body is refused after a lapsed claim or a
	// failed delivery too, so that a forged body cannot take the genuine one's place.
	wantClaim(t, s, "other", 1, t0, inFlightMs, claimed, "another key's first claim")
	wantClaim(t, s, "other", 2, t0+inFlightMs, inFlightMs, reused, "another body after the claim lapsed")
	forgetMemory(s, "other", t0)
	wantClaim(t, s, "other", 2, t0+inFlightMs+1, inFlightMs, reused, "another body after a failed delivery")
	wantClaim(t, s, "other", 1, t0+inFlightMs+2, inFlightMs, claimed, "the same body after a failed delivery")
}

// claimAt is claimMemory for a callback of key and digest verified at nowMs.
func claimAt(s *memoryStore, key string, digest uint64, nowMs, inFlightMs int64) (claimResult, error) {
	cb := &callback{key: key, digest: digestOf(digest), receivedMs: nowMs}
	r := claimMemory(s, cb, s.rooms[0], inFlightMs)
	if r == unavailable {
		return claimed, cb.storeErr
	}
	return r, nil
}

// confirmAt is settleMemory for a delivered callback of key and digest, whose claim is
// the key's entry.
func confirmAt(s *memoryStore, key string, digest uint64) {
	settleMemory(&middleware{mem: s}, &callback{key: key, digest: digestOf(digest), entry: s.entries[key], answer: &httptest.ResponseRecorder{Code: http.StatusOK}})
}

// digestOf is a body digest the tests tell apart by n.
func digestOf(n uint64) (d [sha256.Size]byte) {
	binary.BigEndian.PutUint64(d[:8], n)
	return d
}
