package node

import (
	"context"
	"sync"

	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport"
)

// fanOut runs call for owner first (when owner is a member), then for every
// other member at once, all within InvalidateTimeout. call runs for this
// node too; it decides what to do locally. It returns how many members
// acknowledged and the owner's error.
func (n *Node) fanOut(ctx context.Context, owner string, call func(ctx context.Context, member string) error) (transport.Acks, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.InvalidateTimeout)
	defer cancel()
	members := n.Current().Members()
	acks := transport.Acks{Members: len(members)}
	var ownerErr error
	if owner != "" {
		if ownerErr = n.callMember(ctx, owner, call); ownerErr == nil {
			acks.Acknowledged++
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range members {
		if m == owner {
			continue
		}
		wg.Go(func() {
			if n.callMember(ctx, m, call) == nil {
				mu.Lock()
				acks.Acknowledged++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acks, ownerErr
}

func (n *Node) callMember(ctx context.Context, member string, call func(ctx context.Context, member string) error) error {
	err := call(ctx, member)
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
func (n *Node) invalidateKeys(ctx context.Context, key string, groups ...string) (transport.Acks, error) {
	gen := n.clock.Now()
	defer func() {
		invs := make([]shard.Invalidation, len(groups))
		for i, g := range groups {
			invs[i] = shard.Invalidation{Group: g, Key: key, Gen: gen}
		}
		n.broadcast(transport.GossipState{Invalidations: invs})
	}()
	return n.fanOut(ctx, n.route().Owner(key), func(ctx context.Context, member string) error {
		for _, g := range groups {
			if member == n.cfg.Name {
				n.cache.Group(g).Invalidate(key, gen)
				continue
			}
			if err := n.pool.Invalidate(ctx, member, g, key, false, gen); err != nil {
				return err
			}
		}
		return nil
	})
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
	return n.fanOut(ctx, "", func(ctx context.Context, member string) error {
		for _, g := range n.cache.Groups() {
			if member == n.cfg.Name {
				n.cache.Group(g).InvalidateAll(gen)
				continue
			}
			if err := n.pool.Invalidate(ctx, member, g, "", true, gen); err != nil {
				return err
			}
		}
		return nil
	})
}
