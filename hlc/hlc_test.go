package hlc

import (
	"sync"
	"testing"
	"time"
)

func TestNowIncreasesWhenWallStandsStillOrGoesBack(t *testing.T) {
	wall := time.Unix(100, 0)
	c := New(func() time.Time { return wall })
	a := c.Now()
	b := c.Now()
	if b <= a {
		t.Fatalf("second reading %d not after first %d", b, a)
	}
	wall = wall.Add(-time.Hour)
	if d := c.Now(); d <= b {
		t.Fatalf("reading %d after the wall went back is not after %d", d, b)
	}
}

func TestObserveMergesRemoteGenerations(t *testing.T) {
	c := New(func() time.Time { return time.Unix(1, 0) })
	remote := Gen(time.Unix(50, 0).UnixNano())
	got := c.Observe(remote)
	if got <= remote {
		t.Fatalf("Observe(%d) = %d, want larger", remote, got)
	}
	if n := c.Now(); n <= got {
		t.Fatalf("Now %d not after observed %d", n, got)
	}
	if c.Last() < got {
		t.Fatalf("Last %d behind %d", c.Last(), got)
	}
}

func TestConcurrentReadingsAreUnique(t *testing.T) {
	c := New(nil)
	const workers, each = 8, 2000
	var mu sync.Mutex
	seen := make(map[Gen]bool, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]Gen, 0, each)
			for range each {
				local = append(local, c.Now())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, g := range local {
				if seen[g] {
					t.Errorf("generation %d issued twice", g)
				}
				seen[g] = true
			}
		}()
	}
	wg.Wait()
}

func TestObserveIgnoresGenerationsFarAhead(t *testing.T) {
	wall := time.Unix(1000, 0)
	c := New(func() time.Time { return wall })
	far := Gen(wall.Add(2 * MaxAhead).UnixNano())
	got := c.Observe(far)
	if got >= far || got < Gen(wall.UnixNano()) {
		t.Fatalf("Observe(far future) = %d, want a local reading below %d", got, far)
	}
	near := Gen(wall.Add(MaxAhead / 2).UnixNano())
	if got := c.Observe(near); got <= near {
		t.Fatalf("Observe(near future) = %d, want above %d", got, near)
	}
}
