package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/store"
)

// stalledSource reads a user's policy, then waits for release before
// returning it: a load that read the old policy and is still in flight
// when the policy changes and is invalidated.
type stalledSource struct {
	*store.Store
	mu      sync.Mutex
	read    chan struct{} // closed once the stalled read has happened
	release chan struct{}
}

func (s *stalledSource) UserPolicy(ctx context.Context, userID string) (auth.UserPolicy, error) {
	p, err := s.Store.UserPolicy(ctx, userID)
	s.mu.Lock()
	read, release := s.read, s.release
	s.read = nil
	s.mu.Unlock()
	if read != nil {
		close(read)
		<-release
	}
	return p, err
}

// stall makes the next UserPolicy call wait; it returns a channel closed
// when that call has read the policy, and the function that releases it.
func (s *stalledSource) stall() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.read, s.release = make(chan struct{}), make(chan struct{})
	return s.read, func() { close(s.release) }
}

// TestLoadInFlightNeverResurrectsRevokedPolicy: many times over, a load of
// a user's policy reads the old policy, the policy changes and
// InvalidateUser returns while the load is still in flight, then the load
// finishes. No node may answer from the old policy after that.
func TestLoadInFlightNeverResurrectsRevokedPolicy(t *testing.T) {
	src := &stalledSource{Store: openStore(t, clusterPolicy)}
	nodes := nodetest.Start(t, 3, nodetest.Options{Config: func(_ int, cfg *node.Config) {
		cfg.Source = src
		cfg.ChangePoll = time.Hour // only InvalidateUser tells the nodes
	}})
	ctx := context.Background()
	const rounds = 60
	for i := range rounds {
		user := fmt.Sprintf("racer-%d", i)
		asker := nodes[i%3]
		importPolicy(t, src.Store, "users:\n  - {id: "+user+", roles: [editor]}\n", false)
		read, release := src.stall()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = asker.Authorize(ctx, user, "posts:1", "write", nil) // the load in flight
		}()
		<-read
		importPolicy(t, src.Store, "users:\n  - {id: "+user+", roles: []}\n", false)
		if _, err := nodes[(i+1)%3].InvalidateUser(ctx, user); err != nil {
			t.Fatal(err)
		}
		release()
		<-done
		for _, n := range nodes {
			if ok, err := n.Authorize(ctx, user, "posts:1", "write", nil); err != nil || ok {
				t.Fatalf("round %d: %s answers from the revoked policy: %v, %v", i, n.Name(), ok, err)
			}
		}
	}
}
