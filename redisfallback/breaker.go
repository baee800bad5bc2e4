package redisfallback

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/avion/authnode/hlc"
)

// breaker counts consecutive failures. Checking it is one atomic load, so
// an open breaker costs a request nothing.
type breaker struct {
	limit    int64
	failures atomic.Int64
	open     atomic.Bool
}

func (b *breaker) isOpen() bool { return b.open.Load() }

// success ends a run of failures.
func (b *breaker) success() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

// failure counts one failure and reports whether it opened the breaker.
func (b *breaker) failure() bool {
	return b.failures.Add(1) >= b.limit && b.open.CompareAndSwap(false, true)
}

// close closes the breaker; only the prober calls it.
func (b *breaker) close() {
	b.failures.Store(0)
	b.open.Store(false)
}

// usable reports whether a request may touch Redis now.
func (f *Fallback) usable() bool {
	return !f.br.isOpen() && !f.stopped.Load()
}

// failed records a failed Redis operation, unless parent (the context the
// operation's own timeout was derived from) has ended: a caller that gave
// up, or shutdown, says nothing about Redis.
func (f *Fallback) failed(parent context.Context, op string, err error) {
	if parent.Err() != nil {
		return
	}
	f.n.errors.Add(1)
	if f.br.failure() {
		f.log.Warn("redisfallback: Redis unreachable, breaker open", "addr", f.addr, "op", op, "err", err)
	}
}

// probe pings Redis every RetryInterval while the breaker is open and
// closes it once Redis answers. It returns when ctx ends.
func (f *Fallback) probe(ctx context.Context) {
	t := time.NewTicker(f.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.br.isOpen() && f.ping(ctx) == nil {
			f.recovered()
		}
	}
}

func (f *Fallback) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	return f.client.Ping(ctx).Err()
}

// recovered closes the breaker. The distrust floor is raised before the
// breaker closes, so no read can see a closed breaker with the old floor:
// copies written before the outage may have missed deletes issued during
// it, and this node never serves them.
func (f *Fallback) recovered() {
	f.distrust(f.clock.Now())
	f.br.close()
	f.signal()
	f.log.Info("redisfallback: Redis reachable again, breaker closed", "addr", f.addr)
}

// distrust raises the distrust floor to g: no copy with a generation at or
// below it is read or written by this node any more.
func (f *Fallback) distrust(g hlc.Gen) {
	for {
		cur := f.floor.Load()
		if uint64(g) <= cur || f.floor.CompareAndSwap(cur, uint64(g)) {
			return
		}
	}
}

// trusted reports whether a copy of (group, key) with generation gen may be
// served or written: it postdates every invalidation this node knows of and
// the distrust floor.
func (f *Fallback) trusted(group, key string, gen hlc.Gen) bool {
	return uint64(gen) > f.floor.Load() && gen > f.known(group, key)
}
