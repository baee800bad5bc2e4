package shard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/avion/authnode/ring"
)

const benchKeySpace = 100_000

// zipfKeys returns n keys drawn from a Zipf distribution (s = 1.1) over
// benchKeySpace keys: a few hot users and a long tail, like auth traffic.
func zipfKeys(n int) []string {
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 5)), 1.1, 1, benchKeySpace-1)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", z.Uint64())
	}
	return out
}

// zipfKeysOwnedBy returns 1<<15 Zipf-drawn keys that snap places on owner.
func zipfKeysOwnedBy(snap *ring.Snapshot, owner string) []string {
	var keys []string
	for _, k := range zipfKeys(1 << 17) {
		if snap.Owner(k) == owner && len(keys) < 1<<15 {
			keys = append(keys, k)
		}
	}
	return keys
}

func benchGroupConfig() GroupConfig {
	g := DefaultGroupConfig()
	g.HotSampleEvery = 1
	g.HotTTL = g.TTL // copies must outlive the benchmark
	return g
}

// warm gets every key once through g so later gets hit.
func warm(b *testing.B, g *Group, keys []string) {
	b.Helper()
	for _, k := range keys {
		if _, err := g.Get(context.Background(), k); err != nil {
			b.Fatal(err)
		}
	}
}

// parallelGets runs gets over keys until b.N are done and fails on a miss
// counter change when wantHits is set.
func parallelGets(b *testing.B, g *Group, keys []string) {
	b.Helper()
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := next.Add(1 << 20)
		for pb.Next() {
			i++
			if _, err := g.Get(ctx, keys[i&(uint64(len(keys))-1)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkOwnerHit: Get on the owner, value in the owner shard.
func BenchmarkOwnerHit(b *testing.B) {
	net := newNet(b, []string{"a"}, newSource(), benchGroupConfig(), nil)
	g := net.group("a")
	keys := zipfKeys(1 << 16)
	warm(b, g, keys)
	misses := g.Stats().Misses
	parallelGets(b, g, keys)
	if g.Stats().Misses != misses {
		b.Fatalf("%d misses in a hit benchmark", g.Stats().Misses-misses)
	}
}

// BenchmarkHotHit: Get on a non-owner, value in its hot cache.
func BenchmarkHotHit(b *testing.B) {
	net := newNet(b, []string{"a", "b"}, newSource(), benchGroupConfig(), nil)
	g := net.group("a")
	keys := zipfKeysOwnedBy(net.node("a").Ring(), "b")
	warm(b, g, keys)
	forwards := g.Stats().Forwards
	parallelGets(b, g, keys)
	if g.Stats().Forwards != forwards {
		b.Fatalf("%d forwards in a hot-hit benchmark", g.Stats().Forwards-forwards)
	}
}

// BenchmarkMiss: Get of a key never seen, on its owner, with a loader that
// returns at once: the cost of the miss path around a source load.
func BenchmarkMiss(b *testing.B) {
	net := newNet(b, []string{"a"}, newSource(), benchGroupConfig(), nil)
	g := net.group("a")
	g.loader = LoaderFunc(func(context.Context, string) (Value, error) {
		return Value{Bytes: []byte("v")}, nil
	})
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = fmt.Sprintf("miss-%d", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for _, k := range keys {
		if _, err := g.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForward: Get on a non-owner without hot copies, answered by an
// in-memory owner: the get path's own cost around a network call.
func BenchmarkForward(b *testing.B) {
	gcfg := benchGroupConfig()
	gcfg.HotSampleEvery = 0
	net := newNet(b, []string{"a", "b"}, newSource(), gcfg, nil)
	keys := zipfKeysOwnedBy(net.node("a").Ring(), "b")
	warm(b, net.group("b"), keys)
	parallelGets(b, net.group("a"), keys)
}
