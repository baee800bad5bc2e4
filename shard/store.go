package shard

import (
	"fmt"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/avion/authnode/hlc"
)

// entryOverhead approximates the bytes one entry costs beyond its key and
// value: the entry struct, ristretto's item and map slot, and TTL bookkeeping.
const entryOverhead = 128

// avgEntryBytes sizes ristretto's frequency counters from a byte budget.
const avgEntryBytes = 256

// EntryCost is what one entry of key and value counts against a byte budget.
func EntryCost(key string, value []byte) int64 {
	return int64(len(key) + len(value) + entryOverhead)
}

// entry is what a store holds. It is immutable once stored.
type entry struct {
	key string
	Entry
	// local is this node's clock reading when the load or forward that
	// produced the entry began; it is compared with invalidation floors.
	local hlc.Gen
}

// store wraps one ristretto cache and encodes its semantics: Set is buffered
// and may be dropped, wait makes earlier sets visible, del takes effect at
// once and also cancels a buffered set of the same key.
type store struct {
	c *ristretto.Cache[string, *entry]
}

func newStore(maxBytes int64) (*store, error) {
	counters := max(maxBytes/avgEntryBytes*10, 1000)
	c, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters:        counters,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("shard: cache: %w", err)
	}
	return &store{c: c}, nil
}

// get returns the entry for key if it is present, unexpired, really for key
// (the store is keyed by hashes) and loaded after the last InvalidateAll. An
// entry rejected by the flush stays until the reload replaces it or it is
// evicted; get never writes, so it is safe during Close.
func (s *store) get(key string, flushed uint64) (*entry, bool) {
	e, ok := s.c.Get(key)
	if !ok || e.key != key || uint64(e.local) <= flushed {
		return nil, false
	}
	return e, true
}

// set stores e for ttl. It may be dropped under contention.
func (s *store) set(e *entry, ttl time.Duration) {
	if ttl > 0 {
		s.c.SetWithTTL(e.key, e, EntryCost(e.key, e.Value), ttl)
	}
}

func (s *store) del(key string) { s.c.Del(key) }

// wait blocks until every earlier set and del has been applied.
func (s *store) wait() { s.c.Wait() }

// drop deletes every entry whose key matches. It collects keys first:
// deleting inside ristretto's iteration would deadlock on its shard lock.
func (s *store) drop(match func(key string) bool) int {
	var keys []string
	s.c.IterValues(func(e *entry) bool {
		if match(e.key) {
			keys = append(keys, e.key)
		}
		return false
	})
	for _, k := range keys {
		s.c.Del(k)
	}
	return len(keys)
}

func (s *store) close() { s.c.Close() }

// size counts the entries and their cost by walking the store: for admin
// views, not for hot paths.
func (s *store) size() (entries, bytes int64) {
	s.c.IterValues(func(e *entry) bool {
		entries++
		bytes += EntryCost(e.key, e.Value)
		return false
	})
	return entries, bytes
}
