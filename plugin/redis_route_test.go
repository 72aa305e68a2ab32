package zegocallback

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The routing's parsing and its defences against a server that answers what no Redis
// would: a scripted server on 127.0.0.1, since no real Redis sends these. The real
// cluster and the real sentinels are in redis_cluster_test.go.

func TestRedisSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		slot int
	}{
		// From the Redis Cluster specification and CLUSTER KEYSLOT.
		{"123456789", 0x31C3},
		{"foo", 12182},
		{"somekey", 11058},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", 8363},    // an empty tag: the whole key
		{"foo{{bar}}zap", 4015}, // the tag is "{bar"
		{"foo{bar}{zap}", 5061}, // the first tag only
		{"", 0},
	} {
		if got := redisSlot(tc.key); got != tc.slot {
			t.Errorf("redisSlot(%q) = %d, want %d", tc.key, got, tc.slot)
		}
	}
	// Against the tests' own, bit by bit, on the store's keys.
	for i := 0; i < 2000; i++ {
		key := "zego-callback:" + hex.EncodeToString([]byte(redisTestKey(strconv.Itoa(i))))
		if got, want := redisSlot(key), redistest.KeySlot(key); got != want {
			t.Fatalf("redisSlot(%q) = %d, the specification's %d", key, got, want)
		}
	}
}

func TestRedisRedirectParse(t *testing.T) {
	for _, tc := range []struct {
		text, kind string
		slot       int
		addr       string
	}{
		{"MOVED 3999 127.0.0.1:6381", "MOVED", 3999, "127.0.0.1:6381"},
		{"ASK 0 node-2:7000", "ASK", 0, "node-2:7000"},
		{"MOVED 16384 127.0.0.1:6381", "", 0, ""},
		{"MOVED -1 127.0.0.1:6381", "", 0, ""},
		{"MOVED x 127.0.0.1:6381", "", 0, ""},
		{"MOVED 1", "", 0, ""},
		{"ERR MOVED 1 a:1", "", 0, ""},
	} {
		kind, slot, addr := redisRedirect(tc.text)
		if kind != tc.kind || slot != tc.slot || addr != tc.addr {
			t.Errorf("redisRedirect(%q) = %q %d %q, want %q %d %q", tc.text, kind, slot, addr, tc.kind, tc.slot, tc.addr)
		}
	}
}

func TestRedisRedirectAddress(t *testing.T) {
	v4 := &redisPool{s: &redisSettings{address: "10.0.0.1:7000"}}
	v6 := &redisPool{s: &redisSettings{address: "[fd00::1]:7000"}}
	for _, tc := range []struct {
		node      *redisPool
		addr, out string
	}{
		{v4, "10.0.0.2:7001", "10.0.0.2:7001"},
		{v4, "node-2.redis:7001", "node-2.redis:7001"},
		{v4, ":7001", "10.0.0.1:7001"},  // unknown-endpoint: the node's own host
		{v6, ":7001", "[fd00::1]:7001"}, // the same, an IPv6 node
		{v4, "::1:7001", "[::1]:7001"},  // Redis writes IPv6 without brackets
		{v4, "fd00::2:7001", "[fd00::2]:7001"},
		{v4, "[::1]:7001", "[::1]:7001"},
		{v4, "nohost", "nohost"}, // refused by redisNode
	} {
		if got := redirectAddress(tc.node, tc.addr); got != tc.out {
			t.Errorf("redirectAddress(%s, %q) = %q, want %q", tc.node.s.address, tc.addr, got, tc.out)
		}
	}
}

func TestReadClusterSlotsHostile(t *testing.T) {
	node := func(host string, port int) string {
		return "*3\r\n$" + strconv.Itoa(len(host)) + "\r\n" + host + "\r\n:" + strconv.Itoa(port) + "\r\n$2\r\nid\r\n"
	}
	good := "*2\r\n" +
		"*4\r\n:0\r\n:8191\r\n" + node("10.0.0.1", 7000) + node("10.0.0.2", 7001) +
		"*3\r\n:8192\r\n:16383\r\n*4\r\n$0\r\n\r\n:7002\r\n$2\r\nid\r\n*2\r\n$8\r\nhostname\r\n$2\r\nn3\r\n"
	ranges, err := readClusterSlots(bufio.NewReader(strings.NewReader(good)), "10.0.0.9:7009")
	if err != nil {
		t.Fatalf("a good reply: %v", err)
	}
	if len(ranges) != 2 || ranges[0] != (redisSlotRange{0, 8191, "10.0.0.1:7000"}) || ranges[1] != (redisSlotRange{8192, 16383, "10.0.0.9:7002"}) {
		t.Fatalf("ranges = %+v", ranges)
	}
	for _, tc := range []struct{ name, reply string }{
		{"an error", "-ERR This instance has cluster support disabled\r\n"},
		{"not an array", "+OK\r\n"},
		{"too many ranges", "*99999999\r\n"},
		{"a slot past the last", "*1\r\n*3\r\n:0\r\n:16384\r\n" + node("a", 1)},
		{"slots backwards", "*1\r\n*3\r\n:9\r\n:8\r\n" + node("a", 1)},
		{"a port of 0", "*1\r\n*3\r\n:0\r\n:1\r\n" + node("a", 0)},
		{"a port past 65535", "*1\r\n*3\r\n:0\r\n:1\r\n" + node("a", 70000)},
		{"a short range", "*1\r\n*2\r\n:0\r\n:1\r\n"},
		{"a short node", "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\na\r\n"},
		{"nested without end", "*1\r\n*4\r\n:0\r\n:1\r\n" + node("a", 1) + strings.Repeat("*1\r\n", 10) + ":1\r\n"},
		{"a huge bulk", "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$99999999\r\n"},
		{"cut short", good[:len(good)-9]},
	} {
		if _, err := readClusterSlots(bufio.NewReader(strings.NewReader(tc.reply)), "a:1"); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// scriptedRedis is a server on 127.0.0.1 that answers each command (its arguments) with
// what answer returns, raw RESP, until the test ends.
type scriptedRedis struct {
	addr  string
	calls atomic.Int32
}

func startScriptedRedis(t *testing.T, answer func(args []string) string) *scriptedRedis {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedRedis{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for i := 0; i < len(conns); i++ {
			_ = conns[i].Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go serveScripted(s, c, answer, &wg)
		}
	}()
	return s
}

func serveScripted(s *scriptedRedis, c net.Conn, answer func(args []string) string, wg *sync.WaitGroup) {
	defer wg.Done()
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		args, err := readScriptedCommand(r)
		if err != nil {
			return
		}
		s.calls.Add(1)
		if _, err := c.Write([]byte(answer(args))); err != nil {
			return
		}
	}
}

func readScriptedCommand(r *bufio.Reader) ([]string, error) {
	n, err := readRedisArray(r)
	if err != nil {
		return nil, err
	}
	var args []string
	for i := 0; i < n; i++ {
		_, text, err := readRedisReply(r)
		if err != nil {
			return nil, err
		}
		args = append(args, text)
	}
	return args, nil
}

func TestRedisRedirectLoopEnds(t *testing.T) {
	// Two nodes that send every command to each other.
	var b *scriptedRedis
	a := startScriptedRedis(t, func(args []string) string {
		if args[0] == "CLUSTER" {
			return "-ERR no map\r\n"
		}
		return "-MOVED 1 " + b.addr + "\r\n"
	})
	b = startScriptedRedis(t, func(args []string) string {
		if args[0] == "CLUSTER" {
			return "-ERR no map\r\n"
		}
		return "-MOVED 1 " + a.addr + "\r\n"
	})
	p := testRedisPool(t, testRedisSettings(t, a.addr, func(c *RedisConfig) { c.Timeout = "300ms" }))
	start := time.Now()
	_, _, err := claimRedis(p, redisTestKey("loop"), testDigest, 1000, 1000)
	if err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Fatalf("a redirect loop: %v, want an error that says redirected", err)
	}
	if calls := a.calls.Load() + b.calls.Load(); calls > 2*redisMaxRedirects+6 {
		t.Fatalf("%d commands for one claim: the loop is not bounded", calls)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a redirect loop took %v", d)
	}
}

func TestRedisRedirectToNoAddress(t *testing.T) {
	for _, target := range []string{"evil host:1", "a\x01b:1", "a:0", "a:99999", "nohost"} {
		target := target
		srv := startScriptedRedis(t, func(args []string) string { return "-MOVED 1 " + target + "\r\n" })
		p := testRedisPool(t, testRedisSettings(t, srv.addr, func(c *RedisConfig) { c.Timeout = "300ms" }))
		_, _, err := claimRedis(p, redisTestKey("target"), testDigest, 1000, 1000)
		if err == nil {
			t.Fatalf("MOVED to %q: no error", target)
		}
		if strings.Contains(err.Error(), "\x01") {
			t.Fatalf("MOVED to %q: the error shows the address: %v", target, err)
		}
	}
}

func TestRedisSentinelNamingAReplica(t *testing.T) {
	// The sentinel names a server that is not a primary (ROLE says slave): no command is
	// sent to it, and the claim fails (503) rather than write to a replica or a stranger.
	var evalsOnReplica atomic.Int32
	replica := startScriptedRedis(t, func(args []string) string {
		switch args[0] {
		case "ROLE":
			return "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1\r\n"
		case "EVAL":
			evalsOnReplica.Add(1)
		}
		return "+OK\r\n"
	})
	host, port, _ := net.SplitHostPort(replica.addr)
	sentinel := startScriptedRedis(t, func(args []string) string {
		return "*2\r\n$" + strconv.Itoa(len(host)) + "\r\n" + host + "\r\n$" + strconv.Itoa(len(port)) + "\r\n" + port + "\r\n"
	})
	p := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", func(c *RedisConfig) {
		c.Sentinels = []string{sentinel.addr}
		c.MasterName = "zego"
		c.Timeout = "300ms"
	}))
	_, _, err := claimRedis(p, redisTestKey("replica"), testDigest, 1000, 1000)
	if err == nil || !strings.Contains(err.Error(), "not the primary") {
		t.Fatalf("a sentinel naming a replica: %v, want an error that says not the primary", err)
	}
	if n := evalsOnReplica.Load(); n != 0 {
		t.Fatalf("%d claims sent to the replica", n)
	}
}

func TestRedisSentinelHostileAnswers(t *testing.T) {
	for _, tc := range []struct{ name, reply string }{
		{"an unknown name", "*-1\r\n"},
		{"an error", "-ERR unknown\r\n"},
		{"a host with a space", "*2\r\n$6\r\nevil h\r\n$4\r\n6379\r\n"},
		{"a port that is no port", "*2\r\n$1\r\na\r\n$5\r\n99999\r\n"},
		{"three items", "*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\n1\r\n"},
		{"integers", "*2\r\n:1\r\n:2\r\n"},
		{"an endless line", strings.Repeat("a", 70000)},
		{"an error with control characters", "-ERR \x1b[2J\x1b[Hall good\r\r\n"},
	} {
		reply := tc.reply
		sentinel := startScriptedRedis(t, func(args []string) string { return reply })
		p := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", func(c *RedisConfig) {
			c.Sentinels = []string{sentinel.addr}
			c.MasterName = "zego"
			c.Timeout = "300ms"
		}))
		_, _, err := claimRedis(p, redisTestKey("hostile"), testDigest, 1000, 1000)
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if errors.Is(err, errRedisBusy) || strings.ContainsAny(err.Error(), "\x1b\r") {
			t.Fatalf("%s: %q", tc.name, err)
		}
	}
}

func TestRedisWaitReplicas(t *testing.T) {
	primary := redistest.Start(t, redistest.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica := redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)}})
	waitFor(t, "the replica in sync", func() bool {
		info, _ := replica.MustDo("INFO", "replication").(string)
		return strings.Contains(info, "master_link_status:up")
	})
	p := testRedisPool(t, testRedisSettings(t, primary.Addr, func(c *RedisConfig) {
		c.WaitReplicas = 1
		c.Timeout = "1s"
	}))
	// Redis 7 acknowledges nothing to WAIT for up to a second after a replica's full sync
	// (until its first REPLCONF ACK): until then writes are refused, 503.
	waitFor(t, "a write the replica acknowledges", func() bool {
		return confirmRedis(p, redisTestKey("warm-up"), testDigest, "", 60000) == nil
	})
	k := redisTestKey("replicated")
	mustClaimRedis(t, p, k, 60000, claimed)
	if v, _ := replica.MustDo("GET", redisKeyOf(k)).(string); !strings.HasPrefix(v, "i:") {
		t.Fatalf("the replica holds %q once the claim returned, want the claim", v)
	}
	mustConfirmRedis(t, p, k, testDigest, 60000)
	if v, _ := replica.MustDo("GET", redisKeyOf(k)).(string); v != "d:"+testDigest {
		t.Fatalf("the replica holds %q once the delivery returned, want it", v)
	}

	// The replica stalls: a claim no replica holds is withdrawn and fails (503, ZEGO
	// retries); what the store only reads still answers; a delivery says it is on the
	// primary only.
	replica.Pause()
	stalled := redisTestKey("stalled")
	_, _, err := claimRedis(p, stalled, testDigest, 60000, 60000)
	if !errors.Is(err, errRedisUnreplicated) {
		t.Fatalf("a claim no replica acknowledged: %v, want errRedisUnreplicated", err)
	}
	if v, _ := primary.MustDo("GET", redisKeyOf(stalled)).(string); !strings.HasPrefix(v, "f:") {
		t.Fatalf("the withdrawn claim left %q, want f:... (a retry claims it anew)", v)
	}
	mustClaimRedis(t, p, k, 60000, delivered)
	if err := confirmRedis(p, redisTestKey("other"), testDigest, "", 60000); !errors.Is(err, errRedisUnreplicated) {
		t.Fatalf("a delivery no replica acknowledged: %v, want errRedisUnreplicated", err)
	}
	replica.Resume()
	mustClaimRedis(t, p, stalled, 60000, claimed) // ZEGO's retry
}

func TestRedisSentinelTLS(t *testing.T) {
	// The primary asks for a client certificate; the sentinel is spoken to on its TLS
	// port, with the same CA and certificate; the primary it names, 127.0.0.1, must show a
	// certificate for that address.
	const password = "sentinel-tls-pw-51"
	files := redistest.NewTLSFiles(t)
	st := redistest.StartSentinel(t, 1, 1, 1000, redistest.Options{TLS: files, AuthClients: true, Password: password})
	settings := func(sentinel string) func(*RedisConfig) {
		return func(c *RedisConfig) {
			c.Sentinels, c.MasterName = []string{sentinel}, st.Name
			c.TLS, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = true, files.CAFile, files.ClientCertFile, files.ClientKeyFile
			c.Password = password
		}
	}
	p := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", settings(st.Sentinels[0].TLSAddr)))
	k := redisTestKey("sentinel tls")
	mustClaimRedis(t, p, k, 60000, claimed)
	mustConfirmRedis(t, p, k, testDigest, 60000)
	mustClaimRedis(t, p, k, 60000, delivered)
	if v, _ := st.Primary.MustDo("GET", redisKeyOf(k)).(string); v != "d:"+testDigest {
		t.Fatalf("the primary holds %q", v)
	}

	// A certificate for another name: refused before anything is sent.
	other := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", func(c *RedisConfig) {
		settings(st.Sentinels[0].TLSAddr)(c)
		c.TLSServerName = "redis.elsewhere"
	}))
	if _, _, err := claimRedis(other, redisTestKey("other name"), testDigest, 60000, 60000); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a certificate not for redis.tlsServerName: %v, want a certificate error", err)
	}
}

func TestRedisClusterUnknownEndpoint(t *testing.T) {
	// Redis 7's cluster-preferred-endpoint-type unknown-endpoint: MOVED :<port> and a nil
	// host in CLUSTER SLOTS, both meaning the node that answered.
	c := redistest.StartCluster(t, 3, 0, 1000)
	for _, n := range c.Nodes {
		n.MustDo("CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint")
	}
	p := testRedisPool(t, testRedisSettings(t, c.Nodes[0].Addr, nil))
	for i := 0; i < 30; i++ {
		mustClaimRedis(t, p, redisTestKey("unknown endpoint "+strconv.Itoa(i)), 60000, claimed)
	}
	p.routes.mu.RLock()
	mapped := p.routes.slots != nil
	p.routes.mu.RUnlock()
	if !mapped {
		t.Fatal("no slot map learnt")
	}
}

func TestRedisAskBeforeAnyMoved(t *testing.T) {
	// The configured node's own slot is being migrated: a new key there is answered ASK
	// before any MOVED has told the pool it speaks to a cluster.
	c := redistest.StartCluster(t, 3, 0, 1000)
	seed := c.Nodes[0]
	var key string
	for i := 0; ; i++ {
		key = redisTestKey("ask first " + strconv.Itoa(i))
		if c.MasterOf(redistest.KeySlot(redisKeyOf(key))) == seed {
			break
		}
	}
	slot := redistest.KeySlot(redisKeyOf(key))
	var to *redistest.Server
	for _, n := range c.Nodes {
		if n != seed {
			to = n
			break
		}
	}
	finish := c.BeginMigration(slot, to)
	p := testRedisPool(t, testRedisSettings(t, seed.Addr, nil))
	mustClaimRedis(t, p, key, 60000, claimed)
	mustClaimRedis(t, p, key, 60000, inFlight)
	finish()
	mustClaimRedis(t, p, key, 60000, inFlight)
}

func TestRedisSlotMapOverlapRefused(t *testing.T) {
	srv := startScriptedRedis(t, func(args []string) string { return "+OK\r\n" })
	p := testRedisPool(t, testRedisSettings(t, srv.addr, nil))
	becomeCluster(p)
	whole := redisSlotRange{start: 0, end: redisClusterSlots - 1, addr: srv.addr}
	if err := keepSlotMap(p, p.routes, srv.addr, []redisSlotRange{whole, whole}); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("ranges that overlap: %v, want an error", err)
	}
	if err := keepSlotMap(p, p.routes, srv.addr, []redisSlotRange{whole}); err != nil {
		t.Fatal(err)
	}
}

func TestRedisErrorTextsShowNoSecret(t *testing.T) {
	const password = `pw-"echoed"-back\77`
	srv := startScriptedRedis(t, func(args []string) string {
		if args[0] == "AUTH" {
			return "-ERR unknown command 'AUTH', with args beginning with: 'zego' '" + password + "' \r\n"
		}
		return "-ERR \x1b[2J\x1b[Hzegocallback: all good\r\r\n"
	})
	for _, user := range []string{"zego", ""} {
		p := testRedisPool(t, testRedisSettings(t, srv.addr, func(c *RedisConfig) { c.Username, c.Password = user, password }))
		_, _, err := claimRedis(p, redisTestKey("echo"), testDigest, 1000, 1000)
		if err == nil || strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "echoed") {
			t.Fatalf("a server echoing AUTH's arguments: %v", err)
		}
	}
	p := testRedisPool(t, testRedisSettings(t, srv.addr, nil))
	_, _, err := claimRedis(p, redisTestKey("escape"), testDigest, 1000, 1000)
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\r") {
		t.Fatalf("an error with control characters: %q", err)
	}
}

func TestRedisSentinelsAskedWithinATimeout(t *testing.T) {
	// A primary is known; the sentinels stall. A command that finds the routes due asks
	// them for one redis.timeout at most (one sentinel that does not answer, here), and
	// the next asking starts with the next sentinel.
	primary := redistest.Start(t, redistest.Options{})
	host, port, _ := net.SplitHostPort(primary.Addr)
	stall := make(chan struct{})
	defer close(stall)
	var stalled atomic.Bool
	answer := func(args []string) string {
		if stalled.Load() {
			<-stall
		}
		return "*2\r\n$" + strconv.Itoa(len(host)) + "\r\n" + host + "\r\n$" + strconv.Itoa(len(port)) + "\r\n" + port + "\r\n"
	}
	sentinels := []*scriptedRedis{startScriptedRedis(t, answer), startScriptedRedis(t, answer), startScriptedRedis(t, answer)}
	p := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", func(c *RedisConfig) {
		c.Sentinels = []string{sentinels[0].addr, sentinels[1].addr, sentinels[2].addr}
		c.MasterName, c.Timeout = "zego", "300ms"
	}))
	mustClaimRedis(t, p, redisTestKey("known"), 60000, claimed)
	stalled.Store(true)
	asked := func() string {
		return fmt.Sprint(sentinels[0].calls.Load(), sentinels[1].calls.Load(), sentinels[2].calls.Load())
	}
	for round, want := range []string{"2 0 0", "2 1 0", "2 1 1"} {
		markRoutesStale(p.routes)
		p.routes.mu.Lock()
		p.routes.asked = time.Time{}
		p.routes.mu.Unlock()
		mustClaimRedis(t, p, redisTestKey("while asking "+strconv.Itoa(round)), 60000, claimed)
		if got := asked(); got != want {
			t.Fatalf("round %d: the sentinels were asked %s times, want %s", round, got, want)
		}
	}
}

func TestRedisFailOpenKeepsAnUnreplicatedClaimShut(t *testing.T) {
	// redis.failOpen with redis.waitReplicas, and no replica: Redis answers, and withdraws
	// each claim; the callback gets 503, never forwarded on this Traefik's memory alone.
	srv := redistest.Start(t, redistest.Options{})
	var forwarded atomic.Int32
	cfg := CreateConfig()
	cfg.Secrets = []string{zegotest.Secret}
	cfg.NonceStore = "redis"
	cfg.Redis.Address, cfg.Redis.FailOpen, cfg.Redis.WaitReplicas, cfg.Redis.Timeout = srv.Addr, true, 1, "200ms"
	h, err := New(context.Background(), http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { forwarded.Add(1) }), cfg, t.Name()+"@test")
	if err != nil {
		t.Fatal(err)
	}
	body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	for i := 0; i < 2; i++ {
		if rec := post(h, body); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("try %d: %d %s, want 503", i, rec.Code, rec.Body)
		}
	}
	if n := forwarded.Load(); n != 0 {
		t.Fatalf("forwarded %d times", n)
	}
}

func TestRedisSentinelAuth(t *testing.T) {
	// A sentinel with users of its own (ACL; the default user off): the store
	// authenticates with redis.sentinelUsername and redis.sentinelPasswordFile, and says
	// what to check without them.
	st := redistest.StartSentinel(t, 1, 1, 1000, redistest.Options{})
	sentinel := st.Sentinels[0]
	sentinel.MustDo("ACL", "SETUSER", "zego-sentinel", "on", ">sentinel-pw-31", "+@all")
	sentinel.MustDo("ACL", "SETUSER", "default", "off")
	file := writeRedisTestFile(t, "sentinel-password", "sentinel-pw-31\n")
	p := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", func(c *RedisConfig) {
		c.Sentinels, c.MasterName = []string{sentinel.Addr}, st.Name
		c.SentinelUsername, c.SentinelPasswordFile = "zego-sentinel", file
	}))
	mustClaimRedis(t, p, redisTestKey("sentinel auth"), 60000, claimed)

	none := testRedisPool(t, testRedisSettings(t, "127.0.0.1:6379", func(c *RedisConfig) {
		c.Sentinels, c.MasterName = []string{sentinel.Addr}, st.Name
	}))
	_, _, err := claimRedis(none, redisTestKey("no sentinel auth"), testDigest, 60000, 60000)
	if err == nil || !strings.Contains(err.Error(), "sentinel") || !strings.Contains(redisFix(err), "redis.sentinelUsername") {
		t.Fatalf("a sentinel that asks for a user: %v (fix: %s)", err, redisFix(err))
	}
}
