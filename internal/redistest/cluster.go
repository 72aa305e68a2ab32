package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/proctest"
)

// failoverWait bounds the wait for a Redis Cluster or Sentinel failover, and for a cluster
// or sentinels to settle at start.
const failoverWait = 30 * time.Second

// Cluster is a Redis Cluster of real redis-server processes on 127.0.0.1, without
// password or TLS.
type Cluster struct {
	// Nodes are every node: the masters first, then the replicas, each in the order they
	// were created.
	Nodes []*Server

	t   testing.TB
	ids map[*Server]string // each node's CLUSTER MYID, which a restart keeps (nodes.conf)
}

// StartCluster starts masters*(1+replicas) nodes with cluster-enabled yes, each with its
// own nodes.conf in its own directory, cluster-node-timeout nodeTimeoutMs (such as 1000)
// and a cluster bus port of its own chosen free (port+10000 may not exist for an
// ephemeral port). It joins them with redis-cli --cluster create (which wants 3 masters
// at least) and waits until every node knows every other, reports cluster_state:ok with
// all 16384 slots assigned, and every replica's link to its master is up. Every node is
// killed when the test ends.
func StartCluster(t testing.TB, masters, replicas int, nodeTimeoutMs int) *Cluster {
	t.Helper()
	if masters < 3 || replicas < 0 {
		t.Fatalf("redistest: a cluster needs 3 masters at least and 0 replicas or more, not %d and %d", masters, replicas)
	}
	bin := lookBin(t, "redis-server")
	cli := lookBin(t, "redis-cli")
	c := &Cluster{t: t, ids: map[*Server]string{}}
	total := masters * (1 + replicas)
	var addrs []string
	for i := 0; i < total; i++ {
		s := startClusterNode(t, bin, nodeTimeoutMs)
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}

	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	waitUntil(t, failoverWait, "the cluster to form", func() error {
		for _, s := range c.Nodes {
			if err := clusterReady(s, total); err != nil {
				return err
			}
		}
		return nil
	})

	var ms, rs []*Server
	for _, s := range c.Nodes {
		c.ids[s] = stringReply(t, s.MustDo("CLUSTER", "MYID"))
		if isMaster(s) {
			ms = append(ms, s)
		} else {
			rs = append(rs, s)
		}
	}
	c.Nodes = append(ms, rs...)
	return c
}

// startClusterNode starts one cluster node on a free port with a free bus port; either
// may be taken before the node binds it, so it tries a few.
func startClusterNode(t testing.TB, bin string, nodeTimeoutMs int) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	for attempt := 0; ; attempt++ {
		addr, err := proctest.FreeAddr()
		bus := ""
		if err == nil {
			bus, err = proctest.FreeAddr()
		}
		if err == nil && bus == addr {
			err = errors.New("the same free port twice")
		}
		if err == nil {
			s.Addr = addr
			s.Port = portOf(addr)
			s.opts = Options{Args: []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(nodeTimeoutMs),
				"--cluster-port", strconv.Itoa(portOf(bus)),
				// A master waits 5 s by default before it sends a replica its data.
				"--repl-diskless-sync-delay", "0",
			}}
			err = s.start()
		}
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatalf("redistest: cluster node: %v", err)
		}
	}
}

// clusterReady says why node s is not yet a settled member of a cluster of total nodes.
func clusterReady(s *Server, total int) error {
	reply, err := s.Do("CLUSTER", "INFO")
	if err != nil {
		return fmt.Errorf("%s: CLUSTER INFO: %w", s.Addr, err)
	}
	info, _ := reply.(string)
	if v := infoField(info, "cluster_state"); v != "ok" {
		return fmt.Errorf("%s: cluster_state:%s", s.Addr, v)
	}
	if v := infoField(info, "cluster_slots_assigned"); v != "16384" {
		return fmt.Errorf("%s: cluster_slots_assigned:%s", s.Addr, v)
	}
	if v := infoField(info, "cluster_known_nodes"); v != strconv.Itoa(total) {
		return fmt.Errorf("%s: cluster_known_nodes:%s, want %d", s.Addr, v, total)
	}
	return replicaLinkUp(s)
}

// Addrs returns every node's address, in the order of Nodes.
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, s := range c.Nodes {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// NodeID returns a node's CLUSTER MYID, read when the cluster started (a node keeps it
// across Restart); it works for a killed node too.
func (c *Cluster) NodeID(s *Server) string {
	c.t.Helper()
	id, ok := c.ids[s]
	if !ok {
		c.t.Fatalf("redistest: %s is not a node of the cluster", s.Addr)
	}
	return id
}

// Slot returns key's hash slot (CLUSTER KEYSLOT) asked of a live node.
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	reply, err := c.anyDo("CLUSTER", "KEYSLOT", key)
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT %s: %v", key, err)
	}
	n, ok := reply.(int64)
	if !ok {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT %s: %v", key, reply)
	}
	return int(n)
}

// MasterOf returns the node that serves slot now, as CLUSTER SLOTS on the first live
// node that answers has it. It fails the test if that node is not running (a master
// killed and not yet replaced).
func (c *Cluster) MasterOf(slot int) *Server {
	c.t.Helper()
	reply, err := c.anyDo("CLUSTER", "SLOTS")
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER SLOTS: %v", err)
	}
	s, err := c.slotOwner(reply, slot)
	if err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
	return s
}

// MigrateSlot moves slot and every key in it from its master to another master, to, the
// way redis-cli --cluster reshard does (BeginMigration, then its finish), and waits until
// every live node says to serves it.
func (c *Cluster) MigrateSlot(slot int, to *Server) {
	c.t.Helper()
	finish := c.BeginMigration(slot, to)
	finish()
}

// BeginMigration starts moving slot from its master to another master, to: CLUSTER
// SETSLOT slot IMPORTING on to, then MIGRATING on the master. It leaves the slot half
// migrated, with every key still on the master: the master answers -ASK for a key of
// the slot it does not have, and to serves such a key after ASKING. The finish function
// returned moves the slot's remaining keys (CLUSTER GETKEYSINSLOT and MIGRATE, without
// REPLACE), then runs CLUSTER SETSLOT slot NODE <to's id> on to, the old master and the
// other masters, and waits until every live node says to serves the slot.
func (c *Cluster) BeginMigration(slot int, to *Server) (finish func()) {
	c.t.Helper()
	from := c.MasterOf(slot)
	if from == to {
		c.t.Fatalf("redistest: %s already serves slot %d", to.Addr, slot)
	}
	n := strconv.Itoa(slot)
	to.MustDo("CLUSTER", "SETSLOT", n, "IMPORTING", c.NodeID(from))
	from.MustDo("CLUSTER", "SETSLOT", n, "MIGRATING", c.NodeID(to))
	return func() { finishMigration(c, slot, from, to) }
}

// finishMigration moves slot's keys from from to to and gives to the slot.
func finishMigration(c *Cluster, slot int, from, to *Server) {
	c.t.Helper()
	n := strconv.Itoa(slot)
	for {
		keys, _ := from.MustDo("CLUSTER", "GETKEYSINSLOT", n, "100").([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", "127.0.0.1", strconv.Itoa(to.Port), "", "0", "5000", "KEYS"}
		for _, k := range keys {
			args = append(args, stringReply(c.t, k))
		}
		from.MustDo(args...)
	}
	id := c.NodeID(to)
	to.MustDo("CLUSTER", "SETSLOT", n, "NODE", id)
	from.MustDo("CLUSTER", "SETSLOT", n, "NODE", id)
	for _, s := range c.live() {
		if s != to && s != from && isMaster(s) {
			s.MustDo("CLUSTER", "SETSLOT", n, "NODE", id)
		}
	}
	waitUntil(c.t, failoverWait, fmt.Sprintf("slot %d to move to %s", slot, to.Addr), func() error {
		owner, err := c.agreedOwner(slot)
		if err != nil {
			return err
		}
		if owner != to {
			return fmt.Errorf("slot %d is on %s", slot, owner.Addr)
		}
		return nil
	})
}

// Failover kills (SIGKILL) the master that serves slot and waits, 30 s at most, until
// every live node reports cluster_state:ok and names the same live node, a master, as
// the slot's; it returns the killed and the promoted node. Before the kill it runs WAIT
// <its replicas> 2000 on the master and fails the test unless every replica
// acknowledged: whatever the test wrote to the slot before Failover is on the promoted
// node.
func (c *Cluster) Failover(slot int) (killed, promoted *Server) {
	c.t.Helper()
	old := c.MasterOf(slot)
	replicas := 0
	for _, s := range c.live() {
		if s != old && replicaOf(s) == old.Port {
			replicas++
		}
	}
	if replicas == 0 {
		c.t.Fatalf("redistest: the master of slot %d, %s, has no replica to promote", slot, old.Addr)
	}
	waitReplicas(c.t, old, replicas)
	old.Kill()
	var owned *Server
	waitUntil(c.t, failoverWait, fmt.Sprintf("a replica to take slot %d over from %s", slot, old.Addr), func() error {
		owner, err := c.agreedOwner(slot)
		if err != nil {
			return err
		}
		if !isMaster(owner) {
			return fmt.Errorf("%s serves slot %d but is no master", owner.Addr, slot)
		}
		owned = owner
		return nil
	})
	return old, owned
}

// live returns the nodes that run.
func (c *Cluster) live() []*Server {
	var nodes []*Server
	for _, s := range c.Nodes {
		if running(s) {
			nodes = append(nodes, s)
		}
	}
	return nodes
}

// anyDo sends a command to the live nodes in turn until one answers.
func (c *Cluster) anyDo(args ...string) (any, error) {
	err := errors.New("no node runs")
	for _, s := range c.live() {
		reply, doErr := s.Do(args...)
		if doErr == nil {
			return reply, nil
		}
		err = fmt.Errorf("%s: %w", s.Addr, doErr)
	}
	return nil, err
}

// agreedOwner returns the running node that every live node, in cluster_state:ok, names
// as slot's master.
func (c *Cluster) agreedOwner(slot int) (*Server, error) {
	var owner *Server
	for _, s := range c.live() {
		reply, err := s.Do("CLUSTER", "INFO")
		if err != nil {
			return nil, fmt.Errorf("%s: CLUSTER INFO: %w", s.Addr, err)
		}
		info, _ := reply.(string)
		if v := infoField(info, "cluster_state"); v != "ok" {
			return nil, fmt.Errorf("%s: cluster_state:%s", s.Addr, v)
		}
		reply, err = s.Do("CLUSTER", "SLOTS")
		if err != nil {
			return nil, fmt.Errorf("%s: CLUSTER SLOTS: %w", s.Addr, err)
		}
		o, err := c.slotOwner(reply, slot)
		if err != nil {
			return nil, fmt.Errorf("according to %s: %w", s.Addr, err)
		}
		if owner != nil && o != owner {
			return nil, fmt.Errorf("nodes disagree on slot %d: %s and %s", slot, owner.Addr, o.Addr)
		}
		owner = o
	}
	if owner == nil {
		return nil, errors.New("no node runs")
	}
	return owner, nil
}

// slotOwner finds slot's master in a CLUSTER SLOTS reply: it must be a running node.
func (c *Cluster) slotOwner(reply any, slot int) (*Server, error) {
	ranges, _ := reply.([]any)
	for _, r := range ranges {
		item, _ := r.([]any)
		if len(item) < 3 {
			continue
		}
		first, _ := item[0].(int64)
		last, _ := item[1].(int64)
		if int64(slot) < first || int64(slot) > last {
			continue
		}
		master, _ := item[2].([]any)
		if len(master) < 2 {
			return nil, fmt.Errorf("CLUSTER SLOTS: %v", item)
		}
		port, _ := master[1].(int64)
		for _, s := range c.Nodes {
			if s.Port == int(port) {
				if !running(s) {
					return nil, fmt.Errorf("slot %d's master, %s, does not run", slot, s.Addr)
				}
				return s, nil
			}
		}
		return nil, fmt.Errorf("slot %d's master, port %d, is no node of the cluster", slot, port)
	}
	return nil, fmt.Errorf("no node serves slot %d", slot)
}

// Sentinel is a primary, its replicas and Sentinel processes watching it under Name.
// The primary and the replicas have the Options given to StartSentinel; the sentinels
// have no password, and clients reach them without TLS on Addr (and with TLS on TLSAddr,
// when started with TLS).
type Sentinel struct {
	Name      string    // the master name the sentinels know the primary by: "zego"
	Primary   *Server   // the primary as started
	Replicas  []*Server // its replicas as started
	Sentinels []*Server // the sentinel processes; a sentinel is not for Restart

	t testing.TB
}

// StartSentinel starts a primary and replicas of it (replicaof), waits until they are in
// sync (INFO replication: master_link_status:up), then starts sentinels (redis-server
// <conf> --sentinel) that monitor the primary as "zego" with a quorum of a majority,
// down-after-milliseconds downAfterMs, failover-timeout 10000 and parallel-syncs 1, and
// waits until every sentinel knows every replica and every other sentinel, so that they
// can fail over. opts apply to the primary and the replicas; with a Password the
// replicas get it as masterauth and the sentinels as auth-pass. With TLS the replicas
// and the sentinels reach the primary over TLS (tls-replication, with the client
// certificate) and the sentinels reach one another over TLS too, on a second port of
// theirs, the one they announce (SENTINEL SENTINELS shows it); clients reach a sentinel
// on its Addr, without TLS. Everything is killed when the test ends.
func StartSentinel(t testing.TB, replicas, sentinels int, downAfterMs int, opts Options) *Sentinel {
	t.Helper()
	if replicas < 1 || sentinels < 1 {
		t.Fatalf("redistest: sentinel wants a replica and a sentinel at least, not %d and %d", replicas, sentinels)
	}
	st := &Sentinel{Name: "zego", t: t}
	// A master waits 5 s by default before it sends a replica its data; any server may
	// become the master.
	po := opts
	po.Args = append([]string{"--repl-diskless-sync-delay", "0"}, opts.Args...)
	st.Primary = Start(t, po)
	for i := 0; i < replicas; i++ {
		ro := po
		ro.Args = append([]string{}, po.Args...)
		ro.Args = append(ro.Args, "--replicaof", "127.0.0.1", strconv.Itoa(st.Primary.Port))
		if opts.Password != "" {
			ro.Args = append(ro.Args, "--masterauth", opts.Password)
		}
		if opts.TLS != nil {
			ro.Args = append(ro.Args, "--tls-replication", "yes",
				"--tls-client-cert-file", opts.TLS.ClientCertFile, "--tls-client-key-file", opts.TLS.ClientKeyFile)
		}
		st.Replicas = append(st.Replicas, Start(t, ro))
	}
	waitUntil(t, failoverWait, "the replicas to sync", func() error {
		for _, r := range st.Replicas {
			if err := replicaLinkUp(r); err != nil {
				return err
			}
		}
		return nil
	})

	bin := lookBin(t, "redis-server")
	for i := 0; i < sentinels; i++ {
		st.Sentinels = append(st.Sentinels, startSentinelProcess(t, bin, st.Primary.Port, sentinels/2+1, downAfterMs, opts))
	}
	waitUntil(t, failoverWait, "the sentinels to know the replicas and one another", func() error {
		for _, s := range st.Sentinels {
			reply, err := s.Do("SENTINEL", "MASTER", st.Name)
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", s.Addr, err)
			}
			fields := pairs(reply)
			if fields["num-slaves"] != strconv.Itoa(replicas) || fields["num-other-sentinels"] != strconv.Itoa(sentinels-1) {
				return fmt.Errorf("sentinel %s: num-slaves %s, num-other-sentinels %s",
					s.Addr, fields["num-slaves"], fields["num-other-sentinels"])
			}
		}
		return nil
	})
	return st
}

// startSentinelProcess starts a sentinel on a free port (and with TLS a second one for
// the other sentinels) monitoring the primary on primaryPort; the ports may be taken
// before it binds them, so it tries a few.
func startSentinelProcess(t testing.TB, bin string, primaryPort, quorum, downAfterMs int, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	conf := filepath.Join(s.dir, "sentinel.conf")
	for attempt := 0; ; attempt++ {
		addr, err := proctest.FreeAddr()
		tlsAddr := ""
		if err == nil && opts.TLS != nil {
			tlsAddr, err = proctest.FreeAddr()
		}
		if err == nil && tlsAddr == addr {
			err = errors.New("the same free port twice")
		}
		if err == nil {
			s.Addr = addr
			s.Port = portOf(addr)
			s.TLSAddr = tlsAddr
			lines := []string{
				"port " + strconv.Itoa(s.Port),
				"bind 127.0.0.1",
				"protected-mode no",
				"daemonize no",
				`logfile ""`,
				"dir " + confQuote(s.dir),
				"sentinel resolve-hostnames no",
				fmt.Sprintf("sentinel monitor zego 127.0.0.1 %d %d", primaryPort, quorum),
				fmt.Sprintf("sentinel down-after-milliseconds zego %d", downAfterMs),
				"sentinel failover-timeout zego 10000",
				"sentinel parallel-syncs zego 1",
			}
			if opts.Password != "" {
				lines = append(lines, "sentinel auth-pass zego "+confQuote(opts.Password))
			}
			if opts.TLS != nil {
				lines = append(lines,
					"tls-port "+strconv.Itoa(portOf(tlsAddr)),
					"tls-replication yes",
					"tls-auth-clients no",
					"tls-cert-file "+confQuote(opts.TLS.CertFile),
					"tls-key-file "+confQuote(opts.TLS.KeyFile),
					"tls-ca-cert-file "+confQuote(opts.TLS.CAFile),
					"tls-client-cert-file "+confQuote(opts.TLS.ClientCertFile),
					"tls-client-key-file "+confQuote(opts.TLS.ClientKeyFile))
			}
			// A fresh file each attempt: the sentinel rewrites it.
			err = os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		}
		if err == nil {
			err = startArgs(s, []string{conf, "--sentinel"})
		}
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatalf("redistest: sentinel: %v", err)
		}
	}
}

// PrimaryAddr returns the primary's address as a live sentinel names it (SENTINEL
// get-master-addr-by-name).
func (st *Sentinel) PrimaryAddr() string {
	st.t.Helper()
	err := errors.New("no sentinel runs")
	for _, s := range st.Sentinels {
		if !running(s) {
			continue
		}
		addr, askErr := st.askPrimary(s)
		if askErr == nil {
			return addr
		}
		err = askErr
	}
	st.t.Fatalf("redistest: SENTINEL get-master-addr-by-name %s: %v", st.Name, err)
	return ""
}

// Failover kills (SIGKILL) the current primary, as the sentinels name it, and waits, 30
// s at most, until every live sentinel names the same other server, that server answers
// ROLE as a master and every other live server replicates from it with its link up; it
// returns the killed server and the new primary. Before the kill it runs WAIT <its
// replicas> 2000 on the primary and fails the test unless every replica acknowledged:
// whatever the test wrote before Failover is on the new primary.
func (st *Sentinel) Failover() (killed, promoted *Server) {
	st.t.Helper()
	old := st.server(st.PrimaryAddr())
	replicas := 0
	for _, s := range st.servers() {
		if s != old && running(s) && replicaOf(s) == old.Port {
			replicas++
		}
	}
	if replicas == 0 {
		st.t.Fatalf("redistest: the primary %s has no replica to promote", old.Addr)
	}
	waitReplicas(st.t, old, replicas)
	old.Kill()
	var primary *Server
	waitUntil(st.t, failoverWait, "the sentinels to promote a replica of "+old.Addr, func() error {
		addr := ""
		for _, s := range st.Sentinels {
			if !running(s) {
				continue
			}
			a, err := st.askPrimary(s)
			if err != nil {
				return err
			}
			if addr != "" && a != addr {
				return fmt.Errorf("sentinels disagree: %s and %s", addr, a)
			}
			addr = a
		}
		if addr == old.Addr {
			return fmt.Errorf("the sentinels still name %s", addr)
		}
		p := st.server(addr)
		if !running(p) {
			return fmt.Errorf("the sentinels name %s, which does not run", addr)
		}
		if !isMaster(p) {
			return fmt.Errorf("%s is not a master yet", addr)
		}
		for _, s := range st.servers() {
			if s == p || !running(s) {
				continue
			}
			if replicaOf(s) != p.Port {
				return fmt.Errorf("%s does not replicate from %s yet", s.Addr, addr)
			}
			if err := replicaLinkUp(s); err != nil {
				return err
			}
		}
		primary = p
		return nil
	})
	return old, primary
}

// askPrimary asks sentinel s for the primary's address.
func (st *Sentinel) askPrimary(s *Server) (string, error) {
	reply, err := s.Do("SENTINEL", "get-master-addr-by-name", st.Name)
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", s.Addr, err)
	}
	hostPort, _ := reply.([]any)
	if len(hostPort) != 2 {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name: %v", s.Addr, reply)
	}
	host, _ := hostPort[0].(string)
	port, _ := hostPort[1].(string)
	return host + ":" + port, nil
}

// servers returns the primary and the replicas as started.
func (st *Sentinel) servers() []*Server {
	return append([]*Server{st.Primary}, st.Replicas...)
}

// server returns the primary or replica at addr.
func (st *Sentinel) server(addr string) *Server {
	st.t.Helper()
	for _, s := range st.servers() {
		if s.Addr == addr {
			return s
		}
	}
	st.t.Fatalf("redistest: the sentinels name %s, which is neither the primary nor a replica", addr)
	return nil
}

// startArgs runs s.bin with args (they must set the port s.Port) and waits until the
// process answers PING, as Server.start does.
func startArgs(s *Server, args []string) error {
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	proc, err := proctest.Start(cmd)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-proc.Exited:
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			return fmt.Errorf("%s on port %d exited at start:\n%s", s.bin, s.Port, proc.Output)
		default:
		}
		reply, err := s.Do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("%s on port %d does not answer PING (%v):\n%s", s.bin, s.Port, err, proc.Output)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReplicas runs WAIT replicas 2000 on s and fails the test unless that many
// replicas acknowledged its writes.
func waitReplicas(t testing.TB, s *Server, replicas int) {
	t.Helper()
	acked, _ := s.MustDo("WAIT", strconv.Itoa(replicas), "2000").(int64)
	if acked < int64(replicas) {
		t.Fatalf("redistest: WAIT on %s: %d of %d replicas acknowledged", s.Addr, acked, replicas)
	}
}

// waitUntil calls check every 50 ms until it returns nil; after timeout it fails the test
// with check's last error.
func waitUntil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running says whether s's process runs.
func running(s *Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// isMaster says whether s answers ROLE as a master.
func isMaster(s *Server) bool {
	reply, err := s.Do("ROLE")
	if err != nil {
		return false
	}
	role, _ := reply.([]any)
	return len(role) > 0 && role[0] == "master"
}

// replicaOf returns the port of the master s replicates from (ROLE), or 0.
func replicaOf(s *Server) int {
	reply, err := s.Do("ROLE")
	if err != nil {
		return 0
	}
	role, _ := reply.([]any)
	if len(role) < 3 || role[0] != "slave" {
		return 0
	}
	port, _ := role[2].(int64)
	return int(port)
}

// replicaLinkUp says why s, if a replica, is not in sync with its master (INFO
// replication's master_link_status); a master is in sync.
func replicaLinkUp(s *Server) error {
	reply, err := s.Do("INFO", "replication")
	if err != nil {
		return fmt.Errorf("%s: INFO replication: %w", s.Addr, err)
	}
	info, _ := reply.(string)
	if infoField(info, "role") == "slave" && infoField(info, "master_link_status") != "up" {
		return fmt.Errorf("%s: master_link_status:%s", s.Addr, infoField(info, "master_link_status"))
	}
	return nil
}

// infoField returns the value of key in an INFO or CLUSTER INFO reply.
func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

// pairs turns a flat field, value, ... array reply into a map of its string values.
func pairs(reply any) map[string]string {
	items, _ := reply.([]any)
	m := map[string]string{}
	for i := 0; i+1 < len(items); i += 2 {
		k, _ := items[i].(string)
		v, _ := items[i+1].(string)
		m[k] = v
	}
	return m
}

// stringReply returns reply as a string, failing the test if it is not one.
func stringReply(t testing.TB, reply any) string {
	t.Helper()
	s, ok := reply.(string)
	if !ok {
		t.Fatalf("redistest: %v (%T) is not a string", reply, reply)
	}
	return s
}

// portOf returns the port of 127.0.0.1:<port>.
func portOf(addr string) int {
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	return port
}

// confQuote quotes v for redis.conf.
func confQuote(v string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`) + `"`
}

// lookBin finds a Redis program in PATH or /usr/bin; a missing one fails the test.
func lookBin(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin
	}
	if _, statErr := os.Stat("/usr/bin/" + name); statErr != nil {
		t.Fatalf("redistest: %s is not installed (Debian: apt-get install redis-server redis-tools): %v", name, err)
	}
	return "/usr/bin/" + name
}
