package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
)

// TokenCacheConfig sizes a TokenCache.
type TokenCacheConfig struct {
	// MaxBytes bounds the cache of valid tokens. Default 32 MiB.
	MaxBytes int64
	// FailedMaxBytes bounds the separate cache of failed validations, so
	// hostile traffic cannot evict valid entries. Default 4 MiB.
	FailedMaxBytes int64
	// MaxTTL bounds how long a validation is reused; never beyond the
	// token's exp. Default 5 min.
	MaxTTL time.Duration
	// FailedTTL is how long a failure is reused. Default 10 s.
	FailedTTL time.Duration
	// Off validates every token from scratch (cache mode off).
	Off bool
}

// TokenCache validates tokens through a Validator and keeps the results in
// this node's memory only (verifying a signature is cheaper than a network
// hop), keyed by the SHA-256 of the validation settings and the SHA-256 of
// the whole token. A hit re-checks exp and the user's revocation watermark,
// and is dropped when a key of any issuer disappeared or changed since.
// Safe for concurrent use.
type TokenCache struct {
	v      *Validator
	marks  *Watermarks
	cfg    TokenCacheConfig
	valid  *ristretto.Cache[uint64, *validEntry]
	failed *ristretto.Cache[uint64, *failedEntry]
	// closing orders the miss path's writes before Close: ristretto
	// panics or hangs on a write while it closes.
	closing sync.RWMutex
	closed  bool
	n       tokenCounters
}

// tokenCounters sit on their own cache line: every call writes one, and
// the fields above are read by every call.
type tokenCounters struct {
	_      [64]byte
	hits   atomic.Uint64 // answers reused from the caches
	misses atomic.Uint64 // tokens checked from scratch
	_      [64]byte
}

// TokenCacheStats counts a TokenCache's answers since it was created.
type TokenCacheStats struct {
	Hits   uint64 // validations (valid or failed) reused from the cache
	Misses uint64 // tokens checked from scratch: signature verified
}

// Stats returns the cache's counters.
func (c *TokenCache) Stats() TokenCacheStats {
	return TokenCacheStats{Hits: c.n.hits.Load(), Misses: c.n.misses.Load()}
}

type validEntry struct {
	sum    [32]byte
	claims Claims
	leeway time.Duration
	epoch  uint64 // key epoch before validation
}

type failedEntry struct {
	sum     [32]byte
	err     error
	version uint64 // key set version at validation
}

// NewTokenCache returns a cache over v that checks revocations in marks.
func NewTokenCache(v *Validator, marks *Watermarks, cfg TokenCacheConfig) (*TokenCache, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 32 << 20
	}
	if cfg.FailedMaxBytes <= 0 {
		cfg.FailedMaxBytes = 4 << 20
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 5 * time.Minute
	}
	if cfg.FailedTTL <= 0 {
		cfg.FailedTTL = 10 * time.Second
	}
	c := &TokenCache{v: v, marks: marks, cfg: cfg}
	var err error
	c.valid, err = ristretto.NewCache(&ristretto.Config[uint64, *validEntry]{
		NumCounters: max(cfg.MaxBytes/64, 1000), MaxCost: cfg.MaxBytes, BufferItems: 64, IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	c.failed, err = ristretto.NewCache(&ristretto.Config[uint64, *failedEntry]{
		NumCounters: max(cfg.FailedMaxBytes/64, 1000), MaxCost: cfg.FailedMaxBytes, BufferItems: 64, IgnoreInternalCost: true,
	})
	if err != nil {
		c.valid.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the caches. Validations still running afterwards check
// tokens without caching them.
func (c *TokenCache) Close() {
	c.closing.Lock()
	defer c.closing.Unlock()
	c.closed = true
	c.valid.Close()
	c.failed.Close()
}

// Clear drops every cached validation.
func (c *TokenCache) Clear() {
	c.valid.Clear()
	c.failed.Clear()
}

// Validate returns token's claims or a *TokenError, like
// Validator.Validate, and additionally reports a token issued before its
// user's watermark as revoked. The returned Claims are shared: callers must
// not modify them.
func (c *TokenCache) Validate(ctx context.Context, token string) (Claims, error) {
	if len(token) > c.v.maxBytes {
		return Claims{}, tokenErr(CodeTooLarge, "token exceeds the size limit")
	}
	if c.cfg.Off {
		c.n.misses.Add(1)
		return c.checked(c.v.Validate(ctx, token))
	}
	sum := c.digest(token)
	key := binary.LittleEndian.Uint64(sum[:8])
	if e, ok := c.valid.Get(key); ok && e.sum == sum && e.epoch == c.v.keyEpoch() {
		c.n.hits.Add(1)
		return c.recheck(e)
	}
	if e, ok := c.failed.Get(key); ok && e.sum == sum && e.version == c.v.keysVersion() {
		c.n.hits.Add(1)
		return Claims{}, e.err
	}
	c.n.misses.Add(1)
	return c.validate(ctx, token, sum, key)
}

// entryCost estimates a cached validation's memory: the decoded claims
// (metadata maps included) take a few times the token's length.
func entryCost(token string) int64 { return int64(512 + 4*len(token)) }

// digest is SHA-256(settings ‖ SHA-256(token)): every validation setting
// and the whole token.
func (c *TokenCache) digest(token string) [32]byte {
	// The token's bytes are only read; viewing them without a copy keeps
	// the hit path free of allocations.
	inner := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	var buf [64]byte
	copy(buf[:32], c.v.settings[:])
	copy(buf[32:], inner[:])
	return sha256.Sum256(buf[:])
}

// recheck applies the checks that depend on time and revocation to a cached
// validation.
func (c *TokenCache) recheck(e *validEntry) (Claims, error) {
	if !c.v.now().Before(e.claims.ExpiresAt.Add(e.leeway)) {
		return Claims{}, tokenErr(CodeExpired, "token expired")
	}
	return c.checked(e.claims, nil)
}

// checked adds the revocation check to a validation result.
func (c *TokenCache) checked(claims Claims, err error) (Claims, error) {
	if err != nil {
		return Claims{}, err
	}
	if c.marks.Revoked(claims.UserID, claims.IssuedAt) {
		return Claims{}, tokenErr(CodeRevoked, "token revoked")
	}
	return claims, nil
}

func (c *TokenCache) validate(ctx context.Context, token string, sum [32]byte, key uint64) (Claims, error) {
	// Both are read before validating: a key removed meanwhile makes the
	// new entry stale at once rather than keeping it alive.
	version, epoch := c.v.keysVersion(), c.v.keyEpoch()
	claims, err := c.v.Validate(ctx, token)
	c.closing.RLock()
	defer c.closing.RUnlock()
	if c.closed {
		return c.checked(claims, err)
	}
	if err != nil {
		if code := ErrorCode(err); code != "" && code != CodeNotYetValid {
			c.failed.SetWithTTL(key, &failedEntry{sum: sum, err: err, version: version}, 64, c.cfg.FailedTTL)
		}
		return Claims{}, err
	}
	e := &validEntry{sum: sum, claims: claims, leeway: c.v.issuers[claims.Issuer].Leeway, epoch: epoch}
	if ttl := min(c.cfg.MaxTTL, claims.ExpiresAt.Sub(c.v.now())); ttl > 0 && c.valid.SetWithTTL(key, e, entryCost(token), ttl) {
		// The set is buffered: waiting (a few microseconds, against the
		// tens a validation took) makes the next request with this token,
		// often already on its way, find it.
		c.valid.Wait()
	}
	return c.checked(claims, nil)
}
