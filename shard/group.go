package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/avion/authnode/hlc"
)

// Group is one named cache: an owner shard for the keys this node owns, a hot
// cache for copies of keys owned elsewhere, and the get path between them.
// All methods are safe for concurrent use.
type Group struct {
	name   string
	cfg    GroupConfig
	c      *Cache
	loader Loader

	owned *store
	hot   *store // nil when hot copies are off

	// storeMu orders stores against invalidations: a store checks the
	// floor and enqueues its set under the read lock; Invalidate raises the
	// floor under the write lock. See keep and Invalidate.
	storeMu sync.RWMutex
	floors  floors

	flight  singleflight.Group
	sampled atomic.Uint64 // answers fetched from owners, for hot sampling
	n       counters
	bypass  bypass // keys whose owner missed an invalidation
}

func newGroup(c *Cache, name string, loader Loader, cfg GroupConfig) (*Group, error) {
	g := &Group{name: name, cfg: cfg, c: c, loader: loader}
	var err error
	if g.owned, err = newStore(cfg.MaxBytes); err != nil {
		return nil, err
	}
	if cfg.HotSampleEvery > 0 {
		if g.hot, err = newStore(cfg.HotMaxBytes); err != nil {
			g.owned.close()
			return nil, err
		}
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Size returns how many entries this node holds for the group (owned and
// hot copies, expired ones not yet evicted included) and their cost in
// bytes. It walks the caches: for admin views, not for hot paths.
func (g *Group) Size() (entries, bytes int64) {
	entries, bytes = g.owned.size()
	if g.hot != nil {
		e, b := g.hot.size()
		entries, bytes = entries+e, bytes+b
	}
	return entries, bytes
}

// Stats returns the group's counters.
func (g *Group) Stats() Stats { return g.n.snapshot() }

// Get returns the value of key: from the owner shard when this node owns it,
// else from a hot copy or the owner, else (owner silent or suspect) loaded
// here. It fails with ErrBadRequest for an empty or oversized key, with an
// error wrapping ErrSourceFailed when the load failed, with ErrChurn, or with
// ctx's error. A hit neither allocates nor takes a lock. After a process
// pause longer than MaxPause the cache is flushed before Get answers.
func (g *Group) Get(ctx context.Context, key string) (Entry, error) {
	if err := CheckKey(key); err != nil {
		return Entry{}, err
	}
	g.c.pause.check(g.c.flushAfterPause)
	snap := g.c.peers.Ring()
	owner := snap.Owner(key)
	if owner == "" || owner == g.c.cfg.Self {
		return g.getOwned(ctx, key)
	}
	if e, ok := g.getHot(key); ok {
		return e, nil
	}
	if g.bypass.active(key, g.c.cfg.Now()) {
		g.n.degraded.Add(1)
		return g.load(ctx, key, asCopy)
	}
	return g.forward(ctx, owner, snap.Fingerprint(), key)
}

// CheckKey reports whether key is acceptable: 1 to MaxKeyLen bytes.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key length %d not in [1, %d]", ErrBadRequest, len(key), MaxKeyLen)
	}
	return nil
}

func (g *Group) getOwned(ctx context.Context, key string) (Entry, error) {
	if e, ok := g.owned.get(key, g.floors.all.Load()); ok {
		g.sampleAge(g.n.hits.Add(1), e.Gen)
		return e.Entry, nil
	}
	return g.load(ctx, key, asOwner)
}

func (g *Group) getHot(key string) (Entry, bool) {
	if g.hot == nil {
		return Entry{}, false
	}
	e, ok := g.hot.get(key, g.floors.all.Load())
	if !ok {
		return Entry{}, false
	}
	g.sampleAge(g.n.hotHits.Add(1), e.Gen)
	return e.Entry, true
}

// ageSampleEvery is how many hits pass per age observation: a power of
// two, so the hit counter picks the sample for free.
const ageSampleEvery = 16

// sampleAge reports the age of an entry of generation gen served as the
// count-th hit, for one hit in ageSampleEvery.
func (g *Group) sampleAge(count uint64, gen hlc.Gen) {
	if count%ageSampleEvery == 0 && g.cfg.ObserveAge != nil {
		// A generation from a clock ahead of this one would give a
		// negative age.
		g.cfg.ObserveAge(max(0, time.Duration(g.c.cfg.Now().UnixNano()-int64(gen))))
	}
}

// serveForward answers a forwarded get without forwarding it again.
func (g *Group) serveForward(ctx context.Context, req ForwardRequest) (ForwardResponse, error) {
	if err := CheckKey(req.Key); err != nil {
		return ForwardResponse{}, err
	}
	g.c.pause.check(g.c.flushAfterPause)
	snap := g.c.peers.Ring()
	if req.Fingerprint != snap.Fingerprint() {
		g.n.mismatches.Add(1)
	}
	var e Entry
	var err error
	if owner := snap.Owner(req.Key); owner == "" || owner == g.c.cfg.Self {
		e, err = g.getOwned(ctx, req.Key)
	} else if hot, ok := g.getHot(req.Key); ok {
		e = hot
	} else {
		g.n.misrouted.Add(1)
		e, err = g.load(ctx, req.Key, asCopy)
	}
	if err != nil {
		return ForwardResponse{}, err
	}
	return ForwardResponse{Value: e.Value, Gen: e.Gen, TTL: e.Expires.Sub(g.c.cfg.Now())}, nil
}

// forward asks owner for key. An answer that an invalidation overtook is
// dropped and asked for again; no answer means a degraded local load.
func (g *Group) forward(ctx context.Context, owner string, fingerprint uint64, key string) (Entry, error) {
	if g.c.suspects.skip(owner) {
		g.n.degraded.Add(1)
		return g.load(ctx, key, asCopy)
	}
	req := ForwardRequest{Group: g.name, Key: key, Fingerprint: fingerprint, Hops: 1}
	for attempt := range g.c.cfg.LoadAttempts {
		if attempt > 0 && !churnPause(ctx, attempt) {
			return Entry{}, ctx.Err()
		}
		start := g.c.cfg.Clock.Now()
		resp, err := g.ask(ctx, owner, req)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return Entry{}, ctx.Err()
		case errors.Is(err, ErrSourceFailed):
			g.c.suspects.answered(owner)
			return Entry{}, err
		default:
			g.n.forwardErrors.Add(1)
			g.n.degraded.Add(1)
			g.c.suspects.failed(owner)
			return g.load(ctx, key, asCopy)
		}
		g.c.suspects.answered(owner)
		e := g.fromOwner(key, resp, start)
		if g.keep(e, g.sampleHot(), false) {
			return e.Entry, nil
		}
		g.n.discarded.Add(1)
	}
	return Entry{}, ErrChurn
}

func (g *Group) ask(ctx context.Context, owner string, req ForwardRequest) (ForwardResponse, error) {
	g.n.forwards.Add(1)
	ctx, cancel := context.WithTimeout(ctx, g.c.cfg.PeerTimeout)
	defer cancel()
	return g.c.peers.Get(ctx, owner, req)
}

// fromOwner turns an owner's answer into an entry. Its lifetime is capped at
// the group TTL: a peer cannot make a value live longer here than this
// node's own configuration allows.
func (g *Group) fromOwner(key string, resp ForwardResponse, start hlc.Gen) *entry {
	g.c.cfg.Clock.Observe(resp.Gen)
	return &entry{
		key:   key,
		local: start,
		Entry: Entry{Value: resp.Value, Gen: resp.Gen, Expires: g.c.cfg.Now().Add(min(resp.TTL, g.cfg.TTL))},
	}
}

// sampleHot reports whether the current answer from an owner should be kept
// as a hot copy.
func (g *Group) sampleHot() bool {
	return g.hot != nil && g.sampled.Add(1)%uint64(g.cfg.HotSampleEvery) == 0
}

// keep decides whether e, produced by a load or forward that began at
// e.local, is still fresh, and stores it when it is: in the owner shard
// (owned) while this node still owns the key, else as a hot copy when toHot.
//
// The floor check and the set happen under storeMu's read lock, and
// Invalidate raises the floor under its write lock and then deletes and
// waits. So either the set was enqueued before the floor moved, and
// Invalidate's delete (ordered after it in ristretto's buffer) removes it
// before Invalidate returns, or the check sees the new floor and the result
// is dropped. A set is waited for, so that once the load's flight ends every
// later Get sees the entry and the key is loaded once.
func (g *Group) keep(e *entry, toHot, owned bool) bool {
	g.storeMu.RLock()
	fresh := g.floors.fresh(e.key, e.local)
	var into *store
	if fresh {
		ttl := e.Expires.Sub(g.c.cfg.Now())
		switch {
		case owned && g.ownsNow(e.key):
			into = g.owned
		case toHot && g.hot != nil:
			into, ttl = g.hot, min(ttl, g.cfg.HotTTL)
		}
		if into != nil && g.c.enter() {
			into.set(e, ttl)
		} else {
			into = nil
		}
	}
	g.storeMu.RUnlock()
	if into != nil {
		into.wait()
		g.c.leave()
	}
	return fresh
}

func (g *Group) ownsNow(key string) bool {
	owner := g.c.peers.Ring().Owner(key)
	return owner == "" || owner == g.c.cfg.Self
}

// Invalidate drops key's owner entry and hot copy on this node and makes any
// load or forward of key in flight here lose (see the package doc). gen is
// the invalidation's generation, merged into this node's clock. When
// Invalidate returns, no Get on this node returns the state loaded before it.
func (g *Group) Invalidate(key string, gen hlc.Gen) {
	g.n.inval.Add(1)
	g.c.recent.note(recentKey{g.name, key, false}, gen)
	floor := g.c.cfg.Clock.Observe(gen)
	g.storeMu.Lock()
	raise(g.floors.stripe(key), floor)
	g.storeMu.Unlock()
	if !g.c.enter() {
		return // closed: nothing is served any more
	}
	defer g.c.leave()
	g.owned.del(key)
	g.owned.wait()
	if g.hot != nil {
		g.hot.del(key)
		g.hot.wait()
	}
	if g.c.cfg.OnInvalidate != nil {
		g.c.cfg.OnInvalidate(g.name, key, false)
	}
}

// InvalidateAll drops every entry of the group on this node, with the same
// guarantee as Invalidate for every key. Entries are rejected at once and
// evicted lazily.
func (g *Group) InvalidateAll(gen hlc.Gen) {
	g.c.recent.note(recentKey{g.name, "", true}, gen)
	g.dropAll(gen)
	if g.c.cfg.OnInvalidate != nil {
		g.c.cfg.OnInvalidate(g.name, "", true)
	}
}

// dropAll is InvalidateAll without telling other nodes: a local flush.
func (g *Group) dropAll(gen hlc.Gen) {
	g.n.inval.Add(1)
	floor := g.c.cfg.Clock.Observe(gen)
	g.storeMu.Lock()
	raise(&g.floors.all, floor)
	g.storeMu.Unlock()
}

// ringChanged drops owner entries of keys now owned elsewhere and hot copies
// of keys now owned here. Taking and releasing the write lock, then waiting,
// makes every owner set that passed its ownership check under the old ring
// visible to the sweep.
func (g *Group) ringChanged() {
	if !g.c.enter() {
		return
	}
	defer g.c.leave()
	g.storeMu.Lock()
	g.storeMu.Unlock() //nolint:staticcheck // an empty critical section is the barrier
	g.owned.wait()
	dropped := g.owned.drop(func(k string) bool { return !g.ownsNow(k) })
	if g.hot != nil {
		dropped += g.hot.drop(g.ownsNow)
	}
	g.n.dropped.Add(uint64(dropped))
}

func (g *Group) close() {
	g.owned.close()
	if g.hot != nil {
		g.hot.close()
	}
}

// expiry returns when a value loaded now expires.
func (g *Group) expiry(v Value) time.Time {
	ttl := g.cfg.TTL
	if v.TTL > 0 && v.TTL < ttl {
		ttl = v.TTL
	}
	return g.c.cfg.Now().Add(ttl)
}
