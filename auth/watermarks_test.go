package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestWatermarkRaiseOnlyForward: Raise moves a watermark forward only and
// reports whether it moved; zero and pre-1970 times are ignored.
func TestWatermarkRaiseOnlyForward(t *testing.T) {
	t.Parallel()
	type step struct {
		at        time.Time
		wantMoved bool
		wantMark  time.Time
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first raise", []step{{now, true, now}}},
		{"the same time again", []step{{now, true, now}, {now, false, now}}},
		{"backwards is ignored", []step{{now, true, now}, {now.Add(-time.Nanosecond), false, now}, {now.Add(-time.Hour), false, now}}},
		{"forward by 1 ns", []step{{now, true, now}, {now.Add(time.Nanosecond), true, now.Add(time.Nanosecond)}}},
		{"sub-second precision kept", []step{{now.Add(123456789), true, now.Add(123456789)}}},
		{"zero time", []step{{time.Time{}, false, time.Time{}}}},
		{"the Unix epoch", []step{{time.Unix(0, 0), false, time.Time{}}}},
		{"before 1970", []step{{time.Unix(-10, 0), false, time.Time{}}}},
		{"zero after a real one", []step{{now, true, now}, {time.Time{}, false, now}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := NewWatermarks()
			for i, s := range tc.steps {
				if moved := w.Raise("alice", s.at); moved != s.wantMoved {
					t.Fatalf("step %d: Raise(%v) = %v, want %v", i, s.at, moved, s.wantMoved)
				}
				if got := w.Get("alice"); !got.Equal(s.wantMark) {
					t.Fatalf("step %d: watermark %v, want %v", i, got, s.wantMark)
				}
			}
			if !w.Get("bob").IsZero() {
				t.Fatal("another user got a watermark")
			}
		})
	}
}

// TestWatermarkRevokedBoundary: a token is revoked when iat < watermark,
// to the nanosecond; iat == watermark is not revoked.
func TestWatermarkRevokedBoundary(t *testing.T) {
	t.Parallel()
	mark := now.Add(500 * time.Millisecond)
	w := NewWatermarks()
	w.Raise("alice", mark)
	for _, tc := range []struct {
		name string
		user string
		iat  time.Time
		want bool
	}{
		{"one ns before", "alice", mark.Add(-time.Nanosecond), true},
		{"at the watermark", "alice", mark, false},
		{"one ns after", "alice", mark.Add(time.Nanosecond), false},
		{"same second, whole-second iat", "alice", now, true},
		{"next second", "alice", now.Add(time.Second), false},
		{"long before", "alice", now.Add(-24 * time.Hour), true},
		{"user without a watermark", "bob", now.Add(-24 * time.Hour), false},
		{"empty user", "", now, false},
	} {
		if got := w.Revoked(tc.user, tc.iat); got != tc.want {
			t.Errorf("%s: Revoked(%q, %v) = %v, want %v", tc.name, tc.user, tc.iat, got, tc.want)
		}
	}
}

// TestWatermarkMerge: Merge raises each watermark and counts only the ones
// that moved.
func TestWatermarkMerge(t *testing.T) {
	t.Parallel()
	w := NewWatermarks()
	w.Raise("a", now)
	w.Raise("b", now)
	moved := w.Merge(map[string]time.Time{
		"a": now.Add(time.Second),  // forward: moves
		"b": now.Add(-time.Second), // backward: stays
		"c": now,                   // new: moves
		"d": {},                    // zero: ignored
	})
	if moved != 2 {
		t.Fatalf("Merge moved %d, want 2", moved)
	}
	for user, want := range map[string]time.Time{"a": now.Add(time.Second), "b": now, "c": now, "d": {}} {
		if got := w.Get(user); !got.Equal(want) {
			t.Errorf("%s: %v, want %v", user, got, want)
		}
	}
	if w.Len() != 3 {
		t.Fatalf("Len %d, want 3", w.Len())
	}
	if moved := w.Merge(map[string]time.Time{"a": now.Add(time.Second), "c": now}); moved != 0 {
		t.Fatalf("a duplicate merge moved %d", moved)
	}
	if moved := w.Merge(nil); moved != 0 {
		t.Fatalf("an empty merge moved %d", moved)
	}
}

// TestWatermarkPrune: Prune forgets exactly the watermarks before the
// cutoff, across shards.
func TestWatermarkPrune(t *testing.T) {
	t.Parallel()
	w := NewWatermarks()
	cutoff := now
	for i := range 200 { // enough users to land in every shard
		w.Raise(fmt.Sprintf("old-%d", i), cutoff.Add(-time.Duration(i+1)*time.Nanosecond))
		w.Raise(fmt.Sprintf("new-%d", i), cutoff.Add(time.Duration(i)*time.Nanosecond))
	}
	w.Prune(cutoff)
	if w.Len() != 200 {
		t.Fatalf("Len %d after Prune, want 200", w.Len())
	}
	if !w.Get("new-0").Equal(cutoff) {
		t.Fatal("a watermark at the cutoff was pruned")
	}
	if !w.Get("old-0").IsZero() || w.Revoked("old-0", cutoff.Add(-time.Hour)) {
		t.Fatal("a watermark before the cutoff survived")
	}
	if !w.Raise("old-0", cutoff.Add(-time.Hour)) {
		t.Fatal("a pruned user could not be raised again")
	}
	w.Prune(cutoff.Add(time.Hour))
	if w.Len() != 0 {
		t.Fatalf("Len %d after pruning everything", w.Len())
	}
}

func TestWatermarkLoaded(t *testing.T) {
	t.Parallel()
	w := NewWatermarks()
	if w.Loaded() {
		t.Fatal("a new map reports loaded")
	}
	w.SetLoaded()
	if !w.Loaded() {
		t.Fatal("SetLoaded did not stick")
	}
}

// TestWatermarkConcurrent: raises, merges, lookups and prunes race (run with
// -race); every reader sees each user's watermark only move forward, and
// the end state is the maximum raised.
func TestWatermarkConcurrent(t *testing.T) {
	t.Parallel()
	w := NewWatermarks()
	users := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	const writers, rounds = 4, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range rounds {
				at := now.Add(time.Duration(i*writers+g) * time.Millisecond)
				u := users[(i+g)%len(users)]
				if i%2 == 0 {
					w.Raise(u, at)
				} else {
					w.Merge(map[string]time.Time{u: at})
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			last := map[string]time.Time{}
			for i := range rounds {
				u := users[i%len(users)]
				got := w.Get(u)
				if got.Before(last[u]) {
					t.Errorf("%s went back from %v to %v", u, last[u], got)
					return
				}
				last[u] = got
				if !got.IsZero() && !w.Revoked(u, got.Add(-time.Nanosecond)) {
					t.Errorf("%s: a token before the watermark it just read is not revoked", u)
					return
				}
				_ = w.Len()
				w.Prune(now.Add(-time.Hour)) // before every watermark: removes nothing
			}
		})
	}
	wg.Wait()
	for i, u := range users {
		var want time.Time
		for g := range writers {
			for r := range rounds {
				if users[(r+g)%len(users)] == u {
					if at := now.Add(time.Duration(r*writers+g) * time.Millisecond); at.After(want) {
						want = at
					}
				}
			}
		}
		if got := w.Get(u); !got.Equal(want) {
			t.Errorf("user %d: final watermark %v, want %v", i, got, want)
		}
	}
}
