package zegocallback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Redis replay store keeps the memory store's states in one key per callback, so
// that every Traefik replica that shares the Redis shares them:
//
//	claim:   SET <key> inflight:<token>:<digest> NX PX <inFlightTimeout>   OK: claimed
//	         else GET <key>     the same digest: in flight or delivered; another: reused
//	deliver: SET <key> delivered:<digest> PX <ttl>
//	fail:    EVAL <delete the key if it still holds our claim> 1 <key> <claim>
//
// The key is the configured prefix then the hex of the callback's key (its signature).
// A claim lives for inFlightTimeout only: one whose owner died (a replica killed
// mid-delivery, a reply lost, Redis failing before the settlement) lapses on its own,
// and ZEGO's next retry is claimed anew. A delivery sets the delivered state with the
// full lifetime whatever became of its claim; a failed one deletes its own claim and
// never another replica's, which the token tells apart.

// redisDeliveredPrefix starts the value of a delivered callback's key; a bare
// "delivered" is one written by a version that kept no digest.
const redisDeliveredPrefix = "delivered"

// redisForgetScript deletes KEYS[1] if it holds ARGV[1]: one atomic step, in Redis and
// Valkey alike.
const redisForgetScript = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// claimRedis marks key in flight for inFlightMs with the body's digest (hex), unless Redis
// holds it already: then it changes nothing and says what it found. It returns the
// claim's value, the token its settlement needs.
//
// Each claim writes a value of its own, the pool's token, a number and the digest: when
// a SET NX reached Redis but its reply was lost with the connection, redisExec sends it
// again on a new connection, which finds the key taken; the GET then shows our own
// value, and the claim is ours.
func claimRedis(p *redisPool, key, digest string, inFlightMs int64) (claimResult, string, error) {
	rkey := p.s.keyPrefix + hex.EncodeToString([]byte(key))
	value := p.token + strconv.FormatUint(p.seq.Add(1), 36) + ":" + digest
	set := redisSetCommand(rkey, value, "NX", strconv.FormatInt(inFlightMs, 10))
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return claimed, "", err
	}
	// A key that expires or is deleted between SET NX and GET is claimed again, once.
	for try := 0; try < 2; try++ {
		kind, _, err := redisExec(p, &op, "SET", set)
		if err != nil {
			endRedis(p, &op)
			return claimed, "", err
		}
		if kind == '+' {
			endRedis(p, &op)
			return claimed, value, nil
		}
		if kind != redisNil {
			endRedis(p, &op)
			return claimed, "", fmt.Errorf("redis %s: SET NX: unexpected reply of type %q", p.s.address, kind)
		}
		kind, found, err := redisExec(p, &op, "GET", redisKeyCommand("GET", rkey))
		if err != nil {
			endRedis(p, &op)
			return claimed, "", err
		}
		if kind == '$' {
			endRedis(p, &op)
			return redisFound(p, found, value, digest)
		}
	}
	endRedis(p, &op)
	return claimed, "", fmt.Errorf("redis %s: SET NX: the key vanished twice while it was claimed", p.s.address)
}

// redisFound reads the value a claim found in the key: its own (a retried SET NX whose
// first reply was lost), a delivery or another claim, and whether its digest is ours.
// Values written by a version that kept no digest count as the same body.
func redisFound(p *redisPool, found, value, digest string) (claimResult, string, error) {
	if found == value {
		return claimed, value, nil
	}
	// inflight:<pool>:<seq>:<digest> and delivered:<digest>; before digests were kept,
	// inflight:<pool>:<seq> and delivered.
	state := inFlight
	withDigest := strings.Count(found, ":") == 3
	if strings.HasPrefix(found, redisDeliveredPrefix) {
		state = delivered
		withDigest = len(found) > len(redisDeliveredPrefix)
	} else if !strings.HasPrefix(found, "inflight:") {
		// Not the key in the message: it holds the callback's signature, which stays
		// out of the logs.
		return claimed, "", fmt.Errorf("redis %s: GET: a key of this store holds a value it does not write", p.s.address)
	}
	if withDigest && found[strings.LastIndexByte(found, ':')+1:] != digest {
		return reused, "", nil
	}
	return state, "", nil
}

// confirmRedis marks key delivered with the body's digest for ttlMs from now, whatever
// became of the claim (lapsed, or taken over by a retry through another replica).
func confirmRedis(p *redisPool, key, digest string, ttlMs int64) error {
	cmd := redisSetPXCommand(p.s.keyPrefix+hex.EncodeToString([]byte(key)), redisDeliveredPrefix+":"+digest, strconv.FormatInt(ttlMs, 10))
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return err
	}
	_, _, err := redisExec(p, &op, "SET", cmd)
	endRedis(p, &op)
	return err
}

// forgetRedis lets key be claimed again, if it still holds our claim.
func forgetRedis(p *redisPool, key, claim string) error {
	cmd := redisEvalCommand(redisForgetScript, p.s.keyPrefix+hex.EncodeToString([]byte(key)), claim)
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return err
	}
	_, _, err := redisExec(p, &op, "EVAL", cmd)
	endRedis(p, &op)
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
func sharedRedisPool(s *redisSettings, ctx context.Context) *redisPool { //nolint:revive // the order the integration asked for
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
}

func newRedisPool(s *redisSettings) *redisPool {
	return &redisPool{
		s:     s,
		token: "inflight:" + redisTokenPrefix() + ":",
	}
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
