// Package ring maps keys to the member that owns them.
//
// It wraps buraksezer/consistent (a partitioned consistent-hash ring with
// bounded loads, hashed with xxhash) and knows nothing about gossip: a caller
// hands it the current member names, and it publishes an immutable Snapshot
// through an atomic pointer. Readers use snapshots without locks. Ownership is
// a pure function of (Config, member set): two nodes with the same members and
// Config agree on every owner, whatever order members arrived in.
package ring

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Errors returned by SetMembers.
var (
	ErrMembers   = errors.New("ring: invalid member list")
	ErrPlacement = errors.New("ring: partitions could not be placed")
)

// maxNameLen bounds a member name.
const maxNameLen = 256

// Ring holds the membership a node currently believes in and publishes a
// Snapshot for each change. SetMembers is serialised internally; Current may
// be called from any goroutine at any time.
type Ring struct {
	cfg Config

	mu      sync.Mutex // serialises SetMembers
	lib     *consistent.Consistent
	members map[string]bool
	epoch   uint64

	cur atomic.Pointer[Snapshot]
}

// New validates cfg and returns a ring with no members (epoch 0).
func New(cfg Config) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Ring{cfg: cfg, members: map[string]bool{}}
	r.lib = consistent.New(nil, r.libConfig())
	r.cur.Store(r.snapshot())
	return r, nil
}

// Config returns the configuration the ring was built with.
func (r *Ring) Config() Config { return r.cfg }

// Current returns the latest snapshot. It never returns nil.
func (r *Ring) Current() *Snapshot { return r.cur.Load() }

// SetMembers makes names the member set. When the set differs from the
// current one it publishes a new snapshot with the next epoch; otherwise it
// returns the current snapshot unchanged. Names must be non-empty and unique,
// and at most MaxMembers. On error the current snapshot stays in place.
func (r *Ring) SetMembers(names []string) (*Snapshot, error) {
	want, err := r.checkMembers(names)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if maps.Equal(want, r.members) {
		return r.Current(), nil
	}
	if err := r.apply(want); err != nil {
		return nil, err
	}
	r.epoch++
	s := r.snapshot()
	r.cur.Store(s)
	return s, nil
}

func (r *Ring) checkMembers(names []string) (map[string]bool, error) {
	if len(names) > r.cfg.MaxMembers {
		return nil, fmt.Errorf("%w: %d members exceed the configured maximum %d", ErrMembers, len(names), r.cfg.MaxMembers)
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || len(n) > maxNameLen || strings.IndexByte(n, 0) >= 0 {
			return nil, fmt.Errorf("%w: member name %q is empty, longer than %d bytes or holds NUL", ErrMembers, n, maxNameLen)
		}
		if want[n] {
			return nil, fmt.Errorf("%w: duplicate member %q", ErrMembers, n)
		}
		want[n] = true
	}
	return want, nil
}

// apply moves the library's ring to want, one Add or Remove per difference.
// Incremental changes cost one partition placement each, instead of one per
// member that a fresh build costs.
func (r *Ring) apply(want map[string]bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrPlacement, p)
			r.rebuild() // the library's state is half-updated; restore the last good set
		}
	}()
	for n := range r.members {
		if !want[n] {
			r.lib.Remove(member(n).String())
		}
	}
	for _, n := range sortedKeys(want) {
		if !r.members[n] {
			r.lib.Add(member(n))
		}
	}
	r.members = want
	return nil
}

// rebuild replaces the library's ring with a fresh one holding r.members.
// It runs only after a placement panic, which a validated Config rules out.
func (r *Ring) rebuild() {
	lib := consistent.New(nil, r.libConfig())
	defer func() {
		if recover() != nil {
			r.lib, r.members = consistent.New(nil, r.libConfig()), map[string]bool{}
		}
	}()
	for _, n := range sortedKeys(r.members) {
		lib.Add(member(n))
	}
	r.lib = lib
}

func (r *Ring) libConfig() consistent.Config {
	return consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    r.cfg.PartitionCount,
		ReplicationFactor: r.cfg.ReplicationFactor,
		Load:              r.cfg.Load,
	}
}

// member is a name as the library sees it. The library names a member's
// virtual points name+index ("node-1"+"10" and "node-11"+"0" are the same
// point), so removing one of two such members corrupts its ring. A NUL
// terminator (names cannot contain NUL) makes every point unique.
type member string

func (m member) String() string { return string(m) + "\x00" }

func (m member) name() string { return string(m) }

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
