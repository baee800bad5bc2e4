package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/ring"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport/peerpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// staticRing is a RingSource with a fixed member set.
type staticRing struct{ s *ring.Snapshot }

func (r staticRing) Current() *ring.Snapshot { return r.s }

func newStaticRing(t *testing.T, members ...string) staticRing {
	t.Helper()
	r, err := ring.New(ring.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.SetMembers(members)
	if err != nil {
		t.Fatal(err)
	}
	return staticRing{s}
}

// source counts loads per key; fail makes every load fail.
type source struct {
	mu    sync.Mutex
	loads map[string]int
	fail  error
}

func (s *source) Load(_ context.Context, key string) (shard.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return shard.Value{}, s.fail
	}
	s.loads[key]++
	return shard.Value{Bytes: fmt.Appendf(nil, "%s@%d", key, s.loads[key]), TTL: 30 * time.Second}, nil
}

func (s *source) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads[key]
}

// node is one cache with a real gRPC peer server on 127.0.0.1.
type node struct {
	name   string
	addr   string
	cache  *shard.Cache
	pool   *Pool
	server *grpc.Server
	src    *source
}

func startNode(t *testing.T, name string, rs staticRing) *node {
	t.Helper()
	n := &node{name: name, pool: NewPool(rs), src: &source{loads: map[string]int{}}}
	cfg := shard.DefaultConfig(name)
	cfg.PeerTimeout = 5 * time.Second
	c, err := shard.New(cfg, n.pool)
	if err != nil {
		t.Fatal(err)
	}
	gcfg := shard.DefaultGroupConfig()
	gcfg.MaxBytes, gcfg.HotMaxBytes, gcfg.HotSampleEvery = 1<<20, 1<<16, 0
	if _, err := c.NewGroup("g", n.src, gcfg); err != nil {
		t.Fatal(err)
	}
	n.cache = c
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = lis.Addr().String()
	n.server = grpc.NewServer()
	RegisterPeer(n.server, c, auth.NewWatermarks(), nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = n.server.Serve(lis)
	}()
	t.Cleanup(func() {
		n.server.Stop()
		<-served
		n.pool.Close()
		c.Close()
	})
	return n
}

func connect(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		peers := map[string]string{}
		for _, o := range nodes {
			if o != n {
				peers[o.name] = o.addr
			}
		}
		if err := n.pool.SetPeers(peers); err != nil {
			t.Fatal(err)
		}
	}
}

func keyOwnedBy(t *testing.T, s *ring.Snapshot, owner string) string {
	t.Helper()
	for i := range 10_000 {
		if k := fmt.Sprintf("k%d", i); s.Owner(k) == owner {
			return k
		}
	}
	t.Fatalf("no key for %s", owner)
	return ""
}

func TestForwardedGetLoadsOnOwnerOnce(t *testing.T) {
	rs := newStaticRing(t, "a", "b")
	a, b := startNode(t, "a", rs), startNode(t, "b", rs)
	connect(t, a, b)
	key := keyOwnedBy(t, rs.s, "b")
	for _, n := range []*node{a, b, a} {
		e, err := n.cache.Group("g").Get(context.Background(), key)
		if err != nil || string(e.Value) != key+"@1" {
			t.Fatalf("Get via %s = %q, %v", n.name, e.Value, err)
		}
		if ttl := time.Until(e.Expires); ttl <= 0 || ttl > 30*time.Second {
			t.Fatalf("TTL carried over the wire: %v", ttl)
		}
		if e.Gen == 0 {
			t.Fatal("generation lost over the wire")
		}
	}
	if b.src.count(key) != 1 || a.src.count(key) != 0 {
		t.Fatalf("loads: owner %d, other %d", b.src.count(key), a.src.count(key))
	}
	if s := a.cache.Group("g").Stats(); s.Forwards != 2 || s.DegradedLoads != 0 {
		t.Fatalf("a stats %+v", s)
	}
}

func TestOwnerSourceFailureCrossesTheWire(t *testing.T) {
	rs := newStaticRing(t, "a", "b")
	a, b := startNode(t, "a", rs), startNode(t, "b", rs)
	connect(t, a, b)
	b.src.fail = errors.New("db password is hunter2")
	key := keyOwnedBy(t, rs.s, "b")
	_, err := a.cache.Group("g").Get(context.Background(), key)
	if !errors.Is(err, shard.ErrSourceFailed) {
		t.Fatalf("Get = %v, want ErrSourceFailed", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the owner's internal error leaked to the caller: %v", err)
	}
	if a.src.count(key) != 0 || a.cache.Group("g").Stats().DegradedLoads != 0 {
		t.Fatal("a source failure on the owner was retried locally")
	}
}

func TestDeadOwnerMeansDegradedLoad(t *testing.T) {
	rs := newStaticRing(t, "a", "b")
	a, b := startNode(t, "a", rs), startNode(t, "b", rs)
	connect(t, a, b)
	b.server.Stop()
	key := keyOwnedBy(t, rs.s, "b")
	e, err := a.cache.Group("g").Get(context.Background(), key)
	if err != nil || string(e.Value) != key+"@1" {
		t.Fatalf("Get = %q, %v", e.Value, err)
	}
	if s := a.cache.Group("g").Stats(); s.DegradedLoads != 1 || s.ForwardErrors != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestUnknownPeerMeansDegradedLoad(t *testing.T) {
	rs := newStaticRing(t, "a", "b")
	a := startNode(t, "a", rs)
	key := keyOwnedBy(t, rs.s, "b")
	if _, err := a.pool.Get(context.Background(), "b", shard.ForwardRequest{}); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("Get to an unknown peer = %v", err)
	}
	if _, err := a.cache.Group("g").Get(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if a.cache.Group("g").Stats().DegradedLoads != 1 {
		t.Fatal("no degraded load for an owner without a connection")
	}
}

// TestBadPeerRequests calls the peer service directly with malformed input.
func TestBadPeerRequests(t *testing.T) {
	rs := newStaticRing(t, "a")
	a := startNode(t, "a", rs)
	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := peerpb.NewPeerClient(conn)
	ctx := context.Background()
	secret := "ak_live_secret"
	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"hops spent", func() error {
			_, err := c.Get(ctx, &peerpb.GetRequest{Group: "g", Key: secret, Hops: 2})
			return err
		}, codes.InvalidArgument},
		{"hops missing", func() error { _, err := c.Get(ctx, &peerpb.GetRequest{Group: "g", Key: secret}); return err }, codes.InvalidArgument},
		{"unknown group", func() error {
			_, err := c.Get(ctx, &peerpb.GetRequest{Group: "nope", Key: secret, Hops: 1})
			return err
		}, codes.NotFound},
		{"empty key", func() error { _, err := c.Get(ctx, &peerpb.GetRequest{Group: "g", Hops: 1}); return err }, codes.InvalidArgument},
		{"huge key", func() error {
			_, err := c.Get(ctx, &peerpb.GetRequest{Group: "g", Key: strings.Repeat("k", shard.MaxKeyLen+1), Hops: 1})
			return err
		}, codes.InvalidArgument},
		{"invalidate unknown group", func() error {
			_, err := c.Invalidate(ctx, &peerpb.InvalidateRequest{Group: "nope", Key: "k"})
			return err
		}, codes.NotFound},
		{"invalidate empty key", func() error { _, err := c.Invalidate(ctx, &peerpb.InvalidateRequest{Group: "g"}); return err }, codes.InvalidArgument},
		{"invalidate all with key", func() error {
			_, err := c.Invalidate(ctx, &peerpb.InvalidateRequest{Group: "g", Key: "k", All: true})
			return err
		}, codes.InvalidArgument},
	} {
		err := tc.call()
		if status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the key leaked into the error: %v", tc.name, err)
		}
	}
	if a.src.count(secret) != 0 {
		t.Fatal("a bad request reached the source")
	}
}

func TestInvalidateOverTheWire(t *testing.T) {
	rs := newStaticRing(t, "a", "b")
	a, b := startNode(t, "a", rs), startNode(t, "b", rs)
	connect(t, a, b)
	key := keyOwnedBy(t, rs.s, "b")
	g := b.cache.Group("g")
	if _, err := g.Get(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if err := a.pool.Invalidate(context.Background(), "b", "g", key, false, 0); err != nil {
		t.Fatal(err)
	}
	if e, _ := g.Get(context.Background(), key); string(e.Value) != key+"@2" {
		t.Fatalf("after Invalidate: %q", e.Value)
	}
	if err := a.pool.Invalidate(context.Background(), "b", "g", "", true, 0); err != nil {
		t.Fatal(err)
	}
	if e, _ := g.Get(context.Background(), key); string(e.Value) != key+"@3" {
		t.Fatalf("after Invalidate all: %q", e.Value)
	}
}

func TestSetPeersReplacesConnections(t *testing.T) {
	rs := newStaticRing(t, "a", "b")
	a, b := startNode(t, "a", rs), startNode(t, "b", rs)
	b2 := startNode(t, "b", rs) // b restarted on a new address
	if err := a.pool.SetPeers(map[string]string{"b": b.addr}); err != nil {
		t.Fatal(err)
	}
	key := keyOwnedBy(t, rs.s, "b")
	if _, err := a.cache.Group("g").Get(context.Background(), key); err != nil || b.src.count(key) != 1 {
		t.Fatalf("first owner: %v, loads %d", err, b.src.count(key))
	}
	a.cache.Group("g").Invalidate(key, 0)
	if err := a.pool.SetPeers(map[string]string{"b": b2.addr}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cache.Group("g").Get(context.Background(), key); err != nil || b2.src.count(key) != 1 {
		t.Fatalf("restarted owner: %v, loads %d", err, b2.src.count(key))
	}
	if err := a.pool.SetPeers(nil); err != nil || len(a.pool.Peers()) != 0 {
		t.Fatalf("SetPeers(nil): %v, %v", err, a.pool.Peers())
	}
	if err := a.pool.SetPeers(map[string]string{"c": "not an address:::"}); err == nil {
		t.Fatal("a malformed peer address was accepted")
	}
}

func TestGossipStateRoundTripAndBadInput(t *testing.T) {
	before := time.Unix(1_800_000_000, 123)
	in := GossipState{
		Invalidations: []shard.Invalidation{{Group: "g", Key: "k", Gen: 7}, {Group: "g", All: true, Gen: 9}},
		Revocations:   map[string]time.Time{"alice": before},
	}
	b, err := EncodeGossipState(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeGossipState(b)
	if err != nil || len(out.Invalidations) != 2 || out.Invalidations[0] != in.Invalidations[0] || out.Invalidations[1] != in.Invalidations[1] ||
		len(out.Revocations) != 1 || !out.Revocations["alice"].Equal(before) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, bad := range [][]byte{{0xff, 0xff, 0xff}, make([]byte, maxGossipState+1)} {
		if _, err := DecodeGossipState(bad); err == nil {
			t.Errorf("DecodeGossipState accepted %d bad bytes", len(bad))
		}
	}
	// Revocations without a usable user id or watermark are dropped.
	raw, _ := proto.Marshal(&peerpb.GossipState{Revocations: []*peerpb.Revocation{
		{UserId: "", BeforeUnixNanos: 5}, {UserId: "bob", BeforeUnixNanos: -1}, {UserId: strings.Repeat("x", 2000), BeforeUnixNanos: 5},
		{UserId: "carol", BeforeUnixNanos: 5}, {UserId: "carol", BeforeUnixNanos: 9},
	}})
	out, err = DecodeGossipState(raw)
	if err != nil || len(out.Revocations) != 1 || out.Revocations["carol"].UnixNano() != 9 {
		t.Fatalf("bad revocations: %+v, %v", out.Revocations, err)
	}
}
