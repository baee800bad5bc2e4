package redisfallback

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
)

// miniNode is a running Fallback against miniredis, with an adjustable
// wall clock.
func miniNode(t *testing.T) (*node, *miniredis.Miniredis, *atomic.Int64) {
	t.Helper()
	m := miniredis.RunT(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	cfg := testConfig("redis://" + m.Addr())
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	return newNode(t, cfg, true), m, &now
}

func TestLayout(t *testing.T) {
	n, m, _ := miniNode(t)
	src := newSource()
	perms := n.f.Wrap(groupPerms, true, time.Minute, src)
	n.f.Wrap(groupSessions, true, time.Hour, src)
	apiKeys := n.f.Wrap(groupAPIKeys, false, time.Minute, loaderFunc(func(string) ([]byte, error) { return []byte("k"), nil }))
	short := n.f.Wrap("short", false, time.Minute, shard.LoaderFunc(func(context.Context, string) (shard.Value, error) {
		return shard.Value{Bytes: []byte("s"), TTL: 10 * time.Second}, nil
	}))
	load(t, perms, "u1")
	load(t, apiKeys, "k1")
	load(t, short, "x:y") // keys may contain the separator
	eventually(t, 5*time.Second, "3 copies written", func() bool { return n.f.Stats().Writes == 3 })

	if got := strings.Join(sortStrings(m.Keys()), " "); got != "t:g:apikeys:k1 t:g:short:x:y t:u:u1" {
		t.Fatalf("keys = %s", got)
	}
	for _, tc := range []struct {
		key, field, value string
		ttl               time.Duration
	}{
		// A user's hash lives as long as the longest user-keyed group.
		{"t:u:u1", groupPerms, "value of u1", time.Hour},
		{"t:g:apikeys:k1", valueField, "k", time.Minute},
		{"t:g:short:x:y", valueField, "s", 10 * time.Second},
	} {
		c, err := decode([]byte(m.HGet(tc.key, tc.field)))
		if err != nil {
			t.Errorf("%s %s: %v", tc.key, tc.field, err)
			continue
		}
		if string(c.value) != tc.value {
			t.Errorf("%s %s = %q, want %q", tc.key, tc.field, c.value, tc.value)
		}
		if ttl := m.TTL(tc.key); ttl > tc.ttl || ttl < tc.ttl-time.Second {
			t.Errorf("TTL of %s = %v, want about %v", tc.key, ttl, tc.ttl)
		}
	}
	v := load(t, n.f.Wrap("short", false, time.Minute, mustNotLoad(t)), "x:y")
	if v.TTL > 10*time.Second {
		t.Errorf("served TTL %v exceeds the value's own 10s", v.TTL)
	}
}

func TestUnusableCopiesAreMisses(t *testing.T) {
	n, m, now := miniNode(t)
	wall := time.Unix(0, now.Load())
	for _, tc := range []struct {
		name  string
		value string
	}{
		{"garbage", "garbage"},
		{"empty", ""},
		{"truncated", string(encode(copyVal{gen: 1, expires: wall.Add(time.Minute), value: []byte("abc")})[:copyHead+1])},
		{"expired", string(encode(copyVal{gen: 1, expires: wall.Add(-time.Second), value: []byte("old")}))},
		{"from the far future", string(encode(copyVal{
			gen: hlc.Gen(wall.Add(2 * hlc.MaxAhead).UnixNano()), expires: wall.Add(time.Minute), value: []byte("future"),
		}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "u-" + tc.name // each case its own key: a miss rewrites the copy
			m.HSet("t:u:"+user, groupPerms, tc.value)
			src := newSource()
			src.put(user, "source")
			misses := n.f.Stats().Misses
			if v := load(t, n.f.Wrap(groupPerms, true, time.Minute, src), user); string(v.Bytes) != "source" {
				t.Errorf("served %q, want the source's value", v.Bytes)
			}
			if n.f.Stats().Misses != misses+1 {
				t.Error("not counted as a miss")
			}
		})
	}
}

func TestWrapRefusesBadGroups(t *testing.T) {
	n, _, _ := miniNode(t)
	src := newSource()
	for _, tc := range []struct {
		group string
		ttl   time.Duration
	}{{"Bad:Name", time.Minute}, {"", time.Minute}, {"perms", 0}} {
		if ld := n.f.Wrap(tc.group, true, tc.ttl, src); ld != shard.Loader(src) {
			t.Errorf("Wrap(%q, %v) wrapped the loader", tc.group, tc.ttl)
		}
	}
}

func TestDeleteOfUnwrappedGroupCoversBothLayouts(t *testing.T) {
	n, m, _ := miniNode(t)
	m.HSet("t:u:u1", "other", "x", "perms", "y")
	m.HSet("t:g:other:u1", valueField, "z")
	n.f.Delete("other", "u1")
	eventually(t, 5*time.Second, "deletes landed", func() bool { return n.f.Stats().Deletes == 2 })
	if got := strings.Join(sortStrings(m.Keys()), " "); got != "t:u:u1" {
		t.Errorf("keys = %s, want t:u:u1", got)
	}
	if m.HGet("t:u:u1", "other") != "" || m.HGet("t:u:u1", "perms") != "y" {
		t.Error("the wrong fields were deleted")
	}
}

func TestConfigErrorShowsHostNotSecret(t *testing.T) {
	_, err := New(DefaultConfig("http://cache.internal:6379"), hlc.New(nil), func(string, string) hlc.Gen { return 0 })
	if err == nil || !strings.Contains(err.Error(), "http://cache.internal:6379") {
		t.Errorf("error %v does not name the URL it rejected", err)
	}
}

func TestDeleteOfUserGroupNamedLikeTheValueField(t *testing.T) {
	n, m, _ := miniNode(t)
	n.f.Wrap(valueField, true, time.Minute, newSource())
	m.HSet("t:u:u1", valueField, "x", groupPerms, "y")
	n.f.Delete(valueField, "u1")
	eventually(t, 5*time.Second, "delete landed", func() bool { return n.f.Stats().Deletes == 1 })
	if m.HGet("t:u:u1", valueField) != "" || m.HGet("t:u:u1", groupPerms) != "y" {
		t.Error("deleting group v's field removed more than that field")
	}
}
