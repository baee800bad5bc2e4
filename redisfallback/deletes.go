package redisfallback

import (
	"sync"
	"sync/atomic"
	"time"
)

// attempt is one pending delete.
type attempt struct {
	seq      uint64    // changes when the delete is issued again
	next     time.Time // not tried before then
	deadline time.Time // given up after then: every copy it targets has expired
}

// due is a pending delete handed to the writer.
type due struct {
	at  target
	seq uint64
}

// deletes is the set of deletes that have not landed yet. While one is
// pending for a key, the key is neither read nor written by this node.
type deletes struct {
	mu    sync.Mutex
	items map[target]attempt
	all   *attempt // DeleteAll
	seq   uint64
	idle  time.Time    // nothing is due before then
	count atomic.Int64 // len(items), plus one while all is set: the lock-free fast path
}

// add records a delete of at. It returns false, recording nothing, when
// limit deletes are already pending.
func (d *deletes) add(at target, deadline time.Time, limit int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.items == nil {
		d.items = map[target]attempt{}
	}
	if _, ok := d.items[at]; !ok && len(d.items) >= limit {
		return false
	}
	d.seq++
	d.items[at] = attempt{seq: d.seq, deadline: deadline}
	d.idle = time.Time{}
	d.recount()
	return true
}

// addAll records a DeleteAll.
func (d *deletes) addAll(deadline time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.all = &attempt{seq: d.seq, deadline: deadline}
	d.idle = time.Time{}
	d.recount()
}

// recount refreshes count. Caller holds d.mu.
func (d *deletes) recount() {
	n := int64(len(d.items))
	if d.all != nil {
		n++
	}
	d.count.Store(n)
}

// blocks reports whether a delete pending covers at: a DeleteAll, a delete
// of its whole key, or of its field.
func (d *deletes) blocks(at target) bool {
	if d.count.Load() == 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.all != nil {
		return true
	}
	if _, ok := d.items[target{key: at.key}]; ok {
		return true
	}
	_, ok := d.items[at]
	return ok
}

// take returns up to limit deletes due at now and whether a DeleteAll is
// due, and moves their next attempt to now+retry. Deletes past their
// deadline are forgotten; take returns how many. Between retries take
// returns at once, without walking the set.
func (d *deletes) take(now time.Time, retry time.Duration, limit int) (batch []due, all *due, expired int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Before(d.idle) {
		return nil, nil, 0
	}
	defer d.recount()
	idle := now.Add(retry)
	if a := d.all; a != nil {
		switch {
		case now.After(a.deadline):
			d.all, expired = nil, expired+1
		case !now.Before(a.next):
			a.next = idle
			all = &due{seq: a.seq}
		default:
			idle = minTime(idle, a.next)
		}
	}
	for at, a := range d.items {
		switch {
		case now.After(a.deadline):
			delete(d.items, at)
			expired++
		case len(batch) < limit && !now.Before(a.next):
			a.next = now.Add(retry)
			d.items[at] = a
			batch = append(batch, due{at: at, seq: a.seq})
		case now.Before(a.next):
			idle = minTime(idle, a.next)
		default:
			idle = now // due, but over limit: the caller takes again
		}
	}
	d.idle = idle
	return batch, all, expired
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// done forgets a delete that landed, unless it was issued again meanwhile.
func (d *deletes) done(x due) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.items[x.at]; ok && a.seq == x.seq {
		delete(d.items, x.at)
		d.recount()
	}
}

// doneAll forgets a DeleteAll that landed, unless it was issued again.
func (d *deletes) doneAll(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.all != nil && d.all.seq == seq {
		d.all = nil
		d.recount()
	}
}

func (d *deletes) len() int { return int(d.count.Load()) }
