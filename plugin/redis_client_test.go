package zegocallback

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/proctest"
	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

func TestRedisKilledConnectionIsReplaced(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, nil))
	mustClaimRedis(t, p, redisTestKey("before"), 60000, claimed)
	if _, idle, _ := redisPoolCounts(p); idle != 1 {
		t.Fatalf("%d idle connections, want 1", idle)
	}
	// Every client but the one that asks (SKIPME yes) is disconnected: the pool's idle one.
	if n, _ := srv.MustDo("CLIENT", "KILL", "TYPE", "normal").(int64); n != 1 {
		t.Fatalf("CLIENT KILL killed %d clients, want 1", n)
	}
	k := redisTestKey("after")
	mustClaimRedis(t, p, k, 60000, claimed)
	mustClaimRedis(t, p, k, 60000, inFlight)
	mustConfirmRedis(t, p, k, testDigest, 60000)
	srv.MustDo("CLIENT", "KILL", "TYPE", "normal")
	mustForgetRedis(t, p, k, lastClaim(k))
	srv.MustDo("CLIENT", "KILL", "TYPE", "normal")
	mustConfirmRedis(t, p, k, testDigest, 60000)
	if open, idle, _ := redisPoolCounts(p); open != 1 || idle != 1 {
		t.Fatalf("%d open, %d idle; want 1, 1", open, idle)
	}
}

// TestRedisLostClaimReplyIsOurs loses the reply to a claim's SET NX after Redis ran it:
// the retry on a new connection finds the key taken, by our own claim, and must say
// claimed, not inFlight.
func TestRedisLostClaimReplyIsOurs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.StartProxy(t, srv.Addr, 0)
	p := testRedisPool(t, testRedisSettings(t, proxy.Addr, nil))
	mustClaimRedis(t, p, redisTestKey("warm-up"), 60000, claimed) // leaves one idle connection

	k := redisTestKey("lost reply")
	proxy.DropNextReply.Store(true)
	mustClaimRedis(t, p, k, 60000, claimed)
	if proxy.DropNextReply.Load() {
		t.Fatal("no reply was dropped")
	}
	if proxy.Conns.Load() != 2 {
		t.Fatalf("%d connections through the proxy, want 2", proxy.Conns.Load())
	}
	if v, _ := srv.MustDo("GET", redisKeyOf(k)).(string); !strings.HasPrefix(v, "i:") {
		t.Fatalf("key holds %q", v)
	}
	mustClaimRedis(t, p, k, 60000, inFlight) // a real duplicate is still one

	// The same for the commands that need no token.
	proxy.DropNextReply.Store(true)
	mustConfirmRedis(t, p, k, testDigest, 60000)
	mustClaimRedis(t, p, k, 60000, delivered)
	f := redisTestKey("lost forget reply")
	mustClaimRedis(t, p, f, 60000, claimed)
	proxy.DropNextReply.Store(true)
	mustForgetRedis(t, p, f, lastClaim(f))
	mustClaimRedis(t, p, f, 60000, claimed)
}

func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "restart-pw"})
	const timeout = 500 * time.Millisecond
	p := testRedisPool(t, testRedisSettings(t, srv.Addr, func(c *RedisConfig) {
		c.Password = "restart-pw"
		c.Timeout = timeout.String()
	}))
	for round, down := range []func(){srv.Stop, srv.Kill} {
		for i := 0; i < 4; i++ {
			mustClaimRedis(t, p, redisTestKey("up "+string(rune('a'+round))+string(rune('0'+i))), 60000, claimed)
		}
		down()
		k := redisTestKey("while down " + string(rune('a'+round)))
		for i := 0; i < 3; i++ {
			start := time.Now()
			_, _, err := claimRedis(p, k, testDigest, 60000, 600000)
			if err == nil || !strings.Contains(err.Error(), "redis "+srv.Addr+": ") {
				t.Fatalf("claim while Redis is down: %v", err)
			}
			if d := time.Since(start); d > timeout+timingSlack {
				t.Fatalf("claim while Redis is down took %v", d)
			}
			if err := confirmRedis(p, k, testDigest, "", 60000); err == nil {
				t.Fatal("confirm while Redis is down: no error")
			}
			if err := forgetRedis(p, k, "i:a-claim-of-before:"+testDigest); err == nil {
				t.Fatal("forget while Redis is down: no error")
			}
		}
		if open, idle, _ := redisPoolCounts(p); open != 0 || idle != 0 {
			t.Fatalf("while down: %d open, %d idle", open, idle)
		}
		srv.Restart()
		mustClaimRedis(t, p, k, 60000, claimed) // the same pool, connected again
		mustClaimRedis(t, p, k, 60000, inFlight)
	}
}

func TestRedisUnreachable(t *testing.T) {
	const timeout = 300 * time.Millisecond
	t.Run("nothing listens", func(t *testing.T) {
		addr, err := proctest.FreeAddr() // nothing listens there any more
		if err != nil {
			t.Fatal(err)
		}
		p := testRedisPool(t, testRedisSettings(t, addr, func(c *RedisConfig) { c.Timeout = timeout.String() }))
		start := time.Now()
		_, _, err = claimRedis(p, redisTestKey("x"), testDigest, 60000, 600000)
		if err == nil || !strings.Contains(err.Error(), "redis "+addr+": dial: ") || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("claim: %v; want a refused dial", err)
		}
		if d := time.Since(start); d > timeout+timingSlack {
			t.Fatalf("a refused dial took %v", d)
		}
	})
	t.Run("nothing answers", func(t *testing.T) {
		// The kernel completes the handshake on a listener that never accepts: the
		// connection opens, and no reply ever comes.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for _, password := range []string{"", "pw"} {
			p := testRedisPool(t, testRedisSettings(t, l.Addr().String(), func(c *RedisConfig) {
				c.Timeout = timeout.String()
				c.Password = password
			}))
			start := time.Now()
			_, _, err = claimRedis(p, redisTestKey("x"), testDigest, 60000, 600000)
			d := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "i/o timeout") {
				t.Fatalf("claim: %v; want a timeout", err)
			}
			if d < timeout-50*time.Millisecond || d > timeout+timingSlack {
				t.Fatalf("claim failed after %v, want about %v", d, timeout)
			}
			if open, _, _ := redisPoolCounts(p); open != 0 {
				t.Fatalf("%d connections open after a timeout", open)
			}
		}
	})
}
