package conformance

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

// The replay store against Redis as highly available deployments run it: a Redis Cluster
// (slots spread over three primaries, a slot migrated, a primary killed and its replica
// promoted) and a primary watched by Redis Sentinels (killed, a replica promoted). In
// each, a delivered callback's replay is never forwarded, and a genuine callback sent
// while the store switches is delivered exactly once across ZEGO's retries.

// Replicas starts n middlewares that share config (Traefik replicas, or servers of this
// process) in front of backend.
type Replicas func(t *testing.T, config map[string]any, backend *Backend, n int) []*Server

// LocalReplicas serves the middlewares build makes in this process.
func LocalReplicas(build Builder) Replicas {
	return func(t *testing.T, config map[string]any, backend *Backend, n int) []*Server {
		t.Helper()
		var out []*Server
		for i := 0; i < n; i++ {
			out = append(out, StartWith(t, build, config, "redis-ha", backend))
		}
		return out
	}
}

// RetrySchedule is when ZEGO sends a callback again after its first try that did not get
// a 2xx: 2, 4, 8, 16 and 32 s apart.
var RetrySchedule = []time.Duration{2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second, 62 * time.Second}

// haConfig is the middleware's configuration with the redis section redis, a key prefix of
// its own and a short timeout.
func haConfig(redis map[string]any, prefix string) map[string]any {
	redis["keyPrefix"], redis["timeout"] = prefix, "300ms"
	return Config(map[string]any{"nonceStore": "redis", "redis": redis})
}

// The permissions the README gives the store's ACL user, for each way of running Redis:
// the flows below run as a user with these and no more.
const (
	// ACLPermissions serve a single Redis.
	ACLPermissions = "+get +set +eval +pttl +time"
	// ClusterACLPermissions add what a cluster's client asks: the slot map, and ASKING
	// for a slot being imported.
	ClusterACLPermissions = ACLPermissions + " +cluster|slots +asking"
	// SentinelACLPermissions add ROLE, by which a connection checks it reached the primary,
	// and WAIT, for redis.waitReplicas.
	SentinelACLPermissions = ACLPermissions + " +role +wait"
)

// aclUser is the user the flows run as, and its password.
const aclUser, aclPassword = "zego-callback", "acl-password-for-tests"

// RunRedisCluster runs the store against a real Redis Cluster of three primaries with a
// replica each, started for the test: callbacks land on every primary; a slot moves
// (halfway, so that commands are redirected with ASK, then fully, with MOVED); a primary is
// killed and its replica promoted while callbacks arrive.
func RunRedisCluster(t *testing.T, start Replicas) {
	c := redistest.StartCluster(t, 3, 1, 1000)
	const prefix = "zc-cluster:"
	for _, n := range c.Nodes { // a cluster's ACL users are each node's own
		n.MustDo(append([]string{"ACL", "SETUSER", aclUser, "on", ">" + aclPassword, "resetchannels", "~" + prefix + "*"},
			strings.Fields(ClusterACLPermissions)...)...)
	}
	backend := &Backend{}
	srv := start(t, haConfig(map[string]any{"address": c.Nodes[0].Addr, "username": aclUser, "password": aclPassword}, prefix), backend, 2)

	delivered := deliverThroughBoth(t, srv, 24)
	for _, n := range c.Nodes[:3] {
		if keys, _ := n.MustDo("DBSIZE").(int64); keys == 0 {
			t.Errorf("primary %s holds no key: the callbacks did not spread over the cluster", n.Addr)
		}
	}

	// A slot halfway through a migration: a key still on the source is served there, one
	// that is not (a new callback's) is sent to the importing node with ASKING.
	x := delivered[0]
	slot := c.Slot(prefix + signatureOf(t, x))
	from := c.MasterOf(slot)
	to := otherPrimary(c, from)
	finish := c.BeginMigration(slot, to)
	y := freshInSlot(t, c, prefix, slot)
	CheckStep(t, "migrating: a new callback in the slot (ASK)", srv[0], Delivered(y))
	CheckStep(t, "migrating: its replay (ASK)", srv[1], Acked(y))
	CheckStep(t, "migrating: a replay of a callback still on the source", srv[1], Acked(x))
	if got, _ := to.MustDo("CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot)).(int64); got != 1 {
		t.Errorf("the importing node holds %d keys of the slot, want the callback sent during the migration", got)
	}
	finish()
	CheckStep(t, "migrated: the replay (MOVED)", srv[0], Acked(x))
	CheckStep(t, "migrated: the other replay (MOVED)", srv[1], Acked(y))
	z := delivered[1]
	zslot := c.Slot(prefix + signatureOf(t, z))
	c.MigrateSlot(zslot, otherPrimary(c, c.MasterOf(zslot)))
	CheckStep(t, "a slot moved at once: the replay", srv[0], Acked(z))

	// A primary killed, its replica promoted, while callbacks arrive: its delivered
	// callbacks stay delivered (replicated before the kill), new ones are retried until
	// the store answers, and delivered once.
	victim := delivered[2]
	during := switchTraffic(t, srv, delivered)
	killed, promoted := c.Failover(c.Slot(prefix + signatureOf(t, victim)))
	t.Logf("cluster: primary %s killed, %s promoted", killed.Addr, promoted.Addr)
	during.wait(t, backend)
	CheckStep(t, "after the failover: a replay of the killed primary's callback", srv[0], Acked(victim))
	CheckStep(t, "after the failover: a new callback", srv[1], Delivered(Fresh()))
}

// RunRedisSentinel runs the store against a primary with two replicas and three
// sentinels, started for the test: the sentinels name the primary; it is killed, the
// sentinels promote a replica, and the store follows while callbacks arrive. Each write
// waits for a replica (redis.waitReplicas: 1).
func RunRedisSentinel(t *testing.T, start Replicas) {
	const prefix = "zc-sentinel:"
	st := redistest.StartSentinel(t, 2, 3, 1000, redistest.Options{Password: RedisPassword,
		Users: []string{aclUser + " on >" + aclPassword + " resetchannels ~" + prefix + "* " + SentinelACLPermissions}})
	var sentinels []any
	for _, s := range st.Sentinels {
		sentinels = append(sentinels, s.Addr)
	}
	backend := &Backend{}
	srv := start(t, haConfig(map[string]any{"sentinels": sentinels, "masterName": st.Name, "username": aclUser, "password": aclPassword,
		"waitReplicas": 1}, prefix), backend, 2)
	delivered := deliverThroughBoth(t, srv, 8)
	if keys, _ := st.Primary.MustDo("DBSIZE").(int64); keys == 0 {
		t.Fatalf("the primary holds no key: the store is elsewhere")
	}
	during := switchTraffic(t, srv, delivered)
	killed, promoted := st.Failover()
	t.Logf("sentinel: primary %s killed, %s promoted", killed.Addr, promoted.Addr)
	during.wait(t, backend)
	for _, body := range delivered {
		CheckStep(t, "after the failover: a replay", srv[0], Acked(body))
	}
	CheckStep(t, "after the failover: a new callback", srv[1], Delivered(Fresh()))
	if keys, _ := promoted.MustDo("DBSIZE").(int64); keys == 0 {
		t.Errorf("the promoted primary holds no key: the store did not follow the failover")
	}
}

// deliverThroughBoth delivers n fresh callbacks through the two replicas in turn, each
// replayed through the other, and returns them.
func deliverThroughBoth(t *testing.T, srv []*Server, n int) [][]byte {
	t.Helper()
	var delivered [][]byte
	for i := 0; i < n; i++ {
		body := Fresh()
		CheckStep(t, "a callback", srv[i%2], Delivered(body))
		CheckStep(t, "its replay through the other replica", srv[(i+1)%2], Acked(body))
		delivered = append(delivered, body)
	}
	return delivered
}

// switchOver is the traffic sent while the store switches (switchTraffic).
type switchOver struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	fresh    [][]byte
	statuses [][]int
	replays  []int // the statuses the replays of delivered callbacks got
}

// switchTraffic sends, from now and through a failover, new callbacks, each retried on
// ZEGO's schedule until it gets a 2xx, and replays of delivered ones, every 100 ms for
// 3 s.
func switchTraffic(t *testing.T, srv []*Server, delivered [][]byte) *switchOver {
	s := &switchOver{}
	for i := 0; i < 12; i++ {
		body := Fresh()
		s.fresh = append(s.fresh, body)
		s.statuses = append(s.statuses, nil)
		n, target := i, srv[i%len(srv)]
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			time.Sleep(time.Duration(n) * 150 * time.Millisecond)
			first := time.Now()
			statuses := []int{target.Do(t, Request{Body: body}).Status}
			for k := 0; k < len(RetrySchedule) && statuses[len(statuses)-1]/100 != 2; k++ {
				time.Sleep(time.Until(first.Add(RetrySchedule[k])))
				statuses = append(statuses, target.Do(t, Request{Body: body}).Status)
			}
			s.mu.Lock()
			s.statuses[n] = statuses
			s.mu.Unlock()
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; i < 30; i++ {
			r := srv[i%len(srv)].Do(t, Request{Body: delivered[i%len(delivered)]})
			status := r.Status
			if status/100 == 2 && !r.Duplicate() {
				status = -status // forwarded
			}
			s.mu.Lock()
			s.replays = append(s.replays, status)
			s.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return s
}

// wait waits for the traffic to end and checks it: each new callback delivered exactly
// once by the end of ZEGO's schedule, no replay forwarded, each answer a 2xx, a 503 or a
// 409 (ZEGO retries both).
func (s *switchOver) wait(t *testing.T, backend *Backend) {
	t.Helper()
	s.wg.Wait()
	calls := backend.Calls()
	retried := 0
	for i, body := range s.fresh {
		got := 0
		for _, c := range calls {
			if bytes.Equal(c.Body, body) {
				got++
			}
		}
		statuses := s.statuses[i]
		if got != 1 || statuses[len(statuses)-1]/100 != 2 {
			t.Errorf("a callback sent during the failover reached the backend %d times, answers %v: want delivered exactly once", got, statuses)
		}
		// 409: a claim the old primary made and passed on, whose answer the failover
		// lost: in flight until inFlightTimeout, then ZEGO's next retry is delivered.
		for _, st := range statuses {
			if st/100 != 2 && st != http.StatusServiceUnavailable && st != http.StatusConflict {
				t.Errorf("a callback sent during the failover got %d (answers %v): want 2xx, 503, or 409 for a claim in flight", st, statuses)
			}
		}
		if len(statuses) > 1 {
			retried++
		}
	}
	failed := 0
	for _, st := range s.replays {
		switch {
		case st < 0:
			t.Errorf("a replay of a delivered callback was forwarded during the failover")
		case st == http.StatusServiceUnavailable:
			failed++
		case st/100 != 2:
			t.Errorf("a replay during the failover got %d, want a duplicate's 2xx or 503", st)
		}
	}
	t.Logf("during the failover: %d of %d new callbacks needed ZEGO's retries (%v); %d of %d replays got 503, none forwarded",
		retried, len(s.fresh), s.statuses, failed, len(s.replays))
}

// signatureOf is a callback's signature, which the store's key holds (in hex).
func signatureOf(t *testing.T, body []byte) string {
	t.Helper()
	var fields struct{ Signature string }
	if err := json.Unmarshal(body, &fields); err != nil || fields.Signature == "" {
		t.Fatalf("no signature in %s", body)
	}
	return strings.ToLower(fields.Signature)
}

// freshInSlot is a new callback whose store key falls in slot.
func freshInSlot(t *testing.T, c *redistest.Cluster, prefix string, slot int) []byte {
	t.Helper()
	for i := 0; i < 1<<20; i++ {
		body := Fresh()
		if redistest.KeySlot(prefix+signatureOf(t, body)) == slot {
			return body
		}
	}
	t.Fatalf("no callback in slot %d", slot)
	return nil
}

// otherPrimary is a primary of c other than from.
func otherPrimary(c *redistest.Cluster, from *redistest.Server) *redistest.Server {
	for _, n := range c.Nodes {
		if n != from && isPrimary(n) {
			return n
		}
	}
	return nil
}

// isPrimary says whether a live node answers ROLE as a primary.
func isPrimary(n *redistest.Server) bool {
	reply, err := n.Do("ROLE")
	items, _ := reply.([]any)
	return err == nil && len(items) > 0 && items[0] == "master"
}
