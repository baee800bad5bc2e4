package auth

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Watermarks is this node's replica of every user's tokens-revoked-before
// watermark: a token of user U whose iat is before U's watermark is
// revoked. It holds only users revoked within the maximum token lifetime
// (older watermarks revoke nothing that is not expired anyway). Watermarks
// only move forward, so a late or duplicate update is harmless. Lookups take
// a read lock on one of many shards and do not allocate. Safe for
// concurrent use.
type Watermarks struct {
	seed   maphash.Seed
	shards [64]watermarkShard
	loaded atomic.Bool
}

type watermarkShard struct {
	mu sync.RWMutex
	m  map[string]int64 // user → watermark, unix nanoseconds
}

// NewWatermarks returns an empty map, not yet loaded.
func NewWatermarks() *Watermarks {
	w := &Watermarks{seed: maphash.MakeSeed()}
	for i := range w.shards {
		w.shards[i].m = map[string]int64{}
	}
	return w
}

func (w *Watermarks) shard(user string) *watermarkShard {
	return &w.shards[maphash.String(w.seed, user)%uint64(len(w.shards))]
}

// Raise moves user's watermark forward to t and reports whether it moved.
func (w *Watermarks) Raise(user string, t time.Time) bool {
	ns := t.UnixNano()
	if t.IsZero() || ns <= 0 {
		return false
	}
	s := w.shard(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[user] >= ns {
		return false
	}
	s.m[user] = ns
	return true
}

// Get returns user's watermark; zero when the user has none.
func (w *Watermarks) Get(user string) time.Time {
	s := w.shard(user)
	s.mu.RLock()
	ns := s.m[user]
	s.mu.RUnlock()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Revoked reports whether a token of user issued at iat is revoked.
func (w *Watermarks) Revoked(user string, iat time.Time) bool {
	s := w.shard(user)
	s.mu.RLock()
	ns := s.m[user]
	s.mu.RUnlock()
	return ns != 0 && iat.UnixNano() < ns
}

// Merge raises every watermark in marks and returns how many moved.
func (w *Watermarks) Merge(marks map[string]time.Time) int {
	moved := 0
	for user, t := range marks {
		if w.Raise(user, t) {
			moved++
		}
	}
	return moved
}

// Prune forgets watermarks before cutoff (now minus the maximum token
// lifetime: every token they revoke has expired).
func (w *Watermarks) Prune(cutoff time.Time) {
	ns := cutoff.UnixNano()
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.Lock()
		for user, t := range s.m {
			if t < ns {
				delete(s.m, user)
			}
		}
		s.mu.Unlock()
	}
}

// Len returns how many users have a watermark.
func (w *Watermarks) Len() int {
	n := 0
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// SetLoaded records that the map was filled from the source: until then
// the node is not ready (it could accept a revoked token).
func (w *Watermarks) SetLoaded() { w.loaded.Store(true) }

// SetStale records that the map may have missed revocations (the process
// was paused, or cut off): until SetLoaded again, the node answers no
// token question.
func (w *Watermarks) SetStale() { w.loaded.Store(false) }

// Loaded reports whether SetLoaded was called since the last SetStale.
func (w *Watermarks) Loaded() bool { return w.loaded.Load() }

// Since returns up to limit watermarks later than cutoff (the recent
// revocations, for gossip), by user.
func (w *Watermarks) Since(cutoff time.Time, limit int) map[string]time.Time {
	ns := cutoff.UnixNano()
	out := map[string]time.Time{}
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.RLock()
		for user, t := range s.m {
			if t > ns && len(out) < limit {
				out[user] = time.Unix(0, t)
			}
		}
		s.mu.RUnlock()
	}
	return out
}
