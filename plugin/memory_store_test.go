package zegocallback

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

const testTTL = 10 * time.Minute

// testInFlight is a claim's lifetime in the tests that do not let claims lapse.
const testInFlight = int64(testTTL / time.Millisecond)

func ms(t time.Time) int64 { return t.UnixMilli() }

func TestMemoryStoreStates(t *testing.T) {
	s := newMemoryStore(10, testTTL.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	claim := func(at time.Time, want claimResult) {
		t.Helper()
		got, err := claimMemory(s, "k", 1, ms(at), testInFlight)
		if err != nil || got != want {
			t.Fatalf("Claim at +%v = %v, %v; want %v", at.Sub(t0), got, err, want)
		}
	}
	claim(t0, claimed)
	claim(t0.Add(time.Second), inFlight)
	forgetMemory(s, "k", ms(t0))
	claim(t0.Add(2*time.Second), claimed) // ZEGO's retry after a failed delivery
	confirmMemory(s, "k", 1)
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
		if _, err := claimMemory(s, fmt.Sprint(i), 1, ms(t0.Add(time.Duration(i)*time.Millisecond)), testInFlight); err != nil {
			t.Fatal(err)
		}
	}
	// A claim just after the first 100 expired sweeps exactly those.
	if _, err := claimMemory(s, "late", 1, ms(t0.Add(ttl+99*time.Millisecond)), testInFlight); err != nil {
		t.Fatal(err)
	}
	if n := len(s.entries); n != 401 {
		t.Errorf("entries = %d, want 401", n)
	}
	if len(s.order)-s.head != len(s.entries) {
		t.Errorf("queue holds %d keys, the map %d", len(s.order)-s.head, len(s.entries))
	}
	// Everything expired: a claim leaves only itself, and the queue's array is reused.
	if _, err := claimMemory(s, "later", 1, ms(t0.Add(time.Hour)), testInFlight); err != nil {
		t.Fatal(err)
	}
	if n := len(s.entries); n != 1 || s.head != 0 || len(s.order) != 1 {
		t.Errorf("entries %d, head %d, queue %d; want 1, 0, 1", n, s.head, len(s.order))
	}
}

func TestMemoryStoreclaimedAgainMovesInTheQueue(t *testing.T) {
	ttl := time.Minute
	s := newMemoryStore(10, ttl.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	_, _ = claimMemory(s, "a", 1, ms(t0), testInFlight)
	forgetMemory(s, "a", ms(t0))
	_, _ = claimMemory(s, "a", 1, ms(t0.Add(30*time.Second)), testInFlight) // the retry: remembered until +90 s
	_, _ = claimMemory(s, "b", 1, ms(t0.Add(61*time.Second)), testInFlight)
	if got, _ := claimMemory(s, "a", 1, ms(t0.Add(62*time.Second)), testInFlight); got != inFlight {
		t.Errorf("an entry claimed again was swept at its first claim's expiry: %v", got)
	}
	if len(s.order)-s.head != len(s.entries) {
		t.Errorf("queue holds %d keys, the map %d", len(s.order)-s.head, len(s.entries))
	}
	if got, _ := claimMemory(s, "a", 1, ms(t0.Add(91*time.Second)), testInFlight); got != claimed {
		t.Errorf("at +91 s: %v, want claimed", got)
	}
}

// A reload that raises timestampTolerance must lengthen the memory of callbacks already
// there: they stay fresh longer, so they could otherwise be replayed.
func TestMemoryStoreLongerTTLOnReloadCoversWhatIsThere(t *testing.T) {
	r := newStoreRegistry()
	s := r.get("zego@file", 10, (10 * time.Second).Milliseconds())
	t0 := time.Unix(1700000000, 0)
	_, _ = claimMemory(s, "k", 1, ms(t0), testInFlight)
	confirmMemory(s, "k", 1)
	r.get("zego@file", 10, time.Minute.Milliseconds()) // the reload
	if got, _ := claimMemory(s, "k", 1, ms(t0.Add(30*time.Second)), testInFlight); got != delivered {
		t.Errorf("30 s later, after the TTL grew to a minute: %v, want delivered", got)
	}
	r.get("zego@file", 10, time.Second.Milliseconds()) // a shorter one keeps the longer memory
	if got, _ := claimMemory(s, "k", 1, ms(t0.Add(59*time.Second)), testInFlight); got != delivered {
		t.Errorf("after a reload that lowered the TTL: %v, want delivered", got)
	}
	if got, _ := claimMemory(s, "k", 1, ms(t0.Add(60*time.Second)), testInFlight); got != claimed {
		t.Errorf("after a minute: %v, want claimed", got)
	}
}

func TestMemoryStoreFull(t *testing.T) {
	s := newMemoryStore(2, time.Minute.Milliseconds())
	t0 := ms(time.Unix(1700000000, 0))
	_, _ = claimMemory(s, "a", 1, t0, testInFlight)
	_, _ = claimMemory(s, "b", 1, t0, testInFlight)
	if _, err := claimMemory(s, "c", 1, t0, testInFlight); !errors.Is(err, errStoreFull) {
		t.Fatalf("third claim: %v, want errStoreFull", err)
	}
	if got, _ := claimMemory(s, "a", 1, t0, testInFlight); got != inFlight {
		t.Errorf("a full store forgot a: %v", got)
	}
	forgetMemory(s, "a", t0)
	if got, err := claimMemory(s, "a", 1, t0, testInFlight); got != claimed || err != nil {
		t.Errorf("a forgotten entry's slot: %v, %v; want claimed", got, err)
	}
	if _, err := claimMemory(s, "c", 1, t0+time.Minute.Milliseconds(), testInFlight); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	s.setLimits(1, 0)
	if _, err := claimMemory(s, "d", 1, t0+time.Minute.Milliseconds(), testInFlight); !errors.Is(err, errStoreFull) {
		t.Errorf("lowered capacity: %v, want errStoreFull", err)
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
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				k := fmt.Sprint(i)
				if r, err := claimMemory(s, k, 1, now, testInFlight); err == nil && r == claimed {
					mu.Lock()
					won[k]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 100; i++ {
		if n := won[fmt.Sprint(i)]; n != 1 {
			t.Errorf("key %d claimed %d times", i, n)
		}
	}
}

func TestStoreRegistry(t *testing.T) {
	r := newStoreRegistry()
	a := r.get("a@file", 10, 1000)
	if r.get("a@file", 20, 2000) != a {
		t.Error("a second get made a second store")
	}
	if a.capacity != 20 || a.ttlMs != 2000 {
		t.Errorf("capacity %d, ttl %d; want the reloaded 20 and 2000", a.capacity, a.ttlMs)
	}
	if r.get("b@file", 10, 1000) == a {
		t.Error("two names share a store")
	}
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
		if got, err := claimMemory(s, "k", step.digest, step.at, testInFlight); got != step.want || err != nil {
			t.Errorf("%s: %v, %v; want %v", step.desc, got, err, step.want)
		}
	}
	confirmMemory(s, "k", 1)
	if got, _ := claimMemory(s, "k", 2, t0+3, testInFlight); got != reused {
		t.Errorf("another body once delivered: %v, want reused", got)
	}
	if got, _ := claimMemory(s, "k", 1, t0+4, testInFlight); got != delivered {
		t.Errorf("the same body once delivered: %v, want delivered", got)
	}
}

func TestMemoryStoreClaimsLapse(t *testing.T) {
	s := newMemoryStore(10, testTTL.Milliseconds())
	t0 := ms(time.Unix(1700000000, 0))
	const inFlightMs = 20000
	if got, _ := claimMemory(s, "k", 1, t0, inFlightMs); got != claimed {
		t.Fatalf("first claim: %v", got)
	}
	if got, _ := claimMemory(s, "k", 1, t0+inFlightMs-1, inFlightMs); got != inFlight {
		t.Errorf("just before the claim lapses: %v, want inFlight", got)
	}
	// The owner died (or its backend hangs): ZEGO's retry at 30 s is claimed anew.
	if got, _ := claimMemory(s, "k", 1, t0+30000, inFlightMs); got != claimed {
		t.Fatalf("after the claim lapsed: %v, want claimed", got)
	}
	// The first owner's failure does not forget the retry's claim...
	forgetMemory(s, "k", t0)
	if got, _ := claimMemory(s, "k", 1, t0+30001, inFlightMs); got != inFlight {
		t.Errorf("a stale owner's forget took the retry's claim: %v, want inFlight", got)
	}
	// ...the retry's own failure does.
	forgetMemory(s, "k", t0+30000)
	if got, _ := claimMemory(s, "k", 1, t0+30002, inFlightMs); got != claimed {
		t.Errorf("after the retry's own forget: %v, want claimed", got)
	}
	// A delivery counts whatever became of its claim.
	confirmMemory(s, "k", 1)
	if got, _ := claimMemory(s, "k", 1, t0+90000, inFlightMs); got != delivered {
		t.Errorf("a delivered callback lapsed: %v, want delivered", got)
	}
	// The first body owns the key: another body is refused after a lapsed claim or a
	// failed delivery too, so that a forged body cannot take the genuine one's place.
	if got, _ := claimMemory(s, "other", 1, t0, inFlightMs); got != claimed {
		t.Fatal(got)
	}
	if got, _ := claimMemory(s, "other", 2, t0+inFlightMs, inFlightMs); got != reused {
		t.Errorf("another body after the claim lapsed: %v, want reused", got)
	}
	forgetMemory(s, "other", t0)
	if got, _ := claimMemory(s, "other", 2, t0+inFlightMs+1, inFlightMs); got != reused {
		t.Errorf("another body after a failed delivery: %v, want reused", got)
	}
	if got, _ := claimMemory(s, "other", 1, t0+inFlightMs+2, inFlightMs); got != claimed {
		t.Errorf("the same body after a failed delivery: %v, want claimed", got)
	}
}
