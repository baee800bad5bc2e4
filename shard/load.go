package shard

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// loadMode says what a load is for, which decides where its result goes.
type loadMode byte

const (
	asOwner loadMode = 'o' // this node owns the key: store in the owner shard
	asCopy  loadMode = 'c' // owner silent, suspect or another ring: keep a hot copy
)

// load returns key loaded from the source, sharing one load between
// concurrent callers with the same mode. The load runs detached from ctx: a
// caller that gives up returns ctx's error while the load goes on for the
// others.
func (g *Group) load(ctx context.Context, key string, mode loadMode) (Entry, error) {
	g.n.misses.Add(1)
	detached := context.WithoutCancel(ctx) // keeps the caller's values, not its cancellation
	ch := g.flight.DoChan(string(mode)+key, func() (any, error) { return g.fill(detached, key, mode) })
	select {
	case r := <-ch:
		if r.Shared {
			g.n.sharedLoads.Add(1)
		}
		if r.Err != nil {
			return Entry{}, r.Err
		}
		return r.Val.(Entry), nil
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
}

// fill is the body of one shared load. It recovers a panicking loader so the
// key is never wedged, and retries when an invalidation overtakes the load.
// parent must not be cancelled by any one caller: the load is bounded by
// LoadTimeout and stopped by Close instead.
func (g *Group) fill(parent context.Context, key string, mode loadMode) (e Entry, err error) {
	if !g.c.enter() {
		return Entry{}, ErrClosed
	}
	defer g.c.leave()
	defer func() {
		if p := recover(); p != nil {
			g.n.panics.Add(1)
			g.c.cfg.Logger.Error("loader panicked", "group", g.name, "panic", p, "stack", string(debug.Stack()))
			e, err = Entry{}, fmt.Errorf("%w: loader panicked", ErrSourceFailed)
		}
	}()
	ctx, cancel := context.WithTimeout(parent, g.c.cfg.LoadTimeout)
	defer cancel()
	stop := context.AfterFunc(g.c.base, cancel) // Close cancels every load
	defer stop()
	for attempt := range g.c.cfg.LoadAttempts {
		if attempt > 0 && !churnPause(ctx, attempt) {
			return Entry{}, ErrChurn
		}
		// Check again inside the flight: a flight for this key may have
		// stored it between the caller's miss and this flight's start.
		if mode == asOwner {
			if hit, ok := g.owned.get(key, g.floors.all.Load()); ok {
				return hit.Entry, nil
			}
		}
		start := g.c.cfg.Clock.Now()
		v, err := g.fromSource(ctx, key)
		if err != nil {
			return Entry{}, err
		}
		ent := &entry{key: key, local: start, Entry: Entry{Value: v.Bytes, Gen: start, Expires: g.expiry(v)}}
		if g.keep(ent, mode == asCopy, mode == asOwner) {
			return ent.Entry, nil
		}
		g.n.discarded.Add(1)
	}
	return Entry{}, ErrChurn
}

// churnPause waits before the attempt-th load attempt (1 ms, 2 ms, 4 ms, …,
// at most 16 ms) for a burst of invalidations to pass; false when ctx ends
// first.
func churnPause(ctx context.Context, attempt int) bool {
	t := time.NewTimer(time.Millisecond << min(attempt-1, 4))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fromSource calls the loader once it holds one of the node's load slots.
func (g *Group) fromSource(ctx context.Context, key string) (Value, error) {
	select {
	case g.c.limiter <- struct{}{}:
	case <-ctx.Done():
		return Value{}, fmt.Errorf("%w: no load slot: %w", ErrSourceFailed, ctx.Err())
	}
	defer func() { <-g.c.limiter }()
	g.n.loads.Add(1)
	v, err := g.loader.Load(ctx, key)
	if err != nil {
		return Value{}, fmt.Errorf("%w: %w", ErrSourceFailed, err)
	}
	return v, nil
}
