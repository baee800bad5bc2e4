package redisfallback

import "sync/atomic"

// Stats counts what a Fallback has done since New.
type Stats struct {
	Open           bool   // the breaker is open: nothing touches Redis
	Hits           uint64 // loads answered from a Redis copy
	Misses         uint64 // reads that found no copy, an expired one or a malformed one
	StaleSkipped   uint64 // copies found but not trusted (generation too old)
	Bypassed       uint64 // loads that did not read Redis: breaker open, stopped, delete pending
	Writes         uint64 // copies written
	WriteDrops     uint64 // writes dropped because the queue was full
	WriteSkips     uint64 // queued writes not made: stale by write time, delete pending, expired, breaker opened meanwhile
	Errors         uint64 // Redis operations that failed or timed out
	Deletes        uint64 // deletes that landed (DeleteAll counts once)
	DeletesPending int    // deletes waiting to land
	DeletesExpired uint64 // deletes given up after the longest TTL: the copy expired anyway
	DeleteDrops    uint64 // deletes not kept because too many were pending; the distrust floor was raised instead
	Published      uint64 // pub/sub messages sent
	PublishDrops   uint64 // pub/sub messages not sent: breaker open, queue full, error
	Received       uint64 // pub/sub messages from other instances handed to onMessage
}

type counters struct {
	hits, misses, stale, bypassed, writes, writeDrops, writeSkips, errors   atomic.Uint64
	deletes, deletesExpired, deleteDrops, published, publishDrops, received atomic.Uint64
}

// Stats returns the counters and the breaker state.
func (f *Fallback) Stats() Stats {
	n := &f.n
	return Stats{
		Open: f.br.isOpen(), Hits: n.hits.Load(), Misses: n.misses.Load(),
		StaleSkipped: n.stale.Load(), Bypassed: n.bypassed.Load(),
		Writes: n.writes.Load(), WriteDrops: n.writeDrops.Load(), WriteSkips: n.writeSkips.Load(),
		Errors: n.errors.Load(), Deletes: n.deletes.Load(), DeletesPending: f.dels.len(),
		DeletesExpired: n.deletesExpired.Load(), DeleteDrops: n.deleteDrops.Load(),
		Published: n.published.Load(), PublishDrops: n.publishDrops.Load(), Received: n.received.Load(),
	}
}
