package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// network cuts gossip between named nodes in tests. Each node gets a view
// that blocks its sends to nodes on the other side of a cut.
type network struct {
	mu    sync.Mutex
	addrs map[string]string // gossip address → node name
	cut   map[[2]string]bool
}

func newNetwork() *network {
	return &network{addrs: map[string]string{}, cut: map[[2]string]bool{}}
}

func (n *network) register(name, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[addr] = name
}

// partition cuts every node in a from every node in b, both ways.
func (n *network) partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}], n.cut[[2]string{y, x}] = true, true
		}
	}
}

func (n *network) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
}

type view struct {
	net  *network
	self string
}

func (v view) Blocked(addr string) bool {
	v.net.mu.Lock()
	defer v.net.mu.Unlock()
	return v.net.cut[[2]string{v.self, v.net.addrs[addr]}]
}

// TestPartitionHeals: a 4-node cluster cut in two halves forms two rings
// (two fingerprints); once the cut heals the periodic re-join merges them
// into one ring without a restart.
func TestPartitionHeals(t *testing.T) {
	netw := newNetwork()
	var nodes []*Cluster
	names := []string{"p-0", "p-1", "p-2", "p-3"}
	for i, name := range names {
		cfg := LocalConfig(name)
		cfg.Meta.PeerAddr = "127.0.0.1:9"
		cfg.Logger = testLogger(t)
		cfg.Faults = view{net: netw, self: name}
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown() })
		netw.register(name, c.GossipAddr())
		nodes = append(nodes, c)
	}
	eventually(t, 15*time.Second, "one ring", func() bool { return agree(nodes, 4) })

	netw.partition(names[:2], names[2:])
	cutAt := time.Now()
	eventually(t, 30*time.Second, "two rings", func() bool {
		return agree(nodes[:2], 2) && agree(nodes[2:], 2) && nodes[0].Ring().Fingerprint() != nodes[2].Ring().Fingerprint()
	})
	t.Logf("the cut split the ring in two after %v", time.Since(cutAt))

	netw.heal()
	took := eventually(t, 30*time.Second, "the halves to merge", func() bool { return agree(nodes, 4) })
	t.Logf("the healed partition merged into one ring in %v", took)
	for _, n := range nodes {
		if got := n.Ring().Len(); got != 4 {
			t.Fatalf("%s: %d members", fmt.Sprint(n.cfg.Name), got)
		}
	}
}
