package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/avion/authnode/shard"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	hitsDesc    = desc("auth_cache_hits_total", "Lookups answered from memory, by cache type (docs/metrics.md).", "cache_type")
	missesDesc  = desc("auth_cache_misses_total", "Lookups that were not, by cache type (docs/metrics.md).", "cache_type")
	hitRateDesc = desc("auth_cache_hit_rate", "Hits as a percentage of lookups on this node over the last minute, by cache type.", "cache_type")

	buildDesc    = desc("authnode_build_info", "Always 1; the build's version is a label.", "version")
	membersDesc  = desc("authnode_cluster_members", "Members in this node's memberlist view, by state (alive, failed, left).", "state")
	ringDesc     = desc("authnode_ring_members", "Members in this node's ring.")
	epochDesc    = desc("authnode_ring_epoch", "Ring changes this node has applied.")
	ownedDesc    = desc("authnode_ring_partitions_owned", "Ring partitions this node owns.")
	suspectDesc  = desc("authnode_suspect_peers", "Peers this node stopped forwarding to after they failed to answer.")
	flushesDesc  = desc("authnode_cache_flushes_total", "Whole-cache flushes after a pause, a partition or a change-feed restart.")
	sourceDesc   = desc("authnode_source_requests_total", "Requests to the source of truth (the database load), by kind.", "kind")
	entriesDesc  = desc("authnode_cache_entries", "Entries this node holds (owned and hot copies), by group.", "group")
	bytesDesc    = desc("authnode_cache_bytes", "Estimated size of those entries, by group.", "group")
	jwksAtDesc   = desc("authnode_jwks_last_refresh_timestamp_seconds", "Unix time of the last successful JWKS fetch, by issuer.", "issuer")
	jwksKeysDesc = desc("authnode_jwks_keys", "Keys in the issuer's current JWKS.", "issuer")
	jwksFailDesc = desc("authnode_jwks_refresh_failures_total", "Failed JWKS fetches, by issuer.", "issuer")
	jwksKidDesc  = desc("authnode_jwks_unknown_kid_refreshes_total", "JWKS refreshes started because a token named an unknown kid, by issuer.", "issuer")
	redisOpen    = desc("authnode_redis_circuit_open", "1 while the Redis circuit breaker is open (nothing touches Redis), else 0.")
	redisReads   = desc("authnode_redis_copy_reads_total", "Reads of Redis copies, by result (hit, miss, stale, bypassed).", "result")
	redisErrors  = desc("authnode_redis_errors_total", "Redis operations that failed or timed out.")
	redisDrops   = desc("authnode_redis_queue_drops_total", "Work dropped because a Redis queue was full, by queue (write, publish, delete).", "queue")
)

// groupCounters are the per-group counters taken from shard.Stats.
var groupCounters = []struct {
	desc  *prometheus.Desc
	value func(shard.Stats) uint64
}{
	{desc("authnode_forwards_total", "Lookups sent to the owner, by group.", "group"), func(s shard.Stats) uint64 { return s.Forwards }},
	{desc("authnode_degraded_loads_total", "Lookups loaded here because the owner did not answer, was suspect or missed an invalidation, by group.", "group"),
		func(s shard.Stats) uint64 { return s.DegradedLoads }},
	{desc("authnode_loads_total", "Loads this node started (from Redis or the source), by group.", "group"), func(s shard.Stats) uint64 { return s.Loads }},
	{desc("authnode_shared_loads_total", "Lookups answered by a load another caller started, by group.", "group"), func(s shard.Stats) uint64 { return s.SharedLoads }},
	{desc("authnode_hot_hits_total", "Lookups answered by a hot copy of a key owned elsewhere, by group.", "group"), func(s shard.Stats) uint64 { return s.HotHits }},
}

// sizeEvery bounds how often a group's size is walked.
const sizeEvery = 15 * time.Second

// collector exports a Snapshot taken at each scrape.
type collector struct {
	snapshot func() Snapshot
	now      func() time.Time

	mu    sync.Mutex // serialises scrapes: the window and the sizes
	rates *window
	sizes map[string]size
}

type size struct {
	entries, bytes int64
	at             time.Time
}

func newCollector(snapshot func() Snapshot) *collector {
	return &collector{snapshot: snapshot, now: time.Now, rates: newWindow(time.Now()), sizes: map[string]size{}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		hitsDesc, missesDesc, hitRateDesc, buildDesc, membersDesc, ringDesc, epochDesc, ownedDesc, suspectDesc, flushesDesc,
		sourceDesc, entriesDesc, bytesDesc, jwksAtDesc, jwksKeysDesc, jwksFailDesc, jwksKidDesc,
		redisOpen, redisReads, redisErrors, redisDrops,
	} {
		ch <- d
	}
	for _, g := range groupCounters {
		ch <- g.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock() // before the snapshot: the window takes samples in order
	defer c.mu.Unlock()
	s := c.snapshot()
	e := emitter{ch}
	c.collectLookups(e, s)
	if s.Version != "" {
		e.gauge(buildDesc, 1, s.Version)
	}
	e.gauge(ringDesc, float64(s.Ring.Members))
	e.gauge(epochDesc, float64(s.Ring.Epoch))
	e.gauge(ownedDesc, float64(s.Ring.PartitionsOwned))
	e.gauge(suspectDesc, float64(s.SuspectPeers))
	e.counter(flushesDesc, s.Flushes)
	for state, n := range s.Members {
		e.gauge(membersDesc, float64(n), state)
	}
	for kind, n := range s.Source {
		e.counter(sourceDesc, n, kind)
	}
	c.collectGroups(e, s.Groups)
	collectJWKS(e, s)
	collectRedis(e, s)
}

func (c *collector) collectLookups(e emitter, s Snapshot) {
	now := c.now()
	counts := s.byCacheType()
	for _, t := range cacheTypes {
		e.counter(hitsDesc, counts[t].hits, t)
		e.counter(missesDesc, counts[t].misses, t)
	}
	for t, rate := range c.rates.add(now, counts) {
		e.gauge(hitRateDesc, rate, t)
	}
}

func (c *collector) collectGroups(e emitter, groups []Group) {
	now := c.now()
	for _, g := range groups {
		for _, gc := range groupCounters {
			e.counter(gc.desc, gc.value(g.Stats), g.Name)
		}
		sz, ok := c.sizes[g.Name]
		if !ok || now.Sub(sz.at) >= sizeEvery {
			sz.entries, sz.bytes = g.Size()
			sz.at = now
			c.sizes[g.Name] = sz
		}
		e.gauge(entriesDesc, float64(sz.entries), g.Name)
		e.gauge(bytesDesc, float64(sz.bytes), g.Name)
	}
}

func collectJWKS(e emitter, s Snapshot) {
	for issuer, st := range s.JWKS {
		if !st.LastOK.IsZero() {
			e.gauge(jwksAtDesc, float64(st.LastOK.UnixNano())/1e9, issuer)
		}
		e.gauge(jwksKeysDesc, float64(st.Keys), issuer)
		e.counter(jwksFailDesc, st.Failures, issuer)
		e.counter(jwksKidDesc, st.UnknownKidRefreshes, issuer)
	}
}

func collectRedis(e emitter, s Snapshot) {
	r := s.Redis
	if r == nil {
		return
	}
	open := 0.0
	if r.Open {
		open = 1
	}
	e.gauge(redisOpen, open)
	e.counter(redisReads, r.Hits, "hit")
	e.counter(redisReads, r.Misses, "miss")
	e.counter(redisReads, r.StaleSkipped, "stale")
	e.counter(redisReads, r.Bypassed, "bypassed")
	e.counter(redisErrors, r.Errors)
	e.counter(redisDrops, r.WriteDrops, "write")
	e.counter(redisDrops, r.PublishDrops, "publish")
	e.counter(redisDrops, r.DeleteDrops, "delete")
}

// emitter sends constant metrics.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
