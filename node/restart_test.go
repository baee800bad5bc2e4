package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// TestSameNameRestart: a node that crashes (no Leave) and comes back with
// the same name on new ports, as a StatefulSet pod does, is let back in once
// the others have declared the old one dead and the reclaim time has
// passed, and owns its keys again.
func TestSameNameRestart(t *testing.T) {
	src := newSource()
	nodes := nodetest.Start(t, 3, withGroup(src, func(i int, cfg *node.Config) { cfg.SkipLeave = i == 2 }))
	key := ""
	for _, k := range randomKeys(1000) {
		if nodes[0].Current().Owner(k) == "node-2" {
			key = k
			break
		}
	}
	nodes[2].Stop(t)
	stopped := time.Now()

	reborn := newSource()
	cfg := node.LocalConfig("node-2")
	cfg.Logger = nodetest.Logger(t)
	cfg.Join = []string{nodes[0].GossipAddr()}
	cfg.Groups = []node.GroupSpec{{Name: "g", Loader: reborn}}
	again := nodetest.Run(t, cfg)
	if again.PeerAddr() == nodes[2].PeerAddr() {
		t.Fatal("the restarted node reused its old address; the test needs a new one")
	}
	deadline := time.Now().Add(60 * time.Second)
	for nodes[0].Peers()["node-2"] != again.PeerAddr() || nodes[1].Peers()["node-2"] != again.PeerAddr() || again.Current().Len() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the others still reach node-2 at %q and %q, not at its new address %s",
				nodes[0].Peers()["node-2"], nodes[1].Peers()["node-2"], again.PeerAddr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the restarted node owned its name again %v after the crash", time.Since(stopped))
	nodetest.WaitConverged(t, 10*time.Second, nodes[0], nodes[1], again)
	if got := nodes[0].Current().Owner(key); got != "node-2" {
		t.Fatalf("%s is owned by %s after the restart", key, got)
	}
	if _, err := nodes[0].Group("g").Get(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if reborn.count(key) != 1 {
		t.Fatalf("a get for the restarted node's key did not reach it (loads there: %d)", reborn.count(key))
	}
}
