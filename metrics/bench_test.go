package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkObserve: what timing one API call costs on top of the call
// (time.Now/Since are the caller's).
func BenchmarkObserve(b *testing.B) {
	m := New(prometheus.NewRegistry(), func() Snapshot { return Snapshot{} })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(Authorize, 3*time.Microsecond, false)
		}
	})
}

// BenchmarkEntryAge: one sampled entry-age observation.
func BenchmarkEntryAge(b *testing.B) {
	observe := New(prometheus.NewRegistry(), func() Snapshot { return Snapshot{} }).EntryAge("users")
	b.ReportAllocs()
	for b.Loop() {
		observe(1500 * time.Millisecond)
	}
}
