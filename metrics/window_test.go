package metrics

import (
	"maps"
	"testing"
	"time"
)

// TestWindowCoversTheLastMinute: the rate covers the node's life until a
// minute has passed, then the last minute (from the newest sample at least
// a minute old); a cache type without lookups in the span has no rate.
func TestWindowCoversTheLastMinute(t *testing.T) {
	start := time.Unix(1000, 0)
	w := newWindow(start)
	at := start.Add
	check := func(when time.Duration, counts map[string]lookups, want map[string]float64) {
		t.Helper()
		if got := w.add(at(when), counts); !maps.Equal(got, want) {
			t.Fatalf("at %v: rates %v, want %v", when, got, want)
		}
	}
	check(10*time.Second, map[string]lookups{Authorization: {hits: 9, misses: 1}, Session: {}},
		map[string]float64{Authorization: 90})
	check(40*time.Second, map[string]lookups{Authorization: {hits: 18, misses: 2}},
		map[string]float64{Authorization: 90})
	// 70 s: the base is the sample at 10 s, the newest a minute old.
	check(70*time.Second, map[string]lookups{Authorization: {hits: 18, misses: 12}},
		map[string]float64{Authorization: 45})
	// 110 s: the base is the sample at 40 s; nothing happened since 70 s,
	// but the span still holds the ten misses before.
	check(110*time.Second, map[string]lookups{Authorization: {hits: 18, misses: 12}},
		map[string]float64{Authorization: 0})
	// 200 s: no lookup since 110 s: no rate.
	check(200*time.Second, map[string]lookups{Authorization: {hits: 18, misses: 12}}, map[string]float64{})
}

// TestWindowStaysBounded: frequent scrapes keep at most one sample a second
// of the last minute.
func TestWindowStaysBounded(t *testing.T) {
	start := time.Unix(1000, 0)
	w := newWindow(start)
	for i := range 10000 {
		w.add(start.Add(time.Duration(i)*10*time.Millisecond), map[string]lookups{JWKS: {hits: uint64(i)}})
	}
	if n := len(w.samples); n > 62 {
		t.Fatalf("%d samples kept", n)
	}
}
