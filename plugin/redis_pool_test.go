package zegocallback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

// timingSlack is what a loaded machine may add to a deadline before a test calls it a
// hang: the tests show that a failure comes after the timeout, not exactly when.
const timingSlack = 2 * time.Second

// waitFor polls cond every 10 ms for up to 3 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("after 3 s: not %s", what)
}

func TestRedisPoolBound(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Timeout = "10s" }))
	// With writes paused, every claim holds its connection until the pause ends: the pool
	// opens redisMaxConns and no more, and the other claims wait for one.
	srv.MustDo("CLIENT", "PAUSE", "8000", "WRITE")
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, _, err := claimRedis(p, redisTestKey("bound"+strconv.Itoa(i)), testDigest, 60000, 600000); err != nil {
				errs <- err
			}
		}(i)
	}
	waitFor(t, "every connection open and the other claims waiting", func() bool {
		open, _, _ := redisPoolCounts(p)
		if open > redisMaxConns {
			t.Fatalf("%d connections open", open)
		}
		p.mu.Lock()
		waiting := len(p.waiters)
		p.mu.Unlock()
		return open == redisMaxConns && waiting == n-redisMaxConns && srv.ConnectedClients() == redisMaxConns
	})
	// A while later, still no more.
	time.Sleep(100 * time.Millisecond)
	if c := srv.ConnectedClients(); c != redisMaxConns {
		t.Errorf("%d clients connected during the pause, want %d", c, redisMaxConns)
	}
	srv.MustDo("CLIENT", "UNPAUSE")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := srv.ConnectedClients(); c != redisMaxConns {
		t.Errorf("%d clients connected after, want %d", c, redisMaxConns)
	}
	if open, idle, _ := redisPoolCounts(p); open != redisMaxConns || idle != redisMaxConns {
		t.Errorf("%d open, %d idle; want %d each", open, idle, redisMaxConns)
	}
}

func TestRedisPoolWaitsForAConnection(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	takeAll := func(p *redisPool) []redisOp {
		t.Helper()
		ops := make([]redisOp, redisMaxConns)
		for i := range ops {
			if err := beginRedis(p, &ops[i]); err != nil {
				t.Fatal(err)
			}
		}
		return ops
	}

	// Every connection taken for the whole timeout: the claim fails after it.
	const timeout = 300 * time.Millisecond
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Timeout = timeout.String() }))
	ops := takeAll(p)
	start := time.Now()
	_, _, err := claimRedis(p, redisTestKey("busy"), testDigest, 60000, 600000)
	d := time.Since(start)
	if !errors.Is(err, errRedisBusy) || !strings.HasPrefix(err.Error(), "redis "+srv.Addr+": no free connection: all 32 busy") {
		t.Fatalf("claim with every connection taken: %v", err)
	}
	if d < timeout-50*time.Millisecond || d > timeout+timingSlack {
		t.Fatalf("waited %v for a connection, want about %v", d, timeout)
	}
	for i := range ops {
		endRedis(p, &ops[i])
	}

	// A connection given back within the timeout serves the waiting claim.
	p = testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Timeout = "10s" }))
	ops = takeAll(p)
	done := claimAsync(p, redisTestKey("waited"))
	waitFor(t, "a claim waiting", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.waiters) == 1
	})
	endRedis(p, &ops[0])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(ops); i++ {
		endRedis(p, &ops[i])
	}
	if open, idle, _ := redisPoolCounts(p); open != redisMaxConns || idle != redisMaxConns {
		t.Fatalf("%d open, %d idle", open, idle)
	}
}

func TestRedisPoolFollowsItsUsers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	edit := func(c *RedisConfig) { c.Timeout = "10s" }
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	p := sharedRedisPool(ctx1, testRedisSettings(t, srv.Addr, edit))
	mustClaimRedis(t, p, redisTestKey("k0"), 60000, claimed)
	if c := srv.ConnectedClients(); c != 1 {
		t.Fatalf("%d clients, want 1", c)
	}

	// A claim in flight (its SET held by the paused server) while the only user leaves
	// completes; its connection is then closed, since nobody uses the pool any more.
	srv.MustDo("CLIENT", "PAUSE", "8000", "WRITE")
	done := claimAsync(p, redisTestKey("k1"))
	waitFor(t, "the claim in flight", func() bool { _, idle, _ := redisPoolCounts(p); return idle == 0 })
	cancel1()
	waitFor(t, "the user gone", func() bool { _, _, users := redisPoolCounts(p); return users == 0 })
	if c := srv.ConnectedClients(); c != 1 {
		t.Fatalf("%d clients while the claim is in flight, want 1", c)
	}
	srv.MustDo("CLIENT", "UNPAUSE")
	if err := <-done; err != nil {
		t.Fatalf("claim in flight during cancellation: %v", err)
	}
	waitFor(t, "every connection closed", func() bool { return srv.ConnectedClients() == 0 })
	if open, idle, _ := redisPoolCounts(p); open != 0 || idle != 0 {
		t.Fatalf("%d open, %d idle", open, idle)
	}

	// Without users, the pool still serves, with a connection per operation.
	mustClaimRedis(t, p, redisTestKey("k1"), 60000, inFlight)
	if open, idle, _ := redisPoolCounts(p); open != 0 || idle != 0 {
		t.Fatalf("%d open, %d idle", open, idle)
	}

	// A new user (the next reload's New) gets the same pool, which keeps connections again.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if p2 := sharedRedisPool(ctx2, testRedisSettings(t, srv.Addr, edit)); p2 != p {
		t.Fatal("the same settings got another pool")
	}
	mustClaimRedis(t, p, redisTestKey("k2"), 60000, claimed)
	if _, idle, _ := redisPoolCounts(p); idle != 1 {
		t.Fatalf("%d idle, want 1", idle)
	}

	// Of two users, one leaving keeps the connections; the last one closes them.
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	sharedRedisPool(ctx3, testRedisSettings(t, srv.Addr, edit))
	cancel2()
	waitFor(t, "one user left", func() bool { _, _, users := redisPoolCounts(p); return users == 1 })
	if _, idle, _ := redisPoolCounts(p); idle != 1 || srv.ConnectedClients() != 1 {
		t.Fatalf("%d idle, %d clients, want 1, 1", idle, srv.ConnectedClients())
	}
	cancel3()
	waitFor(t, "every connection closed", func() bool { return srv.ConnectedClients() == 0 })

	// A context already done registers and leaves at once.
	sharedRedisPool(ctx3, testRedisSettings(t, srv.Addr, edit))
	waitFor(t, "no user", func() bool { _, _, users := redisPoolCounts(p); return users == 0 })
}

func TestSharedRedisPoolBySettings(t *testing.T) {
	base := func(c *RedisConfig) { c.Address = "127.0.0.1:1"; c.Password = "registry-pw" }
	pool := func(edit func(*RedisConfig)) *redisPool {
		return testRedisPool(t, testRedisSettings(t, "", func(c *RedisConfig) {
			base(c)
			if edit != nil {
				edit(c)
			}
		}))
	}
	p := pool(nil)
	if pool(nil) != p || pool(func(c *RedisConfig) { c.FailOpen = true }) != p {
		t.Fatal("the same connection settings got another pool")
	}
	for desc, edit := range map[string]func(*RedisConfig){
		"address":       func(c *RedisConfig) { c.Address = "127.0.0.1:2" },
		"username":      func(c *RedisConfig) { c.Username = "u" },
		"password":      func(c *RedisConfig) { c.Password = "other" },
		"db":            func(c *RedisConfig) { c.DB = 3 },
		"tls":           func(c *RedisConfig) { c.TLS = true },
		"tlsSkipVerify": func(c *RedisConfig) { c.TLS = true; c.TLSSkipVerify = true },
		"timeout":       func(c *RedisConfig) { c.Timeout = "1s" },
		"keyPrefix":     func(c *RedisConfig) { c.KeyPrefix = "other:" },
	} {
		if pool(edit) == p {
			t.Errorf("another %s shares the pool", desc)
		}
	}
	if open, _, _ := redisPoolCounts(p); open != 0 {
		t.Fatalf("sharedRedisPool connected: %d open", open)
	}
}

func TestRedisTLS(t *testing.T) {
	files := redistest.NewTLSFiles(t)
	srv := redistest.Start(t, redistest.Options{TLS: files, Password: "tls-pw"})
	tlsPool := func(edit func(*RedisConfig)) *redisPool {
		return testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) {
			c.TLS = true
			c.Password = "tls-pw"
			c.Timeout = "1s"
			edit(c)
		}))
	}
	k := redisTestKey("tls")

	p := tlsPool(func(c *RedisConfig) { c.TLSCAFile = files.CAFile })
	mustClaimRedis(t, p, k, 60000, claimed)
	mustClaimRedis(t, p, k, 60000, inFlight)
	mustConfirmRedis(t, p, k, testDigest, 60000)
	mustClaimRedis(t, p, k, 60000, delivered)
	// Over TLS too, a killed connection is replaced.
	srv.MustDo("CLIENT", "KILL", "TYPE", "normal")
	mustForgetRedis(t, p, k, lastClaim(k))

	mustClaimRedis(t, p, k, 60000, delivered)

	skip := tlsPool(func(c *RedisConfig) { c.TLSSkipVerify = true })
	mustClaimRedis(t, skip, redisTestKey("tls skip verify"), 60000, claimed)

	for desc, edit := range map[string]func(*RedisConfig){
		"another CA":       func(c *RedisConfig) { c.TLSCAFile = redistest.NewTLSFiles(t).CAFile },
		"the system roots": func(c *RedisConfig) {},
	} {
		_, _, err := claimRedis(tlsPool(edit), k, testDigest, 60000, 600000)
		if err == nil || !strings.Contains(err.Error(), "redis "+srv.Addr+": dial: ") || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v; want a certificate error", desc, err)
		}
	}
	plain := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Password = "tls-pw"; c.Timeout = "1s" }))
	if _, _, err := claimRedis(plain, k, testDigest, 60000, 600000); err == nil {
		t.Error("plain connection to a TLS server: no error")
	}
}

// TestRedisMutualTLS: a server that asks for a client certificate (tls-auth-clients yes,
// Redis's default with TLS) refuses a pool without one, and serves one with
// redis.tlsCertFile and redis.tlsKeyFile. The files are read again when they change: a
// certificate of another CA put in their place is refused at the next connection; while
// the two do not make a pair (one rewritten before the other), the pair read before stays
// in use; a new pair of the server's CA is served.
func TestRedisMutualTLS(t *testing.T) {
	files := redistest.NewTLSFiles(t)
	srv := redistest.Start(t, redistest.Options{TLS: files, AuthClients: true})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	put := func(from, to string) {
		t.Helper()
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".new", to); err != nil {
			t.Fatal(err)
		}
		// Taken at a look a second or more after the file was written.
		old := time.Now().Add(-2 * time.Second)
		if err := os.Chtimes(to, old, old); err != nil {
			t.Fatal(err)
		}
	}
	put(files.ClientCertFile, certFile)
	put(files.ClientKeyFile, keyFile)
	pool := func(edit func(*RedisConfig)) *redisPool {
		return testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) {
			c.TLS = true
			c.TLSCAFile = files.CAFile
			c.Timeout = "1s"
			edit(c)
		}))
	}
	none := pool(func(*RedisConfig) {})
	if _, _, err := claimRedis(none, redisTestKey("mtls none"), testDigest, 60000, 600000); err == nil {
		t.Fatal("no client certificate: the server answered")
	}
	p := pool(func(c *RedisConfig) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	mustClaimRedis(t, p, redisTestKey("mtls 1"), 60000, claimed)

	// A new connection after each change (the pool's are dropped), at least a look later.
	reconnect := func() {
		srv.MustDo("CLIENT", "KILL", "TYPE", "normal")
		time.Sleep(1100 * time.Millisecond)
	}
	// Another CA's pair: refused.
	other := redistest.NewTLSFiles(t)
	put(other.ClientCertFile, certFile)
	put(other.ClientKeyFile, keyFile)
	reconnect()
	if _, _, err := claimRedis(p, redisTestKey("mtls other CA"), testDigest, 60000, 600000); err == nil {
		t.Fatal("a client certificate of another CA: the server answered")
	}
	// Half rotated: the server CA's certificate beside the other CA's key make no pair;
	// the pair read before (the other CA's) stays in use, and is still refused.
	put(files.ClientCertFile, certFile)
	reconnect()
	if _, _, err := claimRedis(p, redisTestKey("mtls half"), testDigest, 60000, 600000); err == nil {
		t.Fatal("a certificate and a key of two pairs: the server answered")
	}
	// The rotation's end: a pair of the server's CA, served.
	newCert, newKey := files.NewClientCert(t)
	put(newCert, certFile)
	put(newKey, keyFile)
	reconnect()
	mustClaimRedis(t, p, redisTestKey("mtls rotated"), 60000, claimed)
}

// TestRedisHealthLines: one line when the pool first fails to connect, with what to
// check, none for the requests after it, and one when it connects again; a wrong password
// says to check the username and password file, and never shows the password.
func TestRedisHealthLines(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "right-password-123"})
	var errs bytes.Buffer
	settings := func(password string) *redisSettings {
		s := testRedisSettings(t, srv.Addr, func(c *RedisConfig) { c.Password = password; c.Timeout = "300ms" })
		s.log = newLineLimiter("redis-health@test")
		s.log.out[levelError], s.log.out[levelDebug] = &errs, io.Discard
		return s
	}
	p := testRedisPool(t, settings("right-password-123"))
	mustClaimRedis(t, p, redisTestKey("health 1"), 60000, claimed)
	srv.Stop()
	dropIdleRedis(p)
	for i := 0; i < 5; i++ {
		if _, _, err := claimRedis(p, redisTestKey("health down"), testDigest, 60000, 600000); err == nil {
			t.Fatal("a claim while Redis is stopped: no error")
		}
	}
	srv.Restart()
	mustClaimRedis(t, p, redisTestKey("health 2"), 60000, claimed)
	mustClaimRedis(t, p, redisTestKey("health 3"), 60000, claimed)
	lines := strings.Split(strings.TrimSpace(errs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "cannot") && !strings.Contains(lines[0], "dial") ||
		!strings.Contains(lines[0], "check redis.address") || !strings.Contains(lines[1], "connected again") {
		t.Errorf("log lines:\n%s\nwant one for the outage, with what to check, and one for the recovery", errs.String())
	}

	errs.Reset()
	wrong := testRedisPool(t, settings("wrong-password-456"))
	for i := 0; i < 3; i++ {
		_, _, _ = claimRedis(wrong, redisTestKey("health wrong"), testDigest, 60000, 600000)
	}
	out := errs.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "AUTH failed: check redis.username and redis.passwordFile") {
		t.Errorf("a wrong password's lines:\n%s\nwant one, saying what to check", out)
	}
	if strings.Contains(out, "wrong-password-456") || strings.Contains(out, "right-password-123") {
		t.Error("a health line shows a password")
	}
}

// claimAsync claims key in a goroutine: the channel gets nil once it is claimed.
func claimAsync(p *redisPool, key string) <-chan error {
	done := make(chan error, 1)
	go func() {
		r, _, err := claimRedis(p, key, testDigest, 60000, 600000)
		if err == nil && r != claimed {
			err = fmt.Errorf("claim = %d, want claimed", r)
		}
		done <- err
	}()
	return done
}
