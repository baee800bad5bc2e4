package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newRedisDuration times the commands sent to Redis. The command label is
// bounded by the commands the Redis fallback sends.
func newRedisDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authnode_redis_request_duration_seconds", Help: "Commands sent to Redis, by command (a pipeline is one).",
		Buckets: peerBuckets,
	}, []string{"command"})
}

// RedisCommand records a command sent to Redis; it fits
// redisfallback.Config.Observe (failures are counted by the fallback).
func (m *Metrics) RedisCommand(command string, d time.Duration, _ bool) {
	m.redis.WithLabelValues(command).Observe(d.Seconds())
}
