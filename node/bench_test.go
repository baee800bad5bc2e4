package node_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/shard"
)

// remoteKeys returns keys that from's ring places on another node.
func remoteKeys(from *nodetest.Node, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("user-%d", i)
		if from.Current().Owner(k) != from.Name() {
			keys = append(keys, k)
		}
	}
	return keys
}

func benchCluster(b *testing.B) []*nodetest.Node {
	src := newSource()
	nodes := nodetest.Start(b, 3, nodetest.Options{Config: func(_ int, cfg *node.Config) {
		cfg.Groups = []node.GroupSpec{{Name: "g", Loader: src, NoHotCopies: true}}
		cfg.PeerTimeout = time.Second
	}})
	return nodes
}

// BenchmarkForwardGRPC: a get on a node that does not own the key, answered
// by the owner over real gRPC on loopback (the owner has the value cached).
// One caller: latency; reports p50 and p99.
func BenchmarkForwardGRPC(b *testing.B) {
	nodes := benchCluster(b)
	g, keys := warmRemote(b, nodes[0])
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := g.Get(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	if s := g.Stats(); s.DegradedLoads != 0 {
		b.Fatalf("%d degraded loads", s.DegradedLoads)
	}
}

// BenchmarkForwardGRPCParallel: 32 callers forwarding at once; ns/op is the
// inverse of throughput.
func BenchmarkForwardGRPCParallel(b *testing.B) {
	nodes := benchCluster(b)
	g, keys := warmRemote(b, nodes[0])
	parallelForwards(b, g, keys)
}

// parallelForwards runs gets over keys from 32 callers and reports gets/s.
func parallelForwards(b *testing.B, g *shard.Group, keys []string) {
	ctx := context.Background()
	var next atomic.Uint64
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.Get(ctx, keys[next.Add(1)%uint64(len(keys))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// warmRemote returns from's group and 1,024 keys owned by other nodes,
// each fetched once so their owners hold them.
func warmRemote(b *testing.B, from *nodetest.Node) (*shard.Group, []string) {
	b.Helper()
	g := from.Group("g")
	keys := remoteKeys(from, 1024)
	for _, k := range keys {
		if _, err := g.Get(context.Background(), k); err != nil {
			b.Fatal(err)
		}
	}
	return g, keys
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
