package node_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/store"
	"github.com/avion/authnode/store/storetest"
)

// lazyPostgres starts one PostgreSQL server for the package's tests on
// first use; TestMain stops it.
type lazyPostgres struct {
	once  sync.Once
	admin string
	err   error
	stopF func()
}

var postgres lazyPostgres

func (p *lazyPostgres) url(t *testing.T) string {
	t.Helper()
	p.once.Do(func() { p.admin, p.stopF, p.err = storetest.StartPostgres() })
	if p.err != nil {
		t.Skipf("no PostgreSQL for this test: %v", p.err)
	}
	return storetest.Database(p.admin)(t)
}

func (p *lazyPostgres) stop() {
	if p.stopF != nil {
		p.stopF()
	}
}

// TestChangeFeedReachesEveryNode: a permission changed with plain SQL, with
// no admin call, reaches all three nodes of a cluster, on both sources.
func TestChangeFeedReachesEveryNode(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			var url, sqlDriver, dsn string
			if driver == "sqlite" {
				path := filepath.Join(t.TempDir(), "authnode.db")
				url, sqlDriver, dsn = "sqlite://"+path, "sqlite", path
			} else {
				url = postgres.url(t)
				sqlDriver, dsn = "pgx", url
			}
			src, err := store.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = src.Close() })
			importPolicy(t, src, clusterPolicy, false)
			db, err := sql.Open(sqlDriver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			nodes := nodetest.Start(t, 3, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.Source = src }})

			expectEverywhere(t, nodes, "alice", "posts:1", "write", true)
			start := time.Now()
			mustExec(t, db, `DELETE FROM user_roles WHERE user_id = 'alice'`)
			expectEverywhere(t, nodes, "alice", "posts:1", "write", false)
			t.Logf("%s: a user's role removed with SQL reached 3 nodes in %v", driver, time.Since(start).Round(time.Millisecond))

			expectEverywhere(t, nodes, "carol", "posts:1", "write", true)
			start = time.Now()
			mustExec(t, db, `UPDATE role_permissions SET action = 'read' WHERE role = 'editor' AND action = 'write'`)
			expectEverywhere(t, nodes, "carol", "posts:1", "write", false)
			t.Logf("%s: a role's permission changed with SQL reached 3 nodes in %v", driver, time.Since(start).Round(time.Millisecond))
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// expectEverywhere polls until every node answers the question with want.
func expectEverywhere(t *testing.T, nodes []*nodetest.Node, user, resource, action string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for {
			got, err := n.Authorize(context.Background(), user, resource, action, nil)
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Authorize(%s, %s, %s) = %v, %v; want %v", n.Name(), user, resource, action, got, err, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
