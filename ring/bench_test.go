package ring

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// zipfKeys returns n keys drawn from a Zipf distribution over a key space.
func zipfKeys(n, space int) []string {
	z := rand.NewZipf(rand.New(rand.NewPCG(7, 11)), 1.1, 1, uint64(space-1))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", z.Uint64())
	}
	return out
}

func BenchmarkOwner(b *testing.B) {
	for _, members := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			r := mustRing(b, DefaultConfig())
			s := mustSet(b, r, names(members))
			keys := zipfKeys(1<<16, 100_000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_ = s.Owner(keys[i&(len(keys)-1)])
			}
		})
	}
}

func BenchmarkSetMembersJoin(b *testing.B) {
	for _, members := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			all := names(members + 1)
			r := mustRing(b, DefaultConfig())
			for i := range b.N {
				mustSet(b, r, all[:members+i%2]) // alternate join and leave
			}
		})
	}
}
