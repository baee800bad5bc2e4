package redisfallback

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
)

// Wrap returns a loader for group that serves a trusted Redis copy when one
// exists and otherwise calls inner, then queues a copy of what inner
// returned. byUser says the group's keys are user IDs: its copies share the
// user's hash, which DeleteUser removes. ttl is the group's TTL, the longest
// a copy lives; a value's own shorter TTL wins.
//
// The returned loader never fails because of Redis: inner's errors are
// returned unchanged and Redis errors are only counted. A group name shard
// would reject, or a ttl that is not positive, makes it a plain pass-through
// to inner. Call Wrap once per group, before loads start.
func (f *Fallback) Wrap(group string, byUser bool, ttl time.Duration, inner shard.Loader) shard.Loader {
	if !groupName.MatchString(group) || ttl <= 0 {
		f.log.Error("redisfallback: group not wrapped", "group", group, "ttl", ttl)
		return inner
	}
	s := spec{byUser: byUser, ttl: ttl}
	f.groups.add(group, s)
	return &loader{f: f, group: group, spec: s, inner: inner}
}

type loader struct {
	f     *Fallback
	group string
	spec  spec
	inner shard.Loader
}

// Load implements shard.Loader. The generation and the latest known
// invalidation are read first: a copy of what inner returns is written only
// if no invalidation of key was processed here after this moment.
func (l *loader) Load(ctx context.Context, key string) (shard.Value, error) {
	known := l.f.known(l.group, key)
	gen := l.f.clock.Now()
	if v, ok := l.f.read(ctx, l.group, l.spec, key); ok {
		return v, nil
	}
	v, err := l.inner.Load(ctx, key)
	if err != nil {
		return v, err
	}
	l.f.store(write{group: l.group, spec: l.spec, key: key, gen: gen, known: known}, v)
	return v, nil
}

// read returns the trusted, unexpired copy of (group, key), if any.
func (f *Fallback) read(ctx context.Context, group string, s spec, key string) (shard.Value, bool) {
	at := f.locate(group, s, key)
	if !f.usable() || f.dels.blocks(at) {
		f.n.bypassed.Add(1)
		return shard.Value{}, false
	}
	raw, err := f.hget(ctx, at)
	switch {
	case errors.Is(err, redis.Nil):
		f.br.success()
		f.n.misses.Add(1)
		return shard.Value{}, false
	case err != nil:
		f.failed(ctx, "read", err)
		return shard.Value{}, false
	}
	f.br.success()
	return f.check(group, key, s.ttl, raw)
}

func (f *Fallback) hget(ctx context.Context, at target) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	return f.client.HGet(ctx, at.key, at.field).Bytes()
}

// check decides whether raw may be served. Known is read only now, after
// the copy arrived, so an invalidation that raced the read wins.
func (f *Fallback) check(group, key string, ttl time.Duration, raw []byte) (shard.Value, bool) {
	c, err := decode(raw)
	if err != nil || !plausible(c.gen, f.cfg.Now()) {
		f.n.misses.Add(1)
		return shard.Value{}, false
	}
	if !f.trusted(group, key, c.gen) {
		f.n.stale.Add(1)
		return shard.Value{}, false
	}
	left := c.expires.Sub(f.cfg.Now())
	if left <= 0 {
		f.n.misses.Add(1)
		return shard.Value{}, false
	}
	// Merge the copy's generation so that any later invalidation issued
	// here is newer than the copy, on every node.
	f.clock.Observe(c.gen)
	f.n.hits.Add(1)
	return shard.Value{Bytes: c.value, TTL: min(left, ttl)}, true
}

// plausible rejects a generation so far ahead of the wall clock that the
// hybrid logical clock would refuse to merge it: later invalidations could
// then never overtake the copy.
func plausible(g hlc.Gen, now time.Time) bool {
	return uint64(g) <= uint64(now.Add(hlc.MaxAhead).UnixNano())
}

// store queues w with the value v loaded for it. With the breaker open
// nothing is queued: the load was counted as bypassed.
func (f *Fallback) store(w write, v shard.Value) {
	if !f.usable() {
		return
	}
	ttl := w.spec.ttl
	if v.TTL > 0 && v.TTL < ttl {
		ttl = v.TTL
	}
	w.expires, w.value = f.cfg.Now().Add(ttl), v.Bytes
	select {
	case f.writes <- w:
	default:
		f.n.writeDrops.Add(1)
	}
}
