package shard

import (
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/avion/authnode/hlc"
)

// floorStripes is the number of per-key invalidation floors of a group: a
// power of two, small enough to stay in cache (64 KiB), large enough that an
// invalidation rarely makes another key's in-flight load run again.
const floorStripes = 1 << 13

// floors records, in this node's clock, when keys were last invalidated. A
// result whose load began at or before the floor of its key is stale.
type floors struct {
	stripes [floorStripes]atomic.Uint64
	all     atomic.Uint64 // raised by InvalidateAll
}

func (f *floors) stripe(key string) *atomic.Uint64 {
	return &f.stripes[xxhash.Sum64String(key)&(floorStripes-1)]
}

// fresh reports whether a result whose load began at start postdates every
// invalidation of key.
func (f *floors) fresh(key string, start hlc.Gen) bool {
	return uint64(start) > f.all.Load() && uint64(start) > f.stripe(key).Load()
}

// raise moves a floor up to g; it never moves down.
func raise(floor *atomic.Uint64, g hlc.Gen) {
	for {
		cur := floor.Load()
		if uint64(g) <= cur || floor.CompareAndSwap(cur, uint64(g)) {
			return
		}
	}
}
