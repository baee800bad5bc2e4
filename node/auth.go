package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/metrics"
	"github.com/avion/authnode/shard"
)

// ErrNoSource means the node was started without a source of truth.
var ErrNoSource = fmt.Errorf("%w: node: no auth source configured", auth.ErrUnavailable)

// errNoValidator means the node was started without token issuers.
var errNoValidator = fmt.Errorf("%w: node: no token issuers configured", auth.ErrUnavailable)

// errNoWatermarks means the revocation watermarks are not loaded yet.
var errNoWatermarks = fmt.Errorf("%w: node: revocation watermarks not loaded yet", auth.ErrUnavailable)

// authParts are the node's auth services, built over its cache groups.
type authParts struct {
	marks    *auth.Watermarks // always present: peers push revocations
	tokens   *auth.TokenCache // nil without a Validator
	authz    *auth.Authorizer // the rest nil without a Source
	keys     *auth.APIKeys
	sessions *auth.Sessions
}

// groupSpecs returns the configured groups plus auth's groups.
func (n *Node) groupSpecs() []GroupSpec {
	specs := n.cfg.Groups
	if src := n.cfg.Source; src != nil {
		ttl := n.cfg.AuthTTL
		specs = append(specs[:len(specs):len(specs)],
			GroupSpec{Name: auth.GroupUsers, Loader: auth.UserLoader(src), TTL: ttl},
			GroupSpec{Name: auth.GroupAPIKeys, Loader: auth.APIKeyLoader(src), TTL: ttl},
			GroupSpec{Name: auth.GroupSessions, Loader: auth.SessionLoader(src, n.cfg.Now), TTL: ttl})
	}
	return specs
}

// startAuth builds the token cache and, with a source, the authorizer, API
// keys and sessions over their groups (or straight over the source in cache
// mode off).
func (n *Node) startAuth() error {
	n.auth.marks = auth.NewWatermarks()
	if v := n.cfg.Validator; v != nil {
		tc := n.cfg.TokenCache
		tc.Off = tc.Off || n.cfg.CacheMode == ModeOff
		t, err := auth.NewTokenCache(v, n.auth.marks, tc)
		if err != nil {
			return err
		}
		n.auth.tokens = t
	}
	if n.cfg.Source == nil {
		n.auth.marks.SetLoaded()
		return nil
	}
	memo := n.cfg.CacheMaxBytes / 8
	if n.cfg.CacheMode == ModeOff {
		memo = 0
	}
	a, err := auth.NewAuthorizer(n.authCache(auth.GroupUsers), memo, n.auth.marks)
	if err != nil {
		return err
	}
	n.auth.authz = a
	n.auth.keys = auth.NewAPIKeys(n.authCache(auth.GroupAPIKeys), a, n.cfg.Now)
	n.auth.sessions = auth.NewSessions(n.authCache(auth.GroupSessions), n.cfg.Source, n.invalidateKey, n.cfg.Now)
	return nil
}

// authCache is what auth reads group through: the cache group, or in cache
// mode off the group's loader itself.
func (n *Node) authCache(group string) auth.Cache {
	if n.cfg.CacheMode != ModeOff {
		return n.cache.Group(group)
	}
	for _, spec := range n.groupSpecs() {
		if spec.Name == group {
			if n.direct == nil {
				n.direct = map[string]*atomic.Uint64{}
			}
			n.direct[group] = new(atomic.Uint64)
			return direct{loader: spec.Loader, n: n, loads: n.direct[group]}
		}
	}
	return nil
}

// direct loads every get from the source: cache mode off.
type direct struct {
	loader shard.Loader
	n      *Node
	loads  *atomic.Uint64 // every get: the misses of cache mode off
}

// Get loads key. Every answer is fresh, so all carry generation zero: no
// answer is ever older than another (API keys compare generations).
func (d direct) Get(ctx context.Context, key string) (shard.Entry, error) {
	d.loads.Add(1)
	v, err := d.loader.Load(ctx, key)
	if err != nil {
		return shard.Entry{}, err
	}
	return shard.Entry{Value: v.Bytes, Expires: d.n.cfg.Now()}, nil
}

// flushed runs after the cache was flushed because this node may have
// missed invalidations (a pause, a silence): it may have missed
// revocations too, so no token is validated until the watermarks are read
// again, and memoised decisions go.
func (n *Node) flushed() {
	if n.cfg.Source == nil {
		return
	}
	n.auth.marks.SetStale()
	if n.auth.authz != nil {
		n.auth.authz.Clear()
	}
	n.syncWatermarksSoon()
}

// closeAuth releases the auth caches.
func (n *Node) closeAuth() {
	if n.auth.tokens != nil {
		n.auth.tokens.Close()
	}
	if n.auth.authz != nil {
		n.auth.authz.Close()
	}
}

// syncWatermarks reads every watermark that still matters from the source
// at start and every WatermarkSync until ctx ends: the second channel
// besides the peer push, and what makes a restarted node know earlier
// revocations. The node is not ready before the first read succeeds.
func (n *Node) syncWatermarks(ctx context.Context) {
	tick := time.NewTicker(n.cfg.WatermarkSync)
	defer tick.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-retry.C:
		case <-n.syncNow:
		}
		if err := n.readWatermarks(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("reading the revocation watermarks from the source", "loaded_before", n.auth.marks.Loaded(), "err", err)
			retry.Reset(min(time.Second, n.cfg.WatermarkSync))
			continue
		}
		n.cleanupSource(ctx)
	}
}

// cleanupInterval is how often a node asks the source to delete expired
// sessions and watermarks that no longer matter. Every node does; the
// deletes are idempotent.
const cleanupInterval = 10 * time.Minute

// cleanupSource runs the source's cleanup when it is due.
func (n *Node) cleanupSource(ctx context.Context) {
	c, ok := n.cfg.Source.(interface {
		Cleanup(ctx context.Context, now time.Time, maxTokenLifetime time.Duration) error
	})
	now := n.cfg.Now()
	if !ok || now.Sub(n.lastCleanup) < cleanupInterval {
		return
	}
	n.lastCleanup = now
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Cleanup(ctx, now, n.watermarkHorizon()); err != nil {
		n.log.Warn("source cleanup", "err", err)
	}
}

func (n *Node) readWatermarks(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cutoff := n.cfg.Now().Add(-n.watermarkHorizon())
	marks, err := n.cfg.Source.Watermarks(ctx, cutoff)
	if err != nil {
		return err
	}
	n.auth.marks.Merge(marks)
	n.auth.marks.Prune(cutoff)
	if !n.auth.marks.Loaded() {
		n.auth.marks.SetLoaded()
		n.log.Info("revocation watermarks loaded", "users", n.auth.marks.Len())
	}
	return nil
}

// watermarkHorizon is how long a watermark matters: a token it revokes
// validates at most until its iat plus its issuer's lifetime and leeway.
func (n *Node) watermarkHorizon() time.Duration {
	h := n.cfg.MaxTokenLifetime
	if v := n.cfg.Validator; v != nil {
		for _, is := range v.Issuers() {
			h = max(h, is.MaxLifetime+is.Leeway)
		}
	}
	return h
}

// runJWKS keeps every issuer's key set fresh until ctx ends.
func (n *Node) runJWKS(ctx context.Context) {
	if n.cfg.Validator == nil {
		return
	}
	for _, is := range n.cfg.Validator.Issuers() {
		if is.JWKS != nil {
			is.JWKS.OnFetch(func(d time.Duration, err error) { n.obs.Observe(metrics.RefreshJWKS, d, err != nil) })
			n.tasks.Go(func() { is.JWKS.Run(ctx) })
		}
	}
}

// closeJWKS cancels fetches in flight.
func (n *Node) closeJWKS() {
	if n.cfg.Validator == nil {
		return
	}
	for _, is := range n.cfg.Validator.Issuers() {
		if is.JWKS != nil {
			is.JWKS.Close()
		}
	}
}

// needSource fails when the node has no source.
func (n *Node) needSource() error {
	if n.auth.authz == nil {
		return ErrNoSource
	}
	return nil
}
