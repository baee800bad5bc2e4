package shard

import (
	"sync"
	"time"
)

// suspects tracks peers whose calls keep failing, locally: membership may
// still list them (memberlist takes seconds to declare a node dead), but
// waiting PeerTimeout on every request for their keys would stall callers.
type suspects struct {
	after int
	span  time.Duration
	now   func() time.Time

	mu    sync.Mutex
	peers map[string]*health
}

type health struct {
	failures int
	until    time.Time // while failures >= after: skipped until then
}

func newSuspects(after int, span time.Duration, now func() time.Time) *suspects {
	return &suspects{after: after, span: span, now: now, peers: map[string]*health{}}
}

// skip reports whether calls to peer should be skipped. Once a suspicion
// expires, the first caller is let through as a probe and the suspicion is
// renewed for everyone else until the probe reports back.
func (s *suspects) skip(peer string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.peers[peer]
	if h == nil || h.failures < s.after {
		return false
	}
	now := s.now()
	if now.Before(h.until) {
		return true
	}
	h.until = now.Add(s.span)
	return false
}

// failed records a call to peer that got no answer.
func (s *suspects) failed(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.peers[peer]
	if h == nil {
		h = &health{}
		s.peers[peer] = h
	}
	h.failures++
	if h.failures >= s.after {
		h.until = s.now().Add(s.span)
	}
}

// answered records a call to peer that got an answer.
func (s *suspects) answered(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.peers, peer)
}

// reset forgets every suspicion; the ring changed, so membership has moved on.
func (s *suspects) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.peers)
}

// suspected lists the peers currently skipped.
func (s *suspects) suspected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []string
	for p, h := range s.peers {
		if h.failures >= s.after && now.Before(h.until) {
			out = append(out, p)
		}
	}
	return out
}
