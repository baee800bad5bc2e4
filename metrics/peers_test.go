package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPeerLabelsStayBounded: only ring members get a label of their own;
// any other name a call carries is "other"; a departed member's series
// stay for peerMemory, then go.
func TestPeerLabelsStayBounded(t *testing.T) {
	m := New(prometheus.NewRegistry(), func() Snapshot { return Snapshot{} })
	p := m.peers
	start := time.Unix(1000, 0)
	p.set([]string{"b"}, start)
	m.PeerCall("b", "get", time.Millisecond, nil)
	for i := range 100 { // names from a peer's relay requests, say
		m.PeerCall(fmt.Sprintf("made-up-%d", i), "invalidate", time.Millisecond, errors.New("transport: no connection to peer"))
	}
	m.PeerCall("b", "get", time.Millisecond, status.Error(codes.DeadlineExceeded, "slow"))
	m.PeerCall("b", "get", time.Millisecond, context.Canceled)
	if n := seriesCount(p.duration); n != 2 {
		t.Fatalf("%d duration series, want 2 (b/get, other/invalidate)", n)
	}
	if got := counterValue(t, p.errors.WithLabelValues(otherPeer, "Unavailable")); got != 100 {
		t.Fatalf("other/Unavailable = %v, want 100", got)
	}
	if got := counterValue(t, p.errors.WithLabelValues("b", "DeadlineExceeded")); got != 1 {
		t.Fatalf("b/DeadlineExceeded = %v, want 1", got)
	}
	if n := seriesCount(p.errors); n != 2 {
		t.Fatalf("%d error series, want 2 (a canceled call is no error)", n)
	}

	p.set(nil, start.Add(time.Minute)) // b leaves
	m.PeerCall("b", "get", time.Millisecond, nil)
	if n := seriesCount(p.duration); n != 2 {
		t.Fatalf("a member that just left lost its series: %d", n)
	}
	p.set(nil, start.Add(time.Minute+peerMemory))
	if got := seriesCount(p.duration) + seriesCount(p.errors); got != 2 {
		t.Fatalf("%d series after b's memory ended, want other's 2", got)
	}
	m.PeerCall("b", "get", time.Millisecond, nil)
	if n := seriesCount(p.duration); n != 2 {
		t.Fatalf("a call to a forgotten member made %d series, want it under other/get (2)", n)
	}
}

func seriesCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	n := 0
	for range ch {
		n++
	}
	return n
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
