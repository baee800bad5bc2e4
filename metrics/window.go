package metrics

import "time"

// hitRateWindow is the span auth_cache_hit_rate covers.
const hitRateWindow = time.Minute

// window keeps the lookup counts seen at recent scrapes, to turn counters
// into a hit rate over the last minute without a goroutine of its own.
type window struct {
	samples []sample // oldest first; the first is at least hitRateWindow old once there is history
}

type sample struct {
	at     time.Time
	counts map[string]lookups
}

// newWindow starts with zero counts at start: before a minute has passed,
// the rate covers the node's whole life.
func newWindow(start time.Time) *window {
	return &window{samples: []sample{{at: start, counts: map[string]lookups{}}}}
}

// add records counts at now and returns the hit rate (percent) per cache
// type since the newest sample at least hitRateWindow old (else the
// oldest). A cache type without a lookup in that span has no rate.
func (w *window) add(now time.Time, counts map[string]lookups) map[string]float64 {
	for len(w.samples) > 1 && now.Sub(w.samples[1].at) >= hitRateWindow {
		w.samples = w.samples[1:]
	}
	base := w.samples[0].counts
	rates := make(map[string]float64, len(counts))
	for t, c := range counts {
		b := base[t]
		hits, misses := c.hits-b.hits, c.misses-b.misses
		if hits+misses > 0 && c.hits >= b.hits && c.misses >= b.misses {
			rates[t] = 100 * float64(hits) / float64(hits+misses)
		}
	}
	if last := w.samples[len(w.samples)-1]; now.Sub(last.at) >= time.Second {
		w.samples = append(w.samples, sample{at: now, counts: counts})
	}
	return rates
}
