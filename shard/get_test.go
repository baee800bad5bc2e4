package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadedOnceThroughEveryNode requests every key through every node, one
// node after another and then all at once, and counts source loads.
func TestLoadedOnceThroughEveryNode(t *testing.T) {
	members := memberNames(5)
	src := newSource()
	net := newNet(t, members, src, testGroupConfig(), nil)
	for i := range 100 {
		key := fmt.Sprintf("seq-%d", i)
		for _, m := range members {
			if got, want := mustGet(t, net.group(m), key), key+"@1"; got != want {
				t.Fatalf("Get(%q) via %s = %q, want %q", key, m, got, want)
			}
		}
	}
	var wg sync.WaitGroup
	for i := range 100 {
		for _, m := range members {
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := fmt.Sprintf("par-%d", i)
					if e, err := net.group(m).Get(context.Background(), key); err != nil || string(e.Value) != key+"@1" {
						t.Errorf("Get(%q) via %s = %q, %v", key, m, e.Value, err)
					}
				}()
			}
		}
	}
	wg.Wait()
	for _, prefix := range []string{"seq", "par"} {
		for i := range 100 {
			if key := fmt.Sprintf("%s-%d", prefix, i); src.count(key) != 1 {
				t.Errorf("%s loaded %d times, want 1", key, src.count(key))
			}
		}
	}
	for _, m := range members {
		if s := net.group(m).Stats(); s.DegradedLoads != 0 || s.MisroutedLoads != 0 {
			t.Errorf("%s: %d degraded, %d misrouted loads on a healthy cluster", m, s.DegradedLoads, s.MisroutedLoads)
		}
	}
}

// TestConcurrentMissesShareOneLoad: callers on every node miss the same key
// while its owner is loading it; the owner loads it once for all of them.
func TestConcurrentMissesShareOneLoad(t *testing.T) {
	members := memberNames(3)
	src := newSource()
	net := newNet(t, members, src, testGroupConfig(), nil)
	gt := newGate(src)
	const perNode = 4
	owner := net.node(members[0]).Ring().Owner("hot")
	var wg sync.WaitGroup
	for _, m := range members {
		for range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if e, err := net.group(m).Get(context.Background(), "hot"); err != nil || string(e.Value) != "hot@1" {
					t.Errorf("Get via %s = %q, %v", m, e.Value, err)
				}
			}()
		}
	}
	recv(t, "the load to start", gt.started)
	eventually(t, "every caller waiting on the owner", func() bool {
		return net.group(owner).Stats().Misses == uint64(len(members)*perNode)
	})
	gt.open()
	wg.Wait()
	if n := src.count("hot"); n != 1 {
		t.Fatalf("%d loads for %d concurrent misses", n, len(members)*perNode)
	}
	if s := net.group(owner).Stats(); s.SharedLoads != uint64(len(members)*perNode) {
		t.Fatalf("owner stats %+v", s)
	}
}

// TestOnlyOwnerLoads checks that each load happens on the key's owner.
func TestOnlyOwnerLoads(t *testing.T) {
	members := memberNames(3)
	src := newSource()
	net := newNet(t, members, src, testGroupConfig(), nil)
	snap := net.node(members[0]).Ring()
	key := keyOwnedBy(t, snap, members[2])
	mustGet(t, net.group(members[0]), key)
	mustGet(t, net.group(members[1]), key)
	if src.countOn(members[2]) != 1 || src.countOn(members[0]) != 0 || src.countOn(members[1]) != 0 {
		t.Fatalf("loads by node: %v", src.byNode)
	}
}

// TestNeverForwardedTwice gives two nodes rings that disagree: a's ring says
// b owns the key, b's ring (which has lost b) says a or c does. A forwarded
// get must end at b, however b's ring routes the key: with a, forwarding again
// would bounce the key between a and b forever.
func TestNeverForwardedTwice(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b", "c"}, src, testGroupConfig(), nil)
	ringA, ringB := snapshotOf(t, "a", "b"), snapshotOf(t, "a", "c")
	net.node("a").ring.Store(ringA)
	net.node("b").ring.Store(ringB)
	for _, elsewhere := range []string{"a", "c"} {
		key := ""
		for i := 0; key == "" && i < 100_000; i++ {
			if k := fmt.Sprintf("k%d", i); ringA.Owner(k) == "b" && ringB.Owner(k) == elsewhere {
				key = k
			}
		}
		if key == "" {
			t.Fatalf("no key that a routes to b and b routes to %s", elsewhere)
		}
		if got := mustGet(t, net.group("a"), key); got != key+"@1" {
			t.Fatalf("Get = %q", got)
		}
		if src.count(key) != 1 || src.countOn("a")+src.countOn("c") != 0 {
			t.Fatalf("loads by node: %v", src.byNode)
		}
	}
	if n := net.node("a").received.Load() + net.node("c").received.Load(); n != 0 {
		t.Fatalf("b forwarded a forwarded get (%d times)", n)
	}
	if s := net.group("b").Stats(); s.MisroutedLoads != 2 || s.RingMismatches != 2 {
		t.Fatalf("b stats: %+v", s)
	}
}

func TestServeForwardRejectsBadRequests(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	c := net.node("a").cache
	ctx := context.Background()
	for _, tc := range []struct {
		req  ForwardRequest
		want error
	}{
		{ForwardRequest{Group: "g", Key: "k", Hops: 0}, ErrBadRequest},
		{ForwardRequest{Group: "g", Key: "k", Hops: 2}, ErrBadRequest},
		{ForwardRequest{Group: "nope", Key: "k", Hops: 1}, ErrUnknownGroup},
		{ForwardRequest{Group: "g", Key: "", Hops: 1}, ErrBadRequest},
		{ForwardRequest{Group: "g", Key: strings.Repeat("k", MaxKeyLen+1), Hops: 1}, ErrBadRequest},
	} {
		if _, err := c.ServeForward(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("ServeForward(%+v) = %v, want %v", tc.req, err, tc.want)
		}
	}
	for _, key := range []string{"", strings.Repeat("k", MaxKeyLen+1)} {
		if _, err := net.group("a").Get(ctx, key); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Get(len %d) = %v, want ErrBadRequest", len(key), err)
		}
	}
	if src.count("") != 0 {
		t.Fatal("a bad request reached the source")
	}
}

// TestHotCopies: with every answer sampled, a second get on a non-owner is
// served from its hot copy without asking the owner.
func TestHotCopies(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	a := net.group("a")
	mustGet(t, a, key)
	mustGet(t, a, key)
	if n := net.node("b").received.Load(); n != 1 {
		t.Fatalf("owner asked %d times, want 1", n)
	}
	if s := a.Stats(); s.HotHits != 1 || s.Forwards != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHotSampling(t *testing.T) {
	gcfg := testGroupConfig()
	gcfg.HotSampleEvery = 4
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, gcfg, nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	for range 4 {
		mustGet(t, net.group("a"), key)
	}
	mustGet(t, net.group("a"), key)
	if s := net.group("a").Stats(); s.Forwards != 4 || s.HotHits != 1 {
		t.Fatalf("one in four answers should be kept: %+v", s)
	}
	gcfg.HotSampleEvery = 0
	net = newNet(t, []string{"a", "b"}, newSource(), gcfg, nil)
	for range 3 {
		mustGet(t, net.group("a"), key)
	}
	if s := net.group("a").Stats(); s.Forwards != 3 || s.HotHits != 0 {
		t.Fatalf("hot copies off: %+v", s)
	}
}

// TestOwnerCannotExtendLifetime: an owner's answer claiming a lifetime
// beyond this node's group TTL is cut to the TTL.
func TestOwnerCannotExtendLifetime(t *testing.T) {
	gcfg := testGroupConfig()
	gcfg.TTL = time.Minute
	net := newNet(t, []string{"a", "b"}, newSource(), gcfg, nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	g := net.group("a")
	e := g.fromOwner(key, ForwardResponse{Value: []byte("v"), Gen: 1, TTL: 1000 * time.Hour}, g.c.cfg.Clock.Now())
	if left := time.Until(e.Expires); left > time.Minute {
		t.Fatalf("an answer from the owner lives %v here, the group TTL is 1m", left)
	}
}
