package cluster

import (
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// silence notices that this node reached no peer for longer than a limit:
// it was cut off, so the others may have declared it dead and sent
// invalidations it never got. Every ack to one of its probes, and every
// probe of another node it acks, counts as contact; the first contact after
// a long silence calls the OnReconnect hook.
// A view emptied by graceful leaves is not silence: nobody was there to hear.
type silence struct {
	limit  time.Duration
	notify func(gap time.Duration)

	mu   sync.Mutex
	last time.Time // last contact; zero when no peer is expected
}

func (s *silence) contact() {
	if s.notify == nil {
		return
	}
	s.mu.Lock()
	now, last := time.Now(), s.last
	s.last = now
	s.mu.Unlock()
	if gap := now.Sub(last); !last.IsZero() && gap > s.limit {
		s.notify(gap)
	}
}

// expect starts counting silence when a peer appears and none was expected.
func (s *silence) expect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		s.last = time.Now()
	}
}

// peerLeft forgets the last contact when the last peer left gracefully.
func (s *silence) peerLeft(n *memberlist.Node, peersLeft int) {
	if n.State == memberlist.StateLeft && peersLeft == 0 {
		s.mu.Lock()
		s.last = time.Time{}
		s.mu.Unlock()
	}
}

// pings feeds probes in both directions to silence; memberlist calls it on
// its own goroutines and it must not block.
type pings struct{ s *silence }

// AckPayload is called when this node answers another's probe: that peer
// reached it.
func (p pings) AckPayload() []byte {
	p.s.contact()
	return nil
}

func (p pings) NotifyPingComplete(*memberlist.Node, time.Duration, []byte) { p.s.contact() }
