package auth

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"

	"github.com/avion/authnode/hlc"
)

// memo keeps answers to exact questions in this node's memory. It is keyed
// by the xxhash of the question, and each entry keeps the question, which a
// hit compares in full: two questions that share a hash never share an
// answer (a crafted user id or resource cannot read another question's).
// Looking up a question built in a caller's buffer does not allocate.
type memo[V any] struct {
	c *ristretto.Cache[uint64, memoEntry[V]]
}

type memoEntry[V any] struct {
	question string
	v        V
}

func newMemo[V any](maxBytes, counters int64) (*memo[V], error) {
	c, err := ristretto.NewCache(&ristretto.Config[uint64, memoEntry[V]]{NumCounters: counters, MaxCost: maxBytes, BufferItems: 64})
	if err != nil {
		return nil, err
	}
	return &memo[V]{c: c}, nil
}

// get returns the answer to question, if memoised.
func (m *memo[V]) get(question []byte) (V, bool) {
	e, ok := m.c.Get(xxhash.Sum64(question))
	if !ok || e.question != string(question) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// set memoises v as the answer to question, costing cost bytes beyond the
// question, for ttl (0: until evicted; negative: not kept).
func (m *memo[V]) set(question []byte, v V, cost int64, ttl time.Duration) {
	if ttl < 0 {
		return
	}
	m.c.SetWithTTL(xxhash.Sum64(question), memoEntry[V]{question: string(question), v: v}, cost+int64(len(question)), ttl)
}

func (m *memo[V]) clear() { m.c.Clear() }
func (m *memo[V]) close() { m.c.Close() }
func (m *memo[V]) wait()  { m.c.Wait() }

// maxMemoConds is how many conditions a question sorts without allocating.
const maxMemoConds = 8

// appendQuestion appends a question exactly to b: user, generation,
// resource, action and the conditions sorted by name, each string
// length-prefixed, so no two different questions encode alike.
func appendQuestion(b []byte, userID string, gen hlc.Gen, resource, action string, conds map[string]string) []byte {
	b = appendField(b, userID)
	b = binary.BigEndian.AppendUint64(b, uint64(gen))
	b = appendField(b, resource)
	b = appendField(b, action)
	if len(conds) == 0 {
		return b
	}
	var names [maxMemoConds]string
	keys := names[:0]
	for k := range conds {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendField(b, k)
		b = appendField(b, conds[k])
	}
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// questionBuf is the stack buffer a question is built in; a longer one
// moves to the heap.
const questionBuf = 256
