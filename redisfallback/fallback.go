package redisfallback

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/avion/authnode/hlc"
)

// Known returns the latest invalidation generation this node knows for
// (group, key), 0 when none; for a user-keyed group key is the user ID. The
// node provides it from its shard cache. It must cover invalidations of the
// whole group too, and must never decrease for a key (forgetting old
// invalidations raises a floor instead): a load's copy is written only if
// Known did not change while the load ran. It is called at the start of
// every load, on every copy read and before every write, from several
// goroutines at once: it must be safe for concurrent use, fast, and must
// not block. A value too high only costs a miss; one too low can serve a
// stale copy.
type Known func(group, key string) hlc.Gen

// Fallback is a node's link to Redis: the copies behind its loaders, the
// deletes that keep them honest, and the pub/sub invalidation channel. All
// methods are safe for concurrent use. Nothing connects before the first
// load or Run; writes, deletes, publishes and breaker recovery happen only
// while Run is running.
type Fallback struct {
	cfg     Config
	log     *slog.Logger
	client  *redis.Client
	addr    string // host:port, safe to log
	channel string
	id      instanceID
	clock   *hlc.Clock
	known   Known

	br      breaker
	floor   atomic.Uint64 // the distrust floor, an hlc.Gen
	started atomic.Bool
	stopped atomic.Bool

	writes  chan write
	pubs    chan []byte
	wake    chan struct{} // a delete is waiting or the breaker closed
	dels    deletes
	groups  registry
	servers servers
	n       counters
}

// pubQueue bounds messages waiting to be published.
const pubQueue = 1024

// New validates cfg and returns a Fallback that reads wall-clock-ordered
// generations from clock and asks known for the latest invalidation of a
// key. It does not connect.
func New(cfg Config, clock *hlc.Clock, known Known) (*Fallback, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil || known == nil {
		return nil, fmt.Errorf("%w: clock and known are required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	opts, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	f := &Fallback{
		cfg: cfg, log: cfg.Logger, addr: opts.Addr, channel: cfg.Prefix + "invalidations",
		clock: clock, known: known,
		writes: make(chan write, cfg.QueueSize),
		pubs:   make(chan []byte, pubQueue),
		wake:   make(chan struct{}, 1),
	}
	f.br.limit = int64(cfg.FailuresToOpen)
	if _, err := rand.Read(f.id[:]); err != nil {
		return nil, fmt.Errorf("redisfallback: instance id: %w", err)
	}
	opts.OnConnect = f.onConnect
	f.client = redis.NewClient(opts)
	if cfg.Observe != nil {
		f.client.AddHook(timing(cfg.Observe))
	}
	return f, nil
}

// errRunning is logged when Run is called a second time.
var errRunning = errors.New("redisfallback: Run called twice")

// Run sends queued writes, retries pending deletes, probes Redis while the
// breaker is open and, when onMessage is not nil, delivers pub/sub messages
// from other instances to it. It blocks until ctx ends, then stops every
// goroutine it started and closes the Redis client; after that every load
// goes straight to its source. Call it once.
//
// onMessage is called from one goroutine, one message at a time, and owns
// the payload; it should return quickly, since messages wait meanwhile.
func (f *Fallback) Run(ctx context.Context, onMessage func([]byte)) {
	if !f.started.CompareAndSwap(false, true) {
		f.log.Error("redisfallback: not running", "err", errRunning)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { f.probe(ctx) })
	if onMessage != nil {
		wg.Go(func() { f.subscribe(ctx, onMessage) })
	}
	f.writeLoop(ctx)
	f.stopped.Store(true)
	wg.Wait()
	if err := f.client.Close(); err != nil {
		f.log.Debug("redisfallback: close", "err", err)
	}
}

// signal wakes the writer without blocking.
func (f *Fallback) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}
