package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/shard"
)

// sessionsRig is Sessions over a fake source, a loader-backed sessions
// cache and a logging invalidation that drops from it.
type sessionsRig struct {
	clk   *fakeClock
	src   *fakeSource
	cache *loaderCache
	inv   *fakeInvalidate
	s     *Sessions
}

func newSessionsRig() *sessionsRig {
	r := &sessionsRig{clk: newFakeClock(now)}
	r.src = newFakeSource(r.clk.Now)
	r.cache = newLoaderCache(SessionLoader(r.src, r.clk.Now), r.clk.Now, 1)
	r.inv = &fakeInvalidate{src: r.src, caches: map[string]*loaderCache{GroupSessions: r.cache}}
	r.s = NewSessions(r.cache, r.src, r.inv.invalidate, r.clk.Now)
	return r
}

// objectOfSize returns a JSON object exactly n bytes long.
func objectOfSize(n int) json.RawMessage {
	return json.RawMessage(`{"k":"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"}`)
}

// TestSessionPutRejects: invalid input is refused with ErrInvalidInput
// before the source or the cache is touched; the limits themselves are
// accepted.
func TestSessionPutRejects(t *testing.T) {
	t.Parallel()
	obj := json.RawMessage(`{"cart":[1,2]}`)
	later := now.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		user    string
		data    json.RawMessage
		expires time.Time
		ok      bool
	}{
		{"empty user id", "", obj, later, false},
		{"user id over the key limit", strings.Repeat("u", shard.MaxKeyLen+1), obj, later, false},
		{"an array", "alice", json.RawMessage(`[1,2]`), later, false},
		{"a string", "alice", json.RawMessage(`"x"`), later, false},
		{"a number", "alice", json.RawMessage(`42`), later, false},
		{"null", "alice", json.RawMessage(`null`), later, false},
		{"empty data", "alice", nil, later, false},
		{"not JSON", "alice", json.RawMessage(`{"a":`), later, false},
		{"trailing data", "alice", json.RawMessage(`{} {}`), later, false},
		{"one byte over the size limit", "alice", objectOfSize(MaxSessionBytes + 1), later, false},
		{"expires now", "alice", obj, now, false},
		{"expired", "alice", obj, now.Add(-time.Second), false},
		{"zero expiry", "alice", obj, time.Time{}, false},
		{"beyond the maximum TTL", "alice", obj, now.Add(MaxSessionTTL + time.Nanosecond), false},
		{"exactly the size limit", "alice", objectOfSize(MaxSessionBytes), later, true},
		{"exactly the maximum TTL", "alice", obj, now.Add(MaxSessionTTL), true},
		{"expires in 1 ns", "alice", obj, now.Add(time.Nanosecond), true},
		{"user id at the key limit", strings.Repeat("u", shard.MaxKeyLen), obj, later, true},
		{"empty object", "alice", json.RawMessage(`{}`), later, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newSessionsRig()
			err := r.s.Put(context.Background(), tc.user, tc.data, tc.expires)
			if tc.ok {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("Put = %v, want ErrInvalidInput", err)
			}
			if calls := r.src.calls(); len(calls) != 0 {
				t.Fatalf("invalid input reached the source or the cache: %v", calls)
			}
		})
	}
}

// TestSessionPutWritesThroughThenInvalidates: Put writes to the source, then
// drops the cached copy (sessions group, user id), so the next Get reads
// the new session even though an old one was cached.
func TestSessionPutWritesThroughThenInvalidates(t *testing.T) {
	t.Parallel()
	r := newSessionsRig()
	ctx := context.Background()
	if err := r.s.Put(ctx, "alice", json.RawMessage(`{"v":1}`), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := r.s.Get(ctx, "alice"); err != nil || string(got.Data) != `{"v":1}` {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := r.s.Put(ctx, "alice", json.RawMessage(`{"v":2}`), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PutSession alice", "invalidate sessions alice",
		"Session alice",
		"PutSession alice", "invalidate sessions alice",
	}
	if calls := r.src.calls(); !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	got, err := r.s.Get(ctx, "alice")
	if err != nil || !got.Found || got.UserID != "alice" || string(got.Data) != `{"v":2}` ||
		!got.ExpiresAt.Equal(now.Add(2*time.Hour)) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("Get after the second Put = %+v, %v", got, err)
	}
}

// TestSessionWriteFailures: a source failure is ErrUnavailable and skips the
// invalidation; an invalidation failure after a stored write is
// ErrUnavailable too (the caller must not assume every node sees it); a
// cancelled caller gets its own error.
func TestSessionWriteFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := map[string]func(s *Sessions) error{
		"Put":    func(s *Sessions) error { return s.Put(ctx, "alice", json.RawMessage(`{}`), now.Add(time.Hour)) },
		"Delete": func(s *Sessions) error { return s.Delete(ctx, "alice") },
	}
	for _, tc := range []struct {
		name       string
		srcErr     error
		invErr     error
		want       error
		wantCalls  int // source calls and invalidations
		unwantedIs error
	}{
		{"source down", errors.New("database down"), nil, ErrUnavailable, 1, nil},
		{"source cancelled", context.Canceled, nil, context.Canceled, 1, ErrUnavailable},
		{"invalidation not acknowledged", nil, errors.New("owner timeout"), ErrUnavailable, 2, nil},
	} {
		for op, do := range ops {
			t.Run(op+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := newSessionsRig()
				r.src.fail(tc.srcErr)
				r.inv.fail(tc.invErr)
				err := do(r.s)
				if !errors.Is(err, tc.want) || tc.unwantedIs != nil && errors.Is(err, tc.unwantedIs) || errors.Is(err, ErrInvalidInput) {
					t.Fatalf("%s = %v, want %v", op, err, tc.want)
				}
				if calls := r.src.calls(); len(calls) != tc.wantCalls {
					t.Fatalf("calls %v, want %d", calls, tc.wantCalls)
				}
			})
		}
	}
}

// TestSessionGet: what Get answers for missing, live and expired sessions,
// and for bad input and a failing cache.
func TestSessionGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		expires   time.Time     // zero: no session stored
		advance   time.Duration // clock moved after the session was cached
		wantFound bool
	}{
		{"no session", time.Time{}, 0, false},
		{"live", now.Add(time.Hour), 0, true},
		{"1 ns before expiry", now.Add(time.Hour), time.Hour - time.Nanosecond, true},
		{"cached, then expired", now.Add(time.Hour), time.Hour, false},
		{"cached, long expired", now.Add(time.Hour), 48 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newSessionsRig()
			if !tc.expires.IsZero() {
				if err := r.s.Put(ctx, "alice", json.RawMessage(`{"a":1}`), tc.expires); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.s.Get(ctx, "alice"); err != nil { // cached now
				t.Fatal(err)
			}
			r.clk.Add(tc.advance)
			got, err := r.s.Get(ctx, "alice")
			if err != nil || got.Found != tc.wantFound || got.UserID != "alice" {
				t.Fatalf("Get = %+v, %v; want found %v", got, err, tc.wantFound)
			}
			if !tc.wantFound && (got.Data != nil || !got.ExpiresAt.IsZero()) {
				t.Fatalf("a missing session carries data: %+v", got)
			}
			if tc.wantFound && (string(got.Data) != `{"a":1}` || !got.ExpiresAt.Equal(tc.expires)) {
				t.Fatalf("Get = %+v", got)
			}
		})
	}

	t.Run("bad user id", func(t *testing.T) {
		t.Parallel()
		r := newSessionsRig()
		for _, user := range []string{"", strings.Repeat("u", shard.MaxKeyLen+1)} {
			if _, err := r.s.Get(ctx, user); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("Get(%d bytes) = %v, want ErrInvalidInput", len(user), err)
			}
		}
		if len(r.cache.asked()) != 0 {
			t.Fatal("a bad user id reached the cache")
		}
	})

	t.Run("cache failing", func(t *testing.T) {
		t.Parallel()
		r := newSessionsRig()
		r.src.fail(errors.New("database down"))
		if _, err := r.s.Get(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get = %v, want ErrUnavailable", err)
		}
	})

	t.Run("cached value unreadable", func(t *testing.T) {
		t.Parallel()
		r := newSessionsRig()
		r.cache.mu.Lock()
		r.cache.entries["alice"] = shard.Entry{Value: []byte("not json"), Gen: 1}
		r.cache.mu.Unlock()
		if _, err := r.s.Get(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get = %v, want ErrUnavailable", err)
		}
	})
}

// TestSessionLoaderTTL: a loaded session is cached no longer than it
// lives; a missing one gets the group TTL.
func TestSessionLoaderTTL(t *testing.T) {
	t.Parallel()
	r := newSessionsRig()
	ctx := context.Background()
	load := SessionLoader(r.src, r.clk.Now)
	if v, err := load.Load(ctx, "alice"); err != nil || v.TTL != 0 {
		t.Fatalf("no session: TTL %v, %v", v.TTL, err)
	}
	if err := r.s.Put(ctx, "alice", json.RawMessage(`{}`), now.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if v, err := load.Load(ctx, "alice"); err != nil || v.TTL != 90*time.Second {
		t.Fatalf("live session: TTL %v, %v", v.TTL, err)
	}
}

// TestSessionDelete: Delete removes at the source, then drops the cached
// copy; deleting nothing is no error.
func TestSessionDelete(t *testing.T) {
	t.Parallel()
	r := newSessionsRig()
	ctx := context.Background()
	if err := r.s.Put(ctx, "alice", json.RawMessage(`{"a":1}`), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.s.Get(ctx, "alice"); !got.Found {
		t.Fatal("the session was not stored")
	}
	if err := r.s.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.s.Get(ctx, "alice"); err != nil || got.Found {
		t.Fatalf("Get after Delete = %+v, %v", got, err)
	}
	if err := r.s.Delete(ctx, "nobody"); err != nil {
		t.Fatalf("deleting no session: %v", err)
	}
	calls := r.src.calls()
	if i := slices.Index(calls, "DeleteSession alice"); i < 0 || i+1 >= len(calls) || calls[i+1] != "invalidate sessions alice" {
		t.Fatalf("calls %v: want DeleteSession then its invalidation", calls)
	}
	before := len(r.src.calls())
	if err := r.s.Delete(ctx, ""); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Delete of an empty id = %v", err)
	}
	if len(r.src.calls()) != before {
		t.Fatal("a bad user id reached the source")
	}
}
