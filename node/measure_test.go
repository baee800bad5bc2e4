package node_test

import (
	"os"
	"testing"
	"time"

	"github.com/avion/authnode/cluster"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// TestMeasureDefaultTimings measures failure detection, leave, partition
// healing and same-name restart with the production timings (memberlist's
// LAN profile, 30 s re-join) for docs/operations.md. It takes about a minute,
// so it runs only with AUTHNODE_MEASURE=1.
func TestMeasureDefaultTimings(t *testing.T) {
	if os.Getenv("AUTHNODE_MEASURE") == "" {
		t.Skip("measures production timings for docs/operations.md; set AUTHNODE_MEASURE=1 to run it")
	}
	lan := func(i int, cfg *node.Config) {
		cfg.Timing = cluster.LANTiming()
		cfg.RejoinInterval = node.DefaultConfig("").RejoinInterval
		cfg.SkipLeave = i == 1 || i == 2
	}
	netw := nodetest.NewNetwork()
	nodes := nodetest.Start(t, 4, nodetest.Options{Network: netw, Config: lan, Timeout: time.Minute})

	start := time.Now()
	nodes[2].Stop(t)
	rest := []*nodetest.Node{nodes[0], nodes[1], nodes[3]}
	nodetest.WaitConverged(t, 2*time.Minute, rest...)
	t.Logf("failure detection (kill, no leave): every ring dropped the node after %v", time.Since(start))

	start = time.Now()
	netw.Partition([]string{"node-0", "node-1"}, []string{"node-3"})
	nodetest.WaitConverged(t, 2*time.Minute, nodes[0], nodes[1])
	nodetest.WaitConverged(t, 2*time.Minute, nodes[3])
	t.Logf("partition: two rings after %v", time.Since(start))
	start = time.Now()
	netw.Heal()
	nodetest.WaitConverged(t, 2*time.Minute, rest...)
	t.Logf("partition healed: one ring again after %v (re-join every %v)", time.Since(start), node.DefaultConfig("").RejoinInterval)

	start = time.Now()
	nodes[3].Stop(t) // node-3 leaves gracefully
	nodetest.WaitConverged(t, time.Minute, nodes[0], nodes[1])
	t.Logf("graceful leave: dropped after %v", time.Since(start))

	start = time.Now()
	nodes[1].Stop(t) // a crash, then the same pod name on a new address
	cfg := node.LocalConfig("node-1")
	lan(0, &cfg)
	cfg.Logger, cfg.Join = nodetest.Logger(t), []string{nodes[0].GossipAddr()}
	again := nodetest.Run(t, cfg)
	for nodes[0].Peers()["node-1"] != again.PeerAddr() {
		if time.Since(start) > 3*time.Minute {
			t.Fatal("the restarted node was not let back in")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("same-name restart on a new address: owned its name again after %v", time.Since(start))
}
