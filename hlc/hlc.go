// Package hlc provides the hybrid logical clock that orders cache generations.
//
// A generation is a wall-clock reading in nanoseconds that never decreases on a
// node and is max-merged with every generation the node observes from others.
// Generations therefore stay ordered across restarts (the wall clock moves on)
// and across nodes (a node that has seen generation g only issues larger ones).
// They say nothing about real-time order between nodes that have not exchanged
// messages: code that must order a local load against a local invalidation
// compares two readings of the same Clock.
package hlc

import (
	"sync/atomic"
	"time"
)

// Gen is a hybrid-logical-clock reading. The zero Gen is older than any reading.
type Gen uint64

// Clock issues strictly increasing generations. It is safe for concurrent use;
// the zero value is not usable, call New.
type Clock struct {
	last atomic.Uint64
	wall func() time.Time
}

// New returns a Clock that reads wall time from now (time.Now when nil).
func New(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{wall: now}
}

// Now returns a generation larger than every generation this clock has issued
// or observed.
func (c *Clock) Now() Gen {
	return c.Observe(0)
}

// MaxAhead bounds how far ahead of this node's wall clock an observed
// generation may be and still be merged. A peer with a broken clock, or a
// hostile message, must not drag every later generation into the future.
const MaxAhead = time.Minute

// Observe merges a generation seen in a message from another node and returns
// a fresh local generation larger than both g and every earlier reading. A g
// more than MaxAhead ahead of the wall clock is not merged; the reading is
// still larger than every earlier one.
func (c *Clock) Observe(g Gen) Gen {
	for {
		last := c.last.Load()
		wall := uint64(c.wall().UnixNano())
		if uint64(g) > wall+uint64(MaxAhead) {
			g = 0
		}
		next := max(wall, last+1, uint64(g)+1)
		if c.last.CompareAndSwap(last, next) {
			return Gen(next)
		}
	}
}

// Last returns the latest generation issued or observed, without advancing.
func (c *Clock) Last() Gen {
	return Gen(c.last.Load())
}
