package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// TestGossipReachesWhatCallsMissed: when node-0 cannot call node-2 over
// gRPC but gossip still flows, an invalidation and a revocation made on
// node-0 reach node-2 through memberlist's broadcast (push-pull, the
// change feed and the watermark re-read are made too slow here to do it).
func TestGossipReachesWhatCallsMissed(t *testing.T) {
	s := newSigner(t)
	src := openStore(t, clusterPolicy)
	v := s.validator(t)
	network := nodetest.NewNetwork()
	nodes := nodetest.Start(t, 3, nodetest.Options{Network: network, Config: func(_ int, cfg *node.Config) {
		cfg.Source, cfg.Validator = src, v
		cfg.Timing.PushPullInterval, cfg.WatermarkSync, cfg.ChangePoll = time.Hour, time.Hour, time.Hour
	}})
	ctx := context.Background()
	user := ownedBy(nodes[2], "user")
	importPolicy(t, src, "users:\n  - {id: "+user+", roles: [editor]}\n", false)
	expectEverywhere(t, nodes, user, "posts:1", "write", true)
	old := s.token(t, user, time.Now().Add(-time.Minute))
	if _, err := nodes[2].ValidateToken(ctx, old); err != nil {
		t.Fatal(err)
	}

	network.CutPeerCalls(nodes[0].Name(), nodes[2].Name())
	importPolicy(t, src, "users:\n  - {id: "+user+", roles: [viewer]}\n", false)
	acks, _ := nodes[0].InvalidateUser(ctx, user)
	rev, err := nodes[0].RevokeTokens(ctx, user, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("direct calls: invalidation %+v, revocation %+v", acks, rev.Acks)

	deadline := time.Now().Add(10 * time.Second)
	for {
		allowed, err := nodes[2].Authorize(ctx, user, "posts:1", "write", nil)
		_, verr := nodes[2].ValidateToken(ctx, old)
		if err == nil && !allowed && auth.ErrorCode(verr) == auth.CodeRevoked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-2 still answers from the old state: allowed %v (%v), token %v", allowed, err, verr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownedBy returns a key with prefix that n's ring places on n.
func ownedBy(n *nodetest.Node, prefix string) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("%s-%d", prefix, i); n.Current().Owner(k) == n.Name() {
			return k
		}
	}
}

// TestOwnerThatMissedAnInvalidation: node-0 cannot call the owner of a
// user (node-2), so InvalidateUser reaches only node-0 and node-1. node-1
// must not fetch the old policy back from the owner: it passes the
// invalidation on to the owner itself.
func TestOwnerThatMissedAnInvalidation(t *testing.T) {
	for _, alsoCut := range []bool{false, true} {
		name := map[bool]string{false: "relayed by node-1", true: "node-1 cannot reach the owner either"}[alsoCut]
		t.Run(name, func(t *testing.T) {
			src := openStore(t, clusterPolicy)
			network := nodetest.NewNetwork()
			nodes := nodetest.Start(t, 3, nodetest.Options{Network: network, Config: func(_ int, cfg *node.Config) {
				cfg.Source = src
				cfg.Timing.PushPullInterval, cfg.WatermarkSync, cfg.ChangePoll = time.Hour, time.Hour, time.Hour
			}})
			ctx := context.Background()
			user := ownedBy(nodes[2], "user")
			importPolicy(t, src, "users:\n  - {id: "+user+", roles: [editor]}\n", false)
			expectEverywhere(t, nodes, user, "posts:1", "write", true)

			network.CutPeerCalls(nodes[0].Name(), nodes[2].Name())
			if alsoCut {
				network.CutPeerCalls(nodes[1].Name(), nodes[2].Name())
			}
			importPolicy(t, src, "users:\n  - {id: "+user+", roles: [viewer]}\n", false)
			acks, _ := nodes[0].InvalidateUser(ctx, user)
			if acks.Acknowledged != 2 {
				t.Fatalf("InvalidateUser = %+v, want node-0 and node-1", acks)
			}
			for _, n := range nodes[:2] {
				for range 20 {
					if ok, err := n.Authorize(ctx, user, "posts:1", "write", nil); err != nil || ok {
						t.Fatalf("%s answers from the old policy: %v, %v", n.Name(), ok, err)
					}
				}
			}
			// Relayed, the owner itself has the new policy; cut off from
			// both, it keeps the old one until its entry's TTL (the stated
			// bound for a member no channel reaches).
			if ok, err := nodes[2].Authorize(ctx, user, "posts:1", "write", nil); !alsoCut && (err != nil || ok) {
				t.Fatalf("the owner did not get the relayed invalidation: %v, %v", ok, err)
			}
		})
	}
}
