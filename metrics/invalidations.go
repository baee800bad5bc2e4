package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Channel is how an invalidation reached a node.
type Channel uint8

// The channels of authnode_invalidations_total.
const (
	ChannelCall   Channel = iota // this node's API or change feed
	ChannelPeer                  // a direct call from another member
	ChannelGossip                // memberlist broadcast or push-pull
	ChannelRedis                 // Redis pub/sub
	numChannels
)

var channelLabels = [numChannels]string{"call", "peer", "gossip", "redis"}

// Kind is what a fan-out to every member carried.
type Kind uint8

// The kinds of authnode_invalidation_duration_seconds.
const (
	KindKey    Kind = iota // one key of one or more groups
	KindAll                // every entry
	KindRevoke             // a token watermark
	numKinds
)

var kindLabels = [numKinds]string{"key", "all", "revoke"}

// fanoutBuckets span a loopback fan-out to the invalidation deadline.
var fanoutBuckets = []float64{1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

func (m *Metrics) registerFanouts() prometheus.Collector {
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authnode_invalidations_total", Help: "Invalidations this node processed, by the channel that brought them.",
	}, []string{"channel"})
	for ch, l := range channelLabels {
		m.invalidations[ch] = received.WithLabelValues(l)
	}
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authnode_invalidation_duration_seconds", Help: "From an invalidation's start to the last member's acknowledgement (or the deadline), by kind.",
		Buckets: fanoutBuckets,
	}, []string{"kind"})
	for k, l := range kindLabels {
		m.fanouts[k] = took.WithLabelValues(l)
	}
	return multi{received, took}
}

// Invalidated counts n invalidations that arrived through ch.
func (m *Metrics) Invalidated(ch Channel, n int) {
	if n > 0 {
		m.invalidations[ch].Add(float64(n))
	}
}

// FannedOut records a fan-out of kind that took d to its last
// acknowledgement.
func (m *Metrics) FannedOut(k Kind, d time.Duration) { m.fanouts[k].Observe(d.Seconds()) }

// multi is several collectors registered as one.
type multi []prometheus.Collector

func (c multi) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c {
		x.Describe(ch)
	}
}

func (c multi) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c {
		x.Collect(ch)
	}
}
