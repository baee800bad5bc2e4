package cluster

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// changes records the views a cluster reports.
type changes struct {
	mu    sync.Mutex
	views []View
}

func (c *changes) record(v View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.views = append(c.views, v)
}

func (c *changes) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.views)
}

// startNodes runs n nodes on 127.0.0.1, each joining the first.
func startNodes(t *testing.T, n int) []*Cluster {
	t.Helper()
	var nodes []*Cluster
	for i := range n {
		cfg := LocalConfig(fmt.Sprintf("node-%d", i))
		cfg.Meta.PeerAddr = fmt.Sprintf("127.0.0.1:%d", 20000+i)
		cfg.Logger = testLogger(t)
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		if i > 0 {
			if _, err := c.Join([]string{nodes[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, c)
	}
	return nodes
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// agree reports whether every node's ring has want members and one fingerprint.
func agree(nodes []*Cluster, want int) bool {
	fp := nodes[0].Ring().Fingerprint()
	for _, n := range nodes {
		if r := n.Ring(); r.Len() != want || r.Fingerprint() != fp {
			return false
		}
	}
	return true
}

func TestNodesAgreeOnOneRing(t *testing.T) {
	nodes := startNodes(t, 3)
	took := eventually(t, 10*time.Second, "one ring", func() bool { return agree(nodes, 3) })
	t.Logf("3 nodes agreed on one ring in %v", took)
	v := nodes[1].View()
	if m := v.Members["node-2"]; m.PeerAddr != "127.0.0.1:20002" || m.Version != ProtocolVersion {
		t.Fatalf("node-1 sees node-2 as %+v", m)
	}
}

func TestLeaveIsSeenAtOnce(t *testing.T) {
	nodes := startNodes(t, 3)
	eventually(t, 10*time.Second, "one ring", func() bool { return agree(nodes, 3) })
	if err := nodes[2].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	_ = nodes[2].Shutdown()
	took := eventually(t, 5*time.Second, "the leave to spread", func() bool { return agree(nodes[:2], 2) })
	t.Logf("a graceful leave reached every ring in %v", took)
	wantStates(t, nodes[0], map[string]int{StateAlive: 2, StateFailed: 0, StateLeft: 1})
}

// wantStates fails unless c counts its members as want.
func wantStates(t *testing.T, c *Cluster, want map[string]int) {
	t.Helper()
	if got := c.MemberStates(); !maps.Equal(got, want) {
		t.Fatalf("member states %v, want %v", got, want)
	}
}

func TestFailedNodeIsDropped(t *testing.T) {
	nodes := startNodes(t, 3)
	eventually(t, 10*time.Second, "one ring", func() bool { return agree(nodes, 3) })
	_ = nodes[2].Shutdown() // no Leave: the others must detect it
	took := eventually(t, 30*time.Second, "failure detection", func() bool { return agree(nodes[:2], 2) })
	t.Logf("a failed node left every ring after %v (local timings)", took)
	wantStates(t, nodes[0], map[string]int{StateAlive: 2, StateFailed: 1, StateLeft: 0})
	if got := nodes[0].events.states(time.Now().Add(departureMemory + time.Minute)); got[StateFailed] != 0 {
		t.Fatalf("a failure was remembered beyond %v: %v", departureMemory, got)
	}
	wantStates(t, nodes[0], map[string]int{StateAlive: 2, StateFailed: 0, StateLeft: 0})
}

// TestRejoinedMemberIsAliveAgain: a failed member that comes back under its
// name is no longer counted as failed.
func TestRejoinedMemberIsAliveAgain(t *testing.T) {
	nodes := startNodes(t, 2)
	eventually(t, 10*time.Second, "one ring", func() bool { return agree(nodes, 2) })
	_ = nodes[1].Shutdown()
	eventually(t, 30*time.Second, "failure detection", func() bool { return nodes[0].MemberStates()[StateFailed] == 1 })
	cfg := LocalConfig("node-1")
	cfg.Meta.PeerAddr = "127.0.0.1:20001"
	cfg.Logger = testLogger(t)
	back, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = back.Shutdown() })
	if _, err := back.Join([]string{nodes[0].GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the member to come back", func() bool { return nodes[0].MemberStates()[StateAlive] == 2 })
	wantStates(t, nodes[0], map[string]int{StateAlive: 2, StateFailed: 0, StateLeft: 0})
}

func TestOnChangeSeesEveryRing(t *testing.T) {
	var seen changes
	cfg := LocalConfig("solo")
	cfg.Meta.PeerAddr = "127.0.0.1:1"
	c, err := New(cfg, seen.record)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })
	other := LocalConfig("other")
	other.Meta.PeerAddr = "127.0.0.1:2"
	o, err := New(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Shutdown() })
	if _, err := o.Join([]string{c.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a second member", func() bool { return seen.count() >= 1 && c.Ring().Len() == 2 })
	if got := c.View().Members["other"].PeerAddr; got != "127.0.0.1:2" {
		t.Fatalf("peer address %q", got)
	}
}

func TestBadMetaKeepsMemberOutOfRing(t *testing.T) {
	nodes := startNodes(t, 1)
	for name, meta := range map[string]string{
		"future":  `{"v":2,"peer":"127.0.0.1:3"}`,
		"garbage": `not json`,
	} {
		cfg := LocalConfig(name)
		cfg.Meta.PeerAddr = "127.0.0.1:3"
		c, err := start(cfg, nil, []byte(meta))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		if _, err := c.Join([]string{nodes[0].GossipAddr()}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the joins", func() bool { return nodes[0].ml.NumMembers() == 3 })
	if r := nodes[0].Ring(); r.Len() != 1 {
		t.Fatalf("members with bad metadata entered the ring: %v", r.Members())
	}
}

func TestJoinFailsWhenNoSeedAnswers(t *testing.T) {
	nodes := startNodes(t, 1)
	if _, err := nodes[0].Join([]string{"127.0.0.1:1"}); err == nil {
		t.Fatal("join to a closed port succeeded")
	}
}

func TestConfigValidation(t *testing.T) {
	good := LocalConfig("n")
	good.Meta.PeerAddr = "127.0.0.1:9091"
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no name":    func(c *Config) { c.Name = "" },
		"bad join":   func(c *Config) { c.Join = []string{"host-without-port"} },
		"join port":  func(c *Config) { c.Join = []string{"h:99999"} },
		"bind port":  func(c *Config) { c.BindPort = 70000 },
		"gossip key": func(c *Config) { c.GossipKey = []byte("short") },
		"no peer":    func(c *Config) { c.Meta.PeerAddr = "" },
		"timing":     func(c *Config) { c.Timing.ProbeInterval = 0 },
	} {
		cfg := good
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEncryptedGossip(t *testing.T) {
	key := []byte("0123456789abcdef")
	var nodes []*Cluster
	for i := range 2 {
		cfg := LocalConfig(fmt.Sprintf("enc-%d", i))
		cfg.Meta.PeerAddr = "127.0.0.1:9"
		cfg.GossipKey = key
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		nodes = append(nodes, c)
	}
	if _, err := nodes[1].Join([]string{nodes[0].GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "one ring", func() bool { return agree(nodes, 2) })
	plain := LocalConfig("plain")
	plain.Meta.PeerAddr = "127.0.0.1:9"
	p, err := New(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	if _, err := p.Join([]string{nodes[0].GossipAddr()}); err == nil {
		t.Fatal("a node without the gossip key joined an encrypted cluster")
	}
}
