package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// drivers lists how the suite opens a fresh store; PostgreSQL joins it with
// its driver.
var drivers = map[string]func(t *testing.T) string{
	"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "authnode.db") },
}

// forEachDriver runs test against a fresh store of every driver.
func forEachDriver(t *testing.T, test func(t *testing.T, s *Store, url string)) {
	for name, url := range drivers {
		t.Run(name, func(t *testing.T) {
			u := url(t)
			s, err := Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			test(t, s, u)
		})
	}
}

func mustImport(t *testing.T, s *Store, yaml string, replace bool) {
	t.Helper()
	p, err := DecodePolicy(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImportPolicy(context.Background(), p, replace, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func sha(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func TestMigrationsAreIdempotentAndLocked(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, url string) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 { // replicas starting together
			wg.Go(func() {
				again, err := Open(context.Background(), url)
				if err == nil {
					err = again.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a concurrent Open failed: %v", err)
			}
		}
		files, _ := fs.Glob(migrations, "migrations/"+s.db.d.name+"/*.sql")
		var versions int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&versions); err != nil || versions != len(files) || versions < 2 {
			t.Fatalf("schema_migrations holds %d rows, %v; want one per migration (%d)", versions, err, len(files))
		}
	})
}

func TestUserPolicy(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		before := time.Now()
		mustImport(t, s, example, false)
		ctx := context.Background()
		alice, err := s.UserPolicy(ctx, "alice")
		if err != nil || !alice.Found || alice.Disabled || len(alice.Permissions) != 2 {
			t.Fatalf("alice = %+v, %v", alice, err)
		}
		if alice.Permissions[1].Conditions["region"] != "eu" || len(alice.Permissions[0].Conditions) != 0 {
			t.Fatalf("alice's permissions: %+v", alice.Permissions)
		}
		bob, _ := s.UserPolicy(ctx, "bob")
		if !bob.Found || !bob.Disabled || bob.TokensRevokedBefore.Before(before) {
			t.Fatalf("a disabled user's tokens are not revoked: %+v", bob)
		}
		if nobody, err := s.UserPolicy(ctx, "nobody"); err != nil || nobody.Found {
			t.Fatalf("unknown user = %+v, %v", nobody, err)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		mustImport(t, s, example+"  - {key: ak_test_revoked_0000000, user: alice, name: old, revoked: true}\n", false)
		ctx := context.Background()
		k, err := s.APIKey(ctx, sha("ak_live_0123456789abcdef"))
		if err != nil || !k.Found || k.UserID != "alice" || k.Name != "ci" || len(k.Scopes) != 1 || k.ExpiresAt.Year() != 2027 || k.Revoked {
			t.Fatalf("APIKey = %+v, %v", k, err)
		}
		if r, _ := s.APIKey(ctx, sha("ak_test_revoked_0000000")); !r.Found || !r.Revoked {
			t.Fatalf("revoked key = %+v", r)
		}
		if none, err := s.APIKey(ctx, sha("unknown-key-0000000")); err != nil || none.Found {
			t.Fatalf("unknown key = %+v, %v", none, err)
		}
		var plain int
		_ = s.db.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE key_sha256 LIKE 'ak_%'`).Scan(&plain)
		if plain != 0 {
			t.Fatal("a plaintext key reached the database")
		}
	})
}

func TestSessions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		if err := s.PutSession(ctx, "alice", json.RawMessage(`{"cart":[1,2]}`), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSession(ctx, "alice", json.RawMessage(`{"cart":[3]}`), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Session(ctx, "alice")
		if err != nil || !got.Found || string(got.Data) != `{"cart":[3]}` {
			t.Fatalf("Session = %+v, %v", got, err)
		}
		if err := s.PutSession(ctx, "bob", json.RawMessage(`{}`), time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Session(ctx, "bob"); got.Found {
			t.Fatal("an expired session was returned")
		}
		if err := s.PutSession(ctx, "carol", json.RawMessage(`{not json`), time.Now().Add(time.Hour)); err == nil {
			t.Fatal("invalid JSON stored")
		}
		if err := s.DeleteSession(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Session(ctx, "alice"); got.Found {
			t.Fatal("a deleted session was returned")
		}
		if err := s.DeleteSession(ctx, "nobody"); err != nil {
			t.Fatalf("deleting no session: %v", err)
		}
	})
}

func TestRevokeTokensOnlyMovesForward(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		t1 := time.Unix(1_700_000_000, 123_456_789).UTC()
		got, err := s.RevokeTokens(ctx, "dora", t1) // unknown user: created
		if err != nil || !got.Equal(t1) {
			t.Fatalf("RevokeTokens = %v, %v (sub-second precision must survive)", got, err)
		}
		if got, _ := s.RevokeTokens(ctx, "dora", t1.Add(-time.Hour)); !got.Equal(t1) {
			t.Fatalf("the watermark moved back to %v", got)
		}
		t2 := t1.Add(time.Millisecond)
		if got, _ := s.RevokeTokens(ctx, "dora", t2); !got.Equal(t2) {
			t.Fatalf("the watermark did not move forward: %v", got)
		}
		marks, err := s.Watermarks(ctx, t1)
		if err != nil || !marks["dora"].Equal(t2) || len(marks) != 1 {
			t.Fatalf("Watermarks = %v, %v", marks, err)
		}
		if p, _ := s.UserPolicy(ctx, "dora"); !p.Found || p.Disabled || !p.TokensRevokedBefore.Equal(t2) {
			t.Fatalf("UserPolicy after revocation = %+v", p)
		}
	})
}

func TestImportReplaceAndExport(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		mustImport(t, s, example, false)
		mustImport(t, s, `roles:
  - name: viewer
    permissions: [{resource: "posts:**", action: read}]
users:
  - {id: carol, roles: [viewer]}
`, true)
		if k, err := s.APIKey(ctx, sha("ak_live_0123456789abcdef")); err != nil || k.Found {
			t.Fatal("--replace kept an API key the file does not name")
		}
		alice, _ := s.UserPolicy(ctx, "alice")
		if !alice.Found || !alice.Disabled || len(alice.Permissions) != 0 || alice.TokensRevokedBefore.IsZero() {
			t.Fatalf("a user missing from the replacing file: %+v", alice)
		}
		out, err := s.ExportPolicy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Roles) != 1 || out.Roles[0].Name != "viewer" || len(out.APIKeys) != 0 {
			t.Fatalf("export after replace: %+v", out)
		}
		carol := out.Users[slicesIndex(out.Users, "carol")]
		if len(carol.Roles) != 1 || carol.Roles[0] != "viewer" {
			t.Fatalf("carol exported as %+v", carol)
		}
	})
}

func slicesIndex(users []User, id string) int {
	for i, u := range users {
		if u.ID == id {
			return i
		}
	}
	return -1
}

func TestExportImportsAgain(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		mustImport(t, s, example, false)
		first, err := s.ExportPolicy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		if err := first.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		mustImport(t, s, buf.String(), true)
		second, _ := s.ExportPolicy(ctx)
		var again strings.Builder
		_ = second.Encode(&again)
		if buf.String() != again.String() {
			t.Fatalf("export → import → export changed the policy:\n%s\n---\n%s", buf.String(), again.String())
		}
	})
}

func TestImportWithUnknownRoleChangesNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		p, _ := DecodePolicy(strings.NewReader("users: [{id: zed, roles: [ghost]}]\nroles: [{name: real}]\n"))
		err := s.ImportPolicy(ctx, p, false, time.Now())
		if err == nil || !strings.Contains(err.Error(), "ghost") {
			t.Fatalf("ImportPolicy = %v, want an error naming the role", err)
		}
		if out, _ := s.ExportPolicy(ctx); len(out.Roles)+len(out.Users) != 0 {
			t.Fatalf("a failed import left %+v behind", out)
		}
	})
}

func TestCleanupAndCounts(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		now := time.Now()
		_ = s.PutSession(ctx, "a", json.RawMessage(`{}`), now.Add(-time.Minute))
		_ = s.PutSession(ctx, "b", json.RawMessage(`{}`), now.Add(time.Hour))
		_, _ = s.RevokeTokens(ctx, "old", now.Add(-48*time.Hour))
		_, _ = s.RevokeTokens(ctx, "new", now.Add(-time.Hour))
		if err := s.Cleanup(ctx, now, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		var sessions int
		_ = s.db.QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&sessions)
		marks, _ := s.Watermarks(ctx, time.Time{})
		if sessions != 1 || len(marks) != 1 || marks["new"].IsZero() {
			t.Fatalf("after cleanup: %d sessions, watermarks %v", sessions, marks)
		}
		got := s.Requests()
		if got[KindWrite] != 4 || got[KindAdmin] != 1 || got[KindWatermarks] != 1 {
			t.Fatalf("counts %v", got)
		}
	})
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "sqlite://", "mysql://x", "postgres://db:port/authnode", "sqlite:///tmp/a.db?mode=ro", "/tmp/a.db"} {
		if _, err := Open(context.Background(), u); !errors.Is(err, ErrURL) {
			t.Errorf("Open(%q) = %v, want ErrURL", u, err)
		}
	}
}

func TestRecentUsers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store, _ string) {
		ctx := context.Background()
		now := time.Now()
		for i, u := range []string{"old", "newest", "expired", "middle"} {
			exp := map[int]time.Duration{0: time.Minute, 1: 3 * time.Minute, 2: -time.Minute, 3: 2 * time.Minute}[i]
			if err := s.PutSession(ctx, u, json.RawMessage(`{}`), now.Add(exp)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.RecentUsers(ctx, 2)
		if err != nil || strings.Join(got, ",") != "newest,middle" {
			t.Fatalf("RecentUsers(2) = %v, %v", got, err)
		}
		if got, _ := s.RecentUsers(ctx, 10); len(got) != 3 {
			t.Fatalf("RecentUsers(10) = %v: the expired session must not count", got)
		}
	})
}
