package shard

import "sync/atomic"

// Stats counts what a group has done since it was created.
type Stats struct {
	Hits           uint64 // owner-shard hits
	HotHits        uint64 // hot-copy hits
	Misses         uint64 // gets this node answered by loading (as owner or degraded)
	Loads          uint64 // source loads started (the database load)
	SharedLoads    uint64 // gets answered by a load that served more than one caller
	Forwards       uint64 // gets sent to an owner
	ForwardErrors  uint64 // forwards that got no answer
	DegradedLoads  uint64 // gets loaded here because the owner did not answer or is suspect
	MisroutedLoads uint64 // forwarded gets for keys this node's ring says it does not own
	RingMismatches uint64 // forwarded gets whose sender had another ring fingerprint
	Discarded      uint64 // results dropped because an invalidation arrived during the load
	LoaderPanics   uint64
	Dropped        uint64 // entries dropped on ring changes
	Invalidations  uint64
}

type counters struct {
	hits, hotHits, misses, loads, sharedLoads, forwards, forwardErrors atomic.Uint64
	degraded, misrouted, mismatches, discarded, panics, dropped, inval atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits: c.hits.Load(), HotHits: c.hotHits.Load(), Misses: c.misses.Load(),
		Loads: c.loads.Load(), SharedLoads: c.sharedLoads.Load(),
		Forwards: c.forwards.Load(), ForwardErrors: c.forwardErrors.Load(),
		DegradedLoads: c.degraded.Load(), MisroutedLoads: c.misrouted.Load(),
		RingMismatches: c.mismatches.Load(), Discarded: c.discarded.Load(),
		LoaderPanics: c.panics.Load(), Dropped: c.dropped.Load(), Invalidations: c.inval.Load(),
	}
}
