package transport

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/avion/authnode/shard"
)

// observedCall is one report to a CallObserver.
type observedCall struct {
	member, method string
	d              time.Duration
	err            error
}

// callLog is a CallObserver that keeps what it is told.
type callLog struct {
	mu    sync.Mutex
	calls []observedCall
}

func (l *callLog) observe(member, method string, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, observedCall{member, method, d, err})
}

// take returns the calls reported since the last take.
func (l *callLog) take() []observedCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

// cutAddr is a Faults that blocks one address.
type cutAddr string

func (c cutAddr) Blocked(addr string) bool { return addr == string(c) }

// poolCall is one call through a pool, by the method name it reports.
type poolCall struct {
	method string
	call   func(ctx context.Context) error
}

// poolCalls are a Get, an Invalidate and a Revoke of key on member, with
// well-formed requests.
func poolCalls(p *Pool, rs staticRing, member, key string) []poolCall {
	return []poolCall{
		{"get", func(ctx context.Context) error {
			_, err := p.Get(ctx, member, shard.ForwardRequest{Group: "g", Key: key, Fingerprint: rs.s.Fingerprint(), Hops: 1})
			return err
		}},
		{"invalidate", func(ctx context.Context) error { return p.Invalidate(ctx, member, "g", key, false, 0) }},
		{"revoke", func(ctx context.Context) error { return p.Revoke(ctx, member, "alice", time.Now()) }},
	}
}

// observeOne runs call and returns the one report it caused, checking its
// member, method and that its duration is no longer than the call took.
func observeOne(t *testing.T, log *callLog, member, method string, call func(context.Context) error) (observedCall, error) {
	t.Helper()
	start := time.Now()
	err := call(context.Background())
	elapsed := time.Since(start)
	calls := log.take()
	if len(calls) != 1 {
		t.Fatalf("%s: %d reports (%+v), want 1", method, len(calls), calls)
	}
	c := calls[0]
	if c.member != member || c.method != method {
		t.Fatalf("reported (%q, %q), want (%q, %q)", c.member, c.method, member, method)
	}
	if c.d < 0 || c.d > elapsed {
		t.Fatalf("%s: duration %v, want in [0, %v]", method, c.d, elapsed)
	}
	return c, err
}

// TestPoolObserveLiveCalls: a get, an invalidate and a revoke that a live
// peer answers are each reported once, with their duration and no error.
func TestPoolObserveLiveCalls(t *testing.T) {
	rs, a, b, log := observedPair(t)
	key := keyOwnedBy(t, rs.s, "b")
	for _, pc := range poolCalls(a.pool, rs, "b", key) {
		c, err := observeOne(t, log, "b", pc.method, pc.call)
		if err != nil || c.err != nil {
			t.Fatalf("%s: returned %v, reported %v", pc.method, err, c.err)
		}
		if c.d <= 0 {
			t.Fatalf("%s: duration %v, want > 0", pc.method, c.d)
		}
	}
	if n := b.src.count(key); n != 1 {
		t.Fatalf("the get reached the owner's source %d times, want 1", n)
	}
	c, err := observeOne(t, log, "b", "invalidate", func(ctx context.Context) error {
		return a.pool.InvalidateRelayed(ctx, "b", "g", key, "a", 0)
	})
	if err != nil || c.err != nil || c.d <= 0 {
		t.Fatalf("relayed invalidate: returned %v, reported %v after %v", err, c.err, c.d)
	}

	// A new observer replaces the old one.
	var next callLog
	a.pool.Observe(next.observe)
	if _, err := observeOne(t, &next, "b", "revoke", func(ctx context.Context) error { return a.pool.Revoke(ctx, "b", "bob", time.Now()) }); err != nil {
		t.Fatal(err)
	}
	if calls := log.take(); len(calls) != 0 {
		t.Fatalf("the replaced observer was told of %+v", calls)
	}
}

// TestPoolObserveUnreachable: a call to a member the pool has no
// connection to reports ErrNoPeer, one the fault hook blocks ErrCut; the
// error reported is the one returned, and nothing reaches the peer.
func TestPoolObserveUnreachable(t *testing.T) {
	rs, a, b, log := observedPair(t)
	key := keyOwnedBy(t, rs.s, "b")
	for _, pc := range poolCalls(a.pool, rs, "nobody", key) {
		c, err := observeOne(t, log, "nobody", pc.method, pc.call)
		if !errors.Is(c.err, ErrNoPeer) || !errors.Is(err, ErrNoPeer) {
			t.Fatalf("%s to an unknown member: returned %v, reported %v; want ErrNoPeer", pc.method, err, c.err)
		}
	}
	a.pool.SetFaults(cutAddr(b.addr))
	for _, pc := range poolCalls(a.pool, rs, "b", key) {
		c, err := observeOne(t, log, "b", pc.method, pc.call)
		if !errors.Is(c.err, ErrCut) || !errors.Is(err, ErrCut) {
			t.Fatalf("%s to a cut member: returned %v, reported %v; want ErrCut", pc.method, err, c.err)
		}
	}
	if n := b.src.count(key); n != 0 {
		t.Fatalf("a blocked get reached the owner's source %d times", n)
	}
}

// TestPoolObserveServerErrors: a call the peer answers with an error is
// reported with that error's gRPC status code.
func TestPoolObserveServerErrors(t *testing.T) {
	rs, a, b, log := observedPair(t)
	key := keyOwnedBy(t, rs.s, "b")
	for _, tc := range []struct {
		method string
		call   func(ctx context.Context) error
		want   codes.Code
	}{
		{"get", func(ctx context.Context) error {
			_, err := a.pool.Get(ctx, "b", shard.ForwardRequest{Group: "nope", Key: key, Hops: 1})
			return err
		}, codes.NotFound},
		{"get", func(ctx context.Context) error {
			_, err := a.pool.Get(ctx, "b", shard.ForwardRequest{Group: "g", Key: key, Hops: 2})
			return err
		}, codes.InvalidArgument},
		{"invalidate", func(ctx context.Context) error { return a.pool.Invalidate(ctx, "b", "g", "", false, 0) }, codes.InvalidArgument},
		{"invalidate", func(ctx context.Context) error { return a.pool.Invalidate(ctx, "b", "nope", key, false, 0) }, codes.NotFound},
		{"revoke", func(ctx context.Context) error { return a.pool.Revoke(ctx, "b", "alice", time.Now().Add(time.Hour)) }, codes.InvalidArgument},
		{"revoke", func(ctx context.Context) error { return a.pool.Revoke(ctx, "b", "", time.Now()) }, codes.InvalidArgument},
	} {
		c, err := observeOne(t, log, "b", tc.method, tc.call)
		if err == nil || c.err == nil || status.Code(c.err) != tc.want {
			t.Fatalf("%s: returned %v, reported %v (code %v); want code %v", tc.method, err, c.err, status.Code(c.err), tc.want)
		}
		if c.d <= 0 {
			t.Fatalf("%s: duration %v, want > 0", tc.method, c.d)
		}
	}

	// An owner whose source failed answered: the report carries its
	// Unavailable status, the caller gets ErrSourceFailed.
	b.src.mu.Lock()
	b.src.fail = errors.New("database down")
	b.src.mu.Unlock()
	c, err := observeOne(t, log, "b", "get", func(ctx context.Context) error {
		_, err := a.pool.Get(ctx, "b", shard.ForwardRequest{Group: "g", Key: key, Hops: 1})
		return err
	})
	if !errors.Is(err, shard.ErrSourceFailed) || status.Code(c.err) != codes.Unavailable {
		t.Fatalf("source failure: returned %v, reported %v; want ErrSourceFailed, Unavailable", err, c.err)
	}

	// A call whose context ended reports the deadline.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	c, err = observeOne(t, log, "b", "revoke", func(context.Context) error { return a.pool.Revoke(ctx, "b", "alice", time.Now()) })
	if err == nil || status.Code(c.err) != codes.DeadlineExceeded {
		t.Fatalf("expired context: returned %v, reported %v; want DeadlineExceeded", err, c.err)
	}
}

// observedPair starts nodes a and b, connected, with a's calls observed
// into log.
func observedPair(t *testing.T) (rs staticRing, a, b *node, log *callLog) {
	t.Helper()
	rs = newStaticRing(t, "a", "b")
	a, b = startNode(t, "a", rs), startNode(t, "b", rs)
	connect(t, a, b)
	log = &callLog{}
	a.pool.Observe(log.observe)
	return rs, a, b, log
}
