package redistest

import (
	"strings"
	"testing"
)

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3, 1, 1000)
	if len(c.Nodes) != 6 || len(c.Addrs()) != 6 {
		t.Fatalf("%d nodes, %d addresses", len(c.Nodes), len(c.Addrs()))
	}
	for i, s := range c.Nodes {
		if got := isMaster(s); got != (i < 3) {
			t.Fatalf("node %d (%s): master %v", i, s.Addr, got)
		}
		if id := c.NodeID(s); len(id) != 40 {
			t.Fatalf("node %d: id %q", i, id)
		}
	}

	// The key's master has it; another master redirects.
	slot := c.Slot("{a}1")
	if slot != c.Slot("{a}2") {
		t.Fatal("hash tags: different slots")
	}
	from := c.MasterOf(slot)
	from.MustDo("SET", "{a}1", "v1")
	to := otherMaster(c, from)
	if _, err := to.Do("GET", "{a}1"); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
		t.Fatalf("GET on another master: %v", err)
	}

	c.MigrateSlot(slot, to)
	if got := c.MasterOf(slot); got != to {
		t.Fatalf("after MigrateSlot the slot is on %s, want %s", got.Addr, to.Addr)
	}
	if got := to.MustDo("GET", "{a}1"); got != "v1" {
		t.Fatalf("GET on the new master = %v", got)
	}
	if _, err := from.Do("GET", "{a}1"); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
		t.Fatalf("GET on the old master: %v", err)
	}

	// Half migrated: the source serves the keys it has and sends -ASK for the others.
	back := from
	from = to
	from.MustDo("SET", "{a}2", "v2")
	finish := c.BeginMigration(slot, back)
	if got := from.MustDo("GET", "{a}1"); got != "v1" {
		t.Fatalf("GET of a key still on the source = %v", got)
	}
	if _, err := from.Do("GET", "{a}3"); err == nil || !strings.HasPrefix(err.Error(), "ASK ") {
		t.Fatalf("GET of a key not on the source: %v", err)
	}
	if got := c.MasterOf(slot); got != from {
		t.Fatalf("during the migration the slot is on %s, want %s", got.Addr, from.Addr)
	}
	finish()
	if got := c.MasterOf(slot); got != back {
		t.Fatalf("after finish the slot is on %s, want %s", got.Addr, back.Addr)
	}
	if got := back.MustDo("MGET", "{a}1", "{a}2"); len(got.([]any)) != 2 || got.([]any)[0] != "v1" || got.([]any)[1] != "v2" {
		t.Fatalf("MGET on the new master = %v", got)
	}

	// Failover: the slot's replica takes over with what was written before.
	back.MustDo("SET", "{a}4", "v4")
	killed, promoted := c.Failover(slot)
	if killed != back || promoted == back || running(killed) {
		t.Fatalf("Failover killed %s (running %v), promoted %s; the master was %s", killed.Addr, running(killed), promoted.Addr, back.Addr)
	}
	if got := c.MasterOf(slot); got != promoted {
		t.Fatalf("after Failover the slot is on %s, want %s", got.Addr, promoted.Addr)
	}
	if got := promoted.MustDo("MGET", "{a}1", "{a}2", "{a}4"); len(got.([]any)) != 3 || got.([]any)[2] != "v4" {
		t.Fatalf("MGET on the promoted node = %v", got)
	}
	promoted.MustDo("SET", "{a}5", "v5")
}

// otherMaster returns a master other than m.
func otherMaster(c *Cluster, m *Server) *Server {
	for _, s := range c.Nodes {
		if s != m && isMaster(s) {
			return s
		}
	}
	c.t.Fatalf("no other master than %s", m.Addr)
	return nil
}

func TestSentinel(t *testing.T) {
	st := StartSentinel(t, 2, 3, 1000, Options{})
	if st.Name != "zego" || len(st.Replicas) != 2 || len(st.Sentinels) != 3 {
		t.Fatalf("%+v", st)
	}
	if got := st.PrimaryAddr(); got != st.Primary.Addr {
		t.Fatalf("PrimaryAddr = %s, want %s", got, st.Primary.Addr)
	}
	st.Primary.MustDo("SET", "k", "v")

	killed, promoted := st.Failover()
	if killed != st.Primary || promoted == st.Primary || running(killed) {
		t.Fatalf("Failover killed %s, promoted %s; the primary was %s", killed.Addr, promoted.Addr, st.Primary.Addr)
	}
	if got := st.PrimaryAddr(); got != promoted.Addr {
		t.Fatalf("PrimaryAddr = %s, want %s", got, promoted.Addr)
	}
	if got := promoted.MustDo("GET", "k"); got != "v" {
		t.Fatalf("GET on the new primary = %v", got)
	}
	promoted.MustDo("SET", "k2", "v2")
}

// A password and TLS reach the replicas and the sentinels.
func TestSentinelPasswordTLS(t *testing.T) {
	st := StartSentinel(t, 1, 2, 1000, Options{Password: "pw", TLS: NewTLSFiles(t), AuthClients: true})
	if got := st.PrimaryAddr(); got != st.Primary.Addr {
		t.Fatalf("PrimaryAddr = %s, want %s", got, st.Primary.Addr)
	}
	st.Primary.MustDo("SET", "k", "v")
	_, promoted := st.Failover()
	if got := promoted.MustDo("GET", "k"); got != "v" {
		t.Fatalf("GET on the new primary = %v", got)
	}
}
