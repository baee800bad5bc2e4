package redisfallback

import (
	"context"
	"time"

	"github.com/avion/authnode/hlc"
)

// write is a copy waiting to be sent.
type write struct {
	group   string
	spec    spec
	key     string
	gen     hlc.Gen // when the load began
	known   hlc.Gen // Known for the key when the load began
	expires time.Time
	value   []byte // shared with the cache: read, never modified
}

// writeBatch bounds the writes sent in one pipeline.
const writeBatch = 64

// writeLoop is the only goroutine that writes or deletes copies, so a
// delete that Delete queued after a write was sent always lands after it.
// Pending deletes go first on every turn. It returns when ctx ends.
func (f *Fallback) writeLoop(ctx context.Context) {
	tick := time.NewTicker(f.cfg.RetryInterval)
	defer tick.Stop()
	for {
		var first *write
		var msg []byte
		select {
		case <-ctx.Done():
			return
		case w := <-f.writes:
			first = &w
		case msg = <-f.pubs:
		case <-f.wake:
		case <-tick.C:
		}
		f.flushDeletes(ctx)
		switch {
		case first != nil:
			f.put(ctx, f.drain(*first))
		case msg != nil:
			f.publish(ctx, msg)
		}
	}
}

// drain returns first and whatever else is queued, up to writeBatch.
func (f *Fallback) drain(first write) []write {
	ws := []write{first}
	for len(ws) < writeBatch {
		select {
		case w := <-f.writes:
			ws = append(ws, w)
		default:
			return ws
		}
	}
	return ws
}

// put sends the writes that are still worth making in one pipeline of
// HSET + PEXPIRE pairs.
func (f *Fallback) put(ctx context.Context, ws []write) {
	if !f.usable() {
		f.n.writeSkips.Add(uint64(len(ws)))
		return
	}
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	pipe := f.client.Pipeline()
	now := f.cfg.Now()
	sent := 0
	for _, w := range ws {
		at := f.locate(w.group, w.spec, w.key)
		if !f.writable(w, at, now) {
			f.n.writeSkips.Add(1)
			continue
		}
		pipe.HSet(octx, at.key, at.field, encode(copyVal{gen: w.gen, expires: w.expires, value: w.value}))
		pipe.PExpire(octx, at.key, f.keyTTL(w, now))
		sent++
	}
	if sent == 0 {
		return
	}
	if _, err := pipe.Exec(octx); err != nil {
		f.failed(ctx, "write", err)
		return
	}
	f.br.success()
	f.n.writes.Add(uint64(sent))
}

// writable reports whether w may still be written: no invalidation of its
// key was processed since its load began, no delete of it is pending, and
// it has not expired.
//
// An invalidation carries the generation its sender issued it at, which
// says nothing about when it reached this node: a load that began here
// after the sender's reading but before the invalidation arrived read the
// old state, yet its generation is the larger one. So beside comparing
// generations, a write is dropped whenever Known changed since its load
// began; that comparison involves this node's order of events only.
func (f *Fallback) writable(w write, at target, now time.Time) bool {
	return w.expires.After(now) && f.known(w.group, w.key) == w.known &&
		f.trusted(w.group, w.key, w.gen) && !f.dels.blocks(at)
}

// keyTTL is the Redis TTL of w's key. A user's hash holds every user-keyed
// group, so it lives as long as the longest of them: a short-lived entry
// must not cut a long-lived one's copy short. Each copy's own expiry is in
// its value and checked on read.
func (f *Fallback) keyTTL(w write, now time.Time) time.Duration {
	left := w.expires.Sub(now)
	if w.spec.byUser {
		left = max(left, time.Duration(f.groups.maxUserTTL.Load()))
	}
	return max(left, time.Millisecond) // PEXPIRE's unit
}
