package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/metrics"
	"github.com/avion/authnode/transport"
)

// The node serves the public and admin APIs.
var (
	_ transport.Service = (*Node)(nil)
	_ transport.Admin   = (*Node)(nil)
)

// ValidateToken validates token through this node's validation cache and
// its replica of the revocation watermarks (no network hop). Until the
// watermarks are read from the source it answers unavailable: it could
// accept a revoked token.
func (n *Node) ValidateToken(ctx context.Context, token string) (_ auth.Claims, err error) {
	start := time.Now()
	defer func() { n.observe(metrics.Validate, start, err) }()
	if n.auth.tokens == nil {
		return auth.Claims{}, errNoValidator
	}
	n.cache.CheckPause()
	if !n.auth.marks.Loaded() {
		return auth.Claims{}, errNoWatermarks
	}
	return n.auth.tokens.Validate(ctx, token)
}

// RevokeTokens stores userID's watermark (before; zero means now) in the
// source, then raises it on this node and pushes it to every member.
// Tokens of the user issued before the stored watermark stop validating on
// every member that acknowledged; the others read it from the source
// within WatermarkSync.
func (n *Node) RevokeTokens(ctx context.Context, userID string, before time.Time) (_ transport.Revocation, err error) {
	start := time.Now()
	defer func() { n.observe(metrics.Revoke, start, err) }()
	if err := n.needSource(); err != nil {
		return transport.Revocation{}, err
	}
	if err := auth.CheckUserID(userID); err != nil {
		return transport.Revocation{}, err
	}
	if before.IsZero() {
		before = n.cfg.Now()
	}
	mark, err := n.cfg.Source.RevokeTokens(ctx, userID, before)
	if err != nil {
		return transport.Revocation{}, auth.Unavailable(err)
	}
	acks := n.raiseEverywhere(ctx, userID, mark)
	n.log.Info("tokens revoked", "request_id", transport.RequestID(ctx), "user", userID, "before", mark, "acknowledged", acks.Acknowledged, "members", acks.Members)
	return transport.Revocation{Acks: acks, Watermark: mark.UTC()}, nil
}

// raiseEverywhere raises userID's watermark to mark here and on every
// member, by direct call and by gossip.
func (n *Node) raiseEverywhere(ctx context.Context, userID string, mark time.Time) transport.Acks {
	acks, _ := n.fanOut(ctx, metrics.KindRevoke, "", func(ctx context.Context, member string, _ error) error {
		if member == n.cfg.Name {
			n.auth.marks.Raise(userID, mark)
			return nil
		}
		return n.pool.Revoke(ctx, member, userID, mark)
	})
	n.broadcast(transport.GossipState{Revocations: map[string]time.Time{userID: mark}})
	return acks
}

// pushWatermark reads userID's watermark from the source and, when it has
// one, raises it everywhere: disabling a user revokes its tokens in the
// source, and every node must honour that at once, not at its next read.
func (n *Node) pushWatermark(ctx context.Context, userID string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := n.cfg.Source.UserPolicy(ctx, userID)
	if err != nil {
		n.log.Warn("reading a user's watermark", "user", userID, "err", err)
		n.syncWatermarksSoon()
		return
	}
	if !p.TokensRevokedBefore.IsZero() && n.auth.marks.Get(userID).Before(p.TokensRevokedBefore) {
		n.raiseEverywhere(ctx, userID, p.TokensRevokedBefore)
	}
}

// Authorize reports whether userID may do action on resource (see
// auth.Authorizer.Authorize).
func (n *Node) Authorize(ctx context.Context, userID, resource, action string, conditions map[string]string) (_ bool, err error) {
	start := time.Now()
	defer func() { n.observe(metrics.Authorize, start, err) }()
	if err := n.needSource(); err != nil {
		return false, err
	}
	return n.auth.authz.Authorize(ctx, userID, resource, action, conditions)
}

// VerifyAPIKey checks an API key (see auth.APIKeys.Verify).
func (n *Node) VerifyAPIKey(ctx context.Context, key string) (_ auth.APIKeyInfo, err error) {
	start := time.Now()
	defer func() { n.observe(metrics.VerifyKey, start, err) }()
	if err := n.needSource(); err != nil {
		return auth.APIKeyInfo{}, err
	}
	return n.auth.keys.Verify(ctx, key)
}

// GetSession returns userID's session.
func (n *Node) GetSession(ctx context.Context, userID string) (_ auth.Session, err error) {
	start := time.Now()
	defer func() { n.observe(metrics.GetSession, start, err) }()
	if err := n.needSource(); err != nil {
		return auth.Session{}, err
	}
	return n.auth.sessions.Get(ctx, userID)
}

// PutSession stores userID's session in the source, then drops the cached
// copy on every member.
func (n *Node) PutSession(ctx context.Context, userID string, data json.RawMessage, expiresAt time.Time) (err error) {
	start := time.Now()
	defer func() { n.observe(metrics.PutSession, start, err) }()
	if err := n.needSource(); err != nil {
		return err
	}
	return n.auth.sessions.Put(ctx, userID, data, expiresAt)
}

// DeleteSession removes userID's session.
func (n *Node) DeleteSession(ctx context.Context, userID string) (err error) {
	start := time.Now()
	defer func() { n.observe(metrics.DeleteSession, start, err) }()
	if err := n.needSource(); err != nil {
		return err
	}
	return n.auth.sessions.Delete(ctx, userID)
}

// InvalidateUser makes every member drop what it caches about userID (its
// policy, hence its memoised decisions and its API keys' checks, and its
// session): the owner first, then every other member at once. After it
// returns, every member that acknowledged answers from the new state.
func (n *Node) InvalidateUser(ctx context.Context, userID string) (_ transport.Acks, err error) {
	start := time.Now()
	defer func() { n.observe(metrics.Invalidate, start, err) }()
	if err := n.needSource(); err != nil {
		return transport.Acks{}, err
	}
	if err := auth.CheckUserID(userID); err != nil {
		return transport.Acks{}, err
	}
	acks, _ := n.invalidateKeys(ctx, userID, auth.GroupUsers, auth.GroupSessions)
	n.pushWatermark(ctx, userID)
	n.log.Info("user invalidated", "request_id", transport.RequestID(ctx), "user", userID, "acknowledged", acks.Acknowledged, "members", acks.Members)
	return acks, nil
}

// Warmup loads the given users' policies into the cluster cache (through
// their owners), or with none given the recent most recently active users
// the source knows. It returns how many loaded.
func (n *Node) Warmup(ctx context.Context, userIDs []string, recent int) (int, error) {
	if err := n.needSource(); err != nil {
		return 0, err
	}
	if len(userIDs) == 0 && recent > 0 {
		r, ok := n.cfg.Source.(interface {
			RecentUsers(ctx context.Context, limit int) ([]string, error)
		})
		if !ok {
			return 0, fmt.Errorf("%w: the source cannot list recent users", auth.ErrInvalidInput)
		}
		var err error
		if userIDs, err = r.RecentUsers(ctx, recent); err != nil {
			return 0, auth.Unavailable(err)
		}
	}
	loaded := 0
	for _, u := range userIDs {
		if auth.CheckUserID(u) != nil {
			return loaded, fmt.Errorf("%w: user id %q", auth.ErrInvalidInput, u)
		}
		if _, err := n.auth.authz.Authorize(ctx, u, "", "", nil); err != nil {
			return loaded, err
		}
		loaded++
	}
	return loaded, nil
}

// PreloadJWKS refreshes every issuer's JWKS now and returns the key count
// per issuer.
func (n *Node) PreloadJWKS(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	if n.cfg.Validator == nil {
		return out, nil
	}
	for _, is := range n.cfg.Validator.Issuers() {
		if is.JWKS == nil {
			out[is.Issuer] = len(is.Keys)
			continue
		}
		if err := is.JWKS.Refresh(ctx); err != nil {
			return out, auth.Unavailable(fmt.Errorf("issuer %s: %w", is.Issuer, err))
		}
		out[is.Issuer] = len(is.JWKS.Keys())
	}
	return out, nil
}

// DropUser is InvalidateUser for the admin API.
func (n *Node) DropUser(ctx context.Context, userID string) (transport.Acks, error) {
	return n.InvalidateUser(ctx, userID)
}

// DropAll drops every entry of every group on every member, and this
// node's memoised decisions and validations.
func (n *Node) DropAll(ctx context.Context) (transport.Acks, error) {
	acks, _ := n.invalidateAll(ctx)
	if n.auth.authz != nil {
		n.auth.authz.Clear()
	}
	if n.auth.tokens != nil {
		n.auth.tokens.Clear()
	}
	n.log.Info("cache dropped on every member", "request_id", transport.RequestID(ctx), "acknowledged", acks.Acknowledged, "members", acks.Members)
	return acks, nil
}

// ClusterInfo describes the cluster as this node sees it.
func (n *Node) ClusterInfo() transport.ClusterInfo {
	snap := n.Current()
	info := transport.ClusterInfo{
		Node: n.cfg.Name, RingEpoch: snap.Epoch(), RingFingerprint: strconv.FormatUint(snap.Fingerprint(), 16),
		PartitionsOwned: snap.PartitionsOwned(n.cfg.Name), Groups: map[string]transport.GroupInfo{}, CacheMode: n.cfg.CacheMode,
		Redis: n.redisInfo(),
	}
	suspects := n.cache.Suspects()
	for name, m := range n.cluster.View().Members {
		state := "alive"
		if slices.Contains(suspects, name) {
			state = "suspect"
		}
		info.Members = append(info.Members, transport.MemberInfo{Name: name, State: state, Address: m.GossipAddr, PeerAddr: m.PeerAddr, Zone: m.Zone})
	}
	slices.SortFunc(info.Members, func(a, b transport.MemberInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, g := range n.cache.Groups() {
		entries, bytes := n.cache.Group(g).Size()
		info.Groups[g] = transport.GroupInfo{Entries: entries, Bytes: bytes}
	}
	return info
}
