package zegocallback

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A small Redis client: the few RESP2 commands the replay store needs, over a bounded
// pool of connections. It is written here with the standard library because Traefik's
// interpreter cannot load the usual clients (go-redis needs unsafe; redigo fails with a
// type error). Like the memory store, it is plain functions that take the pool, not
// methods (see DESIGN.md).

// redisMaxConns bounds the connections one pool keeps open, idle or busy. A claim
// holds one for a round trip or two, so 32 serve thousands of callbacks a second; a
// request that finds all of them busy waits up to the timeout for one.
const redisMaxConns = 32

// errRedisBusy is the error of a request that found every connection busy for the
// whole timeout.
var errRedisBusy = errors.New("no free connection")

// redisConn is one connection. It is used by one operation at a time, and closed, never
// reused, after any error on it (I/O, timeout, a reply it could not read).
type redisConn struct {
	nc net.Conn
	br *bufio.Reader
}

// redisPool is the connections to one Redis with one set of settings, shared by every
// middleware instance that uses them (see sharedRedisPool).
type redisPool struct {
	s       *redisSettings
	token   string        // "<random>-", the start of this pool's claim tokens
	seq     atomic.Uint64 // numbers the claims: token+seq is unique to one claim
	mu      sync.Mutex
	idle    []*redisConn    // reused last in, first out
	open    int             // connections open or being dialed, the idle ones included
	waiters []chan struct{} // requests waiting for a connection, longest first
	users   int             // contexts registered by sharedRedisPool and not yet done
	// down says the last connection made failed: the next that succeeds is told in the
	// log, as the first failure was (redisHealth).
	down atomic.Bool
	// routes, once routed is set, are where the commands go: a cluster's nodes or the
	// sentinels' primary (redis_route.go). Each node has a pool of its own, whose root
	// is this pool (nil for the root itself), and which is retired when the node leaves
	// the routes.
	routes  *redisRoutes
	routed  atomic.Bool
	root    *redisPool
	retired atomic.Bool
}

// redisOp is one operation's hold on a connection, for the commands it sends.
type redisOp struct {
	c *redisConn // nil once dropped after an error
	// proven says that c answered in this operation or was dialed for it, so that an
	// error on it is Redis's, not a connection that died while idle.
	proven bool
}

// beginRedis takes a connection for an operation: the last idle one, else a new one,
// else, when all redisMaxConns are busy, the first one freed within the timeout.
//
// A request that waits does so on a channel of its own, woken by whoever frees a
// connection or by a timer, with a plain receive: Yaegi's select shares its cases
// between the goroutines that run it, so two requests waiting in one select race, and
// one may wait on the other's timer.
func beginRedis(p *redisPool, op *redisOp) error {
	deadline := time.Now().Add(p.s.timeout)
	for {
		p.mu.Lock()
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			op.c = c
			op.proven = false
			return nil
		}
		if p.open < redisMaxConns {
			p.open++
			p.mu.Unlock()
			c, err := dialRedis(p.s)
			if err != nil {
				releaseRedisSlots(p, 1)
				redisHealth(p, err)
				return err
			}
			if p.down.Load() {
				redisHealth(p, nil)
			}
			op.c = c
			op.proven = true
			return nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			p.mu.Unlock()
			return fmt.Errorf("redis %s: %w: all %d busy for %v", p.s.address, errRedisBusy, redisMaxConns, p.s.timeout)
		}
		waitForRedis(p, wait)
	}
}

// waitForRedis waits until a connection or a place is freed, or wait has passed. It is
// called with p.mu held, so that no freeing falls between the caller's look and the
// wait, and returns with p.mu released. It walks the waiters by index: Yaegi v0.16.1
// panics on a range with a value over a slice of channels.
func waitForRedis(p *redisPool, wait time.Duration) {
	// Room for the wake-up and the timer's send: neither ever blocks.
	w := make(chan struct{}, 2)
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	timer := time.AfterFunc(wait, func() { w <- struct{}{} })
	<-w
	timer.Stop()
	// Still listed, the timer woke us: drop out. Woken by a freed connection, we were
	// taken off the list already.
	p.mu.Lock()
	for i := 0; i < len(p.waiters); i++ {
		if p.waiters[i] == w {
			copy(p.waiters[i:], p.waiters[i+1:])
			p.waiters[len(p.waiters)-1] = nil
			p.waiters = p.waiters[:len(p.waiters)-1]
			break
		}
	}
	p.mu.Unlock()
}

// redisExec sends cmd, the command called name, and reads its reply: its kind ('+',
// ':', '$', redisNil, or '-' with an error) and its text. When a connection taken from
// the idle pool fails, it has most likely died while it waited (Redis restarted, or
// dropped it): the other idle ones are dropped as well and the command is sent once more
// on a new connection. That is safe for the store's commands: DEL and SET XX can run
// twice, and a claim's SET NX carries a value by which claimRedis recognises its own.
func redisExec(p *redisPool, op *redisOp, name string, cmd []byte) (byte, string, error) {
	c := op.c
	kind, text, err := roundTripRedis(c, p.s.timeout, cmd)
	if err != nil && !op.proven {
		_ = c.nc.Close()
		dropIdleRedis(p)
		c, err = dialRedis(p.s) // in the place of the one that failed
		if err != nil {
			op.c = nil
			releaseRedisSlots(p, 1)
			return 0, "", err
		}
		op.c = c
		kind, text, err = roundTripRedis(c, p.s.timeout, cmd)
	}
	if err != nil {
		_ = c.nc.Close()
		op.c = nil
		releaseRedisSlots(p, 1)
		return 0, "", fmt.Errorf("redis %s: %s: %w", p.s.address, name, err)
	}
	op.proven = true
	if kind == '-' {
		// An error reply leaves the connection usable.
		return kind, text, fmt.Errorf("redis %s: %s: %s", p.s.address, name, text)
	}
	return kind, text, nil
}

// endRedis gives the operation's connection back: to the idle pool, or closed when no
// middleware uses the pool any more.
func endRedis(p *redisPool, op *redisOp) {
	c := op.c
	if c == nil {
		return
	}
	op.c = nil
	p.mu.Lock()
	if redisInUse(p) {
		p.idle = append(p.idle, c)
		wakeRedisWaiters(p, 1)
		p.mu.Unlock()
		return
	}
	p.open--
	wakeRedisWaiters(p, 1)
	p.mu.Unlock()
	_ = c.nc.Close()
}

// redisInUse says whether a middleware still uses p's settings, so that its idle
// connections are kept. p.mu is held.
func redisInUse(p *redisPool) bool {
	if p.root == nil {
		return p.users > 0
	}
	if p.retired.Load() {
		return false
	}
	p.root.mu.Lock()
	users := p.root.users
	p.root.mu.Unlock()
	return users > 0
}

// releaseRedisSlots gives back n places in the pool, of connections that were closed or
// never opened.
func releaseRedisSlots(p *redisPool, n int) {
	p.mu.Lock()
	p.open -= n
	wakeRedisWaiters(p, n)
	p.mu.Unlock()
}

// dropIdleRedis closes every idle connection.
func dropIdleRedis(p *redisPool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	wakeRedisWaiters(p, len(idle))
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}

// wakeRedisWaiters tells up to n waiting requests, the longest waiting first, that a
// connection or a place is free. A woken request looks again and waits again if another
// took it first. p.mu is held.
func wakeRedisWaiters(p *redisPool, n int) {
	for ; n > 0 && len(p.waiters) > 0; n-- {
		w := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		w <- struct{}{}
	}
}

// dialRedis opens a connection and sends AUTH and SELECT, all within one timeout. A
// refused AUTH or SELECT is a failed connection.
func dialRedis(s *redisSettings) (*redisConn, error) {
	deadline := time.Now().Add(s.timeout)
	d := &net.Dialer{Deadline: deadline}
	var nc net.Conn
	var err error
	if s.tls != nil {
		nc, err = tls.DialWithDialer(d, "tcp", s.address, s.tls)
	} else {
		nc, err = d.Dial("tcp", s.address)
	}
	if err != nil && s.tls != nil && os.IsTimeout(err) {
		// A server that does not speak TLS never answers the handshake: a timeout that
		// reads like a network problem.
		return nil, fmt.Errorf("redis %s: dial with TLS: %w (does the server speak TLS? redis.tls, rediss://)", s.address, err)
	}
	if err != nil {
		return nil, fmt.Errorf("redis %s: dial: %w", s.address, err)
	}
	c := &redisConn{nc: nc, br: bufio.NewReader(nc)}
	handshake, names := redisHandshake(s)
	if len(handshake) == 0 && !s.checkRole {
		return c, nil
	}
	err = nc.SetDeadline(deadline)
	if err == nil && len(handshake) > 0 {
		_, err = nc.Write(handshake)
	}
	if err != nil {
		err = fmt.Errorf("handshake: %w", err)
	}
	for i := 0; i < len(names) && err == nil; i++ {
		kind, text, rerr := readRedisReply(c.br)
		if rerr != nil {
			err = fmt.Errorf("%s: %w", names[i], rerr)
		} else if kind == '-' {
			err = fmt.Errorf("%s: %s", names[i], redisHandshakeError(text, redisPassword(s)))
		}
	}
	if err == nil && s.checkRole {
		err = checkRedisRole(c)
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("redis %s: %w", s.address, err)
	}
	return c, nil
}

// redisHandshakeError is a refused AUTH's or SELECT's text as an error may show it: a
// server that does not know the command echoes its arguments ("ERR unknown command
// 'AUTH', with args beginning with: 'user' 'password'"), which are left out, and the
// password is hidden wherever else it shows.
func redisHandshakeError(text, password string) string {
	if i := strings.Index(text, ", with args"); i >= 0 {
		text = text[:i] + ", with args (not shown)"
	}
	if password != "" {
		quoted := strconv.Quote(password) // the text is quoted (readRedisReply)
		text = strings.ReplaceAll(strings.ReplaceAll(text, password, "(not shown)"), quoted[1:len(quoted)-1], "(not shown)")
	}
	return text
}

// roundTripRedis writes cmd and reads the reply, by a deadline timeout from now.
func roundTripRedis(c *redisConn, timeout time.Duration, cmd []byte) (byte, string, error) {
	if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, "", err
	}
	if _, err := c.nc.Write(cmd); err != nil {
		return 0, "", err
	}
	return readRedisReply(c.br)
}

// redisHealth tells the log when the pool first fails to connect or to authenticate, with
// the reason and what to check, and when it connects again: one line each, not one per
// request (those are bounded by reason, see logRejection). New never connects, so a
// wrong password shows here first.
func redisHealth(p *redisPool, err error) {
	if err == nil {
		if p.down.CompareAndSwap(true, false) {
			p.s.log.printf(levelError, "redis_health", "redis %s: connected again: callbacks are checked against the store again", p.s.address)
		}
		return
	}
	if p.down.CompareAndSwap(false, true) {
		p.s.log.printf(levelError, "redis_health", "%v: %s; until it connects, callbacks get 503 nonce_store_unavailable (or are forwarded unchecked with redis.failOpen)", err, redisFix(err))
	}
}

// redisFix is what to check for a connection's error.
func redisFix(err error) string {
	text := err.Error()
	refused := strings.Contains(text, "WRONGPASS") || strings.Contains(text, "NOAUTH") || strings.Contains(text, "AUTH:")
	switch {
	case strings.Contains(text, "ROLE:"):
		return "the sentinels are asked again for the primary"
	case refused && strings.Contains(text, "sentinel "):
		return "a sentinel refused: check redis.sentinelUsername and redis.sentinelPasswordFile (or redis.sentinelPassword)"
	case refused:
		return "AUTH failed: check redis.username and redis.passwordFile (or redis.password, or the URL's user and password)"
	case strings.Contains(text, "certificate required") || strings.Contains(text, "bad certificate"):
		return "Redis asks for a client certificate: set redis.tlsCertFile and redis.tlsKeyFile (its CA must be Redis's tls-ca-cert-file)"
	case strings.Contains(text, "certificate"):
		return "Redis's certificate is not trusted: set redis.tlsCAFile to the CA that signed it"
	case strings.Contains(text, "sentinel"):
		return "check redis.sentinels and redis.masterName, and that the sentinels are up and reachable from Traefik"
	case strings.Contains(text, "SELECT:"):
		return "SELECT failed: check redis.db (a Redis Cluster has database 0 only)"
	case strings.Contains(text, "speak TLS"):
		return "check redis.tls and the address's scheme (rediss://)"
	}
	return "check redis.address, and that Redis is up and reachable from Traefik"
}
