package shard

import (
	"context"
	"sync"
	"testing"
	"time"
)

// ageLog records the ages a group reports through ObserveAge.
type ageLog struct {
	mu   sync.Mutex
	ages []time.Duration
}

func (l *ageLog) observe(age time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ages = append(l.ages, age)
}

func (l *ageLog) list() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.ages...)
}

// ageOf is the age of an entry of e's generation on clock: the time since
// the load that produced it began.
func ageOf(clock *fakeTime, e Entry) time.Duration {
	return clock.now().Sub(time.Unix(0, int64(e.Gen)))
}

// hitN gets key through g n times and checks each answer is the entry
// first served (a hit, not a new load).
func hitN(t *testing.T, g *Group, key string, first Entry, n int) {
	t.Helper()
	for range n {
		e, err := g.Get(context.Background(), key)
		if err != nil || e.Gen != first.Gen || string(e.Value) != string(first.Value) {
			t.Fatalf("Get(%q) = %q gen %d, %v; want the entry first served (%q gen %d)", key, e.Value, e.Gen, err, first.Value, first.Gen)
		}
	}
}

// checkAges fails unless log holds exactly want.
func checkAges(t *testing.T, log *ageLog, what string, want ...time.Duration) {
	t.Helper()
	got := log.list()
	if len(got) != len(want) {
		t.Fatalf("%s: %d ages observed (%v), want %d (%v)", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: ages %v, want %v", what, got, want)
		}
	}
}

// TestObserveAgeOwnerHits: one owner-shard hit in ageSampleEvery reports
// the age of the entry served, measured on the node's clock from the start
// of the load; a miss reports nothing.
func TestObserveAgeOwnerHits(t *testing.T) {
	clock := &fakeTime{t: time.Unix(1_000, 0)}
	var log ageLog
	gcfg := testGroupConfig()
	gcfg.ObserveAge = log.observe
	net := newNet(t, []string{"a"}, newSource(), gcfg, func(c *Config) { c.Now = clock.now })
	g := net.group("a")
	first, err := g.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	// The generation is the clock's reading when the load began: the
	// clock stands still, so it is within a few ticks of it.
	if d := ageOf(clock, first); d > 0 || d < -time.Microsecond {
		t.Fatalf("generation %d is %v away from the clock at the load", first.Gen, -d)
	}
	checkAges(t, &log, "after the miss")

	if ageSampleEvery != 16 {
		t.Fatalf("ageSampleEvery %d, documented as one hit in 16", ageSampleEvery)
	}
	hitN(t, g, "k", first, ageSampleEvery-1)
	checkAges(t, &log, "after one hit short of a sample")

	clock.advance(7 * time.Second)
	age1 := ageOf(clock, first)
	if age1 < 7*time.Second-time.Microsecond || age1 > 7*time.Second {
		t.Fatalf("expected age %v, want about 7s", age1)
	}
	hitN(t, g, "k", first, 1)
	checkAges(t, &log, "at the sampled hit", age1)

	clock.advance(3 * time.Second)
	hitN(t, g, "k", first, ageSampleEvery-1)
	checkAges(t, &log, "one hit short of the next sample", age1)
	hitN(t, g, "k", first, 1)
	checkAges(t, &log, "at the next sampled hit", age1, age1+3*time.Second)

	if s := g.Stats(); s.Hits != 2*ageSampleEvery || s.Misses != 1 {
		t.Fatalf("stats %+v, want %d hits and 1 miss", s, 2*ageSampleEvery)
	}
}

// TestObserveAgeHotHits: hot-copy hits are sampled the same way, with the
// age of the copy measured from the generation the owner gave it.
func TestObserveAgeHotHits(t *testing.T) {
	clock := &fakeTime{t: time.Unix(1_000, 0)}
	var log ageLog
	gcfg := testGroupConfig() // every owner answer is kept as a hot copy
	gcfg.ObserveAge = log.observe
	net := newNet(t, []string{"a", "b"}, newSource(), gcfg, func(c *Config) { c.Now = clock.now })
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	a := net.group("a")
	// The forward takes a second to reach b: the copy's age counts from
	// b's load, not from a's request.
	net.node("b").setHooks(func(context.Context) error { clock.advance(time.Second); return nil }, nil)
	first, err := a.Get(context.Background(), key) // forwarded to b, loaded there
	if err != nil {
		t.Fatal(err)
	}
	net.node("b").setHooks(nil, nil)
	if d := ageOf(clock, first); d > 0 || d < -time.Microsecond {
		t.Fatalf("generation %d is %v away from the clock at b's load", first.Gen, -d)
	}
	checkAges(t, &log, "after the forwarded miss")

	hitN(t, a, key, first, ageSampleEvery-1)
	checkAges(t, &log, "after one hot hit short of a sample")
	clock.advance(5 * time.Second)
	want := ageOf(clock, first)
	if want < 5*time.Second-time.Microsecond || want > 5*time.Second {
		t.Fatalf("expected age %v, want about 5s", want)
	}
	hitN(t, a, key, first, 1)
	checkAges(t, &log, "at the sampled hot hit", want)

	if s := a.Stats(); s.HotHits != ageSampleEvery || s.Forwards != 1 || s.Hits != 0 {
		t.Fatalf("a stats %+v, want %d hot hits after 1 forward", s, ageSampleEvery)
	}
	if s := net.group("b").Stats(); s.Hits != 0 || s.HotHits != 0 {
		t.Fatalf("b stats %+v: the owner served hits, the sample may be its own", s)
	}
	if n := net.node("b").received.Load(); n != 1 {
		t.Fatalf("the owner was asked %d times, want 1", n)
	}
}

// TestObserveAgeConcurrentHits: concurrent hits are sampled exactly one in
// ageSampleEvery.
func TestObserveAgeConcurrentHits(t *testing.T) {
	var log ageLog
	gcfg := testGroupConfig()
	gcfg.ObserveAge = log.observe
	net := newNet(t, []string{"a"}, newSource(), gcfg, nil)
	g := net.group("a")
	first, err := g.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if e, err := g.Get(context.Background(), "k"); err != nil || e.Gen != first.Gen {
					t.Errorf("Get = gen %d, %v; want gen %d", e.Gen, err, first.Gen)
					return
				}
			}
		})
	}
	wg.Wait()
	ages := log.list()
	if want := workers * each / ageSampleEvery; len(ages) != want {
		t.Fatalf("%d ages for %d hits, want %d", len(ages), workers*each, want)
	}
	// The real clock: ages are from the load until now, well under the test's run.
	for _, age := range ages {
		if age < 0 || age > time.Minute {
			t.Fatalf("age %v not in [0, 1m]", age)
		}
	}
}

// TestObserveAgeNil: without ObserveAge sampled hits, owner and hot, go on
// as usual.
func TestObserveAgeNil(t *testing.T) {
	gcfg := testGroupConfig()
	gcfg.ObserveAge = nil
	net := newNet(t, []string{"a", "b"}, newSource(), gcfg, nil)
	snap := net.node("a").Ring()
	a := net.group("a")
	for _, key := range []string{keyOwnedBy(t, snap, "a"), keyOwnedBy(t, snap, "b")} {
		first, err := a.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		hitN(t, a, key, first, 2*ageSampleEvery)
	}
	if s := a.Stats(); s.Hits != 2*ageSampleEvery || s.HotHits != 2*ageSampleEvery {
		t.Fatalf("stats %+v, want %d owner and %d hot hits", s, 2*ageSampleEvery, 2*ageSampleEvery)
	}
}
