package node

import (
	"context"
	"time"

	"github.com/avion/authnode/auth"
)

// changeFeed is a source that reports its own changes; *store.Store
// implements it.
type changeFeed interface {
	// WatchChanges calls apply for every change until ctx ends, starting
	// with (and after any possible loss, repeating) auth.Change{All: true}.
	WatchChanges(ctx context.Context, poll time.Duration, apply func(auth.Change)) error
	// UsersWithRole returns up to limit users holding role.
	UsersWithRole(ctx context.Context, role string, limit int) ([]string, error)
}

// maxRoleFanout is the most users a role change invalidates one by one;
// a role held by more invalidates everything.
const maxRoleFanout = 1000

// watchChanges applies the source's change feed until ctx ends, so a
// permission changed in the source (by an import or plain SQL) reaches
// every node without an admin call.
func (n *Node) watchChanges(ctx context.Context) {
	feed, ok := n.cfg.Source.(changeFeed)
	if !ok {
		return
	}
	_ = feed.WatchChanges(ctx, n.cfg.ChangePoll, func(c auth.Change) { n.applyChange(ctx, feed, c) })
}

// applyChange invalidates what c names. Every node hears every change and
// drops its own copies at once; the owner of a changed user, or for a
// change of everything every node, then also drops them on every member,
// after its own drop, so that no member keeps a hot copy it fetched from an
// owner that had not heard the change yet. A reset (the feed started or
// reconnected: this node may have missed changes the others heard) drops
// this node's entries only.
func (n *Node) applyChange(ctx context.Context, feed changeFeed, c auth.Change) {
	switch {
	case c.Reset:
		n.cache.Drop()
		if n.auth.authz != nil {
			n.auth.authz.Clear()
		}
		n.syncWatermarksSoon()
	case c.UserID != "":
		n.userChanged(ctx, c.UserID)
	case c.Role != "":
		users, err := feed.UsersWithRole(ctx, c.Role, maxRoleFanout)
		if err != nil || len(users) >= maxRoleFanout {
			n.everythingChanged(ctx)
			return
		}
		for _, u := range users {
			n.userChanged(ctx, u)
		}
	default:
		n.everythingChanged(ctx)
	}
}

// userChanged drops userID's policy here and, on its owner, everywhere;
// its watermark may have moved too, so the owner pushes it.
func (n *Node) userChanged(ctx context.Context, userID string) {
	if auth.CheckUserID(userID) != nil {
		return
	}
	n.cache.Group(auth.GroupUsers).Invalidate(userID, n.clock.Now())
	if n.route().Owner(userID) != n.cfg.Name {
		return
	}
	if acks, err := n.invalidateKeys(ctx, userID, auth.GroupUsers); err != nil || acks.Acknowledged < acks.Members {
		n.log.Warn("change feed: not every member acknowledged", "acknowledged", acks.Acknowledged, "members", acks.Members)
	}
	n.pushWatermark(ctx, userID)
}

// everythingChanged drops every entry of every group here and on every
// member.
func (n *Node) everythingChanged(ctx context.Context) {
	gen := n.clock.Now()
	for _, g := range n.cache.Groups() {
		n.cache.Group(g).InvalidateAll(gen)
	}
	if n.auth.authz != nil {
		n.auth.authz.Clear()
	}
	if _, err := n.invalidateAll(ctx); err != nil {
		n.log.Warn("change feed: dropping everything on every member", "err", err)
	}
	n.syncWatermarksSoon()
}

// syncWatermarksSoon asks the watermark goroutine to read the watermarks
// again now.
func (n *Node) syncWatermarksSoon() {
	select {
	case n.syncNow <- struct{}{}:
	default: // a read is already pending
	}
}
