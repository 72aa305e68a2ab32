package zegocallback

import (
	"errors"
	"sync"
	"time"
)

// ClaimResult is what a NonceStore found when a callback was claimed.
type ClaimResult int

// The results of NonceStore.Claim.
const (
	// Claimed: the callback was not known (or its delivery had failed); it is now in flight.
	Claimed ClaimResult = iota
	// InFlight: another copy of the callback is being delivered right now.
	InFlight
	// Delivered: the callback was delivered; the backend answered 2xx.
	Delivered
)

// ErrStoreFull is returned by the memory store's Claim when it holds nonceCapacity
// unexpired callbacks: it never drops one before it expires, since that would let it be
// replayed.
var ErrStoreFull = errors.New("nonce store full")

// NonceStore remembers verified callbacks by key (their signature) so that each one
// reaches the backend once. The memory store serves one Traefik; the Redis store
// several replicas.
type NonceStore interface {
	// Claim marks key in flight for ttl unless an unexpired entry holds it, in which case
	// it changes nothing and says what it found.
	Claim(key string, now time.Time, ttl time.Duration) (ClaimResult, error)
	// Confirm marks key delivered, for ttl from now.
	Confirm(key string, now time.Time, ttl time.Duration) error
	// Forget drops key, so that the sender's retry is accepted.
	Forget(key string, now time.Time) error
}

// The state of a memory entry, kept in the low bits of its value beside the expiry.
const (
	entryForgotten = 0
	entryInFlight  = 1
	entryDelivered = 2
	entryStateBits = 2
)

// memoryStore is a NonceStore in this process's memory. Each key has one entry, its
// expiry in Unix milliseconds shifted left by entryStateBits, ORed with its state, and
// one place in order, the queue of keys by the time their expiry was set. Claim sweeps
// expired keys from the head of the queue, so the store needs no goroutine or timer and
// each operation costs O(1) amortised.
type memoryStore struct {
	mu       sync.Mutex
	capacity int
	entries  map[string]int64
	order    []queuedKey
	head     int
}

type queuedKey struct {
	key     string
	expires int64
}

func newMemoryStore(capacity int) *memoryStore {
	return &memoryStore{capacity: capacity, entries: make(map[string]int64)}
}

func (s *memoryStore) Claim(key string, now time.Time, ttl time.Duration) (ClaimResult, error) {
	nowMs := now.UnixMilli()
	expires := nowMs + ttl.Milliseconds()
	s.mu.Lock()
	s.sweep(nowMs)
	v, known := s.entries[key]
	if known && v>>entryStateBits > nowMs {
		switch v & (1<<entryStateBits - 1) {
		case entryInFlight:
			s.mu.Unlock()
			return InFlight, nil
		case entryDelivered:
			s.mu.Unlock()
			return Delivered, nil
		}
	}
	if !known {
		if len(s.entries) >= s.capacity {
			s.mu.Unlock()
			return Claimed, ErrStoreFull
		}
		s.order = append(s.order, queuedKey{key: key, expires: expires})
	}
	// A known key (forgotten, or expired and not yet swept) keeps its place in the queue;
	// the sweep moves it to the tail when it finds the entry's expiry later than its own.
	s.entries[key] = expires<<entryStateBits | entryInFlight
	s.mu.Unlock()
	return Claimed, nil
}

func (s *memoryStore) Confirm(key string, now time.Time, ttl time.Duration) error {
	s.mu.Lock()
	if _, known := s.entries[key]; known {
		s.entries[key] = (now.UnixMilli()+ttl.Milliseconds())<<entryStateBits | entryDelivered
	}
	s.mu.Unlock()
	return nil
}

func (s *memoryStore) Forget(key string, _ time.Time) error {
	s.mu.Lock()
	if v, known := s.entries[key]; known {
		// The entry keeps its expiry and its place in the queue, so that the queue holds
		// each key once; Claim treats it as absent.
		s.entries[key] = v &^ (1<<entryStateBits - 1)
	}
	s.mu.Unlock()
	return nil
}

// sweep drops the entries whose expiry has passed, from the head of the queue. It is
// called with s.mu held.
func (s *memoryStore) sweep(nowMs int64) {
	for s.head < len(s.order) {
		q := s.order[s.head]
		if q.expires > nowMs {
			break
		}
		s.order[s.head] = queuedKey{}
		s.head++
		v, known := s.entries[q.key]
		if !known {
			continue
		}
		if expires := v >> entryStateBits; expires > nowMs {
			// Confirmed or claimed again since it was queued: queue it anew.
			s.order = append(s.order, queuedKey{key: q.key, expires: expires})
			continue
		}
		delete(s.entries, q.key)
	}
	// Reuse the queue's array once most of it lies before the head.
	if s.head > 64 && s.head*2 >= len(s.order) {
		n := copy(s.order, s.order[s.head:])
		for i := n; i < len(s.order); i++ {
			s.order[i] = queuedKey{}
		}
		s.order = s.order[:n]
		s.head = 0
	}
}

// setCapacity applies a reloaded nonceCapacity. Entries beyond a lowered capacity stay
// until they expire; new claims wait for room.
func (s *memoryStore) setCapacity(capacity int) {
	s.mu.Lock()
	s.capacity = capacity
	s.mu.Unlock()
}

// size returns the number of entries the store holds, expired ones not yet swept included.
func (s *memoryStore) size() int {
	s.mu.Lock()
	n := len(s.entries)
	s.mu.Unlock()
	return n
}

// memoryStores is the package's one piece of mutable state, on purpose: Traefik calls New
// again for every router on every reload of its dynamic configuration, with no teardown,
// and a fresh store each time would let every recent callback be replayed after a
// reload. So each middleware name (zego@file) has one store for the life of the process,
// shared by its routers and its reloads. The registry only grows by configured names.
var memoryStores = newStoreRegistry()

type storeRegistry struct {
	mu     sync.Mutex
	byName map[string]*memoryStore
}

func newStoreRegistry() *storeRegistry {
	return &storeRegistry{byName: make(map[string]*memoryStore)}
}

// get returns the store of the middleware called name, made on first use.
func (r *storeRegistry) get(name string, capacity int) *memoryStore {
	r.mu.Lock()
	s, ok := r.byName[name]
	if !ok {
		s = newMemoryStore(capacity)
		r.byName[name] = s
	}
	r.mu.Unlock()
	if ok {
		s.setCapacity(capacity)
	}
	return s
}
