package zegocallback

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
)

// errStoreFull is the memory store's answer when it holds nonceCapacity unexpired
// callbacks: it never drops one before it expires, since that would let it be replayed.
var errStoreFull = errors.New("replay store full")

// The state of a memory entry, kept in the low bits of its value beside its time.
const (
	entryForgotten = 0
	entryInFlight  = 1
	entryDelivered = 2
	entryStateBits = 2
	entryStateMask = 1<<entryStateBits - 1
)

// memoryStore remembers verified callbacks, by key (their signature), in this process.
// Each key has one entry: the Unix millisecond of its current claim shifted left by
// entryStateBits and ORed with its state, and the digest of the body claimed; and one
// place in order, the queue of entries by the time they were queued. The claim's
// millisecond is also its token: a delivery that fails forgets its own claim only, not
// one made after it lapsed. An entry expires ttlMs after its claim. ttlMs only ever
// grows (see setLimits), so the queue stays in order, and raising timestampTolerance on
// a reload lengthens the memory of what is already there. A claim first sweeps expired
// entries from the head of the queue, so the store needs no goroutine or timer and each
// operation costs O(1) amortised. The map holds pointers, which a lookup under Yaegi does
// not copy, and an entry is changed in place; its functions are plain functions, not
// methods (see DESIGN.md).
type memoryStore struct {
	mu sync.Mutex
	// held and capacity are, by owner (the number of the middleware name that claimed
	// an entry first, see storeRegistry), how many entries it holds and may hold: its
	// nonceCapacity. One route's callbacks cannot fill another's room.
	held, capacity []int
	ttlMs          int64
	entries        map[string]*memoryEntry
	order          []*memoryEntry
	head           int
	// nextSweep is when the head of the queue expires, so that a claim tells with one
	// comparison whether to sweep (math.MaxInt64 while the queue is empty).
	nextSweep int64
}

type memoryEntry struct {
	key      string
	owner    int    // its place in held
	queuedMs int64  // when it took its place in the queue
	v        int64  // claimed<<entryStateBits | state
	sum      uint64 // the body's digest's first 8 bytes (bodySum)
	// answer is the backend's answer to a delivery (rememberedAnswer), "" until then.
	answer string
}

// bodySum is what an entry keeps of a body's digest, as the Redis store does: its first
// 8 bytes. Another body with the same 8 bytes would pass for a replay of the first and
// be answered as a duplicate, never forwarded.
func bodySum(cb *callback) uint64 {
	return binary.BigEndian.Uint64(cb.digest[:8])
}

// newMemoryStore makes a store with one owner, 0, who may hold capacity entries.
func newMemoryStore(capacity int, ttlMs int64) *memoryStore {
	return &memoryStore{held: []int{0}, capacity: []int{capacity}, ttlMs: ttlMs, entries: make(map[string]*memoryEntry), nextSweep: math.MaxInt64}
}

// claimMemory marks cb's key in flight from cb.receivedMs with the body's digest, unless
// an unexpired entry holds it. The first body claimed under a key owns it for as long as
// the entry lasts: another body is reused, whatever the entry's state. The same body
// finds it delivered, or in flight for less than inFlightMs (then nothing changes); a
// failed or lapsed claim is claimed anew.
func claimMemory(s *memoryStore, cb *callback, owner int, inFlightMs int64) claimResult {
	now := cb.receivedMs
	s.mu.Lock()
	if now >= s.nextSweep {
		sweepMemory(s, now)
	}
	// A new key, the usual case, is all this function does: a known one, or a full
	// store, is claimKnown's (see ServeHTTP on why).
	e := s.entries[cb.key]
	if e != nil || s.held[owner] >= s.capacity[owner] {
		return claimKnown(s, e, cb, inFlightMs)
	}
	s.held[owner]++
	e = &memoryEntry{key: cb.key, owner: owner, queuedMs: now, v: now<<entryStateBits | entryInFlight, sum: bodySum(cb)}
	cb.entry = e
	s.entries[cb.key] = e
	s.order = append(s.order, e)
	if s.nextSweep == math.MaxInt64 { // the queue was empty
		s.nextSweep = now + s.ttlMs
	}
	s.mu.Unlock()
	return claimed
}

// claimKnown is claimMemory for a key the store holds (e), or when it is full (e nil); it
// is called with s.mu held, and releases it.
func claimKnown(s *memoryStore, e *memoryEntry, cb *callback, inFlightMs int64) claimResult {
	defer s.mu.Unlock()
	if e == nil {
		cb.storeErr = errStoreFull
		return unavailable
	}
	now := cb.receivedMs
	at, state := e.v>>entryStateBits, e.v&entryStateMask
	if at+s.ttlMs > now {
		switch {
		case e.sum != bodySum(cb):
			return reused
		case state == entryDelivered:
			cb.remembered = e.answer
			return delivered
		case state == entryInFlight && at+inFlightMs > now:
			return inFlight
		}
	}
	// Forgotten, lapsed, or expired and not yet swept: it keeps its place in the queue;
	// the sweep moves it to the tail when it finds the entry claimed later than its place.
	e.v = now<<entryStateBits | entryInFlight
	e.sum = bodySum(cb)
	e.answer = ""
	cb.entry = e
	return claimed
}

// settleMemory settles cb's claim on the backend's answer. Delivered (a 2xx), its
// entry (cb.entry, which holds the digest of the body claimed) is marked so, with the
// answer to give its duplicates (rememberedAnswer), whatever
// became of the claim meanwhile; it stays remembered from its claim: what the store must
// cover is the time the callback can stay fresh, from its first arrival. Otherwise the
// claim is forgotten, so that ZEGO's retry gets through.
func settleMemory(m *middleware, cb *callback) {
	if cb.answer.Code/100 != 2 {
		noteUndelivered(m, cb)
		forgetMemory(m.mem, cb.key, cb.receivedMs)
		return
	}
	answer := rememberedAnswer(cb.answer, m.answerBytes)
	m.mem.mu.Lock()
	cb.entry.v = cb.entry.v&^entryStateMask | entryDelivered
	cb.entry.answer = answer
	m.mem.mu.Unlock()
}

// forgetMemory lets key be claimed again by the same body, if it is still in flight under
// the claim made at claimedMs. The entry keeps its time, its digest and its place in
// the queue, so that the queue holds each key once.
func forgetMemory(s *memoryStore, key string, claimedMs int64) {
	s.mu.Lock()
	if e := s.entries[key]; e != nil && e.v == claimedMs<<entryStateBits|entryInFlight {
		e.v &^= entryStateMask
	}
	s.mu.Unlock()
}

// sweepMemory drops the entries whose time has passed, from the head of the queue. It
// is called with s.mu held.
func sweepMemory(s *memoryStore, nowMs int64) {
	for s.head < len(s.order) {
		e := s.order[s.head]
		if e.queuedMs+s.ttlMs > nowMs {
			break
		}
		s.order[s.head] = nil
		s.head++
		if at := e.v >> entryStateBits; at > e.queuedMs {
			// Claimed again (after a failed delivery) since it was queued: queue it anew.
			e.queuedMs = at
			s.order = append(s.order, e)
			continue
		}
		delete(s.entries, e.key)
		s.held[e.owner]--
	}
	s.nextSweep = math.MaxInt64
	if s.head < len(s.order) {
		s.nextSweep = s.order[s.head].queuedMs + s.ttlMs
	}
	// Reuse the queue's array once most of it lies before the head.
	if s.head > 64 && s.head*2 >= len(s.order) {
		n := copy(s.order, s.order[s.head:])
		for i := n; i < len(s.order); i++ {
			s.order[i] = nil
		}
		s.order = s.order[:n]
		s.head = 0
	}
}

// setLimits applies a reloaded configuration of owner's: nonceCapacity as it is (entries
// beyond a lowered capacity stay until they expire; new claims wait for room), and the
// time to remember only if it grew. Lowering timestampTolerance keeps the longer memory
// (it is safe, and keeps the queue in order) until Traefik restarts.
func (s *memoryStore) setLimits(owner, capacity int, ttlMs int64) {
	s.mu.Lock()
	for len(s.capacity) <= owner {
		s.held = append(s.held, 0)
		s.capacity = append(s.capacity, 0)
	}
	s.capacity[owner] = capacity
	if ttlMs > s.ttlMs {
		s.ttlMs = ttlMs
		if s.head < len(s.order) {
			s.nextSweep = s.order[s.head].queuedMs + s.ttlMs
		}
	}
	s.mu.Unlock()
}

// memoryStores is the package's one piece of mutable state, on purpose: Traefik calls New
// again for every router on every reload of its dynamic configuration, with no teardown,
// and a fresh store each time would let every recent callback be replayed after a
// reload. So the process has one memory store for its whole life, shared by every
// middleware that uses memory, their routers and their reloads: a callback delivered
// through one middleware is a duplicate through every other (the key is the signature,
// which holds the secret). Each middleware name is an owner of its own, whose
// nonceCapacity bounds the entries it claimed; the store remembers each entry for the
// longest time any of them asks. The registry only grows by configured names.
var memoryStores = newStoreRegistry()

type storeRegistry struct {
	mu     sync.Mutex
	store  *memoryStore
	owners map[string]int // the owner's number of each middleware name
}

func newStoreRegistry() *storeRegistry {
	return &storeRegistry{owners: make(map[string]int)}
}

// get returns the process's store, made on first use, and the owner's number of the
// middleware called name, with its limits applied.
func (r *storeRegistry) get(name string, capacity int, ttlMs int64) (*memoryStore, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		r.store = &memoryStore{ttlMs: ttlMs, entries: make(map[string]*memoryEntry), nextSweep: math.MaxInt64}
	}
	owner, ok := r.owners[name]
	if !ok {
		owner = len(r.owners)
		r.owners[name] = owner
	}
	r.store.setLimits(owner, capacity, ttlMs)
	return r.store, owner
}
