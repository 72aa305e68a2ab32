package zegocallback

import (
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the size of ZEGO's signature
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Redis replay store keeps the memory store's states in one key per callback, so
// that every Traefik replica that shares the Redis shares them. Each step is one atomic
// command; the claim is a short Lua script, since it reads the state, Redis's clock and
// the body's digest before it writes:
//
//	claim:   EVAL redisClaimScript 1 <key> i:<claim>:<digest> <digest> <inFlightTimeout> <ttl>
//	deliver: SET <key> d:<digest>[:<answer>] PX <ttl>
//	fail:    EVAL redisForgetScript 1 <key> i:<claim>:<digest>
//
// The key is the configured prefix then the hex of the callback's key (its signature).
// A key lives for the store's whole lifetime and keeps the digest of the body first
// claimed under it: another body is reused whatever the state, so that a forged body
// cannot take the place of a genuine one whose delivery failed or whose claim lapsed.
// A claim is in flight for inFlightTimeout, by Redis's clock: one whose owner died (a
// replica killed mid-delivery, a reply lost, Redis failing before the settlement)
// lapses, and ZEGO's next retry is claimed anew. A delivery sets the delivered state
// whatever became of its claim; a failed one marks its own claim failed, never another
// replica's, which the claim's token tells apart.

// redisClaimScript claims KEYS[1] for the value ARGV[1] (i:<claim>:<digest>) with the
// digest ARGV[2], a claim lasting ARGV[3] ms in a key lasting ARGV[4] ms. It answers
// claimed, inflight, delivered or reused. A value of another shape (another version's)
// counts as in flight, or delivered when it says so. A delivered key's value holds the
// backend's answer after the digest (rememberedAnswer), which the reply carries.
const redisClaimScript = `local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call("GET", KEYS[1])
if not v then
  redis.call("SET", KEYS[1], ARGV[1] .. ":" .. now, "PX", ARGV[4])
  return "claimed"
end
local digest, answer = string.match(v, "^d:([^:]*):?(.*)$")
if digest then
  if digest == ARGV[2] then return "delivered:" .. answer end
  return "reused"
end
local state, claim, at = string.match(v, "^([if]):([^:]*):[^:]*:(%d+)$")
if not state then
  if string.sub(v, 1, 9) == "delivered" then return "delivered" end
  return "inflight"
end
if string.match(v, "^[if]:[^:]*:([^:]*):") ~= ARGV[2] then return "reused" end
if state == "i" then
  if ARGV[1] == "i:" .. claim .. ":" .. ARGV[2] then return "claimed" end
  if now - tonumber(at) < tonumber(ARGV[3]) then return "inflight" end
end
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 1 then ttl = tonumber(ARGV[4]) end
redis.call("SET", KEYS[1], ARGV[1] .. ":" .. now, "PX", ttl)
return "claimed"`

// redisForgetScript marks KEYS[1] failed if it still holds the claim ARGV[1], keeping its
// digest and its lifetime.
const redisForgetScript = `local v = redis.call("GET", KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ":" then
  local ttl = redis.call("PTTL", KEYS[1])
  if ttl > 0 then redis.call("SET", KEYS[1], "f" .. string.sub(v, 2), "PX", ttl) end
  return 1
end
return 0`

// claimInRedis is claimRedis for a verified callback, keeping its claim's token; a
// failure is unavailable, its error in cb.storeErr.
func claimInRedis(m *middleware, cb *callback) claimResult {
	if m.fallback != nil {
		return claimFailingOpen(m, cb)
	}
	return claimRedisOnly(m, cb)
}

// claimRedisOnly is claimInRedis's claim in Redis.
func claimRedisOnly(m *middleware, cb *callback) claimResult {
	claim, token, err := claimRedis(m.redis, cb.key, redisDigest(cb), m.s.inFlightMs, m.ttlMs)
	if claim == reused && err == nil && m.bodyInKey && len(cb.key) == sha1.Size {
		// replayKey signatureAndBody: another body under the triple has a place of its own
		// (bodyPlaceKey); the triple's own key comes first, so that a callback is known by
		// one key through every middleware, whatever its replayKey.
		cb.key = bodyPlaceKey(cb.key, cb.digest)
		claim, token, err = claimRedis(m.redis, cb.key, redisDigest(cb), m.s.inFlightMs, m.ttlMs)
	}
	cb.claim = token
	if err != nil {
		cb.storeErr = err
		return unavailable
	}
	if claim == delivered {
		cb.remembered = token
	}
	return claim
}

// claimFailingOpen is claimInRedis with redis.failOpen: every callback is claimed in this
// Traefik's memory first (m.fallback), then in Redis. A copy this Traefik has seen is
// answered from memory; one Redis knows of (another replica's) from Redis, the memory's
// claim forgotten; when Redis cannot answer, the memory's claim stands, so that copies
// reaching this Traefik are still caught: at most one delivery per replica, whatever
// made Redis's replies late (this Traefik's own load among them). A pool whose
// connections are all busy is this Traefik's limit, not Redis failing: 503; so is a claim
// Redis withdrew, its replicas not acknowledging it (redis.waitReplicas).
func claimFailingOpen(m *middleware, cb *callback) claimResult {
	local := claimMemory(m.fallback, cb, m.fallbackRoom, m.inFlightMs)
	if local != claimed {
		return local // a copy this Traefik has seen, or its memory full (cb.storeErr)
	}
	claim := claimRedisOnly(m, cb)
	switch {
	case claim == claimed:
		return claimed
	case claim != unavailable:
		forgetMemory(m.fallback, cb.key, cb.receivedMs) // another replica's
		cb.entry = nil
		return claim
	case errors.Is(cb.storeErr, errRedisBusy) || errors.Is(cb.storeErr, errRedisUnreplicated):
		// This Traefik's pool busy, or a claim Redis made and withdrew, its replicas not
		// acknowledging it (redis.waitReplicas): Redis answered, and the gate stays shut.
		forgetMemory(m.fallback, cb.key, cb.receivedMs)
		cb.entry = nil
		return unavailable
	}
	// Redis could not answer: the memory's claim stands.
	m.s.log.printf(levelError, "redis_fail_open", "%s: %v", actionFellBack, cb.storeErr)
	cb.storeErr = nil
	cb.claim = ""
	return claimed
}

// redisDigest is the body's digest as the Redis store writes it: its first 8 bytes, as
// a number, in hex.
func redisDigest(cb *callback) string {
	return strconv.FormatUint(binary.BigEndian.Uint64(cb.digest[:8]), 16)
}

// claimRedis claims key for inFlightMs with the body's digest (hex), in a key that lasts
// ttlMs, and says what it found. It returns the claim's value, the token its settlement
// needs.
//
// Each claim writes a value of its own, the pool's token, a number and the digest: when
// the script ran but its reply was lost with the connection, redisExec sends it again on
// a new connection, and the script recognises its own claim.
func claimRedis(p *redisPool, key, digest string, inFlightMs, ttlMs int64) (claimResult, string, error) {
	value := "i:" + p.token + strconv.FormatUint(p.seq.Add(1), 36) + ":" + digest
	rkey := p.s.keyPrefix + hex.EncodeToString([]byte(key))
	kind, found, err := redisDo(p, rkey, "EVAL", redisClaimCommand(rkey, value, digest, strconv.FormatInt(inFlightMs, 10), strconv.FormatInt(ttlMs, 10)))
	if err != nil {
		return claimFailed(p, key, value, found, err)
	}
	if kind == '$' {
		switch found {
		case "claimed":
			return claimed, value, nil
		case "inflight":
			return inFlight, "", nil
		case "delivered":
			return delivered, "", nil
		case "reused":
			return reused, "", nil
		}
		if strings.HasPrefix(found, "delivered:") {
			return delivered, found[len("delivered:"):], nil // the token is the answer
		}
	}
	return claimed, "", fmt.Errorf("redis %s: EVAL: an answer the claim does not give (%q)", p.s.address, kind)
}

// claimFailed is claimRedis's answer when Redis did not give one it can stand by. A claim
// made that fewer replicas than redis.waitReplicas hold (or whose WAIT failed) is
// withdrawn first, so that ZEGO's retry is claimed anew.
func claimFailed(p *redisPool, key, value, found string, err error) (claimResult, string, error) {
	if found == "claimed" {
		_ = forgetRedis(p, key, value)
	}
	return claimed, "", err
}

// confirmRedis marks key delivered with the body's digest and the backend's answer
// (rememberedAnswer, "" for none) for ttlMs from now, whatever became of the claim
// (lapsed, or taken over by a retry through another replica).
func confirmRedis(p *redisPool, key, digest, answer string, ttlMs int64) error {
	value := "d:" + digest
	if answer != "" {
		value += ":" + answer
	}
	rkey := p.s.keyPrefix + hex.EncodeToString([]byte(key))
	_, _, err := redisDo(p, rkey, "SET", redisSetPXCommand(rkey, value, strconv.FormatInt(ttlMs, 10)))
	return err
}

// forgetRedis lets key be claimed again by the same body, if it still holds our claim.
func forgetRedis(p *redisPool, key, claim string) error {
	if claim == "" {
		return nil // settled already (undelivered), or never claimed
	}
	rkey := p.s.keyPrefix + hex.EncodeToString([]byte(key))
	_, _, err := redisDo(p, rkey, "EVAL", redisEvalCommand(redisForgetScript, rkey, claim))
	return err
}

// redisPools is, with memoryStores, the package's deliberate mutable state: Traefik
// calls New for every router and on every reload, without teardown, and a pool per New
// would open connections without end. So each distinct set of settings (address,
// credentials, db, TLS, timeout and key prefix) has one pool for the life of the
// process, shared by every middleware instance that uses it. The registry only grows by
// configured settings; a pool nobody uses any more holds no connection.
var redisPools = &redisRegistry{byKey: make(map[string]*redisPool)}

type redisRegistry struct {
	mu    sync.Mutex
	byKey map[string]*redisPool
}

// sharedRedisPool returns the pool for s, made on first use, and registers ctx, New's
// context, as one of its users. Traefik cancels that context at the next reload; when
// every context registered with a pool is done, its idle connections are closed, and
// the connections in use are closed when they come back, so that an old configuration
// leaves no connection open. A request in flight is not disturbed, and a pool without
// users still serves (with a connection per operation) until a new New registers again.
// It connects to nothing and starts no goroutine: context.AfterFunc starts one only
// when ctx is done.
func sharedRedisPool(ctx context.Context, s *redisSettings) *redisPool {
	redisPools.mu.Lock()
	p, ok := redisPools.byKey[s.poolKey]
	if !ok {
		p = newRedisPool(s)
		redisPools.byKey[s.poolKey] = p
	}
	redisPools.mu.Unlock()

	p.mu.Lock()
	p.users++
	p.mu.Unlock()
	if ctx != nil && ctx.Done() != nil {
		context.AfterFunc(ctx, func() { releaseRedisUser(p) })
	}
	return p
}

// releaseRedisUser is called once a registered context is done.
func releaseRedisUser(p *redisPool) {
	p.mu.Lock()
	p.users--
	if p.users > 0 {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	dropIdleRedis(p)
	if !p.routed.Load() {
		return
	}
	rt := p.routes
	rt.mu.RLock()
	nodes := make([]*redisPool, 0, len(rt.nodes))
	for _, node := range rt.nodes {
		nodes = append(nodes, node)
	}
	rt.mu.RUnlock()
	for i := 0; i < len(nodes); i++ {
		if nodes[i] != p {
			dropIdleRedis(nodes[i])
		}
	}
}

func newRedisPool(s *redisSettings) *redisPool {
	p := &redisPool{
		s:     s,
		token: redisTokenPrefix() + "-",
	}
	if s.sentinels != nil {
		p.routes = &redisRoutes{nodes: make(map[string]*redisPool), stale: true}
		p.routed.Store(true)
	}
	return p
}

// redisTokenPrefix is random, drawn once per pool, so that two processes (Traefik
// replicas) never write the same claim value; a counter tells the claims of one pool
// apart without a call to crypto/rand per request.
func redisTokenPrefix() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b)
}

// settleRedis settles cb's claim in Redis on the backend's answer: delivered (a 2xx), or
// forgotten so that ZEGO's retry gets through. A failure is logged: the
// claim then lapses on its own after inFlightTimeout.
func settleRedis(m *middleware, cb *callback) {
	if cb.entry != nil { // claimed in this Traefik's memory too (redis.failOpen)
		settleFallback(m, cb)
	}
	var err error
	delivered := cb.answer.Code/100 == 2
	if delivered {
		err = confirmRedis(m.redis, cb.key, redisDigest(cb), rememberedAnswer(cb.answer, m.answerBytes, cb.answered), m.ttlMs)
	} else {
		noteUndelivered(m, cb)
		err = forgetRedis(m.redis, cb.key, cb.claim)
	}
	switch {
	case err == nil:
	case delivered && errors.Is(err, errRedisUnreplicated):
		m.s.log.printf(levelError, "store_settlement", "replay store recorded a delivery on the primary only: %v; a failover before it replicates may forward a copy again", err)
	default:
		m.s.log.printf(levelError, "store_settlement", "replay store could not record a delivery (delivered=%v): %v; the claim lapses after inFlightTimeout", delivered, err)
	}
}

// settleFallback settles the claim redis.failOpen made in this Traefik's memory, as
// settleMemory does the memory store's.
func settleFallback(m *middleware, cb *callback) {
	if cb.answer.Code/100 != 2 {
		forgetMemory(m.fallback, cb.key, cb.receivedMs)
		return
	}
	answer := rememberedAnswer(cb.answer, m.answerBytes, cb.answered)
	m.fallback.mu.Lock()
	cb.entry.v = cb.entry.v&^entryStateMask | entryDelivered
	cb.entry.answer = answer
	m.fallback.mu.Unlock()
}
