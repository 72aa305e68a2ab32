package zegocallback

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

const testTTL = 10 * time.Minute

func ms(t time.Time) int64 { return t.UnixMilli() }

func TestMemoryStoreStates(t *testing.T) {
	s := newMemoryStore(10, testTTL.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	claim := func(at time.Time, want ClaimResult) {
		t.Helper()
		got, err := claimMemory(s, "k", ms(at))
		if err != nil || got != want {
			t.Fatalf("Claim at +%v = %v, %v; want %v", at.Sub(t0), got, err, want)
		}
	}
	claim(t0, Claimed)
	claim(t0.Add(time.Second), InFlight)
	forgetMemory(s, "k")
	claim(t0.Add(2*time.Second), Claimed) // ZEGO's retry after a failed delivery
	confirmMemory(s, "k")
	claim(t0.Add(4*time.Second), Delivered)
	claim(t0.Add(2*time.Second+testTTL-time.Millisecond), Delivered) // remembered for the TTL from its claim
	claim(t0.Add(2*time.Second+testTTL), Claimed)                    // then it is gone
	if n := len(s.entries); n != 1 {
		t.Errorf("entries = %d, want 1", n)
	}
}

func TestMemoryStoreExpiresFromTheQueueHead(t *testing.T) {
	ttl := time.Minute
	s := newMemoryStore(1000, ttl.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	for i := 0; i < 500; i++ {
		if _, err := claimMemory(s, fmt.Sprint(i), ms(t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	// A claim just after the first 100 expired sweeps exactly those.
	if _, err := claimMemory(s, "late", ms(t0.Add(ttl+99*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if n := len(s.entries); n != 401 {
		t.Errorf("entries = %d, want 401", n)
	}
	if len(s.order)-s.head != len(s.entries) {
		t.Errorf("queue holds %d keys, the map %d", len(s.order)-s.head, len(s.entries))
	}
	// Everything expired: a claim leaves only itself, and the queue's array is reused.
	if _, err := claimMemory(s, "later", ms(t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if n := len(s.entries); n != 1 || s.head != 0 || len(s.order) != 1 {
		t.Errorf("entries %d, head %d, queue %d; want 1, 0, 1", n, s.head, len(s.order))
	}
}

func TestMemoryStoreClaimedAgainMovesInTheQueue(t *testing.T) {
	ttl := time.Minute
	s := newMemoryStore(10, ttl.Milliseconds())
	t0 := time.Unix(1700000000, 0)
	_, _ = claimMemory(s, "a", ms(t0))
	forgetMemory(s, "a")
	_, _ = claimMemory(s, "a", ms(t0.Add(30*time.Second))) // the retry: remembered until +90 s
	_, _ = claimMemory(s, "b", ms(t0.Add(61*time.Second)))
	if got, _ := claimMemory(s, "a", ms(t0.Add(62*time.Second))); got != InFlight {
		t.Errorf("an entry claimed again was swept at its first claim's expiry: %v", got)
	}
	if len(s.order)-s.head != len(s.entries) {
		t.Errorf("queue holds %d keys, the map %d", len(s.order)-s.head, len(s.entries))
	}
	if got, _ := claimMemory(s, "a", ms(t0.Add(91*time.Second))); got != Claimed {
		t.Errorf("at +91 s: %v, want Claimed", got)
	}
}

// A reload that raises timestampTolerance must lengthen the memory of callbacks already
// there: they stay fresh longer, so they could otherwise be replayed.
func TestMemoryStoreLongerTTLOnReloadCoversWhatIsThere(t *testing.T) {
	r := newStoreRegistry()
	s := r.get("zego@file", 10, (10 * time.Second).Milliseconds())
	t0 := time.Unix(1700000000, 0)
	_, _ = claimMemory(s, "k", ms(t0))
	confirmMemory(s, "k")
	r.get("zego@file", 10, time.Minute.Milliseconds()) // the reload
	if got, _ := claimMemory(s, "k", ms(t0.Add(30*time.Second))); got != Delivered {
		t.Errorf("30 s later, after the TTL grew to a minute: %v, want Delivered", got)
	}
	r.get("zego@file", 10, time.Second.Milliseconds()) // a shorter one keeps the longer memory
	if got, _ := claimMemory(s, "k", ms(t0.Add(59*time.Second))); got != Delivered {
		t.Errorf("after a reload that lowered the TTL: %v, want Delivered", got)
	}
	if got, _ := claimMemory(s, "k", ms(t0.Add(60*time.Second))); got != Claimed {
		t.Errorf("after a minute: %v, want Claimed", got)
	}
}

func TestMemoryStoreFull(t *testing.T) {
	s := newMemoryStore(2, time.Minute.Milliseconds())
	t0 := ms(time.Unix(1700000000, 0))
	_, _ = claimMemory(s, "a", t0)
	_, _ = claimMemory(s, "b", t0)
	if _, err := claimMemory(s, "c", t0); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("third claim: %v, want ErrStoreFull", err)
	}
	if got, _ := claimMemory(s, "a", t0); got != InFlight {
		t.Errorf("a full store forgot a: %v", got)
	}
	forgetMemory(s, "a")
	if got, err := claimMemory(s, "a", t0); got != Claimed || err != nil {
		t.Errorf("a forgotten entry's slot: %v, %v; want Claimed", got, err)
	}
	if _, err := claimMemory(s, "c", t0+time.Minute.Milliseconds()); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	s.setLimits(1, 0)
	if _, err := claimMemory(s, "d", t0+time.Minute.Milliseconds()); !errors.Is(err, ErrStoreFull) {
		t.Errorf("lowered capacity: %v, want ErrStoreFull", err)
	}
}

func TestMemoryStoreConcurrentClaims(t *testing.T) {
	s := newMemoryStore(1000, time.Minute.Milliseconds())
	now := ms(time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	claimed := map[string]int{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				k := fmt.Sprint(i)
				if r, err := claimMemory(s, k, now); err == nil && r == Claimed {
					mu.Lock()
					claimed[k]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 100; i++ {
		if n := claimed[fmt.Sprint(i)]; n != 1 {
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
