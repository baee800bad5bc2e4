package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/avion/authnode/auth"
)

// feed collects what WatchChanges reports.
type feed struct {
	mu  sync.Mutex
	got []auth.Change
}

func (f *feed) apply(c auth.Change) {
	f.mu.Lock()
	f.got = append(f.got, c)
	f.mu.Unlock()
}

// waitFor polls until want has been reported after the first skip changes.
func (f *feed) waitFor(t *testing.T, skip int, want auth.Change) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		for i := skip; i < len(f.got); i++ {
			if f.got[i] == want {
				f.mu.Unlock()
				return i + 1
			}
		}
		f.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Fatalf("change %+v not reported; got %+v", want, f.got[skip:])
	return 0
}

func watch(t *testing.T, s *Store) *feed {
	t.Helper()
	f := &feed{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.WatchChanges(ctx, 10*time.Millisecond, f.apply) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchChanges ended with %v", err)
		}
	})
	f.waitFor(t, 0, auth.Change{All: true, Reset: true})
	return f
}

// TestChangeFeed: every kind of change, made by an import or by plain SQL,
// is reported by the feed of every driver.
func TestChangeFeed(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		mustImport(t, s, `roles:
  - name: editor
    permissions: [{resource: "posts:*", action: write}]
users:
  - {id: alice, roles: [editor]}
`, false)
		f := watch(t, s)
		ctx := context.Background()
		n := 0
		for _, step := range []struct {
			sql  string
			want auth.Change
		}{
			{`UPDATE users SET disabled = TRUE WHERE id = 'alice'`, auth.Change{UserID: "alice"}},
			{`INSERT INTO role_permissions (role, resource, action) VALUES ('editor', 'docs:*', 'read')`, auth.Change{Role: "editor"}},
			{`DELETE FROM user_roles WHERE user_id = 'alice'`, auth.Change{UserID: "alice"}},
			{`INSERT INTO users (id) VALUES ('bob')`, auth.Change{UserID: "bob"}},
			{`INSERT INTO api_keys (key_sha256, user_id, name) VALUES ('abc', 'bob', 'ci')`, auth.Change{UserID: "bob"}},
			{`UPDATE api_keys SET revoked = TRUE WHERE key_sha256 = 'abc'`, auth.Change{UserID: "bob"}},
			{`DELETE FROM roles WHERE name = 'editor'`, auth.Change{Role: "editor"}},
		} {
			if _, err := s.db.ExecContext(ctx, step.sql); err != nil {
				t.Fatalf("%s: %v", step.sql, err)
			}
			n = f.waitFor(t, n, step.want)
		}
		mustImport(t, s, "users:\n  - {id: carol, roles: []}\n", false)
		f.waitFor(t, n, auth.Change{UserID: "carol"})
	})
}

// TestChangeFeedResetsAfterReconnect: PostgreSQL does not keep
// notifications for a listener that is away, so after the listener's
// connection is cut the feed reports everything as changed.
func TestChangeFeedResetsAfterReconnect(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		if !s.db.d.dollarArgs {
			t.Log("SQLite keeps its change rows: nothing is lost while not polling")
			return
		}
		f := watch(t, s)
		ctx := context.Background()
		if _, err := s.db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		n := f.waitFor(t, 1, auth.Change{All: true, Reset: true})
		if _, err := s.db.ExecContext(ctx, `INSERT INTO users (id) VALUES ('dave')`); err != nil {
			t.Fatal(err)
		}
		f.waitFor(t, n, auth.Change{UserID: "dave"})
	})
}

func TestParseChange(t *testing.T) {
	for payload, want := range map[string]auth.Change{
		`{"user": "a"}`:  {UserID: "a"},
		`{"role": "r"}`:  {Role: "r"},
		`{"all": true}`:  {All: true},
		`{"user": null}`: {All: true},
		`{"user": ""}`:   {All: true},
		`garbage`:        {All: true},
		`{}`:             {All: true},
	} {
		if got := parseChange(payload); got != want {
			t.Errorf("parseChange(%s) = %+v, want %+v", payload, got, want)
		}
	}
}

func TestUsersWithRole(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		mustImport(t, s, "roles:\n  - {name: r, permissions: []}\nusers:\n  - {id: a, roles: [r]}\n  - {id: b, roles: [r]}\n  - {id: c, roles: []}\n", false)
		got, err := s.UsersWithRole(context.Background(), "r", 10)
		if err != nil || len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Fatalf("UsersWithRole = %v, %v", got, err)
		}
	})
}

// TestDisablingWithSQLRevokesTokens: a user disabled with plain SQL gets a
// watermark at the moment of the change, on both drivers.
func TestDisablingWithSQLRevokesTokens(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		mustImport(t, s, "users:\n  - {id: alice, roles: []}\n", false)
		ctx := context.Background()
		before := time.Now().Add(-time.Second)
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET disabled = TRUE WHERE id = 'alice'`); err != nil {
			t.Fatal(err)
		}
		p, err := s.UserPolicy(ctx, "alice")
		if err != nil || !p.Disabled || p.TokensRevokedBefore.Before(before) || p.TokensRevokedBefore.After(time.Now().Add(time.Second)) {
			t.Fatalf("after disabling: %+v, %v", p, err)
		}
		mark := p.TokensRevokedBefore
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET disabled = TRUE WHERE id = 'alice'`); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.UserPolicy(ctx, "alice"); !p.TokensRevokedBefore.Equal(mark) {
			t.Fatalf("an update that does not disable moved the watermark: %v → %v", mark, p.TokensRevokedBefore)
		}
	})
}
