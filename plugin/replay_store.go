package zegocallback

import "crypto/sha256"

// The replay store remembers the callbacks this middleware verified, by key (their
// decoded signature, with replayKey signatureAndBody also the body's digest), for as long
// as one could still be fresh, with the digest of the body first claimed under each. It
// lives in memory (memory_store.go: one per middleware name, for the life of the
// process) or in Redis (redis_store.go: shared by every Traefik that uses it). A
// verified callback is claimed before it is forwarded and settled on the backend's
// answer: a 2xx keeps it as delivered, anything else forgets it so that ZEGO's retry
// gets through, and a claim nobody settles lapses after inFlightTimeout.

// claimResult is what a replay store found when a callback was claimed.
type claimResult int

// The results of a claim.
const (
	// claimed: the callback was not known (or its delivery failed, or its claim lapsed);
	// it is now in flight, ours to settle.
	claimed claimResult = iota
	// inFlight: another copy of the callback is being delivered right now.
	inFlight
	// delivered: the callback was delivered; the backend answered 2xx.
	delivered
	// reused: the signed triple is in flight or delivered with another body: a nonce
	// collision, or a captured triple carrying a forged body.
	reused
	// unavailable: the store could not answer (full, or Redis failing); the callback's
	// storeErr says why. One result instead of two, which costs less under Yaegi.
	unavailable
)

// bodyPlaceKey is replayKey signatureAndBody's key: the triple's, and one of 16 places by
// the body, so that two bodies are two callbacks (unless they share a place, 1 time in
// 16) and a captured triple carries 16 at most.
func bodyPlaceKey(key string, digest [sha256.Size]byte) string {
	return key + string(rune('a'+digest[7]%16))
}
