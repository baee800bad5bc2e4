package shard

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/avion/authnode/hlc"
)

// Invalidation is one invalidation this node processed, as exchanged with
// other nodes so that a node returning from a partition catches up.
type Invalidation struct {
	Group string
	Key   string // empty when All
	All   bool
	Gen   hlc.Gen
}

// Limits on the invalidations a node remembers and shares.
const (
	recentMax = 4096             // entries
	recentAge = 10 * time.Minute // older entries are forgotten
)

type recentKey struct {
	group, key string
	all        bool
}

// recent remembers the latest generation of each recent invalidation, and
// a floor: the newest generation it forgot (or flushed), below which any
// key may have been invalidated.
type recent struct {
	mu    sync.Mutex
	gens  map[recentKey]hlc.Gen
	floor hlc.Gen
}

// note records an invalidation and reports whether it is newer than what
// was known for the same key.
func (r *recent) note(k recentKey, gen hlc.Gen) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gens == nil {
		r.gens = map[recentKey]hlc.Gen{}
	}
	if old, ok := r.gens[k]; ok && old >= gen {
		return false
	}
	r.gens[k] = gen
	if len(r.gens) > recentMax {
		r.evictOldest()
	}
	return true
}

// evictOldest drops the oldest eighth. Caller holds r.mu.
func (r *recent) evictOldest() {
	gens := make([]hlc.Gen, 0, len(r.gens))
	for _, g := range r.gens {
		gens = append(gens, g)
	}
	slices.Sort(gens)
	cut := gens[len(gens)/8]
	r.floor = max(r.floor, cut)
	for k, g := range r.gens {
		if g <= cut {
			delete(r.gens, k)
		}
	}
}

// known returns the latest generation recorded for k.
func (r *recent) known(k recentKey) hlc.Gen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gens[k]
}

// latest returns the newest generation at which key of group may have been
// invalidated: its own, its group's, or the floor.
func (r *recent) latest(group, key string) hlc.Gen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(r.gens[recentKey{group, key, false}], r.gens[recentKey{group, "", true}], r.floor)
}

// raiseFloor records that any key may have been invalidated up to gen.
func (r *recent) raiseFloor(gen hlc.Gen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.floor = max(r.floor, gen)
}

// list returns the invalidations newer than since, newest first.
func (r *recent) list(since hlc.Gen) []Invalidation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Invalidation, 0, len(r.gens))
	for k, g := range r.gens {
		if g <= since {
			r.floor = max(r.floor, g) // forgotten, so Known never goes down
			delete(r.gens, k)
			continue
		}
		out = append(out, Invalidation{Group: k.group, Key: k.key, All: k.all, Gen: g})
	}
	slices.SortFunc(out, func(a, b Invalidation) int { return cmp.Compare(b.Gen, a.Gen) })
	return out
}

// Known returns the newest generation at which this node knows key of group
// may have been invalidated (0: none known). A copy of the key made at or
// before it, kept outside the cache (in Redis, say), must not be served.
// After a Flush, or once older invalidations are forgotten, it is at least
// their generation for every key.
func (c *Cache) Known(group, key string) hlc.Gen { return c.recent.latest(group, key) }

// Recent returns the invalidations this node processed in the last ten
// minutes (at most 4,096, newest first), for the gossip state exchange.
func (c *Cache) Recent() []Invalidation {
	since := hlc.Gen(max(0, c.cfg.Now().Add(-recentAge).UnixNano()))
	return c.recent.list(since)
}

// Apply processes invalidations received from another node: each one newer
// than what this node knows for its key (or group) is applied as if it had
// arrived directly. It returns how many were applied; unknown groups and bad
// keys are skipped.
func (c *Cache) Apply(invs []Invalidation) int {
	applied := 0
	for _, inv := range invs {
		g := c.Group(inv.Group)
		if g == nil || (!inv.All && CheckKey(inv.Key) != nil) || (inv.All && inv.Key != "") {
			continue
		}
		if inv.Gen <= c.recent.known(recentKey{inv.Group, inv.Key, inv.All}) {
			continue
		}
		if inv.All {
			g.InvalidateAll(inv.Gen)
		} else {
			g.Invalidate(inv.Key, inv.Gen)
		}
		applied++
	}
	return applied
}
