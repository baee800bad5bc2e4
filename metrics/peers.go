package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// peerBuckets span a loopback call (tens of microseconds) to a peer
// timeout.
var peerBuckets = []float64{5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// peerSeries are the series of calls to peers, labelled by member; the
// series of a member that left the ring are deleted (see SetPeers), so
// the label stays bounded by the cluster's size.
type peerSeries struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec

	mu    sync.Mutex
	known map[string]bool
}

func newPeerSeries() *peerSeries {
	return &peerSeries{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authnode_peer_request_duration_seconds", Help: "Calls this node made to a peer, by peer and method.",
			Buckets: peerBuckets,
		}, []string{"peer", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authnode_peer_request_errors_total", Help: "Calls to a peer that failed, by peer and gRPC code.",
		}, []string{"peer", "code"}),
		known: map[string]bool{},
	}
}

func (p *peerSeries) register(reg prometheus.Registerer) { reg.MustRegister(p.duration, p.errors) }

// PeerCall records a call to member; it fits transport.CallObserver.
func (m *Metrics) PeerCall(member, method string, d time.Duration, err error) {
	m.peers.duration.WithLabelValues(member, method).Observe(d.Seconds())
	if err != nil {
		m.peers.errors.WithLabelValues(member, errorCode(err).String()).Inc()
	}
}

// SetPeers deletes the series of members not in peers (those that left
// the ring).
func (m *Metrics) SetPeers(peers []string) {
	p := m.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	now := make(map[string]bool, len(peers))
	for _, name := range peers {
		now[name] = true
	}
	for name := range p.known {
		if !now[name] {
			p.duration.DeletePartialMatch(prometheus.Labels{"peer": name})
			p.errors.DeletePartialMatch(prometheus.Labels{"peer": name})
		}
	}
	p.known = now
}

// errorCode is the gRPC code of a failed peer call; a call that never
// left this node (no connection, traffic cut) is Unavailable.
func errorCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	return codes.Unavailable
}
