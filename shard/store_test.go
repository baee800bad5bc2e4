package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRingChangeDropsKeysNoLongerOwned: a node alone owns every key; when a
// second member joins, the first drops the entries that moved and keeps the
// rest.
func TestRingChangeDropsKeysNoLongerOwned(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
		mustGet(t, g, keys[i])
	}
	grown := snapshotOf(t, "a", "b")
	net.node("a").ring.Store(grown)
	net.node("a").cache.RingChanged()
	moved := 0
	for _, k := range keys {
		_, held := g.owned.c.Get(k)
		switch owner := grown.Owner(k); {
		case owner == "b" && held:
			t.Fatalf("%s moved to b but a still holds it", k)
		case owner == "a" && !held:
			t.Fatalf("%s still owned by a but was dropped", k)
		case owner == "b":
			moved++
		}
	}
	if moved == 0 || g.Stats().Dropped != uint64(moved) {
		t.Fatalf("moved %d keys, Dropped = %d", moved, g.Stats().Dropped)
	}
	// Keys a still owns are hits, not loads.
	before := g.Stats().Loads
	for _, k := range keys {
		if grown.Owner(k) == "a" {
			mustGet(t, g, k)
		}
	}
	if g.Stats().Loads != before {
		t.Fatal("keys a still owns were loaded again after the ring change")
	}
}

// TestRingChangeDropsHotCopiesOfKeysNowOwned: a hot copy of a key this node
// has come to own is dropped, so the owner path loads it fresh.
func TestRingChangeDropsHotCopiesOfKeysNowOwned(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	mustGet(t, net.group("a"), key)
	if _, ok := net.group("a").hot.c.Get(key); !ok {
		t.Fatal("no hot copy to drop")
	}
	net.node("a").ring.Store(snapshotOf(t, "a"))
	net.node("a").cache.RingChanged()
	if _, ok := net.group("a").hot.c.Get(key); ok {
		t.Fatal("hot copy of a key a now owns survived the ring change")
	}
}

func TestOwnerEntriesExpire(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	src.set(func(_ context.Context, _, key string, n int) (Value, error) {
		return Value{Bytes: fmt.Appendf(nil, "%s@%d", key, n), TTL: 20 * time.Millisecond}, nil
	}, nil)
	g := net.group("a")
	e, err := g.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if ttl := time.Until(e.Expires); ttl > 20*time.Millisecond {
		t.Fatalf("entry expires in %v, the loader asked for 20ms", ttl)
	}
	eventually(t, "entry to expire and reload", func() bool { return mustGet(t, g, "k") == "k@2" })
}

func TestHotCopiesExpire(t *testing.T) {
	gcfg := testGroupConfig()
	gcfg.HotTTL = 20 * time.Millisecond
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, gcfg, nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	mustGet(t, net.group("a"), key)
	eventually(t, "hot copy to expire", func() bool {
		mustGet(t, net.group("a"), key)
		return net.node("b").received.Load() >= 2
	})
	if src.count(key) != 1 {
		t.Fatalf("owner loaded %d times; only the hot copy should expire", src.count(key))
	}
}

// TestCostCountsKeyAndValue fills a small group with entries whose keys are
// much larger than their values: the budget must hold them to what fits.
func TestCostCountsKeyAndValue(t *testing.T) {
	if got := EntryCost("abc", []byte("defgh")); got != 3+5+entryOverhead {
		t.Fatalf("EntryCost = %d", got)
	}
	gcfg := testGroupConfig()
	gcfg.MaxBytes = 64 << 10
	src := newSource()
	net := newNet(t, []string{"a"}, src, gcfg, nil)
	g := net.group("a")
	long := strings.Repeat("k", 1000)
	for i := range 500 {
		mustGet(t, g, fmt.Sprintf("%s%d", long, i))
	}
	g.owned.wait()
	held := 0
	for i := range 500 {
		if _, ok := g.owned.c.Get(fmt.Sprintf("%s%d", long, i)); ok {
			held++
		}
	}
	perEntry := EntryCost(long+"000", []byte(long+"000@1"))
	if limit := int(gcfg.MaxBytes / perEntry); held == 0 || held > limit {
		t.Fatalf("holding %d entries of %d bytes in a %d-byte budget (at most %d)", held, perEntry, gcfg.MaxBytes, limit)
	}
}

func TestConfigValidation(t *testing.T) {
	good := DefaultConfig("a")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no self":       func(c *Config) { c.Self = "" },
		"peer timeout":  func(c *Config) { c.PeerTimeout = 0 },
		"loads":         func(c *Config) { c.MaxConcurrentLoads = 0 },
		"load timeout":  func(c *Config) { c.LoadTimeout = -1 },
		"attempts":      func(c *Config) { c.LoadAttempts = 0 },
		"suspect after": func(c *Config) { c.SuspectAfter = 0 },
		"suspect for":   func(c *Config) { c.SuspectFor = 0 },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(cfg, &fakeNode{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(good, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil peers: %v", err)
	}
}

func TestGroupValidation(t *testing.T) {
	if err := DefaultGroupConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(DefaultConfig("a"), &fakeNode{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	loader := newSource().loaderFor("a")
	for name, mod := range map[string]func(*GroupConfig){
		"tiny":       func(g *GroupConfig) { g.MaxBytes = 10 },
		"ttl":        func(g *GroupConfig) { g.TTL = 0 },
		"hot sample": func(g *GroupConfig) { g.HotSampleEvery = -1 },
		"hot bytes":  func(g *GroupConfig) { g.HotMaxBytes = 0 },
		"hot ttl":    func(g *GroupConfig) { g.HotTTL = 2 * g.TTL },
	} {
		gcfg := DefaultGroupConfig()
		mod(&gcfg)
		if _, err := c.NewGroup("g", loader, gcfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: NewGroup = %v, want ErrConfig", name, err)
		}
	}
	for _, bad := range []string{"", "Upper", "1st", "has-dash", strings.Repeat("x", 64)} {
		if _, err := c.NewGroup(bad, loader, DefaultGroupConfig()); !errors.Is(err, ErrConfig) {
			t.Errorf("group name %q accepted", bad)
		}
	}
	if _, err := c.NewGroup("g", nil, DefaultGroupConfig()); !errors.Is(err, ErrConfig) {
		t.Error("nil loader accepted")
	}
	if _, err := c.NewGroup("g", loader, DefaultGroupConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewGroup("g", loader, DefaultGroupConfig()); !errors.Is(err, ErrConfig) {
		t.Error("duplicate group accepted")
	}
	off := DefaultGroupConfig()
	off.HotSampleEvery, off.HotMaxBytes = 0, 0
	if _, err := c.NewGroup("nohot", loader, off); err != nil {
		t.Fatalf("group without hot copies: %v", err)
	}
	if got := c.Groups(); len(got) != 2 || got[0] != "g" || got[1] != "nohot" {
		t.Fatalf("Groups() = %v", got)
	}
}

// TestLoadFinishingAfterRingChangeIsNotStored: a load that began while this
// node owned the key, and ends after the key moved away, is returned to its
// callers but not stored in the owner shard.
func TestLoadFinishingAfterRingChangeIsNotStored(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	grown := snapshotOf(t, "a", "b")
	key := keyOwnedBy(t, grown, "b")
	gt := newGate(src)
	done := make(chan string, 1)
	go func() {
		e, _ := net.group("a").Get(context.Background(), key)
		done <- string(e.Value)
	}()
	recv(t, "a load to start", gt.started)
	net.node("a").ring.Store(grown)
	net.node("a").cache.RingChanged()
	gt.open()
	if got := recv(t, "the load", done); got != key+"@1" {
		t.Fatalf("Get = %q", got)
	}
	net.group("a").owned.wait()
	if _, held := net.group("a").owned.c.Get(key); held {
		t.Fatal("a stored a key it no longer owns")
	}
}
