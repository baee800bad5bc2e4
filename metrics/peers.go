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

// peerSeries are the series of calls to peers, labelled by member. Only
// members of the ring (see SetPeers) get a label of their own, and a
// departed member's series are deleted peerMemory after it left, so the
// label stays bounded by the cluster's size whatever names calls carry.
type peerSeries struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec

	mu    sync.RWMutex
	known map[string]time.Time // member → when it left the ring; zero while in it
}

// otherPeer labels calls to names that are not members.
const otherPeer = "other"

// peerMemory is how long a departed member's series stay: a member that
// returns meanwhile keeps its counters (no reset for rate to undo), and
// calls that were in flight when it left are still counted under its name.
const peerMemory = 10 * time.Minute

func newPeerSeries() *peerSeries {
	return &peerSeries{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authnode_peer_request_duration_seconds", Help: "Calls this node made to a peer, by peer and method.",
			Buckets: peerBuckets,
		}, []string{"peer", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authnode_peer_request_errors_total", Help: "Calls to a peer that failed, by peer and gRPC code.",
		}, []string{"peer", "code"}),
		known: map[string]time.Time{},
	}
}

func (p *peerSeries) register(reg prometheus.Registerer) { reg.MustRegister(p.duration, p.errors) }

// PeerCall records a call to member; it fits transport.CallObserver. A
// call the caller gave up on (Canceled) is not a peer error.
func (m *Metrics) PeerCall(member, method string, d time.Duration, err error) {
	p := m.peers
	p.mu.RLock() // SetPeers must not delete the member's series meanwhile
	defer p.mu.RUnlock()
	if _, ok := p.known[member]; !ok {
		member = otherPeer
	}
	p.duration.WithLabelValues(member, method).Observe(d.Seconds())
	if code := errorCode(err); err != nil && code != codes.Canceled {
		p.errors.WithLabelValues(member, code.String()).Inc()
	}
}

// SetPeers makes peers (the ring's other members) the names calls are
// labelled with, and deletes the series of members that left more than
// peerMemory ago.
func (m *Metrics) SetPeers(peers []string) { m.peers.set(peers, time.Now()) }

func (p *peerSeries) set(peers []string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, left := range p.known {
		switch {
		case left.IsZero():
			p.known[name] = now // left, unless it is in peers
		case now.Sub(left) >= peerMemory:
			p.duration.DeletePartialMatch(prometheus.Labels{"peer": name})
			p.errors.DeletePartialMatch(prometheus.Labels{"peer": name})
			delete(p.known, name)
		}
	}
	for _, name := range peers {
		p.known[name] = time.Time{}
	}
}

// errorCode is the gRPC code of a failed peer call; a call that never
// left this node (no connection, traffic cut) is Unavailable.
func errorCode(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
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
