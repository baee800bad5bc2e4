package redisfallback

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avion/authnode/redisfallback/redistest"
	"github.com/avion/authnode/shard"
)

// timedConfig uses the production timeouts: these tests measure them.
func timedConfig(url string) Config {
	cfg := DefaultConfig(url)
	cfg.Prefix = "t:"
	cfg.RetryInterval = 100 * time.Millisecond
	return cfg
}

// sample is one load: when it started and how long it took.
type sample struct {
	start time.Time
	took  time.Duration
}

// maxHammerLoads bounds each hammer worker's loads.
const maxHammerLoads = 100_000

// hammer runs workers goroutines that load random keys of n for d (at most
// maxHammerLoads each, paced by a short sleep between loads) and returns
// every sample and the number of failed loads. Unpaced, a worker made
// millions of sub-microsecond loads, and growing their samples stalled the
// process for longer than the waits the tests bound.
func hammer(ld shard.Loader, workers, n int, d time.Duration) ([]sample, int64) {
	var failed atomic.Int64
	per := make([][]sample, workers)
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			per[w] = make([]sample, 0, 4096)
			for start := time.Now(); start.Before(end) && len(per[w]) < maxHammerLoads; start = time.Now() {
				if _, err := ld.Load(context.Background(), fmt.Sprintf("k%d", rand.IntN(n))); err != nil {
					failed.Add(1)
				}
				per[w] = append(per[w], sample{start, time.Since(start)})
				time.Sleep(20 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	return slices.Concat(per...), failed.Load()
}

// latency summarises durations: count, p50, p99, max.
type latency struct {
	n             int
	p50, p99, max time.Duration
}

func summarise(ss []sample) latency {
	if len(ss) == 0 {
		return latency{}
	}
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.took
	}
	slices.Sort(ds)
	return latency{n: len(ds), p50: ds[len(ds)/2], p99: ds[len(ds)*99/100], max: ds[len(ds)-1]}
}

func (l latency) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", l.n, l.p50, l.p99, l.max)
}

// split separates samples started before at from the others.
func split(ss []sample, at time.Time) (before, after []sample) {
	for _, s := range ss {
		if s.start.Before(at) {
			before = append(before, s)
		} else {
			after = append(after, s)
		}
	}
	return before, after
}

// TestRedisDownDuringLoad kills (or freezes) Redis in the middle of a
// bounded load: no load fails, the breaker opens, a load never waits much
// longer than OpTimeout, and once Redis is back the breaker closes and no
// copy written before the outage is served.
func TestRedisDownDuringLoad(t *testing.T) {
	for _, tc := range []struct {
		name         string
		down, up     func(*redistest.Server)
		dataSurvives bool
	}{
		{"killed", (*redistest.Server).Kill, (*redistest.Server).Restart, false},
		{"frozen", (*redistest.Server).Pause, (*redistest.Server).Resume, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			cfg := timedConfig(srv.URL())
			a := newNode(t, cfg, true)
			src := newSource()
			perms := a.f.Wrap(groupPerms, true, time.Minute, src)

			const workers, keys, healthy, down = 4, 200, time.Second, 2 * time.Second
			base, _ := hammer(src, workers, keys, 300*time.Millisecond)
			var downAt time.Time
			timer := time.AfterFunc(healthy, func() { downAt = time.Now(); tc.down(srv) })
			samples, failed := hammer(perms, workers, keys, healthy+down)
			timer.Stop()
			if downAt.IsZero() {
				t.Fatal("Redis was not taken down during the load")
			}
			before, after := split(samples, downAt)
			t.Logf("Redis %s: source alone %v", tc.name, summarise(base))
			t.Logf("Redis %s: healthy       %v", tc.name, summarise(before))
			t.Logf("Redis %s: down          %v", tc.name, summarise(after))
			t.Logf("Redis %s: stats %+v", tc.name, a.f.Stats())

			if failed != 0 {
				t.Errorf("%d loads failed, want 0", failed)
			}
			if !a.f.Stats().Open {
				t.Error("breaker not open with Redis down")
			}
			if a.f.Stats().Hits == 0 {
				t.Error("no load was served from Redis while it was healthy")
			}
			if d, limit := summarise(after), cfg.OpTimeout+200*time.Millisecond; d.n == 0 || d.max > limit {
				t.Errorf("loads with Redis down: %v, want some and max <= %v", d, limit)
			}

			stale := encode(copyVal{gen: a.clock.Now(), expires: time.Now().Add(time.Minute), value: []byte("stale")})
			tc.up(srv)
			eventually(t, 10*time.Second, "breaker closed again", func() bool { return !a.f.Stats().Open })
			// A copy written before the outage, as a Redis that kept its data
			// (or a replica) could bring back.
			if err := srv.Client().HSet(context.Background(), "t:u:k0", groupPerms, stale).Err(); err != nil {
				t.Fatal(err)
			}
			if v := load(t, perms, "k0"); string(v.Bytes) == "stale" {
				t.Error("a copy written before the outage was served after it")
			}
			if a.f.Stats().StaleSkipped == 0 {
				t.Error("the pre-outage copy was not counted as stale")
			}
		})
	}
}

// TestDeleteWhileDownLandsLater deletes a user's copies while Redis is
// frozen (its data survives). The delete is retried and lands after Redis
// answers again; until then this node neither reads nor writes the user's
// copies, and afterwards no node can read the old copy.
func TestDeleteWhileDownLandsLater(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
	}{
		{"breaker opens", 3},
		{"breaker stays closed", 1 << 30}, // every retry waits for its timeout
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			cfg := timedConfig(srv.URL())
			cfg.FailuresToOpen = tc.failures
			a := newNode(t, cfg, true)
			src := newSource()
			src.put("u1", "old")
			perms := a.f.Wrap(groupPerms, true, time.Minute, src)
			load(t, perms, "u1")
			eventually(t, 5*time.Second, "copy written", func() bool { return a.f.Stats().Writes == 1 })

			srv.Pause()
			if tc.failures == 3 {
				eventually(t, 5*time.Second, "breaker open", func() bool {
					load(t, perms, "other")
					return a.f.Stats().Open
				})
			}
			src.put("u1", "new")
			errorsBefore := a.f.Stats().Errors
			a.f.DeleteUser("u1")
			if n := a.f.Stats().DeletesPending; n != 1 {
				t.Fatalf("DeletesPending = %d, want 1", n)
			}
			if tc.failures > 3 {
				eventually(t, 5*time.Second, "delete retried", func() bool { return a.f.Stats().Errors >= errorsBefore+2 })
			}
			bypassed := a.f.Stats().Bypassed
			if v := load(t, perms, "u1"); string(v.Bytes) != "new" {
				t.Errorf("with the delete pending, u1 = %q, want new", v.Bytes)
			}
			if a.f.Stats().Bypassed != bypassed+1 {
				t.Error("with the delete pending the load did not bypass Redis")
			}

			srv.Resume()
			eventually(t, 10*time.Second, "delete landed", func() bool {
				if v := load(t, perms, "u1"); string(v.Bytes) != "new" {
					t.Fatalf("u1 = %q while the delete was pending, want new", v.Bytes)
				}
				s := a.f.Stats()
				return s.DeletesPending == 0 && s.Deletes == 1
			})
			raw, err := srv.Client().HGet(context.Background(), "t:u:u1", groupPerms).Bytes()
			if err == nil {
				if c, _ := decode(raw); string(c.value) != "new" {
					t.Errorf("after the delete Redis holds %q for u1", c.value)
				}
			}
			b := newNode(t, testConfig(srv.URL()), true)
			if v := load(t, b.f.Wrap(groupPerms, true, time.Minute, src), "u1"); string(v.Bytes) != "new" {
				t.Errorf("another node read u1 = %q, want new", v.Bytes)
			}
		})
	}
}

// TestRestartedRedisIsDistrusted: a Redis restarted with old data (a
// snapshot, a promoted replica) is recognised by its new run_id even by a
// node that never saw it down, and no copy from before is served.
func TestRestartedRedisIsDistrusted(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, testConfig(srv.URL()), true)
	src := newSource()
	src.put("u1", "old")
	perms := a.f.Wrap(groupPerms, true, time.Minute, src)
	load(t, perms, "u1")
	eventually(t, 5*time.Second, "copy written", func() bool { return a.f.Stats().Writes == 1 })
	old, err := srv.Client().HGet(context.Background(), "t:u:u1", groupPerms).Bytes()
	if err != nil {
		t.Fatal(err)
	}

	srv.Restart()
	if err := srv.Client().HSet(context.Background(), "t:u:u1", groupPerms, old).Err(); err != nil {
		t.Fatal(err)
	}
	src.put("u1", "new")
	// The first load may meet a pooled connection to the old server.
	for range 2 {
		if v := load(t, perms, "u1"); string(v.Bytes) != "new" {
			t.Fatalf("served %q from a restarted Redis, want new", v.Bytes)
		}
	}
	// Fewer errors than FailuresToOpen: the breaker never opened, so the
	// run_id alone made the copy untrusted.
	if s := a.f.Stats(); s.Errors >= 3 || s.StaleSkipped == 0 {
		t.Errorf("stats %+v, want the breaker never opened and the old copy skipped", s)
	}
}
