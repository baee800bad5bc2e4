package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/avion/authnode/ring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// errUnreachable is what the fake network returns for a node it cannot reach.
var errUnreachable = errors.New("fake network: unreachable")

// fakeNet connects fake nodes in memory. Each node has its own ring, so tests
// can give nodes different views of membership.
type fakeNet struct {
	mu    sync.Mutex
	nodes map[string]*fakeNode
}

// fakeNode is one node: a Cache plus the Peers it uses.
type fakeNode struct {
	name  string
	net   *fakeNet
	ring  atomic.Pointer[ring.Snapshot]
	cache *Cache

	received atomic.Int64 // forwarded gets this node received
	mu       sync.Mutex
	before   func(ctx context.Context) error // runs before serving a forwarded get
	after    func()                          // runs after serving, before the answer leaves
}

func (n *fakeNode) Ring() *ring.Snapshot { return n.ring.Load() }

func (n *fakeNode) Get(ctx context.Context, owner string, req ForwardRequest) (ForwardResponse, error) {
	n.net.mu.Lock()
	target := n.net.nodes[owner]
	n.net.mu.Unlock()
	if target == nil || owner == n.name {
		return ForwardResponse{}, errUnreachable
	}
	return target.serve(ctx, req)
}

func (n *fakeNode) serve(ctx context.Context, req ForwardRequest) (ForwardResponse, error) {
	n.received.Add(1)
	n.mu.Lock()
	before, after := n.before, n.after
	n.mu.Unlock()
	if before != nil {
		if err := before(ctx); err != nil {
			return ForwardResponse{}, err
		}
	}
	resp, err := n.cache.ServeForward(ctx, req)
	if after != nil {
		after()
	}
	return resp, err
}

func (n *fakeNode) setHooks(before func(context.Context) error, after func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.before, n.after = before, after
}

// shortTimeout makes forwards to a silent owner give up quickly.
func shortTimeout(c *Config) { c.PeerTimeout = 20 * time.Millisecond }

// silent makes a node never answer: a forwarded get waits for its deadline.
func silent(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// testConfig gives peers a generous timeout, so a slow machine (race
// detector, parallel packages) never turns a forward into a degraded load;
// tests of silent owners set shortTimeout.
func testConfig(name string) Config {
	cfg := DefaultConfig(name)
	cfg.PeerTimeout = 5 * time.Second
	cfg.LoadTimeout = 10 * time.Second
	return cfg
}

func testGroupConfig() GroupConfig {
	return GroupConfig{MaxBytes: 1 << 20, TTL: time.Minute, HotMaxBytes: 1 << 18, HotTTL: time.Minute, HotSampleEvery: 1}
}

func memberNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i)
	}
	return out
}

func snapshotOf(t testing.TB, members ...string) *ring.Snapshot {
	t.Helper()
	r, err := ring.New(ring.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.SetMembers(members)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newNet starts one fake node per member, all sharing one ring of members,
// each with a group "g" backed by src. mod adjusts each node's Config.
func newNet(t testing.TB, members []string, src *source, gcfg GroupConfig, mod func(*Config)) *fakeNet {
	t.Helper()
	net := &fakeNet{nodes: map[string]*fakeNode{}}
	snap := snapshotOf(t, members...)
	for _, m := range members {
		n := &fakeNode{name: m, net: net}
		n.ring.Store(snap)
		cfg := testConfig(m)
		if mod != nil {
			mod(&cfg)
		}
		c, err := New(cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if _, err := c.NewGroup("g", src.loaderFor(m), gcfg); err != nil {
			t.Fatal(err)
		}
		n.cache = c
		net.nodes[m] = n
	}
	return net
}

func (net *fakeNet) node(name string) *fakeNode { return net.nodes[name] }

func (net *fakeNet) group(name string) *Group { return net.nodes[name].cache.Group("g") }

// keyOwnedBy finds a key that snap places on owner.
func keyOwnedBy(t testing.TB, snap *ring.Snapshot, owner string) string {
	t.Helper()
	for i := range 100_000 {
		if k := fmt.Sprintf("key-%d", i); snap.Owner(k) == owner {
			return k
		}
	}
	t.Fatalf("no key owned by %s", owner)
	return ""
}

// source is a fake source of truth: it counts loads per key and node, and
// serves key@version, where version counts the key's loads.
type source struct {
	mu      sync.Mutex
	loads   map[string]int
	byNode  map[string]int
	fn      func(ctx context.Context, node, key string, n int) (Value, error) // optional override
	started chan string                                                       // optional: receives key when a load starts
}

func newSource() *source {
	return &source{loads: map[string]int{}, byNode: map[string]int{}}
}

func (s *source) loaderFor(node string) Loader {
	return LoaderFunc(func(ctx context.Context, key string) (Value, error) {
		s.mu.Lock()
		s.loads[key]++
		s.byNode[node]++
		n, fn, started := s.loads[key], s.fn, s.started
		s.mu.Unlock()
		if started != nil {
			select { // never block a load on a test that stopped listening
			case started <- key:
			default:
			}
		}
		if fn != nil {
			return fn(ctx, node, key, n)
		}
		return Value{Bytes: fmt.Appendf(nil, "%s@%d", key, n)}, nil
	})
}

func (s *source) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads[key]
}

func (s *source) countOn(node string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byNode[node]
}

func (s *source) set(fn func(ctx context.Context, node, key string, n int) (Value, error), started chan string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn, s.started = fn, started
}

// recv receives from ch or fails the test after a deadline.
func recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustGet(t testing.TB, g *Group, key string) string {
	t.Helper()
	e, err := g.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q) on %s: %v", key, g.c.cfg.Self, err)
	}
	return string(e.Value)
}
