package zegocallback

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

// These tests run the client against a real redis-server (internal/redistest), never a
// mock; a machine without one fails them.

// testRedisSettings compiles the defaults with addr, a 2 s timeout and edit's changes.
func testRedisSettings(t testing.TB, addr string, edit func(*RedisConfig)) *redisSettings {
	t.Helper()
	c := defaultRedisConfig()
	c.Address = addr
	c.Timeout = "2s"
	if edit != nil {
		edit(&c)
	}
	s, err := compileRedisNow(c)
	if err != nil {
		t.Fatalf("compileRedis: %v", err)
	}
	return s
}

// testRedisPool returns the shared pool for s, with a user context that ends with the test.
func testRedisPool(t testing.TB, s *redisSettings) *redisPool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return sharedRedisPool(ctx, s)
}

// redisTestKey stands for a callback's signature, the store's key: 20 binary bytes.
func redisTestKey(name string) string {
	h := sha1.Sum([]byte(name))
	return string(h[:])
}

// redisKeyOf is the Redis key the store uses for key with the default prefix.
func redisKeyOf(key string) string {
	return "zego-callback:" + hex.EncodeToString([]byte(key))
}

// testDigest stands for a body's digest in the store tests.
const testDigest = "d1"

// claimsMade remembers each key's last claim token, for the forgets that follow.
var claimsMade sync.Map

func lastClaim(key string) string {
	v, _ := claimsMade.Load(key)
	s, _ := v.(string)
	return s
}

// mustClaimRedis claims key with testDigest, its claim lasting inFlightMs and the key
// the store's lifetime of 600 s.
func mustClaimRedis(t *testing.T, p *redisPool, key string, inFlightMs int64, want claimResult) {
	t.Helper()
	mustClaimRedisFor(t, p, key, inFlightMs, 600000, want)
}

// mustClaimRedisFor is mustClaimRedis with the store's lifetime ttlMs.
func mustClaimRedisFor(t *testing.T, p *redisPool, key string, inFlightMs, ttlMs int64, want claimResult) {
	t.Helper()
	got, token, err := claimRedis(p, key, testDigest, inFlightMs, ttlMs)
	if err != nil {
		t.Fatalf("claimRedis: %v", err)
	}
	if got != want {
		t.Fatalf("claimRedis = %v, want %v", got, want)
	}
	if token != "" {
		claimsMade.Store(key, token)
	}
}

// mustConfirmRedis records key's delivery of the body with digest, remembered for ttlMs.
func mustConfirmRedis(t *testing.T, p *redisPool, key, digest string, ttlMs int64) {
	t.Helper()
	if err := confirmRedis(p, key, digest, "", ttlMs); err != nil {
		t.Fatalf("confirmRedis: %v", err)
	}
}

// mustForgetRedis marks the claim token's delivery of key failed.
func mustForgetRedis(t *testing.T, p *redisPool, key, token string) {
	t.Helper()
	if err := forgetRedis(p, key, token); err != nil {
		t.Fatalf("forgetRedis: %v", err)
	}
}

// redisPoolCounts reads the pool's bookkeeping. (Not `return p.open, len(p.idle), ...`:
// Yaegi v0.16.1 puts a builtin's result that is not the first of a return list in the
// first result's place.)
func redisPoolCounts(p *redisPool) (open, idle, users int) {
	p.mu.Lock()
	open = p.open
	idle = len(p.idle)
	users = p.users
	p.mu.Unlock()
	return open, idle, users
}

func TestRedisClaimConfirmForget(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, nil))
	k := redisTestKey("states")
	const ttl = 60000

	mustClaimRedis(t, p, k, ttl, claimed)
	if v, _ := srv.MustDo("GET", redisKeyOf(k)).(string); !strings.HasPrefix(v, "i:") {
		t.Fatalf("claimed key holds %q, want i:...", v)
	}
	mustClaimRedis(t, p, k, ttl, inFlight)
	mustForgetRedis(t, p, k, lastClaim(k))
	if v, _ := srv.MustDo("GET", redisKeyOf(k)).(string); !strings.HasPrefix(v, "f:") || !strings.Contains(v, ":"+testDigest+":") {
		t.Fatalf("key after a failed delivery holds %q, want f:...:%s:... (the digest kept)", v, testDigest)
	}
	if got, _, _ := claimRedis(p, k, "another-body", ttl, ttl); got != reused {
		t.Fatalf("another body after a failed delivery: %v, want reused", got)
	}
	mustClaimRedis(t, p, k, ttl, claimed) // ZEGO's retry after a failed delivery
	mustConfirmRedis(t, p, k, testDigest, ttl)
	if v := srv.MustDo("GET", redisKeyOf(k)); v != "d:"+testDigest {
		t.Fatalf("confirmed key holds %v", v)
	}
	if ms, _ := srv.MustDo("PTTL", redisKeyOf(k)).(int64); ms <= ttl-5000 || ms > ttl {
		t.Fatalf("PTTL after confirm = %d, want about %d", ms, ttl)
	}
	mustClaimRedis(t, p, k, ttl, delivered)
	mustClaimRedis(t, p, k, ttl, delivered)

	// A failed delivery marks its own claim only: not a delivery, not another claim.
	mustForgetRedis(t, p, k, lastClaim(k))
	mustClaimRedis(t, p, k, ttl, delivered)
	taken := redisTestKey("taken over")
	mustClaimRedis(t, p, taken, ttl, claimed)
	mustForgetRedis(t, p, taken, lastClaim(taken)+"-another-claim")
	mustClaimRedis(t, p, taken, ttl, inFlight)

	// A delivery whose claim lapsed (the backend took longer than inFlightTimeout) is
	// recorded all the same, with the full lifetime.
	gone := redisTestKey("gone")
	mustConfirmRedis(t, p, gone, testDigest, ttl)
	if ms, _ := srv.MustDo("PTTL", redisKeyOf(gone)).(int64); ms <= ttl-5000 || ms > ttl {
		t.Fatalf("PTTL of a delivery whose claim had lapsed = %d, want about %d", ms, ttl)
	}
	mustClaimRedis(t, p, gone, ttl, delivered)

	// Another pool (another Traefik replica) sees the same states.
	other := newRedisPool(p.s)
	other.users = 1
	mustClaimRedis(t, other, k, ttl, delivered)
	other2 := redisTestKey("other")
	mustClaimRedis(t, other, other2, ttl, claimed)
	mustClaimRedis(t, p, other2, ttl, inFlight)
	dropIdleRedis(other)
}

func TestRedisExpiry(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, nil))
	k := redisTestKey("expiry")
	gone := func() bool { return srv.MustDo("EXISTS", redisKeyOf(k)) == int64(0) }

	// A claim lapses after its in-flight time, by Redis's clock; the key, with the body's
	// digest, lasts the store's lifetime.
	start := time.Now()
	mustClaimRedisFor(t, p, k, 300, 1000, claimed)
	mustClaimRedisFor(t, p, k, 300, 1000, inFlight)
	for time.Since(start) < 350*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	if got, _, _ := claimRedis(p, k, "another-body", 300, 1000); got != reused {
		t.Fatalf("another body after the claim lapsed: %v, want reused", got)
	}
	mustClaimRedisFor(t, p, k, 300, 1000, claimed) // the same body: claimed anew
	waitFor(t, "expired", gone)
	if d := time.Since(start); d < 950*time.Millisecond {
		t.Fatalf("a key of 1 s expired after %v", d)
	}
	mustClaimRedisFor(t, p, k, 300, 1000, claimed)

	start = time.Now()
	mustConfirmRedis(t, p, k, testDigest, 500)
	mustClaimRedisFor(t, p, k, 300, 1000, delivered)
	waitFor(t, "expired", gone)
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Fatalf("a delivery remembered for 500 ms expired after %v", d)
	}
	mustClaimRedisFor(t, p, k, 300, 1000, claimed)
}

// claimConcurrently claims k once start closes, and counts what it got.
func claimConcurrently(t *testing.T, p *redisPool, k string, start chan struct{}, wg *sync.WaitGroup, won, waited, failed *atomic.Int32) {
	defer wg.Done()
	<-start
	r, _, err := claimRedis(p, k, testDigest, 60000, 600000)
	switch {
	case err != nil:
		failed.Add(1)
		t.Error(err)
	case r == claimed:
		won.Add(1)
	case r == inFlight:
		waited.Add(1)
	}
}

func TestRedisConcurrentClaimsOfOneCallback(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, nil))
	for round := 0; round < 3; round++ {
		k := redisTestKey("concurrent" + string(rune('a'+round)))
		const n = 80 // more than redisMaxConns: some wait for a connection
		var wg sync.WaitGroup
		var won, waited, failed atomic.Int32
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			// A plain function, not a closure: Yaegi races on closures one frame makes
			// while earlier ones return (DESIGN.md).
			go claimConcurrently(t, p, k, start, &wg, &won, &waited, &failed)
		}
		close(start)
		wg.Wait()
		if won.Load() != 1 || waited.Load() != n-1 || failed.Load() != 0 {
			t.Fatalf("round %d: %d claimed, %d in flight, %d failed; want 1, %d, 0",
				round, won.Load(), waited.Load(), failed.Load(), n-1)
		}
	}
	if open, _, _ := redisPoolCounts(p); open > redisMaxConns {
		t.Fatalf("%d connections open", open)
	}
}

func TestRedisAuth(t *testing.T) {
	const password = "pw-Zq81-never-in-errors"
	srv := redistest.Start(t, redistest.Options{
		Password: password,
		Users:    []string{"zego on >user-pw-7yq ~zego-callback:* +set +get +eval +pttl +time +select"},
	})
	k := redisTestKey("auth")

	t.Run("right password", func(t *testing.T) {
		p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Password = password }))
		mustClaimRedis(t, p, k, 60000, claimed)
		mustClaimRedis(t, p, k, 60000, inFlight)
	})
	t.Run("password file", func(t *testing.T) {
		file := writeRedisTestFile(t, "password", "  "+password+"  \nsecond line ignored\n")
		p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.PasswordFile = file }))
		mustClaimRedis(t, p, k, 60000, inFlight)
	})
	t.Run("ACL user", func(t *testing.T) {
		p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) {
			c.Username = "zego"
			c.Password = "user-pw-7yq"
			c.DB = 0
		}))
		mustClaimRedis(t, p, k, 60000, inFlight)
		k2 := redisTestKey("acl")
		mustClaimRedis(t, p, k2, 60000, claimed)
		mustConfirmRedis(t, p, k2, testDigest, 60000)
		mustForgetRedis(t, p, k2, lastClaim(k2))
	})

	refused := []struct {
		desc, username, password string
		want                     []string
	}{
		{"wrong password", "", "wrong-" + password, []string{"redis " + srv.Addr + ": AUTH: WRONGPASS"}},
		{"wrong user password", "zego", password, []string{"AUTH: WRONGPASS"}},
		{"unknown user", "nobody", password, []string{"AUTH: WRONGPASS"}},
		{"no password", "", "", []string{"redis " + srv.Addr + ": ", ": NOAUTH"}},
	}
	for _, tc := range refused {
		t.Run(tc.desc, func(t *testing.T) {
			p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) {
				c.Username = tc.username
				c.Password = tc.password
			}))
			for _, err := range []error{
				func() error { _, _, err := claimRedis(p, k, testDigest, 60000, 600000); return err }(),
				confirmRedis(p, k, testDigest, "", 60000),
				forgetRedis(p, k, lastClaim(k)),
			} {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "user-pw-7yq") {
					t.Errorf("error %q holds a password", err)
				}
			}
			// A refused AUTH is a failed connection: nothing stays open.
			if open, idle, _ := redisPoolCounts(p); tc.password != "" && (open != 0 || idle != 0) {
				t.Errorf("after refused AUTH: %d open, %d idle", open, idle)
			}
		})
	}
}

func TestRedisSelect(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "select-pw"})
	k := redisTestKey("select")
	db0 := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Password = "select-pw" }))
	db1 := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Password = "select-pw"; c.DB = 1 }))
	if db0 == db1 {
		t.Fatal("two databases share a pool")
	}
	mustClaimRedis(t, db1, k, 60000, claimed)
	mustClaimRedis(t, db0, k, 60000, claimed) // not visible in db 0
	mustClaimRedis(t, db1, k, 60000, inFlight)
	mustConfirmRedis(t, db1, k, testDigest, 60000)
	mustClaimRedis(t, db0, k, 60000, inFlight)
	mustClaimRedis(t, db1, k, 60000, delivered)

	bad := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Password = "select-pw"; c.DB = 999 }))
	_, _, err := claimRedis(bad, k, testDigest, 60000, 600000)
	if err == nil || !strings.Contains(err.Error(), "SELECT: ERR") {
		t.Fatalf("claim with db 999: %v; want a SELECT error", err)
	}
}

// TestRedisPasswordFileRotates: a password file rewritten after the server's password
// changed is read again, and the connections made after that authenticate with the new
// password, within about two seconds; the ones already open are not disturbed.
func TestRedisPasswordFileRotates(t *testing.T) {
	const oldPassword, newPassword = "old-pw-rotate-1", "new-pw-rotate-2"
	srv := redistest.Start(t, redistest.Options{Password: oldPassword})
	file := writeRedisTestFile(t, "password", oldPassword+"\n")
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.PasswordFile = file }))
	mustClaimRedis(t, p, redisTestKey("rotate-0"), 60000, claimed)

	srv.MustDo("CONFIG", "SET", "requirepass", newPassword)
	if err := os.WriteFile(file, []byte(newPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	for i := 1; ; i++ {
		dropIdleRedis(p) // every claim dials anew
		_, _, err := claimRedis(p, redisTestKey(fmt.Sprintf("rotate-%d", i)), testDigest, 60000, 600000)
		if err == nil {
			t.Logf("the new password took %v", time.Since(changed).Round(time.Millisecond))
			return
		}
		if strings.Contains(err.Error(), newPassword) || strings.Contains(err.Error(), oldPassword) {
			t.Fatalf("an error holds a password: %v", err)
		}
		if time.Since(changed) > 4*time.Second {
			t.Fatalf("the new password was not used after %v: %v", time.Since(changed), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRedisTLSAgainstAPlainServer: TLS to a server without it fails with a line that says
// what to check, not a bare timeout.
func TestRedisTLSAgainstAPlainServer(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) {
		c.TLS = true
		c.TLSSkipVerify = true
		c.Timeout = "300ms"
	}))
	_, _, err := claimRedis(p, redisTestKey("tls to plain"), testDigest, 60000, 600000)
	if err == nil || !strings.Contains(err.Error(), "does the server speak TLS?") && !strings.Contains(err.Error(), "does not look like a TLS handshake") {
		t.Errorf("TLS to a plain server: %v; want a hint at redis.tls", err)
	}
}
