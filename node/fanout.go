package node

import (
	"context"
	"sync"
	"time"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/metrics"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport"
)

// memberCall is one member's part of a fan-out; ownerErr is the owner's
// result (nil for the owner's own call, and when there is no owner).
type memberCall func(ctx context.Context, member string, ownerErr error) error

// fanOut runs call for owner first (when owner is a member), within a
// third of InvalidateTimeout, then for every other member at once, within
// a full InvalidateTimeout of their own: an owner that hangs cannot use up
// the time the others need to relay to it or bypass it. call runs for this
// node too; it decides what to do locally. It returns how many members
// acknowledged and the owner's error.
func (n *Node) fanOut(parent context.Context, kind metrics.Kind, owner string, call memberCall) (transport.Acks, error) {
	start := time.Now()
	defer func() { n.obs.FannedOut(kind, time.Since(start)) }()
	members := n.Current().Members()
	acks := transport.Acks{Members: len(members)}
	var ownerErr error
	if owner != "" {
		octx, cancel := context.WithTimeout(parent, n.cfg.InvalidateTimeout/3)
		if ownerErr = n.callMember(octx, owner, call, nil); ownerErr == nil {
			acks.Acknowledged++
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(parent, n.cfg.InvalidateTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range members {
		if m == owner {
			continue
		}
		wg.Go(func() {
			if n.callMember(ctx, m, call, ownerErr) == nil {
				mu.Lock()
				acks.Acknowledged++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acks, ownerErr
}

func (n *Node) callMember(ctx context.Context, member string, call memberCall, ownerErr error) error {
	err := call(ctx, member, ownerErr)
	if err != nil {
		n.log.Warn("not acknowledged", "member", member, "err", err)
	}
	return err
}

// invalidateKey drops key of group on every member, the owner first (so no
// other member can fetch the old value from it again). It fails when the
// owner did not acknowledge. It implements auth.InvalidateFunc.
func (n *Node) invalidateKey(ctx context.Context, group, key string) error {
	_, err := n.invalidateKeys(ctx, key, group)
	return err
}

// invalidateKeys drops key of each group on every member, owner first.
// When the owner does not acknowledge, every other member is asked to pass
// the invalidation on to it, and stops asking the owner for the key if it
// cannot either: no member fetches the old value back from the owner.
func (n *Node) invalidateKeys(ctx context.Context, key string, groups ...string) (transport.Acks, error) {
	gen := n.clock.Now()
	defer func() {
		invs := make([]shard.Invalidation, len(groups))
		for i, g := range groups {
			invs[i] = shard.Invalidation{Group: g, Key: key, Gen: gen}
		}
		n.broadcast(transport.GossipState{Invalidations: invs})
	}()
	owner := n.route().Owner(key)
	return n.fanOut(ctx, metrics.KindKey, owner, func(ctx context.Context, member string, ownerErr error) error {
		for _, g := range groups {
			if err := n.invalidateOn(ctx, member, g, key, gen, owner, ownerErr); err != nil {
				return err
			}
		}
		return nil
	})
}

// invalidateOn drops key of group on member; when ownerErr says the owner
// missed it, with the relay request (or, here, by bypassing the owner).
func (n *Node) invalidateOn(ctx context.Context, member, group, key string, gen hlc.Gen, owner string, ownerErr error) error {
	switch {
	case member == n.cfg.Name:
		if ownerErr != nil {
			n.cache.Group(group).BypassOwner(key)
		}
		n.cache.Group(group).Invalidate(key, gen)
		n.obs.Invalidated(metrics.ChannelCall, 1)
		return nil
	case ownerErr != nil:
		return n.pool.InvalidateRelayed(ctx, member, group, key, owner, gen)
	}
	return n.pool.Invalidate(ctx, member, group, key, false, gen)
}

// invalidateAll drops every entry of every group on every member.
func (n *Node) invalidateAll(ctx context.Context) (transport.Acks, error) {
	gen := n.clock.Now()
	defer func() {
		var invs []shard.Invalidation
		for _, g := range n.cache.Groups() {
			invs = append(invs, shard.Invalidation{Group: g, All: true, Gen: gen})
		}
		n.broadcast(transport.GossipState{Invalidations: invs})
	}()
	return n.fanOut(ctx, metrics.KindAll, "", func(ctx context.Context, member string, _ error) error {
		for _, g := range n.cache.Groups() {
			if member == n.cfg.Name {
				n.cache.Group(g).InvalidateAll(gen)
				n.obs.Invalidated(metrics.ChannelCall, 1)
				continue
			}
			if err := n.pool.Invalidate(ctx, member, g, "", true, gen); err != nil {
				return err
			}
		}
		return nil
	})
}
