package redisfallback

import (
	"context"
	"time"
)

// deleteBatch bounds the deletes sent in one pipeline.
const deleteBatch = 128

// DeleteUser drops every copy of every user-keyed group for userID with one
// DEL. It does not block: the delete is sent by Run and retried until it
// lands or every copy it targets has expired, and until then this node
// neither reads nor writes the user's copies.
func (f *Fallback) DeleteUser(userID string) {
	if userID != "" {
		f.addDelete(target{key: f.userKey(userID)})
	}
}

// Delete drops the copy of (group, key), like DeleteUser does. For a group
// this Fallback has not wrapped both possible places are deleted.
func (f *Fallback) Delete(group, key string) {
	if key == "" || !groupName.MatchString(group) {
		return
	}
	s, ok := f.groups.lookup(group)
	if ok {
		f.addDelete(f.deleteTarget(group, s, key))
		return
	}
	f.addDelete(f.deleteTarget(group, spec{byUser: true}, key))
	f.addDelete(f.deleteTarget(group, spec{}, key))
}

// deleteTarget is what a delete of (group, key) removes: the group's field
// of the user's hash, or the whole single-entry key.
func (f *Fallback) deleteTarget(group string, s spec, key string) target {
	at := f.locate(group, s, key)
	if !s.byUser {
		at.field = ""
	}
	return at
}

// DeleteAll drops every copy under Prefix (SCAN and UNLINK: an admin
// action, not for request paths). It raises the distrust floor at once, so
// this node serves no copy written before the call even while the delete
// is pending.
func (f *Fallback) DeleteAll() {
	f.distrust(f.clock.Now())
	f.dels.addAll(f.deleteDeadline())
	f.signal()
}

// addDelete queues a delete of at (a whole key when at.field is empty).
// When too many deletes are pending the distrust floor is raised instead:
// as safe for this node, and it needs no Redis.
func (f *Fallback) addDelete(at target) {
	if !f.dels.add(at, f.deleteDeadline(), f.cfg.QueueSize) {
		f.n.deleteDrops.Add(1)
		f.distrust(f.clock.Now())
		return
	}
	f.signal()
}

// deleteDeadline is when a delete issued now stops mattering: every copy
// it could target has expired by then.
func (f *Fallback) deleteDeadline() time.Time {
	longest := max(time.Duration(f.groups.maxTTL.Load()), f.cfg.RetryInterval)
	return f.cfg.Now().Add(longest)
}

// flushDeletes sends every delete that is due, while the breaker is closed.
// Each delete is taken at most once per call (a taken delete is not due
// again before RetryInterval), so the loop ends.
func (f *Fallback) flushDeletes(ctx context.Context) {
	for f.dels.len() > 0 && f.usable() && ctx.Err() == nil {
		batch, all, expired := f.dels.take(f.cfg.Now(), f.cfg.RetryInterval, deleteBatch)
		f.n.deletesExpired.Add(uint64(expired))
		if all == nil && len(batch) == 0 {
			return
		}
		if all != nil && !f.unlinkAll(ctx, *all) {
			return
		}
		if len(batch) > 0 && !f.sendDeletes(ctx, batch) {
			return
		}
	}
}

// sendDeletes sends one pipeline of DEL and HDEL and reports whether it
// went through.
func (f *Fallback) sendDeletes(ctx context.Context, batch []due) bool {
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	pipe := f.client.Pipeline()
	for _, d := range batch {
		if d.at.field == "" {
			pipe.Del(octx, d.at.key)
		} else {
			pipe.HDel(octx, d.at.key, d.at.field)
		}
	}
	if _, err := pipe.Exec(octx); err != nil {
		f.failed(ctx, "delete", err)
		return false
	}
	f.br.success()
	for _, d := range batch {
		f.dels.done(d)
	}
	f.n.deletes.Add(uint64(len(batch)))
	return true
}

// unlinkAll scans every key under Prefix and unlinks it, each step bounded
// by OpTimeout, and reports whether it got through the whole key space.
func (f *Fallback) unlinkAll(ctx context.Context, d due) bool {
	match := globEscape(f.cfg.Prefix) + "*"
	var cursor uint64
	for {
		next, err := f.unlinkStep(ctx, cursor, match)
		if err != nil {
			f.failed(ctx, "delete all", err)
			return false
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	f.br.success()
	f.dels.doneAll(d.seq)
	f.n.deletes.Add(1)
	return true
}

func (f *Fallback) unlinkStep(ctx context.Context, cursor uint64, match string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	keys, next, err := f.client.Scan(ctx, cursor, match, 1000).Result()
	if err == nil && len(keys) > 0 {
		err = f.client.Unlink(ctx, keys...).Err()
	}
	return next, err
}
