package redisfallback

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// target is a place in Redis: a hash field, or a whole key when field is "".
type target struct {
	key, field string
}

// valueField is the field of a key that holds a single entry.
const valueField = "v"

// groupName is what shard accepts as a group name. The layout depends on it:
// a group name never contains ':', so Prefix+"g:"+group+":"+key is
// unambiguous.
var groupName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// spec is how one wrapped group is stored.
type spec struct {
	byUser bool
	ttl    time.Duration
}

// userKey is the hash holding every user-keyed entry of userID.
func (f *Fallback) userKey(userID string) string {
	return f.cfg.Prefix + "u:" + userID
}

// locate returns where the entry (group, key) lives.
func (f *Fallback) locate(group string, s spec, key string) target {
	if s.byUser {
		return target{f.userKey(key), group}
	}
	return target{f.cfg.Prefix + "g:" + group + ":" + key, valueField}
}

// registry remembers how each wrapped group is stored and the longest TTL
// a copy can have, which bounds how long a delete is worth retrying.
type registry struct {
	mu         sync.RWMutex
	specs      map[string]spec
	maxTTL     atomic.Int64 // any group
	maxUserTTL atomic.Int64 // user-keyed groups: the lifetime of a user's hash
}

func (r *registry) add(group string, s spec) {
	r.mu.Lock()
	if r.specs == nil {
		r.specs = map[string]spec{}
	}
	r.specs[group] = s
	r.mu.Unlock()
	raiseInt(&r.maxTTL, int64(s.ttl))
	if s.byUser {
		raiseInt(&r.maxUserTTL, int64(s.ttl))
	}
}

func (r *registry) lookup(group string) (spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[group]
	return s, ok
}

// raiseInt moves v up to x; it never moves down.
func raiseInt(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\*?[]`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
