package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/shard"
)

// versions is a source whose value for a key changes on every load.
type versions struct {
	mu    sync.Mutex
	loads map[string]int
}

func (v *versions) Load(_ context.Context, key string) (shard.Value, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.loads[key]++
	return shard.Value{Bytes: fmt.Appendf(nil, "%s@%d", key, v.loads[key])}, nil
}

// TestPausedNodeFlushesBeforeServing: node-1 owns a key and holds it; its
// traffic is cut while the key is invalidated on the others (the fan-out
// misses node-1) and its process is "paused" (its monotonic clock jumps past
// the suspicion timeout). When it runs again, its first answer is reloaded,
// not the value from before the pause.
func TestPausedNodeFlushesBeforeServing(t *testing.T) {
	src := &versions{loads: map[string]int{}}
	var mono atomic.Int64
	netw := nodetest.NewNetwork()
	nodes := nodetest.Start(t, 3, nodetest.Options{Network: netw, Config: func(i int, cfg *node.Config) {
		cfg.Groups = []node.GroupSpec{{Name: "g", Loader: src}}
		if i == 1 {
			cfg.Mono = func() time.Duration { return time.Duration(mono.Load()) }
		}
	}})
	paused := nodes[1]
	key := ""
	for _, k := range randomKeys(1000) {
		if paused.Current().Owner(k) == paused.Name() {
			key = k
			break
		}
	}
	ctx := context.Background()
	if e, err := paused.Group("g").Get(ctx, key); err != nil || string(e.Value) != key+"@1" {
		t.Fatalf("first Get = %q, %v", e.Value, err)
	}

	netw.Isolate(paused.Name())
	for _, n := range []*nodetest.Node{nodes[0], nodes[2]} {
		n.Group("g").Invalidate(key, n.Clock().Now()) // the fan-out that misses node-1
	}
	mono.Add(int64(10 * time.Second)) // longer than MaxPause
	netw.Heal()

	e, err := paused.Group("g").Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) == key+"@1" {
		t.Fatal("the paused node served its value from before the pause")
	}
	if paused.Cache().Flushes() != 1 || nodes[0].Cache().Flushes() != 0 {
		t.Fatalf("flushes: paused node %d, another %d", paused.Cache().Flushes(), nodes[0].Cache().Flushes())
	}
}

// TestIsolatedNodeFlushesOnReconnect: node-1 reaches no peer for longer
// than the suspicion timeout while one of its keys is invalidated elsewhere;
// once the partition heals and the rings merge, it flushes, so it answers
// with the new value.
func TestIsolatedNodeFlushesOnReconnect(t *testing.T) {
	src := &versions{loads: map[string]int{}}
	netw := nodetest.NewNetwork()
	nodes := nodetest.Start(t, 3, nodetest.Options{Network: netw, Config: func(i int, cfg *node.Config) {
		cfg.Groups = []node.GroupSpec{{Name: "g", Loader: src}}
		if i == 1 {
			cfg.MaxSilence = 600 * time.Millisecond // below the time it takes to be left alone
		}
	}})
	cut := nodes[1]
	key := ""
	for _, k := range randomKeys(1000) {
		if cut.Current().Owner(k) == cut.Name() {
			key = k
			break
		}
	}
	ctx := context.Background()
	if _, err := cut.Group("g").Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	netw.Isolate(cut.Name())
	for _, n := range []*nodetest.Node{nodes[0], nodes[2]} {
		n.Group("g").Invalidate(key, n.Clock().Now())
	}
	cutAt := time.Now()
	deadline := cutAt.Add(30 * time.Second)
	for cut.Current().Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the isolated node never noticed it was alone")
		}
		time.Sleep(10 * time.Millisecond)
	}
	netw.Heal()
	took := nodetest.WaitConverged(t, 30*time.Second, nodes...)
	t.Logf("isolated node alone after %v; merged %v after the heal", time.Since(cutAt)-took, took)
	for cut.Cache().Flushes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reconnected node did not flush")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e, err := cut.Group("g").Get(ctx, key); err != nil || string(e.Value) == key+"@1" {
		t.Fatalf("after reconnecting: %q, %v", e.Value, err)
	}
}

// TestReturningNodeCatchesUpThroughGossip: node-1 is cut off, too briefly
// to flush, while one of its keys is invalidated on the others. When the
// partition heals, the push-pull exchange carries the invalidation to it, so
// it drops the key without a flush.
func TestReturningNodeCatchesUpThroughGossip(t *testing.T) {
	src := &versions{loads: map[string]int{}}
	netw := nodetest.NewNetwork()
	nodes := nodetest.Start(t, 3, nodetest.Options{Network: netw, Config: func(_ int, cfg *node.Config) {
		cfg.Groups = []node.GroupSpec{{Name: "g", Loader: src}}
		cfg.MaxSilence = time.Hour
	}})
	back := nodes[1]
	key := ""
	for _, k := range randomKeys(1000) {
		if back.Current().Owner(k) == back.Name() {
			key = k
			break
		}
	}
	ctx := context.Background()
	if _, err := back.Group("g").Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	netw.Isolate(back.Name())
	gen := nodes[0].Clock().Now()
	for _, n := range []*nodetest.Node{nodes[0], nodes[2]} {
		n.Group("g").Invalidate(key, gen)
	}
	deadline := time.Now().Add(30 * time.Second)
	for back.Current().Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the cut-off node never noticed it was alone")
		}
		time.Sleep(10 * time.Millisecond)
	}
	netw.Heal()
	nodetest.WaitConverged(t, 30*time.Second, nodes...)
	for !caughtUp(back, key, gen) {
		if time.Now().After(deadline) {
			t.Fatal("the invalidation never reached the returning node")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e, err := back.Group("g").Get(ctx, key); err != nil || string(e.Value) == key+"@1" {
		t.Fatalf("after catching up: %q, %v", e.Value, err)
	}
	if back.Cache().Flushes() != 0 {
		t.Fatal("the node flushed; this test is about catching up without a flush")
	}
}

func caughtUp(n *nodetest.Node, key string, gen hlc.Gen) bool {
	for _, inv := range n.Cache().Recent() {
		if inv.Key == key && inv.Gen >= gen {
			return true
		}
	}
	return false
}

// TestPausedNodeMissesNoRevocation: while node-1 is "paused", a user's
// permission is removed and its tokens revoked in the source, and every
// channel that would tell node-1 misses it (no invalidation call reaches it;
// the change feed, the watermark re-read and gossip are made too slow).
// When it runs again it answers no token question until it has read the
// watermarks again, then rejects the revoked token, and it never allows
// from the old policy.
func TestPausedNodeMissesNoRevocation(t *testing.T) {
	s := newSigner(t)
	src := openStore(t, clusterPolicy)
	v := s.validator(t)
	var mono atomic.Int64
	nodes := nodetest.Start(t, 3, nodetest.Options{Config: func(i int, cfg *node.Config) {
		cfg.Source, cfg.Validator = src, v
		cfg.ChangePoll, cfg.WatermarkSync, cfg.Timing.PushPullInterval = time.Hour, time.Hour, time.Hour
		if i == 1 {
			cfg.Mono = func() time.Duration { return time.Duration(mono.Load()) }
		}
	}})
	paused := nodes[1]
	user := ownedBy(paused, "user")
	importPolicy(t, src, "users:\n  - {id: "+user+", roles: [editor]}\n", false)
	ctx := context.Background()
	token := s.token(t, user, time.Now().Add(-time.Minute))
	if ok, err := paused.Authorize(ctx, user, "posts:1", "write", nil); err != nil || !ok {
		t.Fatalf("before: %v, %v", ok, err)
	}
	if _, err := paused.ValidateToken(ctx, token); err != nil {
		t.Fatalf("before: %v", err)
	}

	importPolicy(t, src, "users:\n  - {id: "+user+", roles: []}\n", false)
	if _, err := src.RevokeTokens(ctx, user, time.Now()); err != nil {
		t.Fatal(err)
	}
	mono.Add(int64(10 * time.Second)) // longer than MaxPause

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := paused.ValidateToken(ctx, token)
		if auth.ErrorCode(err) == auth.CodeRevoked {
			break
		}
		if err == nil {
			t.Fatal("after the pause a revoked token was accepted")
		}
		if !errors.Is(err, auth.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("after the pause: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ok, err := paused.Authorize(ctx, user, "posts:1", "write", nil); err != nil || ok {
		t.Fatalf("after the pause the old policy answered: %v, %v", ok, err)
	}
}
