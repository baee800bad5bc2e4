package node_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/store"
)

const clusterPolicy = `roles:
  - name: editor
    permissions:
      - {resource: "posts:*", action: write}
      - {resource: "orgs:42:**", action: "*", conditions: {region: eu}}
  - name: viewer
    permissions:
      - {resource: "**", action: read}
users:
  - {id: alice, roles: [editor]}
  - {id: bob, roles: [viewer], disabled: true}
  - {id: carol, roles: [viewer, editor]}
  - {id: dave, roles: []}
`

func openStore(t testing.TB, policy string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "authnode.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	importPolicy(t, s, policy, false)
	return s
}

func importPolicy(t testing.TB, s *store.Store, policy string, replace bool) {
	t.Helper()
	p, err := store.DecodePolicy(strings.NewReader(policy))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImportPolicy(context.Background(), p, replace, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// direct evaluates the policy straight from the store, bypassing the cache.
func direct(t *testing.T, s *store.Store, user, resource, action string, conds map[string]string) bool {
	t.Helper()
	p, err := s.UserPolicy(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	set, err := auth.Compile(p.Disabled || !p.Found, p.Permissions)
	if err != nil {
		t.Fatal(err)
	}
	return set.Allows(resource, action, conds)
}

// TestClusterAuthorization: on a 3-node cluster, for 1,000 random questions,
// every node answers as direct evaluation of the policy does, each user's
// policy is loaded from the store at most once, and after the policy changes
// and InvalidateUser returns, every node answers from the new policy.
func TestClusterAuthorization(t *testing.T) {
	src := openStore(t, clusterPolicy)
	nodes := nodetest.Start(t, 3, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.Source = src }})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 8))
	users := []string{"alice", "bob", "carol", "dave", "nobody"}
	resources := []string{"posts:1", "posts:1:x", "orgs:42:a", "orgs:42:a:b", "orgs:43:a", "x"}
	actions := []string{"read", "write", "delete"}
	conds := []map[string]string{nil, {"region": "eu"}, {"region": "us"}}
	loadsBefore := src.Requests()[store.KindUserPolicy]
	for range 1000 {
		u, res, act, c := users[r.IntN(len(users))], resources[r.IntN(len(resources))], actions[r.IntN(len(actions))], conds[r.IntN(len(conds))]
		want := direct(t, src, u, res, act, c)
		for _, n := range nodes {
			got, err := n.Authorize(ctx, u, res, act, c)
			if err != nil || got != want {
				t.Fatalf("%s: Authorize(%s, %s, %s, %v) = %v, %v; the policy says %v", n.Name(), u, res, act, c, got, err, want)
			}
		}
	}
	// direct() itself reads the store once per question; subtract those.
	if loads := src.Requests()[store.KindUserPolicy] - loadsBefore - 1000; loads > uint64(len(users)) {
		t.Fatalf("the cluster loaded user policies %d times for %d users", loads, len(users))
	}

	if ok, _ := nodes[1].Authorize(ctx, "dave", "posts:1", "write", nil); ok {
		t.Fatal("dave may write before the change")
	}
	importPolicy(t, src, "users:\n  - {id: dave, roles: [editor]}\n", false)
	acks, err := nodes[2].InvalidateUser(ctx, "dave")
	if err != nil || acks.Acknowledged != 3 || acks.Members != 3 {
		t.Fatalf("InvalidateUser = %+v, %v", acks, err)
	}
	for _, n := range nodes {
		if ok, err := n.Authorize(ctx, "dave", "posts:1", "write", nil); err != nil || !ok {
			t.Fatalf("%s still answers from the old policy: %v, %v", n.Name(), ok, err)
		}
	}
	importPolicy(t, src, "users:\n  - {id: alice, roles: [editor], disabled: true}\n", false)
	if acks, _ := nodes[0].InvalidateUser(ctx, "alice"); acks.Acknowledged != 3 {
		t.Fatalf("%+v acks", acks)
	}
	for _, n := range nodes {
		if ok, _ := n.Authorize(ctx, "alice", "posts:1", "write", nil); ok {
			t.Fatalf("%s allows a disabled user", n.Name())
		}
	}
}

func TestAuthorizeWithoutSource(t *testing.T) {
	nodes := nodetest.Start(t, 1, nodetest.Options{})
	if _, err := nodes[0].Authorize(context.Background(), "a", "b", "c", nil); err == nil {
		t.Fatal("Authorize without a source succeeded")
	}
	if _, err := nodes[0].InvalidateUser(context.Background(), "a"); err == nil {
		t.Fatal("InvalidateUser without a source succeeded")
	}
}
