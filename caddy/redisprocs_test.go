package careq_test

// Real Redis topologies for the scale-out tests (issue #18): a Redis
// Cluster of three masters with one replica each, and a Sentinel set of one
// master, one replica and three Sentinels, every process started on free
// loopback ports in temp dirs and killed by its PID when the test ends.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// rsNode is one redis-server process (data node or Sentinel).
type rsNode struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func (n *rsNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// rsNeedRedis skips the test without redis-server (and fails it under CI).
func rsNeedRedis(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; the scale-out tests need it (apt-get install redis-server redis-tools)", bin)
			}
			t.Skipf("%s is not installed", bin)
		}
	}
}

// rsStart runs redis-server with args on a free port and waits until it
// accepts connections. A Sentinel gets its config file as the first
// argument, as redis-server requires. A port found free can be taken
// before redis-server binds it (by a connection's local port, say): then
// it exits at once, and is started again on other ports, up to three times.
func rsStart(t testing.TB, args ...string) *rsNode {
	t.Helper()
	var out syncBuffer
	for attempt := 1; ; attempt++ {
		n, ok := rsTry(t, args, &out)
		if ok {
			return n
		}
		if attempt == 3 {
			t.Fatalf("redis-server %v exited before it listened, three times:\n%s", args, out.String())
		}
		for i := range args { // a bus port given by the caller is chosen again too
			if i > 0 && args[i-1] == "--cluster-port" {
				args[i] = strconv.Itoa(freePort(t))
			}
		}
	}
}

// rsTry starts redis-server once; ok is false when it exited before it
// listened.
func rsTry(t testing.TB, args []string, out *syncBuffer) (_ *rsNode, ok bool) {
	t.Helper()
	n := &rsNode{t: t, port: freePort(t), done: make(chan struct{})}
	argv := append(append([]string(nil), args...), "--port", strconv.Itoa(n.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	n.cmd = exec.Command("redis-server", argv...)
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return n, true
		}
		select {
		case <-n.done:
			return nil, false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not ready after 10s:\n%s", n.addr(), out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the process (a crash, not a shutdown) and waits.
func (n *rsNode) kill() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.done
}

// rsWait polls cond every 50ms until it holds or timeout passes.
func rsWait(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rsCluster is a Redis Cluster on loopback.
type rsCluster struct {
	nodes []*rsNode
}

// rsStartCluster starts three masters and three replicas with a short
// node timeout, joins them with redis-cli --cluster create and waits until
// every node sees the cluster as ok.
func rsStartCluster(t testing.TB) *rsCluster {
	t.Helper()
	rsNeedRedis(t)
	c := &rsCluster{}
	args := []string{"redis-cli", "--cluster", "create"}
	for range 6 {
		dir := t.TempDir()
		// The bus port is named: the default, port+10000, may be over
		// 65535 or taken for a free port from the ephemeral range.
		n := rsStart(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(freePort(t)), "--cluster-node-timeout", "1000", "--dir", dir)
		c.nodes = append(c.nodes, n)
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	rsWait(t, "cluster ok on every node with three masters and three replicas", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			cl := redis.NewClient(&redis.Options{Addr: n.addr()})
			info, err := cl.ClusterInfo(ctx).Result()
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") {
				return false
			}
		}
		return c.replicasInSync(ctx) == 3
	})
	return c
}

// seeds returns the nodes' addresses.
func (c *rsCluster) seeds() []string {
	var s []string
	for _, n := range c.nodes {
		s = append(s, n.addr())
	}
	return s
}

// replicasInSync counts replicas whose link to their master is up.
func (c *rsCluster) replicasInSync(ctx context.Context) int {
	k := 0
	for _, n := range c.nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.addr()})
		info, err := cl.Info(ctx, "replication").Result()
		cl.Close()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
			k++
		}
	}
	return k
}

// masterFor returns the node that is master of key's slot now.
func (c *rsCluster) masterFor(t testing.TB, key string) *rsNode {
	t.Helper()
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.seeds()})
	defer cc.Close()
	m, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatalf("master for %q: %v", key, err)
	}
	for _, n := range c.nodes {
		if n.addr() == m.Options().Addr {
			return n
		}
	}
	t.Fatalf("master for %q is %s, not a node of this cluster", key, m.Options().Addr)
	return nil
}

// slotServedBy reports whether a node other than dead answers as master
// for key's slot (the replica was promoted).
func (c *rsCluster) slotServedBy(key string, dead *rsNode) bool {
	ctx := context.Background()
	for _, n := range c.nodes {
		if n == dead {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.addr(), DialTimeout: 200 * time.Millisecond})
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			cl.Close()
			continue
		}
		slots, err := cl.ClusterSlots(ctx).Result()
		cl.Close()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				return s.Nodes[0].Addr != dead.addr()
			}
		}
	}
	return false
}

// rsSentinelSet is one master, one replica and three Sentinels.
type rsSentinelSet struct {
	master, replica *rsNode
	sentinels       []*rsNode
}

const rsMasterName = "careq"

// rsStartSentinels starts the set with a 1s down-after and waits until
// every Sentinel knows the replica and the two other Sentinels, so that a
// failover can happen.
func rsStartSentinels(t testing.TB) *rsSentinelSet {
	t.Helper()
	rsNeedRedis(t)
	s := &rsSentinelSet{}
	s.master = rsStart(t, "--dir", t.TempDir())
	s.replica = rsStart(t, "--dir", t.TempDir(), "--replicaof", "127.0.0.1", strconv.Itoa(s.master.port))
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 10000\n"+
			"sentinel parallel-syncs %[1]s 1\n", rsMasterName, s.master.port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s.sentinels = append(s.sentinels, rsStart(t, conf, "--sentinel", "--dir", dir))
	}
	ctx := context.Background()
	rsWait(t, "every Sentinel knows the replica and the other Sentinels", 30*time.Second, func() bool {
		for _, n := range s.sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: n.addr()})
			m, err := sc.Master(ctx, rsMasterName).Result()
			sc.Close()
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return false
			}
		}
		return true
	})
	return s
}

// addrs returns the Sentinels' addresses.
func (s *rsSentinelSet) addrs() []string {
	var a []string
	for _, n := range s.sentinels {
		a = append(a, n.addr())
	}
	return a
}

// masterAddr is what the first answering Sentinel says the master is.
func (s *rsSentinelSet) masterAddr() string {
	ctx := context.Background()
	for _, n := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: n.addr(), DialTimeout: 200 * time.Millisecond})
		a, err := sc.GetMasterAddrByName(ctx, rsMasterName).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1])
		}
	}
	return ""
}
