package zegocallback

import (
	"crypto/sha1" //nolint:gosec // the size of ZEGO's signature, the store's key
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
// place in its room's queue, by the time it was queued. A room is a middleware's (its
// name's): the entries it claimed first, at most its nonceCapacity, each remembered for
// its own time, ttlMs after the entry's claim. The claim's millisecond is also its token:
// a delivery that fails forgets its own claim only, not one made after it lapsed. A
// room's ttlMs only ever grows (see setLimits), so its queue stays in order, and raising
// timestampTolerance on a reload lengthens the memory of what is already there. A claim
// first sweeps expired entries from the heads of the queues, so the store needs no
// goroutine or timer and each operation costs O(1) amortised. The map holds pointers,
// which a lookup under Yaegi does not copy, and an entry is changed in place; its
// functions are plain functions, not methods (see DESIGN.md).
type memoryStore struct {
	mu      sync.Mutex
	entries map[string]*memoryEntry
	rooms   []*storeRoom
	// nextSweep is when the first head of a queue expires, so that a claim tells with one
	// comparison whether to sweep (math.MaxInt64 while every queue is empty).
	nextSweep int64
}

// storeRoom is a middleware's part of the store: the entries it claimed first.
type storeRoom struct {
	held, capacity int  // how many entries it holds, and may hold (nonceCapacity)
	bodyInKey      bool // its middleware's replayKey is signatureAndBody (see claimKnown)
	ttlMs          int64
	order          []*memoryEntry
	head           int
	nextSweep      int64 // when the head of its queue expires (math.MaxInt64: empty)
}

type memoryEntry struct {
	key      string
	room     *storeRoom // the room of the middleware that claimed it first
	queuedMs int64      // when it took its place in its room's queue
	v        int64      // claimed<<entryStateBits | state
	sum      uint64     // the body's digest's first 8 bytes (bodySum)
	// answer is the backend's answer to a delivery (rememberedAnswer), "" until then.
	answer string
}

// bodySum is what an entry keeps of a body's digest, as the Redis store does: its first
// 8 bytes. Another body with the same 8 bytes would pass for a replay of the first and
// be answered as a duplicate, never forwarded.
func bodySum(cb *callback) uint64 {
	return binary.BigEndian.Uint64(cb.digest[:8])
}

// newMemoryStore makes a store with one room, which may hold capacity entries for ttlMs
// each.
func newMemoryStore(capacity int, ttlMs int64) *memoryStore {
	s := &memoryStore{entries: make(map[string]*memoryEntry), nextSweep: math.MaxInt64}
	s.setLimits(s.room(), capacity, ttlMs, false)
	return s
}

// room adds a room to s.
func (s *memoryStore) room() *storeRoom {
	s.mu.Lock()
	r := &storeRoom{nextSweep: math.MaxInt64}
	s.rooms = append(s.rooms, r)
	s.mu.Unlock()
	return r
}

// claimMemory marks cb's key in flight from cb.receivedMs with the body's digest, unless
// an unexpired entry holds it; a new entry takes its place in room. The first body
// claimed under a key owns it for as long as the entry lasts: another body is reused,
// whatever the entry's state. The same body finds it delivered, or in flight for less
// than inFlightMs (then nothing changes); a failed or lapsed claim is claimed anew.
func claimMemory(s *memoryStore, cb *callback, room *storeRoom, inFlightMs int64) claimResult {
	now := cb.receivedMs
	s.mu.Lock()
	if now >= s.nextSweep {
		sweepMemory(s, now)
	}
	// A new key, the usual case, is all this function does: a known one, or a full
	// room, is claimKnown's (see ServeHTTP on why).
	e := s.entries[cb.key]
	if e != nil || room.held >= room.capacity {
		return claimKnown(s, e, cb, room, inFlightMs)
	}
	room.held++
	e = &memoryEntry{key: cb.key, room: room, queuedMs: now, v: now<<entryStateBits | entryInFlight, sum: binary.BigEndian.Uint64(cb.digest[:8])}
	cb.entry = e
	s.entries[cb.key] = e
	room.order = append(room.order, e)
	if room.nextSweep == math.MaxInt64 { // its queue was empty
		queued(s, room, now)
	}
	s.mu.Unlock()
	return claimed
}

// queued notes that room's queue, empty before, expires from nowMs on. It is called with
// s.mu held.
func queued(s *memoryStore, room *storeRoom, nowMs int64) {
	room.nextSweep = nowMs + room.ttlMs
	if room.nextSweep < s.nextSweep {
		s.nextSweep = room.nextSweep
	}
}

// claimKnown is claimMemory for a key the store holds (e), or when room is full (e nil);
// it is called with s.mu held, and releases it. Under replayKey signatureAndBody
// (room.bodyInKey), a body the triple's key holds another body for is claimed in a place
// of its own (claimPlace): the triple's key comes first, so that a callback is known by
// one key through every middleware, whatever its replayKey.
func claimKnown(s *memoryStore, e *memoryEntry, cb *callback, room *storeRoom, inFlightMs int64) claimResult {
	if e == nil {
		s.mu.Unlock()
		cb.storeErr = errStoreFull
		return unavailable
	}
	now := cb.receivedMs
	at, state := e.v>>entryStateBits, e.v&entryStateMask
	result := claimed
	if at+e.room.ttlMs > now {
		switch {
		case e.sum != bodySum(cb) && room.bodyInKey && len(cb.key) == sha1.Size: // the triple's own key
			return claimPlace(s, cb, room, inFlightMs)
		case e.sum != bodySum(cb):
			result = reused
		case state == entryDelivered:
			cb.remembered = e.answer
			result = delivered
		case state == entryInFlight && at+inFlightMs > now:
			result = inFlight
		}
	}
	if result == claimed {
		// Forgotten, lapsed, or expired and not yet swept: it keeps its place in the
		// queue; the sweep moves it to the tail when it finds the entry claimed later
		// than its place.
		e.v = now<<entryStateBits | entryInFlight
		e.sum = bodySum(cb)
		e.answer = ""
		cb.entry = e
	}
	s.mu.Unlock()
	return result
}

// claimPlace claims cb's body's place under its triple (replayKey signatureAndBody), with
// s.mu held; it releases it.
func claimPlace(s *memoryStore, cb *callback, room *storeRoom, inFlightMs int64) claimResult {
	cb.key = bodyPlaceKey(cb.key, cb.digest)
	e := s.entries[cb.key]
	if e != nil || room.held >= room.capacity {
		return claimKnown(s, e, cb, room, inFlightMs)
	}
	room.held++
	e = &memoryEntry{key: cb.key, room: room, queuedMs: cb.receivedMs, v: cb.receivedMs<<entryStateBits | entryInFlight, sum: bodySum(cb)}
	cb.entry = e
	s.entries[cb.key] = e
	room.order = append(room.order, e)
	if room.nextSweep == math.MaxInt64 {
		queued(s, room, cb.receivedMs)
	}
	s.mu.Unlock()
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
	answer := rememberedAnswer(cb.answer, m.answerBytes, cb.answered)
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

// sweepMemory drops the entries whose time has passed, from the heads of the rooms'
// queues. It is called with s.mu held.
func sweepMemory(s *memoryStore, nowMs int64) {
	s.nextSweep = math.MaxInt64
	for _, room := range s.rooms {
		if room.nextSweep <= nowMs {
			sweepRoom(s, room, nowMs)
		}
		if room.nextSweep < s.nextSweep {
			s.nextSweep = room.nextSweep
		}
	}
}

// sweepRoom is sweepMemory for one room.
func sweepRoom(s *memoryStore, room *storeRoom, nowMs int64) {
	for room.head < len(room.order) {
		e := room.order[room.head]
		if e.queuedMs+room.ttlMs > nowMs {
			break
		}
		room.order[room.head] = nil
		room.head++
		if at := e.v >> entryStateBits; at > e.queuedMs {
			// Claimed again (after a failed delivery) since it was queued: queue it anew.
			e.queuedMs = at
			room.order = append(room.order, e)
			continue
		}
		delete(s.entries, e.key)
		room.held--
	}
	room.nextSweep = math.MaxInt64
	if room.head < len(room.order) {
		room.nextSweep = room.order[room.head].queuedMs + room.ttlMs
	}
	// Reuse the queue's array once most of it lies before the head.
	if room.head > 64 && room.head*2 >= len(room.order) {
		n := copy(room.order, room.order[room.head:])
		for i := n; i < len(room.order); i++ {
			room.order[i] = nil
		}
		room.order = room.order[:n]
		room.head = 0
	}
}

// setLimits applies a configuration of room's middleware, at New and at each reload:
// nonceCapacity as it is (entries beyond a lowered capacity stay until they expire; new
// claims wait for room), and the time to remember only if it grew. Lowering
// timestampTolerance keeps the longer memory (it is safe, and keeps the queue in order)
// until Traefik restarts.
func (s *memoryStore) setLimits(room *storeRoom, capacity int, ttlMs int64, bodyInKey bool) {
	s.mu.Lock()
	room.capacity = capacity
	room.bodyInKey = bodyInKey
	if ttlMs > room.ttlMs {
		room.ttlMs = ttlMs
		if room.head < len(room.order) {
			room.nextSweep = room.order[room.head].queuedMs + room.ttlMs
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
// which holds the secret). Each middleware name has a room of its own, whose
// nonceCapacity and time to remember are its own. The registry only grows by configured
// names.
var memoryStores = newStoreRegistry()

type storeRegistry struct {
	mu    sync.Mutex
	store *memoryStore
	rooms map[string]*storeRoom // by middleware name
}

func newStoreRegistry() *storeRegistry {
	return &storeRegistry{rooms: make(map[string]*storeRoom)}
}

// get returns the process's store, made on first use, and the room of the middleware
// called name, with its limits applied.
func (r *storeRegistry) get(name string, capacity int, ttlMs int64, bodyInKey bool) (*memoryStore, *storeRoom) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		r.store = &memoryStore{entries: make(map[string]*memoryEntry), nextSweep: math.MaxInt64}
	}
	room, ok := r.rooms[name]
	if !ok {
		room = r.store.room()
		r.rooms[name] = room
	}
	r.store.setLimits(room, capacity, ttlMs, bodyInKey)
	return r.store, room
}
