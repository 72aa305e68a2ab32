package zegocallback

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestMemoryStoreStates(t *testing.T) {
	s := newMemoryStore(10)
	t0 := time.Unix(1700000000, 0)
	ttl := 10 * time.Minute
	claim := func(at time.Time, want ClaimResult) {
		t.Helper()
		got, err := claimMemory(s, "k", at.UnixMilli(), ttl.Milliseconds())
		if err != nil || got != want {
			t.Fatalf("Claim at +%v = %v, %v; want %v", at.Sub(t0), got, err, want)
		}
	}
	claim(t0, Claimed)
	claim(t0.Add(time.Second), InFlight)
	forgetMemory(s, "k")
	claim(t0.Add(2*time.Second), Claimed) // ZEGO's retry after a failed delivery
	confirmMemory(s, "k", t0.Add(3*time.Second).UnixMilli(), ttl.Milliseconds())
	claim(t0.Add(4*time.Second), Delivered)
	claim(t0.Add(3*time.Second+ttl-time.Millisecond), Delivered) // remembered for ttl from delivery
	claim(t0.Add(3*time.Second+ttl), Claimed)                    // then it is gone
	if n := s.size(); n != 1 {
		t.Errorf("size = %d, want 1", n)
	}
}

func TestMemoryStoreExpiresFromTheQueueHead(t *testing.T) {
	s := newMemoryStore(1000)
	t0 := time.Unix(1700000000, 0)
	ttl := time.Minute
	for i := 0; i < 500; i++ {
		if _, err := claimMemory(s, fmt.Sprint(i), (t0.Add(time.Duration(i) * time.Millisecond)).UnixMilli(), ttl.Milliseconds()); err != nil {
			t.Fatal(err)
		}
	}
	// A claim just after the first 100 expired sweeps exactly those.
	if _, err := claimMemory(s, "late", (t0.Add(ttl + 99*time.Millisecond)).UnixMilli(), ttl.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	if n := s.size(); n != 401 {
		t.Errorf("size = %d, want 401", n)
	}
	if len(s.order)-s.head != s.size() {
		t.Errorf("queue holds %d keys, the map %d", len(s.order)-s.head, s.size())
	}
	// Everything expired: a claim leaves only itself, and the queue's array is reused.
	if _, err := claimMemory(s, "later", (t0.Add(time.Hour)).UnixMilli(), ttl.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	if n := s.size(); n != 1 || s.head != 0 || len(s.order) != 1 {
		t.Errorf("size %d, head %d, queue %d; want 1, 0, 1", n, s.head, len(s.order))
	}
}

func TestMemoryStoreConfirmedEntryMovesInTheQueue(t *testing.T) {
	s := newMemoryStore(10)
	t0 := time.Unix(1700000000, 0)
	ttl := time.Minute
	_, _ = claimMemory(s, "a", (t0).UnixMilli(), ttl.Milliseconds())
	confirmMemory(s, "a", t0.Add(30*time.Second).UnixMilli(), ttl.Milliseconds()) // now expires at +90 s
	_, _ = claimMemory(s, "b", (t0.Add(61 * time.Second)).UnixMilli(), ttl.Milliseconds())
	if got, _ := claimMemory(s, "a", (t0.Add(62 * time.Second)).UnixMilli(), ttl.Milliseconds()); got != Delivered {
		t.Errorf("a confirmed entry was swept at its claim's expiry: %v", got)
	}
	if len(s.order)-s.head != s.size() {
		t.Errorf("queue holds %d keys, the map %d", len(s.order)-s.head, s.size())
	}
	if got, _ := claimMemory(s, "a", (t0.Add(91 * time.Second)).UnixMilli(), ttl.Milliseconds()); got != Claimed {
		t.Errorf("at +91 s: %v, want Claimed", got)
	}
}

func TestMemoryStoreFull(t *testing.T) {
	s := newMemoryStore(2)
	t0 := time.Unix(1700000000, 0)
	ttl := time.Minute
	_, _ = claimMemory(s, "a", (t0).UnixMilli(), ttl.Milliseconds())
	_, _ = claimMemory(s, "b", (t0).UnixMilli(), ttl.Milliseconds())
	if _, err := claimMemory(s, "c", (t0).UnixMilli(), ttl.Milliseconds()); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("third claim: %v, want ErrStoreFull", err)
	}
	if got, _ := claimMemory(s, "a", (t0).UnixMilli(), ttl.Milliseconds()); got != InFlight {
		t.Errorf("a full store forgot a: %v", got)
	}
	forgetMemory(s, "a")
	if got, err := claimMemory(s, "a", (t0).UnixMilli(), ttl.Milliseconds()); got != Claimed || err != nil {
		t.Errorf("a forgotten entry's slot: %v, %v; want Claimed", got, err)
	}
	if _, err := claimMemory(s, "c", (t0.Add(ttl)).UnixMilli(), ttl.Milliseconds()); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	s.setCapacity(1)
	if _, err := claimMemory(s, "d", (t0.Add(ttl)).UnixMilli(), ttl.Milliseconds()); !errors.Is(err, ErrStoreFull) {
		t.Errorf("lowered capacity: %v, want ErrStoreFull", err)
	}
}

func TestMemoryStoreConcurrentClaims(t *testing.T) {
	s := newMemoryStore(1000)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	claimed := map[string]int{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				k := fmt.Sprint(i)
				if r, err := claimMemory(s, k, (now).UnixMilli(), time.Minute.Milliseconds()); err == nil && r == Claimed {
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
	a := r.get("a@file", 10)
	if r.get("a@file", 20) != a {
		t.Error("a second get made a second store")
	}
	if a.capacity != 20 {
		t.Errorf("capacity %d, want the reloaded 20", a.capacity)
	}
	if r.get("b@file", 10) == a {
		t.Error("two names share a store")
	}
}
