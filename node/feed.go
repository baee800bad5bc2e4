package node

import (
	"context"
	"sync"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/metrics"
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
	started := false
	_ = feed.WatchChanges(ctx, n.cfg.ChangePoll, func(c auth.Change) {
		if c.Reset {
			n.feedReset(started)
			started = true
			return
		}
		n.applyChange(ctx, feed, c)
	})
}

// feedReset handles a (re)start of the change feed: changes made before it
// may never have been heard here. Entries are dropped either way. After a
// reconnect, or at start without seeds (a node alone: no other node can
// have heard the changes and deleted the Redis copies), copies kept
// outside the cache from before are distrusted too (a Flush raises Known
// for every key). A node that joins a cluster gets what its peers heard
// through gossip, and their Redis deletes have landed.
func (n *Node) feedReset(started bool) {
	if started || len(n.cfg.Join) == 0 {
		n.cache.Flush("the change feed (re)started: changes may have been missed")
		return
	}
	n.cache.Drop()
	if n.auth.authz != nil {
		n.auth.authz.Clear()
	}
}

// applyChange invalidates what c names. Every node hears every change and
// drops its own copies at once; the owner of a changed user, or for a
// change of everything every node, then also drops them on every member,
// after its own drop, so that no member keeps a hot copy it fetched from an
// owner that had not heard the change yet.
func (n *Node) applyChange(ctx context.Context, feed changeFeed, c auth.Change) {
	switch {
	case c.UserID != "":
		n.userChanged(ctx, c.UserID)
	case c.Role != "":
		users, err := feed.UsersWithRole(ctx, c.Role, maxRoleFanout)
		if err != nil || len(users) >= maxRoleFanout {
			n.everythingChanged(ctx)
			return
		}
		n.usersChanged(ctx, users)
	default:
		n.everythingChanged(ctx)
	}
}

// roleFanout bounds how many users of a changed role are handled at once:
// one slow member must not hold up the rest of the feed for long.
const roleFanout = 16

// usersChanged is userChanged for many users, roleFanout at a time.
func (n *Node) usersChanged(ctx context.Context, users []string) {
	sem := make(chan struct{}, roleFanout)
	var wg sync.WaitGroup
	for _, u := range users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n.userChanged(ctx, u)
		})
	}
	wg.Wait()
}

// userChanged drops userID's policy here and, on its owner, everywhere;
// its watermark may have moved too, so the owner pushes it.
func (n *Node) userChanged(ctx context.Context, userID string) {
	if auth.CheckUserID(userID) != nil {
		return
	}
	gen := n.clock.Now()
	n.cache.Group(auth.GroupUsers).Invalidate(userID, gen)
	n.obs.Invalidated(metrics.ChannelCall, 1)
	if owner := n.route().Owner(userID); owner != n.cfg.Name {
		// The owner hears the change too, unless its listener is down:
		// tell it, so this node cannot fetch the old policy back from it.
		ctx, cancel := context.WithTimeout(ctx, n.cfg.InvalidateTimeout)
		defer cancel()
		if err := n.pool.Invalidate(ctx, owner, auth.GroupUsers, userID, false, gen); err != nil {
			n.cache.Group(auth.GroupUsers).BypassOwner(userID)
		}
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
		n.obs.Invalidated(metrics.ChannelCall, 1)
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
