package shard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/avion/authnode/hlc"
)

func TestRecentIsSharedAndApplied(t *testing.T) {
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), nil)
	a, b := net.node("a").cache, net.node("b").cache
	k1 := keyOwnedBy(t, net.node("b").Ring(), "b")
	mustGet(t, net.group("b"), k1)
	gen := a.cfg.Clock.Now()
	a.Group("g").Invalidate(k1, gen)
	a.Group("g").InvalidateAll(gen + 1)
	a.Flush("test: a local flush is not shared")
	got := a.Recent()
	if len(got) != 2 || !got[0].All || got[1].Key != k1 || got[1].Gen != gen {
		t.Fatalf("Recent = %+v", got)
	}
	bad := []Invalidation{
		{Group: "nope", Key: k1, Gen: gen + 5},
		{Group: "g", Key: "", Gen: gen + 5},
		{Group: "g", Key: "x", All: true, Gen: gen + 5},
	}
	if n := b.Apply(append(bad, got...)); n != 2 {
		t.Fatalf("Apply applied %d, want 2", n)
	}
	if n := b.Apply(got); n != 0 {
		t.Fatalf("applying the same invalidations again applied %d", n)
	}
	if v := mustGet(t, net.group("b"), k1); v != k1+"@2" {
		t.Fatalf("after Apply: %q", v)
	}
}

func TestRecentIsBounded(t *testing.T) {
	var r recent
	now := hlc.Gen(time.Now().UnixNano())
	for i := range recentMax + 100 {
		r.note(recentKey{"g", fmt.Sprint(i), false}, now+hlc.Gen(i))
	}
	if n := len(r.list(0)); n > recentMax || n < recentMax*3/4 {
		t.Fatalf("%d entries kept, bound %d", n, recentMax)
	}
	if n := len(r.list(now + recentMax + 50)); n != 49 {
		t.Fatalf("entries newer than a cutoff: %d, want 49", n)
	}
}

func TestOldRecentEntriesAreForgotten(t *testing.T) {
	src := newSource()
	clock := &fakeTime{t: time.Now()}
	net := newNet(t, []string{"a"}, src, testGroupConfig(), func(c *Config) { c.Now = clock.now })
	c := net.node("a").cache
	net.group("a").Invalidate("k", c.cfg.Clock.Now())
	if len(c.Recent()) != 1 {
		t.Fatal("a fresh invalidation is not shared")
	}
	clock.advance(recentAge + time.Minute)
	if len(c.Recent()) != 0 {
		t.Fatal("an invalidation older than the limit is still shared")
	}
	_, _ = net.group("a").Get(context.Background(), "k")
}

func TestKnownCoversKeysGroupsFlushesAndForgotten(t *testing.T) {
	var r recent
	r.note(recentKey{"g", "a", false}, 10)
	r.note(recentKey{"h", "", true}, 20)
	if got := r.latest("g", "a"); got != 10 {
		t.Fatalf("a key's own invalidation: %d", got)
	}
	if got := r.latest("h", "anything"); got != 20 {
		t.Fatalf("its group's invalidation: %d", got)
	}
	if got := r.latest("g", "b"); got != 0 {
		t.Fatalf("nothing known: %d", got)
	}
	r.raiseFloor(15)
	if r.latest("g", "b") != 15 || r.latest("g", "a") != 15 || r.latest("h", "x") != 20 {
		t.Fatal("a flush must cover every key")
	}
	for i := range recentMax + 1 {
		r.note(recentKey{"g", fmt.Sprint("k", i), false}, hlc.Gen(100+i))
	}
	if got := r.latest("g", "never-noted"); got < 100 {
		t.Fatalf("forgotten invalidations must raise the floor: %d", got)
	}
}
