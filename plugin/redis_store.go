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
//	claim:   SET <key> inflight:<token> NX PX <ttl>  OK: Claimed
//	         else GET <key>                          inflight:...: InFlight; delivered: Delivered
//	confirm: SET <key> delivered XX PX <ttl>
//	forget:  DEL <key>
//
// The key is the configured prefix then the hex of the callback's key (its signature).

// redisDelivered is the value of a delivered callback's key.
const redisDelivered = "delivered"

// claimRedis marks key in flight for ttlMs, unless Redis holds it already: then it
// changes nothing and says what it found.
//
// Each claim writes a value of its own, the pool's token then a number: when a SET NX
// reached Redis but its reply was lost with the connection, redisExec sends it again on
// a new connection, which finds the key taken; the GET then shows our own value, and the
// claim is ours (Claimed). With a bare "inflight" the callback would stay in flight until
// it expired, and every retry of ZEGO's would get 409.
func claimRedis(p *redisPool, key string, ttlMs int64) (ClaimResult, error) {
	rkey := p.s.keyPrefix + hex.EncodeToString([]byte(key))
	value := p.token + strconv.FormatUint(p.seq.Add(1), 36)
	ttl := strconv.FormatInt(ttlMs, 10)
	set := redisSetCommand(rkey, value, "NX", ttl)
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return Claimed, err
	}
	// A key that expires or is deleted between SET NX and GET is claimed again, once.
	for try := 0; try < 2; try++ {
		kind, _, err := redisExec(p, &op, "SET", set)
		if err != nil {
			endRedis(p, &op)
			return Claimed, err
		}
		if kind == '+' {
			endRedis(p, &op)
			return Claimed, nil
		}
		if kind != redisNil {
			endRedis(p, &op)
			return Claimed, fmt.Errorf("redis %s: SET NX: unexpected reply of type %q", p.s.address, kind)
		}
		kind, found, err := redisExec(p, &op, "GET", redisKeyCommand("GET", rkey))
		if err != nil {
			endRedis(p, &op)
			return Claimed, err
		}
		if kind == '$' {
			endRedis(p, &op)
			if found == value {
				return Claimed, nil
			}
			if found == redisDelivered {
				return Delivered, nil
			}
			if strings.HasPrefix(found, "inflight") {
				return InFlight, nil
			}
			// Not the key in the message: it holds the callback's signature, which stays
			// out of the logs.
			return Claimed, fmt.Errorf("redis %s: GET: a key of this store holds a value it does not write", p.s.address)
		}
	}
	endRedis(p, &op)
	return Claimed, fmt.Errorf("redis %s: SET NX: the key vanished twice while it was claimed", p.s.address)
}

// confirmRedis marks key delivered for ttlMs. A key that has expired meanwhile stays
// gone, as in the memory store.
func confirmRedis(p *redisPool, key string, ttlMs int64) error {
	cmd := redisSetCommand(p.s.keyPrefix+hex.EncodeToString([]byte(key)), redisDelivered, "XX", strconv.FormatInt(ttlMs, 10))
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return err
	}
	_, _, err := redisExec(p, &op, "SET", cmd)
	endRedis(p, &op)
	return err
}

// forgetRedis lets key be claimed again.
func forgetRedis(p *redisPool, key string) error {
	cmd := redisKeyCommand("DEL", p.s.keyPrefix+hex.EncodeToString([]byte(key)))
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return err
	}
	_, _, err := redisExec(p, &op, "DEL", cmd)
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
		ready: make(chan struct{}, redisMaxConns),
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
