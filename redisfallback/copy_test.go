package redisfallback

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/redisfallback/redistest"
)

const (
	groupPerms    = "perms"    // user-keyed
	groupSessions = "sessions" // user-keyed
	groupAPIKeys  = "apikeys"  // keyed by something else
)

func TestCopyRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, testConfig(srv.URL()), true)
	b := newNode(t, testConfig(srv.URL()), true)
	src := newSource()
	src.put("u1", "alice's permissions")
	src.put("k1", "key owner")

	aPerms := a.f.Wrap(groupPerms, true, time.Minute, src)
	aKeys := a.f.Wrap(groupAPIKeys, false, time.Minute, src)
	load(t, aPerms, "u1")
	load(t, aKeys, "k1")
	eventually(t, 5*time.Second, "node A wrote both copies", func() bool { return a.f.Stats().Writes == 2 })

	for _, tc := range []struct{ group, key, want string }{
		{groupPerms, "u1", "alice's permissions"},
		{groupAPIKeys, "k1", "key owner"},
	} {
		v := load(t, b.f.Wrap(tc.group, tc.group == groupPerms, time.Minute, mustNotLoad(t)), tc.key)
		if string(v.Bytes) != tc.want {
			t.Errorf("%s/%s = %q, want %q", tc.group, tc.key, v.Bytes, tc.want)
		}
		if v.TTL <= 0 || v.TTL > time.Minute {
			t.Errorf("%s/%s TTL = %v, want in (0, 1m]", tc.group, tc.key, v.TTL)
		}
	}
	if got := b.f.Stats(); got.Hits != 2 || got.Misses != 0 {
		t.Errorf("node B stats = %+v, want 2 hits, no misses", got)
	}
	if n := src.loads.Load(); n != 2 {
		t.Errorf("source loads = %d, want 2 (node A only)", n)
	}
}

// copyGen reads the generation of a stored copy.
func copyGen(t *testing.T, srv *redistest.Server, key, field string) hlc.Gen {
	t.Helper()
	raw, err := srv.Client().HGet(context.Background(), key, field).Bytes()
	if err != nil {
		t.Fatalf("HGET %s %s: %v", key, field, err)
	}
	c, err := decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c.gen
}

func TestCopyAtOrBelowKnownIsNotServed(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, testConfig(srv.URL()), true)
	b := newNode(t, testConfig(srv.URL()), false) // reads only: its own copies would replace A's
	load(t, a.f.Wrap(groupPerms, true, time.Minute, newSource()), "u1")
	eventually(t, 5*time.Second, "copy written", func() bool { return a.f.Stats().Writes == 1 })
	gen := copyGen(t, srv, "t:u:u1", groupPerms)

	src := newSource()
	src.put("u1", "fresh")
	bPerms := b.f.Wrap(groupPerms, true, time.Minute, src)
	for i, known := range []hlc.Gen{gen, gen + 1} {
		b.known.set(groupPerms, "u1", known)
		if v := load(t, bPerms, "u1"); string(v.Bytes) != "fresh" {
			t.Errorf("known = copy gen %+d: served %q from Redis", i, v.Bytes)
		}
	}
	if got := b.f.Stats().StaleSkipped; got != 2 {
		t.Errorf("StaleSkipped = %d, want 2", got)
	}

	// Just below the copy's generation the copy is current.
	b.known.set(groupPerms, "u1", gen-1)
	before := src.loads.Load()
	load(t, bPerms, "u1")
	if src.loads.Load() != before {
		t.Error("a copy newer than every known invalidation was not served")
	}
}

// TestWriteSkippedWhenInvalidatedDuringLoad: an invalidation that arrives
// while the source is being read makes the copy stale before it is written;
// it must never reach Redis. Its generation may be older than the load's
// own (the sender's clock is behind, or the message was in transit while
// the load began), which must not matter.
func TestWriteSkippedWhenInvalidatedDuringLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		gen  func(n *node, before hlc.Gen) hlc.Gen
	}{
		{"newer generation", func(n *node, _ hlc.Gen) hlc.Gen { return n.clock.Now() }},
		{"older generation", func(_ *node, before hlc.Gen) hlc.Gen { return before }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			a := newNode(t, testConfig(srv.URL()), true)
			src := newSource()
			perms := a.f.Wrap(groupPerms, true, time.Minute, src)
			const users = 50
			for i := range users {
				before := a.clock.Now()
				src.during = func(key string) { a.known.set(groupPerms, key, tc.gen(a, before)) }
				load(t, perms, fmt.Sprintf("u%d", i))
			}
			eventually(t, 5*time.Second, "every write skipped", func() bool { return a.f.Stats().WriteSkips == users })
			if got := keys(t, srv.Client(), "t:*"); len(got) != 0 {
				t.Errorf("keys after invalidated loads = %v, want none", got)
			}
			if w := a.f.Stats().Writes; w != 0 {
				t.Errorf("Writes = %d, want 0", w)
			}
		})
	}
}

func TestDeleteUserIsOneCommand(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	a := newNode(t, testConfig(srv.URL()), true)
	src := newSource()
	perms := a.f.Wrap(groupPerms, true, time.Minute, src)
	sessions := a.f.Wrap(groupSessions, true, 30*time.Minute, src)
	apiKeys := a.f.Wrap(groupAPIKeys, false, time.Minute, src)
	load(t, perms, "u1")
	load(t, sessions, "u1")
	load(t, perms, "u2")
	load(t, apiKeys, "k1")
	eventually(t, 5*time.Second, "4 copies written", func() bool { return a.f.Stats().Writes == 4 })
	if fields := rc.HGetAll(ctx, "t:u:u1").Val(); len(fields) != 2 || fields[groupPerms] == "" || fields[groupSessions] == "" {
		t.Fatalf("HGETALL t:u:u1 has fields %v, want perms and sessions", mapKeys(fields))
	}

	if err := rc.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	a.f.DeleteUser("u1")
	eventually(t, 5*time.Second, "delete landed", func() bool { return a.f.Stats().Deletes == 1 })

	if got, want := keys(t, rc, "t:*"), []string{"t:g:apikeys:k1", "t:u:u2"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("keys = %v, want %v", got, want)
	}
	stats := rc.Info(ctx, "commandstats").Val()
	if !strings.Contains(stats, "cmdstat_del:calls=1,") {
		t.Errorf("want exactly one DEL; commandstats:\n%s", stats)
	}
	for _, cmd := range []string{"cmdstat_hdel", "cmdstat_unlink", "cmdstat_scan"} {
		if strings.Contains(stats, cmd) {
			t.Errorf("DeleteUser used %s; commandstats:\n%s", cmd, stats)
		}
	}
}

func mapKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return sortStrings(ks)
}

func TestDeleteOneCopy(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	a := newNode(t, testConfig(srv.URL()), true)
	src := newSource()
	perms := a.f.Wrap(groupPerms, true, time.Minute, src)
	sessions := a.f.Wrap(groupSessions, true, time.Minute, src)
	apiKeys := a.f.Wrap(groupAPIKeys, false, time.Minute, src)
	load(t, perms, "u1")
	load(t, sessions, "u1")
	load(t, apiKeys, "k1")
	eventually(t, 5*time.Second, "3 copies written", func() bool { return a.f.Stats().Writes == 3 })

	a.f.Delete(groupPerms, "u1")
	a.f.Delete(groupAPIKeys, "k1")
	eventually(t, 5*time.Second, "deletes landed", func() bool { return a.f.Stats().Deletes == 2 })
	if got := keys(t, rc, "t:*"); strings.Join(got, " ") != "t:u:u1" {
		t.Errorf("keys = %v, want only t:u:u1", got)
	}
	if got := mapKeys(rc.HGetAll(context.Background(), "t:u:u1").Val()); strings.Join(got, " ") != groupSessions {
		t.Errorf("fields of t:u:u1 = %v, want only sessions", got)
	}
}

func TestDeleteAllStaysUnderPrefix(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	cfg := testConfig(srv.URL())
	cfg.Prefix = "t[1]*:" // glob characters must match literally
	a := newNode(t, cfg, true)
	src := newSource()
	perms := a.f.Wrap(groupPerms, true, time.Minute, src)
	for _, u := range []string{"u1", "u2", "u3"} {
		load(t, perms, u)
	}
	eventually(t, 5*time.Second, "3 copies written", func() bool { return a.f.Stats().Writes == 3 })
	for _, k := range []string{"other", "t1:x", "t[1]x"} {
		rc.Set(ctx, k, "keep", 0)
	}
	a.f.DeleteAll()
	eventually(t, 5*time.Second, "DeleteAll landed", func() bool { return a.f.Stats().Deletes == 1 })
	if got := keys(t, rc, "*"); strings.Join(got, " ") != "other t1:x t[1]x" {
		t.Errorf("keys after DeleteAll = %v, want only the foreign ones", got)
	}
}

func TestFlushAllBringsNothingBack(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	a := newNode(t, testConfig(srv.URL()), true)
	b := newNode(t, testConfig(srv.URL()), true)
	src := newSource()
	src.put("u1", "v1")
	perms := a.f.Wrap(groupPerms, true, time.Minute, src)
	load(t, perms, "u1")
	eventually(t, 5*time.Second, "copy written", func() bool { return a.f.Stats().Writes == 1 })

	src.put("u1", "v2")
	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if v := load(t, perms, "u1"); string(v.Bytes) != "v2" {
		t.Fatalf("after FLUSHALL A loaded %q, want v2 from the source", v.Bytes)
	}
	eventually(t, 5*time.Second, "copy rewritten", func() bool { return a.f.Stats().Writes == 2 })
	if v := load(t, b.f.Wrap(groupPerms, true, time.Minute, mustNotLoad(t)), "u1"); string(v.Bytes) != "v2" {
		t.Errorf("node B served %q, want the rewritten v2", v.Bytes)
	}
	if got := src.loads.Load(); got != 2 {
		t.Errorf("source loads = %d, want 2", got)
	}
}
