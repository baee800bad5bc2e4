package node

import (
	"context"
	"errors"
	"sync"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
)

// ErrNoSource means the node was started without a source of truth.
var ErrNoSource = errors.New("node: no auth source configured")

// groupSpecs returns the configured groups plus auth's users group.
func (n *Node) groupSpecs() []GroupSpec {
	specs := n.cfg.Groups
	if n.cfg.Source != nil {
		specs = append(specs[:len(specs):len(specs)], GroupSpec{Name: auth.GroupUsers, Loader: auth.UserLoader(n.cfg.Source)})
	}
	return specs
}

// startAuth builds the authorizer over the users group.
func (n *Node) startAuth() error {
	if n.cfg.Source == nil {
		return nil
	}
	a, err := auth.NewAuthorizer(n.cache.Group(auth.GroupUsers), n.cfg.CacheMaxBytes/8)
	if err != nil {
		return err
	}
	n.authz = a
	return nil
}

// Authorize reports whether userID may do action on resource (see
// auth.Authorizer.Authorize).
func (n *Node) Authorize(ctx context.Context, userID, resource, action string, conditions map[string]string) (bool, error) {
	if n.authz == nil {
		return false, ErrNoSource
	}
	return n.authz.Authorize(ctx, userID, resource, action, conditions)
}

// InvalidateUser makes every member drop what it caches about userID: the
// owner first (so no other member can fetch the old policy from it again),
// then every other member at once. It returns how many members
// acknowledged within InvalidateTimeout; after it returns, every member
// that acknowledged answers from the new policy.
func (n *Node) InvalidateUser(ctx context.Context, userID string) (int, error) {
	if n.authz == nil {
		return 0, ErrNoSource
	}
	if err := shard.CheckKey(userID); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.InvalidateTimeout)
	defer cancel()
	gen := n.clock.Now()
	snap := n.Current()
	owner := snap.Owner(userID)
	acks := 0
	if n.invalidateOn(ctx, owner, userID, gen) == nil {
		acks++
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range snap.Members() {
		if m == owner {
			continue
		}
		wg.Go(func() {
			if n.invalidateOn(ctx, m, userID, gen) == nil {
				mu.Lock()
				acks++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acks, nil
}

func (n *Node) invalidateOn(ctx context.Context, member, userID string, gen hlc.Gen) error {
	if member == n.cfg.Name || member == "" {
		n.cache.Group(auth.GroupUsers).Invalidate(userID, gen)
		return nil
	}
	err := n.pool.Invalidate(ctx, member, auth.GroupUsers, userID, false, gen)
	if err != nil {
		n.log.Warn("invalidation not acknowledged", "member", member, "err", err)
	}
	return err
}
