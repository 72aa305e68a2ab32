package zegocallback

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Which server a command goes to. A single Redis takes every command on the pool's
// own connections. A Redis Cluster is found out, not configured: the first MOVED reply
// turns the pool into the cluster's, which learns the slot map (CLUSTER SLOTS), sends
// each command to the primary of its key's slot, follows MOVED (the slot has moved: the
// map is learnt again) and ASK (the slot is moving: that command alone goes to the
// importing node, after ASKING), and asks again after a node fails, so that a replica
// promoted in a failover takes over. With redis.sentinels, the sentinels name the
// primary of redis.masterName; a new connection checks with ROLE that it speaks to a
// primary, and a node that fails or answers READONLY has the sentinels asked again.
//
// Every store command touches one key, and each is safe to send again where it did not
// run: MOVED and ASK say it did not.

// redisClusterSlots is the number of a cluster's hash slots.
const redisClusterSlots = 16384

// redisMaxRedirects bounds the MOVED and ASK replies one command follows: more is a loop
// between nodes that disagree, answered with an error (503) rather than followed on.
const redisMaxRedirects = 5

// redisMaxNodes bounds the nodes one pool keeps a pool of connections for: Redis Cluster
// has at most 1000 nodes, and a server naming more is not one.
const redisMaxNodes = 1024

// redisRefreshEvery is the shortest time between two askings for the slot map or the
// primary: a failing node has them asked again, but not once per callback.
const redisRefreshEvery = 250 * time.Millisecond

// redisRefreshTries bounds the nodes (or sentinels, beyond the first three, are not
// bounded: they are configured) one refresh of the slot map asks in turn.
const redisRefreshTries = 3

// redisRoutes is where a pool's commands go, once the pool is a cluster's or a
// sentinel's.
type redisRoutes struct {
	mu sync.RWMutex
	// slots is, for a cluster, each slot's primary (nil where the map has none: the
	// command goes to the configured node, which redirects it).
	slots []*redisPool
	// primary is, with sentinels, the primary they named last, nil before.
	primary  *redisPool
	nodes    map[string]*redisPool // the pool of each node, by address; a cluster's holds the root
	good     string                // the node that gave the last slot map
	stale    bool                  // a node failed or redirected: ask again
	asked    time.Time             // when the map or the primary was last asked for
	lastErr  error                 // why the last asking failed, nil when it did not
	failures int                   // askings failed in a row
	sentinel int                   // the sentinel asked first: the last that answered, or the one after the last that did not
	// refresh lets one request at a time ask; the others go on with what is known.
	refresh sync.Mutex
}

// redisDo sends cmd, the command called name that touches key, to the server that holds
// key, and reads its reply (see redisExec).
func redisDo(p *redisPool, key, name string, cmd []byte) (byte, string, error) {
	if p.routed.Load() {
		return redisDoRouted(p, key, name, cmd)
	}
	// One server: redisDoOn, written out, since each call costs a callback dozens of
	// allocations under Yaegi.
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return 0, "", err
	}
	kind, text, err := redisExec(p, &op, name, cmd)
	if err == nil && p.s.waitCommand != nil && redisWrote(kind, text) {
		err = waitRedisReplicas(p, &op)
	}
	endRedis(p, &op)
	if kind == '-' {
		return redisRefused(p, key, name, cmd, text, err)
	}
	return kind, text, err
}

// redisRefused is redisDo's answer to an error reply: a MOVED or an ASK makes the pool a
// cluster's, which follows it, and sends each command where its slot is from then on.
func redisRefused(p *redisPool, key, name string, cmd []byte, text string, err error) (byte, string, error) {
	if !strings.HasPrefix(text, "MOVED ") && !strings.HasPrefix(text, "ASK ") {
		return '-', text, err
	}
	becomeCluster(p) // the server is a cluster's node
	return redisFollow(p, p, name, cmd, '-', text, err)
}

// redisWrote says whether a store command's reply says it wrote: a claim made, a SET, a
// claim marked failed. What only read needs no replica's acknowledgement.
func redisWrote(kind byte, text string) bool {
	return kind == '+' || kind == '$' && text == "claimed" || kind == ':' && text == "1"
}

// redisDoOn sends cmd on a connection of p's, after ASKING when asking.
func redisDoOn(p *redisPool, name string, cmd []byte, asking bool) (byte, string, error) {
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return 0, "", err
	}
	var kind byte
	var text string
	var err error
	if asking {
		// ASKING proves the connection (redisExec), so the command is not sent again on
		// another one, without it.
		kind, text, err = redisExec(p, &op, "ASKING", redisAskingCommand)
	}
	if err == nil {
		kind, text, err = redisExec(p, &op, name, cmd)
	}
	if err == nil && p.s.waitCommand != nil && redisWrote(kind, text) {
		err = waitRedisReplicas(p, &op)
	}
	endRedis(p, &op)
	return kind, text, err
}

// errRedisUnreplicated is a write fewer replicas than redis.waitReplicas acknowledged.
var errRedisUnreplicated = errors.New("not replicated")

// waitRedisReplicas waits, on the connection that wrote, until redis.waitReplicas
// replicas hold the write.
func waitRedisReplicas(p *redisPool, op *redisOp) error {
	kind, text, err := redisExec(p, op, "WAIT", p.s.waitCommand)
	if err != nil {
		return err
	}
	if n, aerr := strconv.Atoi(text); kind != ':' || aerr != nil || n < p.s.waitReplicas {
		return fmt.Errorf("redis %s: WAIT: %s of the %d replicas redis.waitReplicas asks for held the write within %v: %w",
			p.s.address, shownAddress(text), p.s.waitReplicas, p.s.waitFor, errRedisUnreplicated)
	}
	return nil
}

// redisAskingCommand is ASKING: the next command may touch a slot being imported.
var redisAskingCommand = []byte("*1\r\n$6\r\nASKING\r\n")

// becomeCluster makes p a cluster's pool, its node the first in the slot map's place.
func becomeCluster(p *redisPool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.routes != nil {
		return
	}
	rt := &redisRoutes{nodes: map[string]*redisPool{p.s.address: p}, good: p.s.address, stale: true}
	p.routes = rt
	p.routed.Store(true)
	p.s.log.printf(levelDebug, "redis_cluster", "redis %s: is a Redis Cluster node (MOVED): commands go to the primary of each key's slot", p.s.address)
}

// redisDoRouted is redisDo for a cluster or a sentinel's primary: the command goes to the
// node that holds key, and follows its answer when it fails (redisFollow).
func redisDoRouted(p *redisPool, key, name string, cmd []byte) (byte, string, error) {
	node, err := redisRoute(p, p.routes, key)
	if err != nil {
		return 0, "", err
	}
	kind, text, err := redisDoOn(node, name, cmd, false)
	if err != nil {
		return redisFollow(p, node, name, cmd, kind, text, err)
	}
	return kind, text, nil
}

// redisFollow goes on from a command's failed answer (kind, text, err) from node: it
// follows a MOVED or an ASK to the node it names, redisMaxRedirects times at most, and
// has the routes asked for again after a failure that may be a failover.
func redisFollow(p *redisPool, node *redisPool, name string, cmd []byte, kind byte, text string, err error) (byte, string, error) {
	rt := p.routes
	asking := false
	for hop := 0; ; hop++ {
		if hop > 0 {
			kind, text, err = redisDoOn(node, name, cmd, asking)
		}
		if err == nil {
			return kind, text, nil
		}
		if kind != '-' {
			if !errors.Is(err, errRedisBusy) && !errors.Is(err, errRedisUnreplicated) {
				markRoutesStale(rt) // the node may be down: a failover
			}
			return kind, text, err
		}
		redirect, slot, addr := redisRedirect(text)
		if redirect == "" {
			if strings.HasPrefix(text, "READONLY") || strings.HasPrefix(text, "MASTERDOWN") ||
				strings.HasPrefix(text, "CLUSTERDOWN") || strings.HasPrefix(text, "LOADING") {
				markRoutesStale(rt) // a primary turned replica, or a cluster reshaping
			}
			return kind, text, err
		}
		if hop == redisMaxRedirects {
			markRoutesStale(rt)
			return 0, "", fmt.Errorf("redis %s: %s: redirected %d times (the nodes disagree on who holds the slot; last: %s)", p.s.address, name, hop+1, shownAddress(addr))
		}
		if node, err = redisNode(p, rt, redirectAddress(node, addr)); err != nil {
			return 0, "", err
		}
		asking = redirect == "ASK"
		if !asking {
			rt.mu.Lock()
			if rt.slots != nil {
				rt.slots[slot] = node
			}
			rt.stale = true
			rt.mu.Unlock()
		}
	}
}

// redisRedirect reads a MOVED or ASK error's text, "MOVED <slot> <host:port>", and
// returns which it is ("" for neither, or one that does not parse), the slot and the
// address.
func redisRedirect(text string) (string, int, string) {
	fields := strings.Fields(text)
	if len(fields) != 3 || fields[0] != "MOVED" && fields[0] != "ASK" {
		return "", 0, ""
	}
	slot, err := strconv.Atoi(fields[1])
	if err != nil || slot < 0 || slot >= redisClusterSlots {
		return "", 0, ""
	}
	return fields[0], slot, fields[2]
}

// redirectAddress is the host:port of a MOVED or ASK that node sent: Redis writes it
// <host>:<port>, an IPv6 host without brackets, and an empty host (Redis 7's
// cluster-preferred-endpoint-type unknown-endpoint) for node's own host.
func redirectAddress(node *redisPool, addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr // not host:port: refused by redisNode
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr[:i], "["), "]")
	if host == "" {
		host, _, _ = net.SplitHostPort(node.s.address)
	}
	return net.JoinHostPort(host, addr[i+1:])
}

// markRoutesStale has the routes asked for again by the next command.
func markRoutesStale(rt *redisRoutes) {
	rt.mu.Lock()
	rt.stale = true
	rt.mu.Unlock()
}

// redisRoute is the node that takes key's commands now: asked for first when due (a
// node failed or redirected, at most every redisRefreshEvery), or when nothing is known
// yet, in which case the request waits for the asking.
func redisRoute(p *redisPool, rt *redisRoutes, key string) (*redisPool, error) {
	slot := -1
	if p.s.sentinels == nil {
		slot = redisSlot(key)
	}
	// The common case, routes known and not stale, without a call more (each costs
	// dozens of allocations under Yaegi).
	rt.mu.RLock()
	node := rt.primary
	if slot >= 0 && rt.slots != nil {
		node = rt.slots[slot]
	}
	stale := rt.stale
	rt.mu.RUnlock()
	if node != nil && !stale {
		return node, nil
	}
	return redisRouteAsking(p, rt, slot)
}

// redisRouteAsking is redisRoute when the routes may be due to be asked for again.
func redisRouteAsking(p *redisPool, rt *redisRoutes, slot int) (*redisPool, error) {
	node, due := routeOf(p, rt, slot)
	if !due {
		if node != nil {
			return node, nil
		}
		return nil, noRedisPrimary(p, rt)
	}
	if node == nil {
		rt.refresh.Lock() // nothing to go on with: wait for the asking under way
	} else if !rt.refresh.TryLock() {
		return node, nil // another command asks: this one goes on with what is known
	}
	if node, due = routeOf(p, rt, slot); due {
		refreshRoutes(p, rt)
		node, _ = routeOf(p, rt, slot)
	}
	rt.refresh.Unlock()
	if node == nil {
		return nil, noRedisPrimary(p, rt)
	}
	return node, nil
}

// noRedisPrimary is the error of a command for which the sentinels named no primary.
func noRedisPrimary(p *redisPool, rt *redisRoutes) error {
	rt.mu.RLock()
	err := rt.lastErr
	rt.mu.RUnlock()
	if err == nil {
		err = errors.New("not asked yet")
	}
	return fmt.Errorf("redis sentinels: no primary known for %q: %w", p.s.masterName, err)
}

// routeOf is slot's node (the primary with sentinels, for slot -1) and whether the
// routes are due to be asked for again.
func routeOf(p *redisPool, rt *redisRoutes, slot int) (*redisPool, bool) {
	rt.mu.RLock()
	// After asking failed, the next asking waits longer: twice as long each time, up to
	// eight times redisRefreshEvery.
	backoff := rt.failures
	if backoff > 3 {
		backoff = 3
	}
	due := rt.stale && time.Since(rt.asked) >= redisRefreshEvery<<backoff
	node := rt.primary
	if slot >= 0 {
		node = p // the configured node redirects what the map does not hold
		if rt.slots != nil && rt.slots[slot] != nil {
			node = rt.slots[slot]
		}
	}
	rt.mu.RUnlock()
	return node, due
}

// refreshRoutes asks for the slot map or the primary, and keeps what it learns. It runs
// in the request that found the routes due (the plugin starts no goroutine), for one
// redis.timeout at most, however many sentinels or nodes do not answer: the next asking
// starts with the next of them.
func refreshRoutes(p *redisPool, rt *redisRoutes) {
	deadline := time.Now().Add(p.s.timeout)
	var err error
	if p.s.sentinels != nil {
		err = askSentinels(p, rt, deadline)
	} else {
		err = askSlotMap(p, rt, deadline)
	}
	rt.mu.Lock()
	rt.asked = time.Now()
	rt.lastErr = err
	if err == nil {
		rt.stale = false
		rt.failures = 0
	} else {
		rt.failures++
	}
	rt.mu.Unlock()
	if p.s.sentinels != nil {
		redisHealth(p, err)
	} else if err != nil { // a cluster's nodes tell their own connections' failures
		p.s.log.printf(levelError, "redis_cluster", "%v: the slot map stays as it was", err)
	}
}

// redisNode is the pool for the node at addr, made on first use with p's settings.
func redisNode(p *redisPool, rt *redisRoutes, addr string) (*redisPool, error) {
	rt.mu.RLock()
	node := rt.nodes[addr]
	rt.mu.RUnlock()
	if node != nil {
		return node, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !redisHostName(host) {
		return nil, fmt.Errorf("redis %s: a node address that is not host:port: %s", p.s.address, shownAddress(addr))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("redis %s: a node address without a port from 1 to 65535: %s", p.s.address, shownAddress(addr))
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if node = rt.nodes[addr]; node != nil {
		return node, nil
	}
	if len(rt.nodes) >= redisMaxNodes {
		return nil, fmt.Errorf("redis %s: more than %d nodes named", p.s.address, redisMaxNodes)
	}
	s := *p.s
	s.address = addr
	s.checkRole = p.s.sentinels != nil
	s.sentinels = nil
	if s.tls != nil {
		s.tls = s.tls.Clone()
		if s.tlsServerName == "" {
			s.tls.ServerName = host
		}
	}
	node = &redisPool{s: &s, token: p.token, root: p}
	rt.nodes[addr] = node
	return node, nil
}

// redisHostName says whether host is a name or an address a node may have: nothing a
// reply could smuggle into a log line or a dial besides.
func redisHostName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' || c == '%') {
			return false
		}
	}
	return true
}

// retireRedisNode stops keeping connections to a node no longer in the routes: its idle
// ones are closed, and the ones in use when they come back.
func retireRedisNode(node *redisPool) {
	node.retired.Store(true)
	dropIdleRedis(node)
}

// redisSlotRange is one line of CLUSTER SLOTS: the slots from start to end are served by
// the primary at addr.
type redisSlotRange struct {
	start, end int
	addr       string
}

// redisClusterSlotsCommand is CLUSTER SLOTS.
var redisClusterSlotsCommand = []byte("*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n")

// askSlotMap asks a node for the slot map, trying first the one that gave the last,
// then the configured one, then the others, redisRefreshTries at most, and keeps the map.
func askSlotMap(p *redisPool, rt *redisRoutes, deadline time.Time) error {
	rt.mu.RLock()
	tries := []string{rt.good}
	if p.s.address != rt.good {
		tries = append(tries, p.s.address)
	}
	for addr := range rt.nodes {
		if len(tries) >= redisRefreshTries {
			break
		}
		if addr != rt.good && addr != p.s.address {
			tries = append(tries, addr)
		}
	}
	rt.mu.RUnlock()

	var err error
	for i, addr := range tries {
		if i > 0 && time.Now().After(deadline) {
			break
		}
		var node *redisPool
		if node, err = redisNode(p, rt, addr); err != nil {
			continue
		}
		var ranges []redisSlotRange
		asked := addr
		err = redisQuery(node, redisClusterSlotsCommand, func(r *bufio.Reader) error {
			var rerr error
			ranges, rerr = readClusterSlots(r, asked)
			return rerr
		})
		if err == nil {
			return keepSlotMap(p, rt, addr, ranges)
		}
		if addr == rt.good { // asked first each time: the next asking starts elsewhere
			rt.mu.Lock()
			rt.good = p.s.address
			if len(tries) > 1 {
				rt.good = tries[1]
			}
			rt.mu.Unlock()
		}
	}
	return fmt.Errorf("redis cluster: CLUSTER SLOTS: %w", err)
}

// keepSlotMap makes ranges, which node at addr gave, the slot map.
func keepSlotMap(p *redisPool, rt *redisRoutes, addr string, ranges []redisSlotRange) error {
	slots := make([]*redisPool, redisClusterSlots)
	used := make(map[*redisPool]bool)
	for _, r := range ranges {
		node, err := redisNode(p, rt, r.addr)
		if err != nil {
			return err
		}
		used[node] = true
		// Each slot is set once: ranges that overlap are no slot map (and would cost a
		// write per slot per range).
		for i := r.start; i <= r.end; i++ {
			if slots[i] != nil {
				return fmt.Errorf("redis %s: CLUSTER SLOTS: %w: ranges overlap at slot %d", addr, errRedisProtocol, i)
			}
			slots[i] = node
		}
	}
	used[p] = true // the configured node stays, if only to be asked
	rt.mu.Lock()
	rt.slots = slots
	rt.good = addr
	var gone []*redisPool
	for a, node := range rt.nodes {
		if !used[node] && a != addr {
			gone = append(gone, node)
			delete(rt.nodes, a)
		}
	}
	rt.mu.Unlock()
	for i := 0; i < len(gone); i++ {
		retireRedisNode(gone[i])
	}
	return nil
}

// readClusterSlots reads CLUSTER SLOTS's reply: for each range, its first and last slot,
// then its primary (host, port, and what Redis 7 adds), then its replicas. A primary
// whose host is empty is the node asked, at asked; one whose host is "?" is unknown, and
// its range is left out (the configured node redirects it).
func readClusterSlots(r *bufio.Reader, asked string) ([]redisSlotRange, error) {
	n, err := readRedisArray(r)
	if err != nil {
		return nil, err
	}
	askedHost, _, _ := net.SplitHostPort(asked)
	var ranges []redisSlotRange
	for i := 0; i < n; i++ {
		m, err := readRedisArray(r)
		if err != nil {
			return nil, err
		}
		if m < 3 {
			return nil, fmt.Errorf("%w: a slot range of %d items", errRedisProtocol, m)
		}
		start, err := readRedisInt(r)
		if err != nil {
			return nil, err
		}
		end, err := readRedisInt(r)
		if err != nil {
			return nil, err
		}
		if start < 0 || end < start || end >= redisClusterSlots {
			return nil, fmt.Errorf("%w: slots %d to %d", errRedisProtocol, start, end)
		}
		k, err := readRedisArray(r)
		if err != nil {
			return nil, err
		}
		if k < 2 {
			return nil, fmt.Errorf("%w: a node of %d items", errRedisProtocol, k)
		}
		kind, host, err := readRedisReply(r)
		if err != nil {
			return nil, err
		}
		port, err := readRedisInt(r)
		if err != nil {
			return nil, err
		}
		for j := 2; j < k && err == nil; j++ {
			err = skipRedisValue(r, 2)
		}
		for j := 3; j < m && err == nil; j++ {
			err = skipRedisValue(r, 3)
		}
		if err != nil {
			return nil, err
		}
		if kind != '$' && kind != redisNil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("%w: a node's host or port", errRedisProtocol)
		}
		if host == "?" {
			continue
		}
		if host == "" { // the node asked (Redis 7's unknown-endpoint gives nil)
			host = askedHost
		}
		if !redisHostName(host) {
			return nil, fmt.Errorf("%w: a node's host is no host name: %s", errRedisProtocol, shownAddress(host))
		}
		ranges = append(ranges, redisSlotRange{start: start, end: end, addr: net.JoinHostPort(host, strconv.Itoa(port))})
	}
	return ranges, nil
}

// readRedisInt reads an integer reply.
func readRedisInt(r *bufio.Reader) (int, error) {
	kind, text, err := readRedisReply(r)
	if err != nil {
		return 0, err
	}
	n, aerr := strconv.Atoi(text)
	if kind != ':' || aerr != nil {
		return 0, fmt.Errorf("%w: %q where an integer was expected", errRedisProtocol, kind)
	}
	return n, nil
}

// redisQuery sends cmd on a connection of p's and has read read the reply, by p's
// timeout. The connection is closed after any error.
func redisQuery(p *redisPool, cmd []byte, read func(*bufio.Reader) error) error {
	var op redisOp
	if err := beginRedis(p, &op); err != nil {
		return err
	}
	c := op.c
	err := c.nc.SetDeadline(time.Now().Add(p.s.timeout))
	if err == nil {
		_, err = c.nc.Write(cmd)
	}
	if err == nil {
		err = read(c.br)
	}
	if err != nil {
		_ = c.nc.Close()
		op.c = nil
		releaseRedisSlots(p, 1)
		return fmt.Errorf("redis %s: %w", p.s.address, err)
	}
	endRedis(p, &op)
	return nil
}

// askSentinels asks the sentinels, in turn, for the address of redis.masterName's
// primary, and makes it the primary.
func askSentinels(p *redisPool, rt *redisRoutes, deadline time.Time) error {
	cmd := appendRedisCommand(nil, "SENTINEL", "get-master-addr-by-name", p.s.masterName)
	var errs []string
	rt.mu.RLock()
	first := rt.sentinel
	rt.mu.RUnlock()
	n := len(p.s.sentinels)
	for i := 0; i < n; i++ {
		if i > 0 && time.Now().After(deadline) {
			break
		}
		at := (first + i) % n
		sentinel := p.s.sentinels[at]
		addr, err := askSentinel(p.s, sentinel, cmd, deadline)
		if err != nil {
			errs = append(errs, err.Error())
			rt.mu.Lock()
			rt.sentinel = (at + 1) % n // the next asking starts with the next sentinel
			rt.mu.Unlock()
			continue
		}
		node, err := redisNode(p, rt, addr)
		if err != nil {
			errs = append(errs, "sentinel "+sentinel+": "+err.Error())
			continue
		}
		rt.mu.Lock()
		old := rt.primary
		rt.primary = node
		if old != nil && old != node {
			delete(rt.nodes, old.s.address)
		}
		rt.mu.Unlock()
		if old != node {
			p.s.log.printf(levelError, "redis_sentinel", "redis sentinels: the primary of %q is %s (sentinel %s)", p.s.masterName, addr, sentinel)
		}
		if old != nil && old != node {
			retireRedisNode(old)
		}
		return nil
	}
	return fmt.Errorf("redis sentinels: none named the primary of %q: %s", p.s.masterName, strings.Join(errs, "; "))
}

// askSentinel asks one sentinel, on a connection of its own, for the primary's address,
// by deadline (or in one redis.timeout, when that has passed).
func askSentinel(s *redisSettings, sentinel string, cmd []byte, deadline time.Time) (string, error) {
	// The sentinel's settings: s's TLS and timeout, the sentinel's credentials, no
	// database, no ROLE.
	ss := *s
	ss.address = sentinel
	ss.username = s.sentinel.username
	ss.password = s.sentinel.password
	ss.passwordFile = s.sentinel.passwordFile
	ss.db = 0
	ss.checkRole = false
	if ss.tls != nil && ss.tlsServerName == "" {
		ss.tls = ss.tls.Clone()
		ss.tls.ServerName, _, _ = net.SplitHostPort(sentinel)
	}
	ss.timeout = time.Until(deadline) // the dial's share
	if ss.timeout < time.Millisecond {
		ss.timeout = time.Millisecond
	}
	c, err := dialRedis(&ss)
	if err != nil {
		return "", fmt.Errorf("sentinel %w", err)
	}
	defer c.nc.Close()
	var host, port string
	err = c.nc.SetDeadline(deadline)
	if err == nil {
		_, err = c.nc.Write(cmd)
	}
	n := 0
	if err == nil {
		n, err = readRedisArray(c.br)
	}
	if err == nil && n != 2 {
		err = fmt.Errorf("does not know the master name %q", s.masterName)
	}
	var hostKind, portKind byte
	if err == nil {
		hostKind, host, err = readRedisReply(c.br)
	}
	if err == nil {
		portKind, port, err = readRedisReply(c.br)
	}
	if err == nil && (hostKind != '$' || portKind != '$') {
		err = fmt.Errorf("%w: the address is not two strings", errRedisProtocol)
	}
	if err != nil {
		return "", fmt.Errorf("sentinel %s: SENTINEL get-master-addr-by-name: %w", sentinel, err)
	}
	if !redisHostName(host) {
		return "", fmt.Errorf("sentinel %s: names a primary whose host is not a host name: %s", sentinel, shownAddress(host))
	}
	return net.JoinHostPort(host, port), nil
}

// redisRoleCommand is ROLE.
var redisRoleCommand = []byte("*1\r\n$4\r\nROLE\r\n")

// checkRedisRole asks a new connection's server for its role: one a sentinel named must
// be a primary, not a replica (a failover under way) or another server.
func checkRedisRole(c *redisConn) error {
	_, err := c.nc.Write(redisRoleCommand)
	n := 0
	if err == nil {
		n, err = readRedisArray(c.br)
	}
	if err == nil && n < 1 {
		err = fmt.Errorf("%w: an empty ROLE", errRedisProtocol)
	}
	var role string
	if err == nil {
		_, role, err = readRedisReply(c.br)
	}
	for i := 1; i < n && err == nil; i++ {
		err = skipRedisValue(c.br, 3)
	}
	if err != nil {
		return fmt.Errorf("ROLE: %w", err)
	}
	if role != "master" {
		return fmt.Errorf("ROLE: the server the sentinels named is a %s, not the primary (a failover under way?)", shownAddress(role))
	}
	return nil
}

// crc16Table is the table of the CRC16 (XMODEM) that Redis Cluster hashes keys with.
var crc16Table = makeCRC16Table()

func makeCRC16Table() []uint16 {
	t := make([]uint16, 256)
	for i := 0; i < 256; i++ {
		crc := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}

// redisSlot is key's hash slot: the CRC16 of the key, or of its hash tag (what is
// between its first { and the } after, when that is not empty), modulo 16384.
func redisSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^key[i]]
	}
	return int(crc & (redisClusterSlots - 1))
}
