package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTime is a settable wall clock for suspicion tests.
type fakeTime struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTime) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// TestSilentOwnerDegradesThenIsSuspected: an owner that does not answer
// within the peer timeout does not fail the request; after SuspectAfter
// silences it is skipped; after SuspectFor one probe goes through; a ring
// change clears the suspicion.
func TestSilentOwnerDegradesThenIsSuspected(t *testing.T) {
	clock := &fakeTime{t: time.Unix(1_000, 0)}
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), func(c *Config) { c.Now = clock.now; shortTimeout(c) })
	net.node("b").setHooks(silent, nil)
	a, b := net.group("a"), net.node("b")
	snap := net.node("a").Ring()
	key := func(i int) string {
		for j := i * 1000; ; j++ {
			if k := fmt.Sprintf("k%d", j); snap.Owner(k) == "b" {
				return k
			}
		}
	}
	after := testConfig("a").SuspectAfter
	for i := range after {
		if got := mustGet(t, a, key(i)); got != key(i)+"@1" {
			t.Fatalf("degraded Get = %q", got)
		}
	}
	if s := a.Stats(); s.DegradedLoads != uint64(after) || s.ForwardErrors != uint64(after) {
		t.Fatalf("stats after %d silences: %+v", after, s)
	}
	if got := net.node("a").cache.Suspects(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("suspects = %v", got)
	}
	asked := b.received.Load()
	mustGet(t, a, key(10))
	if b.received.Load() != asked {
		t.Fatal("a suspected owner was asked again before SuspectFor passed")
	}
	if s := a.Stats(); s.DegradedLoads != uint64(after)+1 {
		t.Fatalf("skipping a suspect is a degraded load: %+v", s)
	}

	b.setHooks(nil, nil) // b recovers
	clock.advance(testConfig("a").SuspectFor)
	mustGet(t, a, key(11))
	if b.received.Load() != asked+1 || len(net.node("a").cache.Suspects()) != 0 {
		t.Fatalf("probe after SuspectFor: asked %d times, suspects %v", b.received.Load()-asked, net.node("a").cache.Suspects())
	}

	b.setHooks(silent, nil)
	for i := range after {
		mustGet(t, a, key(20+i))
	}
	if len(net.node("a").cache.Suspects()) != 1 {
		t.Fatal("b not suspected again")
	}
	net.node("a").cache.RingChanged()
	if len(net.node("a").cache.Suspects()) != 0 {
		t.Fatal("a ring change kept the suspicion")
	}
}

// TestDegradedLoadsAreShared: callers waiting on a silent owner load the key
// once between them, and keep it as a hot copy for the next caller.
func TestDegradedLoadsAreShared(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), func(c *Config) { c.SuspectAfter = 100; shortTimeout(c) })
	net.node("b").setHooks(silent, nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	gt := newGate(src)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e, err := net.group("a").Get(context.Background(), key); err != nil || string(e.Value) != key+"@1" {
				t.Errorf("Get = %q, %v", e.Value, err)
			}
		}()
	}
	recv(t, "a load to start", gt.started)
	eventually(t, "five callers on one load", func() bool { return net.group("a").Stats().Misses == 5 })
	gt.open()
	wg.Wait()
	mustGet(t, net.group("a"), key)
	if n := src.count(key); n != 1 {
		t.Fatalf("%d loads for one key while its owner was silent", n)
	}
}

// TestOwnerSourceFailureIsReturned: an owner that answers "my load failed"
// has answered; the caller gets the error and neither loads the key itself
// nor suspects the owner.
func TestOwnerSourceFailureIsReturned(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), nil)
	errDown := errors.New("database down")
	src.set(func(context.Context, string, string, int) (Value, error) { return Value{}, errDown }, nil)
	key := keyOwnedBy(t, net.node("a").Ring(), "b")
	for range testConfig("a").SuspectAfter + 1 {
		if _, err := net.group("a").Get(context.Background(), key); !errors.Is(err, ErrSourceFailed) || !errors.Is(err, errDown) {
			t.Fatalf("Get = %v, want ErrSourceFailed wrapping the loader's error", err)
		}
	}
	if src.countOn("a") != 0 || len(net.node("a").cache.Suspects()) != 0 {
		t.Fatalf("loads on a: %d, suspects %v", src.countOn("a"), net.node("a").cache.Suspects())
	}
}

func TestConcurrentLoadsCapped(t *testing.T) {
	const limit, keys = 3, 20
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), func(c *Config) { c.MaxConcurrentLoads = limit })
	var inflight, peak atomic.Int64
	release := make(chan struct{})
	src.set(func(ctx context.Context, _, key string, _ int) (Value, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-release:
		case <-ctx.Done():
			return Value{}, ctx.Err()
		}
		return Value{Bytes: []byte(key)}, nil
	}, nil)
	g := net.group("a")
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.Get(context.Background(), fmt.Sprintf("k%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	eventually(t, "every caller waiting", func() bool { return g.Stats().Misses == keys && inflight.Load() >= limit })
	close(release)
	wg.Wait()
	if p := peak.Load(); p != limit {
		t.Fatalf("peak concurrent loads %d, want %d", p, limit)
	}
	if s := g.Stats(); s.Loads != keys {
		t.Fatalf("%d loads, want %d", s.Loads, keys)
	}
}

// TestPanickingLoaderDoesNotWedgeKey: every caller of a panicking load gets
// an error, and the next Get loads again.
func TestPanickingLoaderDoesNotWedgeKey(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	release := make(chan struct{})
	src.set(func(ctx context.Context, _, key string, n int) (Value, error) {
		if n == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return Value{}, ctx.Err()
			}
			panic("loader bug")
		}
		return Value{Bytes: []byte("ok")}, nil
	}, nil)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := g.Get(context.Background(), "k")
			errs <- err
		}()
	}
	eventually(t, "three callers waiting", func() bool { return g.Stats().Misses == 3 })
	close(release)
	for range 3 {
		if err := recv(t, "errs", errs); !errors.Is(err, ErrSourceFailed) {
			t.Fatalf("caller of a panicking load got %v", err)
		}
	}
	if got := mustGet(t, g, "k"); got != "ok" || g.Stats().LoaderPanics != 1 {
		t.Fatalf("after the panic: Get = %q, stats %+v", got, g.Stats())
	}
}

// TestCancelledFirstCallerDoesNotWedgeKey: the caller that started a load
// gives up; the load goes on, undisturbed, for the caller still waiting.
func TestCancelledFirstCallerDoesNotWedgeKey(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	release := make(chan struct{})
	loadErr := make(chan error, 1)
	src.set(func(ctx context.Context, _, key string, _ int) (Value, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		loadErr <- ctx.Err()
		return Value{Bytes: []byte("v")}, nil
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := g.Get(ctx, "k")
		first <- err
	}()
	eventually(t, "first caller loading", func() bool { return g.Stats().Loads == 1 })
	second := make(chan string, 1)
	go func() {
		e, err := g.Get(context.Background(), "k")
		if err != nil {
			t.Error(err)
		}
		second <- string(e.Value)
	}()
	eventually(t, "second caller waiting", func() bool { return g.Stats().Misses == 2 })
	cancel()
	if err := recv(t, "first", first); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v", err)
	}
	close(release)
	if got := recv(t, "second", second); got != "v" {
		t.Fatalf("second caller got %q", got)
	}
	if err := recv(t, "loadErr", loadErr); err != nil {
		t.Fatalf("the shared load saw its first caller's cancellation: %v", err)
	}
}

// TestCloseStopsLoads: Close cancels loads in flight and waits for them.
func TestCloseStopsLoads(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a"}, src, testGroupConfig(), nil)
	g := net.group("a")
	loadErr := make(chan error, 1)
	src.set(func(ctx context.Context, _, _ string, _ int) (Value, error) {
		<-ctx.Done()
		loadErr <- ctx.Err()
		return Value{}, ctx.Err()
	}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := g.Get(context.Background(), "k")
		done <- err
	}()
	eventually(t, "load started", func() bool { return g.Stats().Loads == 1 })
	net.node("a").cache.Close()
	if err := recv(t, "loadErr", loadErr); !errors.Is(err, context.Canceled) {
		t.Fatalf("the load ended with %v, want cancelled by Close", err)
	}
	if err := recv(t, "done", done); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("Get during Close = %v", err)
	}
	if _, err := g.Get(context.Background(), "other"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := net.node("a").cache.NewGroup("h", src.loaderFor("a"), testGroupConfig()); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewGroup after Close = %v", err)
	}
}
