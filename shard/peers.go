package shard

import (
	"context"
	"errors"
	"time"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/ring"
)

// Errors that callers branch on.
var (
	// ErrSourceFailed wraps every failure to load a key from the source,
	// including a panicking loader and an exhausted load slot wait. A peer
	// that answers a forwarded get with it has answered: the caller does not
	// retry the load itself.
	ErrSourceFailed = errors.New("shard: source load failed")

	// ErrChurn means the key was invalidated during every load attempt.
	ErrChurn = errors.New("shard: key invalidated during every load attempt")

	// ErrBadRequest marks a malformed key or forwarded request.
	ErrBadRequest = errors.New("shard: bad request")

	// ErrUnknownGroup means a forwarded request named no group of this node.
	ErrUnknownGroup = errors.New("shard: unknown group")

	// ErrClosed is returned once the cache is closed.
	ErrClosed = errors.New("shard: cache closed")
)

// MaxKeyLen bounds a key in bytes.
const MaxKeyLen = 1024

// Loader reads a key from the source of truth.
type Loader interface {
	// Load returns the current value of key. It runs detached from the
	// callers waiting for it, under ctx bounded by Config.LoadTimeout, and
	// may run concurrently for different keys. The returned Value.Bytes
	// belong to the cache afterwards and must not be modified. Errors are
	// not cached.
	Load(ctx context.Context, key string) (Value, error)
}

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(ctx context.Context, key string) (Value, error)

// Load calls f.
func (f LoaderFunc) Load(ctx context.Context, key string) (Value, error) { return f(ctx, key) }

// Value is what a loader returns.
type Value struct {
	Bytes []byte
	// TTL shortens the group TTL for this value (for example a session that
	// expires sooner). Zero or negative means the group TTL.
	TTL time.Duration
}

// Peers is what a node's cache needs from the cluster. Implementations must
// be safe for concurrent use.
type Peers interface {
	// Ring returns the current ring. It is called on every Get and must not
	// block; it never returns nil.
	Ring() *ring.Snapshot

	// Get asks owner for a key on behalf of this node. ctx carries the peer
	// timeout. An error that wraps ErrSourceFailed means the owner answered
	// that its load failed; any other error means the owner did not answer.
	Get(ctx context.Context, owner string, req ForwardRequest) (ForwardResponse, error)
}

// ForwardRequest is a get sent from a non-owner to the key's owner.
type ForwardRequest struct {
	Group string
	Key   string
	// Fingerprint is the sender's ring fingerprint; a receiver whose ring
	// differs counts the mismatch.
	Fingerprint uint64
	// Hops is 1 for every forwarded request: receivers never forward again
	// and reject any other value.
	Hops uint32
}

// ForwardResponse is an owner's answer to a ForwardRequest.
type ForwardResponse struct {
	Value []byte
	Gen   hlc.Gen
	// TTL is how much longer the owner will keep the value.
	TTL time.Duration
}

// Entry is a cached value as returned by Get.
type Entry struct {
	// Value is shared by every reader: callers must not modify it.
	Value []byte
	// Gen is the owner's clock reading when it began loading the value.
	Gen hlc.Gen
	// Expires is when the entry stops being served from this node.
	Expires time.Time
}
