package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// gate makes a fake source block each load until the test releases it.
type gate struct {
	started chan string
	release chan struct{}
}

func newGate(src *source) *gate {
	g := &gate{started: make(chan string, 16), release: make(chan struct{})}
	src.set(func(ctx context.Context, _, key string, n int) (Value, error) {
		select {
		case <-g.release:
		case <-ctx.Done():
			return Value{}, ctx.Err()
		}
		return Value{Bytes: fmt.Appendf(nil, "%s@%d", key, n)}, nil
	}, g.started)
	return g
}

func (g *gate) open() { close(g.release) }

// TestInvalidationDuringOwnerLoadWins: an invalidation that arrives while the
// owner is loading makes that load's result neither stored nor returned.
func TestInvalidationDuringOwnerLoadWins(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	gt := newGate(src)
	results := make(chan string, 2)
	var wg sync.WaitGroup
	for range 2 { // two callers share one flight
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := g.Get(context.Background(), "user-1")
			if err != nil {
				t.Error(err)
			}
			results <- string(e.Value)
		}()
	}
	recv(t, "a load to start", gt.started)
	eventually(t, "both callers waiting", func() bool { return g.Stats().Misses == 2 })
	g.Invalidate("user-1", 0)
	gt.open()
	recv(t, "the second load", gt.started)
	wg.Wait()
	close(results)
	for r := range results {
		if r != "user-1@2" {
			t.Fatalf("a caller got %q, loaded before the invalidation", r)
		}
	}
	if got := mustGet(t, g, "user-1"); got != "user-1@2" {
		t.Fatalf("cached %q after the invalidation", got)
	}
	if s := g.Stats(); s.Discarded != 1 || s.Loads != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestInvalidationDuringForwardWins: the owner answered with the old value,
// but the non-owner was invalidated while that answer was on its way. The
// answer must not be kept as a hot copy nor returned.
func TestInvalidationDuringForwardWins(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	a, b := net.group("a"), net.group("b")
	var once sync.Once
	net.node("b").setHooks(nil, func() {
		once.Do(func() { // the old answer is ready; now the invalidation lands, owner first
			b.Invalidate(key, 0)
			a.Invalidate(key, 0)
		})
	})
	if got := mustGet(t, a, key); got != key+"@2" {
		t.Fatalf("Get = %q, want the value loaded after the invalidation", got)
	}
	if got := mustGet(t, a, key); got != key+"@2" {
		t.Fatalf("hot copy = %q", got)
	}
	if s := a.Stats(); s.Discarded != 1 || s.Forwards != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestInvalidateDropsEverywhere: after Invalidate on every node, no node
// serves the old value from its owner shard or hot copy.
func TestInvalidateDropsEverywhere(t *testing.T) {
	members := memberNames(3)
	src := newSource()
	net := newNet(t, members, src, testGroupConfig(), nil)
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
		for _, m := range members {
			mustGet(t, net.group(m), keys[i])
		}
	}
	for _, k := range keys {
		owner := net.node(members[0]).Ring().Owner(k)
		net.group(owner).Invalidate(k, 0)
		for _, m := range members {
			if m != owner {
				net.group(m).Invalidate(k, 0)
			}
		}
	}
	for _, k := range keys {
		for _, m := range members {
			if got := mustGet(t, net.group(m), k); got != k+"@2" {
				t.Fatalf("%s serves %q after invalidation", m, got)
			}
		}
	}
}

func TestInvalidateAll(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), nil)
	for i := range 20 {
		for _, m := range []string{"a", "b"} {
			mustGet(t, net.group(m), fmt.Sprintf("k%d", i))
		}
	}
	gt := newGate(src)
	inflight := make(chan string, 1)
	go func() {
		e, _ := net.group("a").Get(context.Background(), "late")
		inflight <- string(e.Value)
	}()
	recv(t, "a load to start", gt.started)
	for _, m := range []string{"a", "b"} {
		net.group(m).InvalidateAll(0)
	}
	gt.open()
	if got := recv(t, "inflight", inflight); got != "late@2" {
		t.Fatalf("in-flight load returned %q across InvalidateAll", got)
	}
	for i := range 20 {
		k := fmt.Sprintf("k%d", i)
		for _, m := range []string{"a", "b"} {
			if got := mustGet(t, net.group(m), k); got != k+"@2" {
				t.Fatalf("%s serves %q after InvalidateAll", m, got)
			}
		}
	}
}

// TestLateInvalidationOnlyCostsALoad: a duplicate or old invalidation drops
// the entry (one more load) but never brings back an older value.
func TestLateInvalidationOnlyCostsALoad(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	mustGet(t, g, "k")
	gen := net.node("a").cache.cfg.Clock.Now()
	g.Invalidate("k", gen)
	mustGet(t, g, "k")
	g.Invalidate("k", gen) // duplicate
	g.Invalidate("k", 1)   // very old
	if got := mustGet(t, g, "k"); got != "k@3" {
		t.Fatalf("Get = %q", got)
	}
	if e, _ := g.Get(context.Background(), "k"); e.Gen <= gen {
		t.Fatalf("entry generation %d not after invalidation %d", e.Gen, gen)
	}
}

// TestChurnGivesUp: when every load attempt is overtaken by an invalidation,
// Get fails with ErrChurn instead of returning a stale value.
func TestChurnGivesUp(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	src.set(func(_ context.Context, _, key string, n int) (Value, error) {
		g.Invalidate(key, 0)
		return Value{Bytes: []byte("stale")}, nil
	}, nil)
	if _, err := g.Get(context.Background(), "k"); !errors.Is(err, ErrChurn) {
		t.Fatalf("Get = %v, want ErrChurn", err)
	}
	if n := src.count("k"); n != testConfig("a").LoadAttempts {
		t.Fatalf("%d loads, want %d", n, testConfig("a").LoadAttempts)
	}
}
