// Package metrics exports a node's counters and timings to Prometheus
// under the names operators' dashboards and alerts use (docs/metrics.md).
//
// Counters the node's parts keep anyway (cache, token cache, JWKS, Redis,
// membership) are read when scraped, through a Snapshot; what only exists
// as an event (a call's latency, a peer call, an invalidation) is observed
// as it happens. The series a cached answer touches (its call's latency
// and errors, an entry's age) are bound in advance, so that path neither
// allocates nor takes a lock. Every label value is bounded: a cache type,
// an operation, a group, a channel, a member, a configured issuer, a gRPC
// code, a Redis command; never a user, token, key or resource.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The plan's cache types.
const (
	JWTValidation = "jwt_validation"
	Authorization = "authorization"
	APIKey        = "apikey"
	Session       = "session"
	JWKS          = "jwks"
)

// cacheTypes lists every cache type, in the order series are exported.
var cacheTypes = [...]string{JWTValidation, Authorization, APIKey, Session, JWKS}

// Op is one timed operation: a cache type and an operation name.
type Op uint8

// The operations timed by auth_cache_latency_seconds.
const (
	Validate      Op = iota // jwt_validation, validate
	Revoke                  // jwt_validation, revoke
	Authorize               // authorization, authorize
	Invalidate              // authorization, invalidate
	VerifyKey               // apikey, verify
	GetSession              // session, get
	PutSession              // session, put
	DeleteSession           // session, delete
	RefreshJWKS             // jwks, refresh
	numOps
)

var opLabels = [numOps][2]string{
	Validate: {JWTValidation, "validate"}, Revoke: {JWTValidation, "revoke"},
	Authorize: {Authorization, "authorize"}, Invalidate: {Authorization, "invalidate"},
	VerifyKey: {APIKey, "verify"}, GetSession: {Session, "get"}, PutSession: {Session, "put"},
	DeleteSession: {Session, "delete"}, RefreshJWKS: {JWKS, "refresh"},
}

// latencyBuckets resolve a cached answer (microseconds) as well as the
// plan's millisecond goals.
var latencyBuckets = []float64{
	5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics is one node's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	ops           [numOps]opSeries
	peers         *peerSeries
	invalidations [numChannels]prometheus.Counter
	fanouts       [numKinds]prometheus.Observer
	entryAge      *prometheus.HistogramVec
	redis         *prometheus.HistogramVec
}

type opSeries struct {
	latency prometheus.Observer
	errors  prometheus.Counter
}

// New registers the node's metrics, the Go runtime's and the process's on
// reg. snapshot is called at every scrape, from the scraping goroutine.
func New(reg prometheus.Registerer, snapshot func() Snapshot) *Metrics {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "auth_cache_latency_seconds", Help: "Time a node spends on one API call, by cache type and operation.",
		Buckets: latencyBuckets,
	}, []string{"cache_type", "operation"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_cache_errors_total", Help: "Calls that failed for the node's reasons (source unavailable, deadline), by cache type and operation.",
	}, []string{"cache_type", "operation"})
	m := &Metrics{peers: newPeerSeries(), entryAge: newEntryAge(), redis: newRedisDuration()}
	for op, l := range opLabels {
		m.ops[op] = opSeries{latency: latency.WithLabelValues(l[0], l[1]), errors: errs.WithLabelValues(l[0], l[1])}
	}
	reg.MustRegister(latency, errs, m.entryAge, m.redis, m.registerFanouts(), newCollector(snapshot),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.peers.register(reg)
	return m
}

// Observe records one call of op that took d; failed says it failed for
// the node's reasons (an invalid token, a deny or bad input is not a
// failure).
func (m *Metrics) Observe(op Op, d time.Duration, failed bool) {
	s := &m.ops[op]
	s.latency.Observe(d.Seconds())
	if failed {
		s.errors.Inc()
	}
}

// entryAgeBuckets span a fresh entry to the longest TTL.
var entryAgeBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 120, 300, 600, 1800, 3600}

func newEntryAge() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authnode_entry_age_seconds", Help: "Age of an entry (since its load began) when served from memory; one hit in 16.",
		Buckets: entryAgeBuckets,
	}, []string{"group"})
}

// EntryAge returns the observer of group's entry ages, for
// shard.GroupConfig.ObserveAge.
func (m *Metrics) EntryAge(group string) func(time.Duration) {
	o := m.entryAge.WithLabelValues(group)
	return func(age time.Duration) { o.Observe(age.Seconds()) }
}
