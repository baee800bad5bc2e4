package shard

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/avion/authnode/hlc"
)

// pauseGuard detects that this process stopped running for longer than
// Config.MaxPause (SIGSTOP, a frozen VM, a debugger): long enough that the
// others may have declared it dead and sent invalidations it never got. A
// heartbeat goroutine stamps a monotonic clock reading every MaxPause/4;
// every Get compares the clock with the last stamp, so the first request
// after a pause, whichever goroutine runs first, flushes the cache before it
// is answered.
type pauseGuard struct {
	max  time.Duration
	mono func() time.Duration // monotonic clock
	beat atomic.Int64         // mono() at the last heartbeat
	mu   sync.Mutex           // serialises flushes
	stop chan struct{}
	done chan struct{}
}

// check flushes through flush when the clock jumped more than max since
// the last beat, and returns once the cache is safe to serve from.
func (p *pauseGuard) check(flush func(gap time.Duration)) {
	if p == nil || int64(p.mono())-p.beat.Load() <= int64(p.max) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.mono()
	if gap := now - time.Duration(p.beat.Load()); gap > p.max {
		flush(gap)
	}
	p.beat.Store(int64(now))
}

// run beats until stop is closed.
func (p *pauseGuard) run(flush func(gap time.Duration)) {
	defer close(p.done)
	tick := time.NewTicker(p.max / 4)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.check(flush)
			p.beat.Store(int64(p.mono()))
		}
	}
}

// Flush drops every entry of every group on this node, as InvalidateAll
// does, and logs why. Use it when the node may have missed invalidations.
// Unlike InvalidateAll it is local: it is not shared with other nodes.
func (c *Cache) Flush(reason string) {
	gen := c.Drop()
	groups := c.groupList()
	c.recent.raiseFloor(gen)
	c.flushes.Add(1)
	c.cfg.Logger.Warn("cache flushed", "reason", reason, "groups", len(groups))
	if c.cfg.OnFlush != nil {
		c.cfg.OnFlush()
	}
}

// CheckPause flushes the cache first if the process was paused for longer
// than MaxPause since the last check, as every Get does: for answers that
// do not go through a Get (state the OnFlush hook keeps in step).
func (c *Cache) CheckPause() { c.pause.check(c.flushAfterPause) }

// Drop drops every entry of every group on this node, and makes every load
// or forward in flight lose, as InvalidateAll does, but only here: it is
// not shared with other nodes, and copies kept elsewhere are not affected
// (no OnInvalidate, Known unchanged). It returns the generation it dropped
// at.
func (c *Cache) Drop() hlc.Gen {
	gen := c.cfg.Clock.Now()
	for _, g := range c.groupList() {
		g.dropAll(gen)
	}
	return gen
}

// Flushes counts Flush calls, including those after a detected pause.
func (c *Cache) Flushes() uint64 { return c.flushes.Load() }

func (c *Cache) flushAfterPause(gap time.Duration) {
	c.Flush("process paused for " + gap.Round(time.Millisecond).String() + ": invalidations may have been missed")
}
