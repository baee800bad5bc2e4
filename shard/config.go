package shard

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/avion/authnode/hlc"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("shard: invalid config")

// Config is the node-wide part of the cache: what every group shares.
type Config struct {
	// Self is this node's member name as it appears in the ring. (Required)
	Self string

	// PeerTimeout bounds one forwarded get. When the owner has not answered
	// by then the node loads the key itself. Default 50 ms.
	PeerTimeout time.Duration

	// MaxConcurrentLoads caps source loads in flight on this node across all
	// groups, so a cold start or a failover cannot stampede the database.
	// Default 32.
	MaxConcurrentLoads int

	// LoadTimeout bounds one source load, including the wait for a load
	// slot. The load runs detached from its callers; this is what stops it.
	// Default 5 s.
	LoadTimeout time.Duration

	// LoadAttempts is how often a load or forward is retried when
	// invalidations keep arriving while it is in flight (one change can
	// bring a burst of them: the change feed, the owner's fan-out, an admin
	// call); attempts after the first wait 1, 2, 4, … ms for the burst to
	// pass. After the last, Get returns ErrChurn. Default 5.
	LoadAttempts int

	// SuspectAfter is the number of consecutive failed calls after which a
	// peer is suspected: requests for its keys are loaded locally instead of
	// waiting for it. Default 3.
	SuspectAfter int

	// SuspectFor is how long a suspected peer is skipped before one request
	// probes it again. A ring change clears all suspicion. Default 1 s.
	SuspectFor time.Duration

	// Clock issues generations. Default: a new hlc.Clock reading Now.
	Clock *hlc.Clock

	// Now reads the wall clock for expiry and suspicion. Default time.Now.
	Now func() time.Time

	// MaxPause is the longest this process may stop running (SIGSTOP, a
	// frozen VM) before the cache is flushed on the next request: after a
	// pause longer than memberlist's suspicion timeout the others may have
	// declared this node dead and sent invalidations it never got. Zero
	// turns the check off. Default 4 s (the LAN suspicion timeout).
	MaxPause time.Duration

	// Mono reads a monotonic clock for pause detection. Default: time since
	// the cache was created.
	Mono func() time.Duration

	// Logger receives loader panics and flushes. Default: discard.
	Logger *slog.Logger
	// OnInvalidate, when set, is called after every Invalidate (all false)
	// and InvalidateAll (key empty, all true) on this node, whoever asked
	// for it: copies kept outside the cache are dropped there too.
	OnInvalidate func(group, key string, all bool)
	// OnFlush, when set, is called after every Flush (a pause, a silence):
	// state kept outside the cache that may have missed invalidations too
	// is dropped there.
	OnFlush func()
}

// DefaultConfig returns production defaults for the node named self.
func DefaultConfig(self string) Config {
	return Config{
		Self:               self,
		PeerTimeout:        50 * time.Millisecond,
		MaxConcurrentLoads: 32,
		LoadTimeout:        5 * time.Second,
		LoadAttempts:       5,
		SuspectAfter:       3,
		SuspectFor:         time.Second,
		MaxPause:           4 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Self == "":
		return fmt.Errorf("%w: Self is required", ErrConfig)
	case c.PeerTimeout <= 0:
		return fmt.Errorf("%w: peer timeout %v must be positive", ErrConfig, c.PeerTimeout)
	case c.MaxConcurrentLoads < 1:
		return fmt.Errorf("%w: max concurrent loads %d < 1", ErrConfig, c.MaxConcurrentLoads)
	case c.LoadTimeout <= 0:
		return fmt.Errorf("%w: load timeout %v must be positive", ErrConfig, c.LoadTimeout)
	case c.LoadAttempts < 1:
		return fmt.Errorf("%w: load attempts %d < 1", ErrConfig, c.LoadAttempts)
	case c.SuspectAfter < 1:
		return fmt.Errorf("%w: suspect after %d < 1", ErrConfig, c.SuspectAfter)
	case c.SuspectFor <= 0:
		return fmt.Errorf("%w: suspect for %v must be positive", ErrConfig, c.SuspectFor)
	case c.MaxPause < 0 || (c.MaxPause > 0 && c.MaxPause < 4*time.Millisecond):
		return fmt.Errorf("%w: max pause %v must be 0 (off) or at least 4ms", ErrConfig, c.MaxPause)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Clock == nil {
		c.Clock = hlc.New(c.Now)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Mono == nil {
		start := time.Now()
		c.Mono = func() time.Duration { return time.Since(start) }
	}
	return c
}

// GroupConfig sizes one named group.
type GroupConfig struct {
	// MaxBytes bounds the owner shard. Each entry costs its key and value
	// bytes plus a fixed overhead (see EntryCost). Default 64 MiB.
	MaxBytes int64

	// TTL is the longest an owner entry lives; a loader may ask for less.
	// Default 1 minute.
	TTL time.Duration

	// HotMaxBytes bounds the hot cache of copies of keys owned elsewhere.
	// Default MaxBytes/8.
	HotMaxBytes int64

	// HotTTL is the longest a hot copy lives; at most TTL. A hot copy is
	// dropped by Invalidate like any entry; the TTL bounds how long a copy
	// survives on a node that missed an invalidation. Default 2 s.
	HotTTL time.Duration

	// HotSampleEvery keeps one hot copy per HotSampleEvery answers fetched
	// from an owner (1: every answer; 0: no hot copies). Copies of hot keys
	// are what keep one popular key from melting its owner. Default 10.
	HotSampleEvery int

	// ObserveAge, when set, is called with the age of a served entry (the
	// time since its load began) for one hit in ageSampleEvery: owner
	// shard and hot-copy hits. It must be fast and safe for concurrent
	// use.
	ObserveAge func(age time.Duration)
}

// DefaultGroupConfig returns production defaults for a group.
func DefaultGroupConfig() GroupConfig {
	return GroupConfig{
		MaxBytes:       64 << 20,
		TTL:            time.Minute,
		HotMaxBytes:    8 << 20,
		HotTTL:         2 * time.Second,
		HotSampleEvery: 10,
	}
}

// minGroupBytes keeps ristretto's admission policy meaningful.
const minGroupBytes = 1 << 12

// Validate reports the first invalid field.
func (c GroupConfig) Validate() error {
	switch {
	case c.MaxBytes < minGroupBytes:
		return fmt.Errorf("%w: max bytes %d below %d", ErrConfig, c.MaxBytes, minGroupBytes)
	case c.TTL <= 0:
		return fmt.Errorf("%w: TTL %v must be positive", ErrConfig, c.TTL)
	case c.HotSampleEvery < 0:
		return fmt.Errorf("%w: hot sample %d < 0", ErrConfig, c.HotSampleEvery)
	case c.HotSampleEvery == 0:
		return nil
	case c.HotMaxBytes < minGroupBytes:
		return fmt.Errorf("%w: hot max bytes %d below %d", ErrConfig, c.HotMaxBytes, minGroupBytes)
	case c.HotTTL <= 0 || c.HotTTL > c.TTL:
		return fmt.Errorf("%w: hot TTL %v not in (0, TTL %v]", ErrConfig, c.HotTTL, c.TTL)
	}
	return nil
}

var groupName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
