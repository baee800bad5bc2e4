package shard

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxBypassed bounds the keys a group bypasses one by one; past it the
// whole group is bypassed.
const maxBypassed = 4096

// bypass lists keys whose owner may still hold a stale entry: an
// invalidation did not reach it. Until a key's time passes, this node loads
// it itself instead of asking the owner, so it cannot fetch the old value
// back. Lookups are lock-free while nothing is bypassed.
type bypass struct {
	n        atomic.Int32 // len(keys), plus one while all is set
	mu       sync.Mutex
	keys     map[string]time.Time
	allUntil time.Time
}

// add bypasses key until until.
func (b *bypass) add(key string, until, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keys == nil {
		b.keys = map[string]time.Time{}
	}
	if len(b.keys) >= maxBypassed {
		b.expire(now)
	}
	if len(b.keys) >= maxBypassed {
		b.allUntil = until
	} else if until.After(b.keys[key]) {
		b.keys[key] = until
	}
	b.count(now)
}

// active reports whether key is bypassed at now.
func (b *bypass) active(key string, now time.Time) bool {
	if b.n.Load() == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.allUntil) || now.Before(b.keys[key]) {
		return true
	}
	delete(b.keys, key) // expired: forget it (others expire on add)
	b.count(now)
	return false
}

func (b *bypass) expire(now time.Time) {
	for k, until := range b.keys {
		if !now.Before(until) {
			delete(b.keys, k)
		}
	}
}

func (b *bypass) count(now time.Time) {
	n := int32(len(b.keys))
	if now.Before(b.allUntil) {
		n++
	}
	b.n.Store(n)
}

// BypassOwner makes this node load key itself, instead of asking its
// owner, for as long as the owner may keep an entry loaded before now (the
// group TTL). Call it, before Invalidate, when the owner could not be told
// of an invalidation: this node must not fetch the old value back from it.
func (g *Group) BypassOwner(key string) {
	now := g.c.cfg.Now()
	g.bypass.add(key, now.Add(g.cfg.TTL), now)
}
