package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/store"
)

const testIssuer = "https://issuer.test/"

// signer mints Ed25519 tokens for testIssuer.
type signer struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newSigner(t testing.TB) signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{priv: priv, pub: pub}
}

func (s signer) validator(t testing.TB) *auth.Validator {
	t.Helper()
	v, err := auth.NewValidator([]auth.Issuer{{
		Issuer: testIssuer, Audiences: []string{"api"},
		Keys: []auth.Key{{ID: "k1", Algorithm: "EdDSA", Public: s.pub}},
	}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (s signer) token(t testing.TB, sub string, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": testIssuer, "aud": "api", "sub": sub, "iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "k1"
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// authCluster starts n nodes sharing one SQLite store with clusterPolicy and
// an API key for alice.
func authCluster(t *testing.T, n int, s signer) ([]*nodetest.Node, *store.Store) {
	t.Helper()
	src := openStore(t, clusterPolicy+"api_keys:\n  - {key: ak_test_alice_0123456789, user: alice, name: ci, scopes: [read]}\n")
	v := s.validator(t)
	nodes := nodetest.Start(t, n, nodetest.Options{Config: func(_ int, cfg *node.Config) {
		cfg.Source, cfg.Validator = src, v
	}})
	return nodes, src
}

// TestClusterRevokeTokens: a token validated (and cached) on every node is
// rejected as revoked on every node once RevokeTokens returns; a token
// issued after the watermark is accepted.
func TestClusterRevokeTokens(t *testing.T) {
	s := newSigner(t)
	nodes, _ := authCluster(t, 3, s)
	ctx := context.Background()
	old := s.token(t, "alice", time.Now().Add(-time.Minute))
	for _, n := range nodes {
		if c, err := n.ValidateToken(ctx, old); err != nil || c.UserID != "alice" {
			t.Fatalf("%s: ValidateToken = %+v, %v", n.Name(), c, err)
		}
	}
	rev, err := nodes[1].RevokeTokens(ctx, "alice", time.Time{})
	if err != nil || rev.Acknowledged != 3 || rev.Members != 3 {
		t.Fatalf("RevokeTokens = %+v, %v", rev, err)
	}
	for _, n := range nodes {
		if _, err := n.ValidateToken(ctx, old); auth.ErrorCode(err) != auth.CodeRevoked {
			t.Fatalf("%s still accepts a revoked token: %v", n.Name(), err)
		}
	}
	fresh := s.token(t, "alice", rev.Watermark.Add(time.Second))
	if _, err := nodes[2].ValidateToken(ctx, fresh); err != nil {
		t.Fatalf("a token issued after the revocation: %v", err)
	}
	if _, err := nodes[0].RevokeTokens(ctx, "", time.Time{}); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("empty user id: %v", err)
	}
}

// TestRestartedNodeKnowsRevocations: a node that starts after a revocation
// reads the watermark from the source before it is ready.
func TestRestartedNodeKnowsRevocations(t *testing.T) {
	s := newSigner(t)
	src := openStore(t, clusterPolicy)
	if _, err := src.RevokeTokens(context.Background(), "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	v := s.validator(t)
	nodes := nodetest.Start(t, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.Source, cfg.Validator = src, v }})
	waitReady(t, nodes[0])
	if _, err := nodes[0].ValidateToken(context.Background(), s.token(t, "carol", time.Now().Add(-time.Minute))); auth.ErrorCode(err) != auth.CodeRevoked {
		t.Fatalf("a token revoked before the node started: %v", err)
	}
}

func waitReady(t testing.TB, n *nodetest.Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("node not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterAPIKeys: a key verifies on every node; after the key is
// revoked in the source and the user invalidated, every node rejects it.
func TestClusterAPIKeys(t *testing.T) {
	nodes, src := authCluster(t, 3, newSigner(t))
	ctx := context.Background()
	for _, n := range nodes {
		info, err := n.VerifyAPIKey(ctx, "ak_test_alice_0123456789")
		if err != nil || info.UserID != "alice" || info.Name != "ci" || len(info.Scopes) != 1 {
			t.Fatalf("%s: VerifyAPIKey = %+v, %v", n.Name(), info, err)
		}
		var ke *auth.KeyError
		if _, err := n.VerifyAPIKey(ctx, "ak_made_up"); !errors.As(err, &ke) || ke.Code != auth.KeyInvalid {
			t.Fatalf("%s: unknown key: %v", n.Name(), err)
		}
	}
	importPolicy(t, src, "users:\n  - {id: alice, roles: [editor], disabled: true}\n", false)
	if acks, err := nodes[0].InvalidateUser(ctx, "alice"); err != nil || acks.Acknowledged != 3 {
		t.Fatalf("InvalidateUser = %+v, %v", acks, err)
	}
	for _, n := range nodes {
		var ke *auth.KeyError
		if _, err := n.VerifyAPIKey(ctx, "ak_test_alice_0123456789"); !errors.As(err, &ke) || ke.Code != auth.KeyUserDisabled {
			t.Fatalf("%s accepts the key of a disabled user: %v", n.Name(), err)
		}
	}
}

// TestClusterSessions: a session written on one node is read on every
// node, a rewrite replaces it everywhere, and a delete removes it
// everywhere.
func TestClusterSessions(t *testing.T) {
	nodes, _ := authCluster(t, 3, newSigner(t))
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for i, data := range []string{`{"cart":1}`, `{"cart":2}`} {
		if err := nodes[i].PutSession(ctx, "alice", json.RawMessage(data), exp); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			s, err := n.GetSession(ctx, "alice")
			if err != nil || !s.Found || string(s.Data) != data {
				t.Fatalf("%s: GetSession = %+v, %v; want %s", n.Name(), s, err, data)
			}
		}
	}
	if err := nodes[2].DeleteSession(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if s, err := n.GetSession(ctx, "alice"); err != nil || s.Found {
			t.Fatalf("%s: deleted session still found: %+v, %v", n.Name(), s, err)
		}
	}
	if err := nodes[0].PutSession(ctx, "alice", json.RawMessage(`[1]`), exp); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("non-object session data: %v", err)
	}
}

// TestAdminDropUser: after DELETE /admin/cache/user/{id} returns on one
// node, all three answer from the changed policy.
func TestAdminDropUser(t *testing.T) {
	nodes, src := authCluster(t, 3, newSigner(t))
	ctx := context.Background()
	for _, n := range nodes {
		if ok, err := n.Authorize(ctx, "alice", "posts:1", "write", nil); err != nil || !ok {
			t.Fatalf("%s: alice may not write: %v, %v", n.Name(), ok, err)
		}
	}
	importPolicy(t, src, "users:\n  - {id: alice, roles: []}\n", false)
	code, body := adminCall(t, nodes[1], http.MethodDelete, "/admin/cache/user/alice")
	if code != http.StatusOK || !strings.Contains(body, `"acknowledged":3`) {
		t.Fatalf("drop user: %d %s", code, body)
	}
	for _, n := range nodes {
		if ok, _ := n.Authorize(ctx, "alice", "posts:1", "write", nil); ok {
			t.Fatalf("%s answers from the old policy", n.Name())
		}
	}
	code, body = adminCall(t, nodes[0], http.MethodGet, "/admin/cluster")
	var info struct {
		Members []struct{ Name, State string }
		Groups  map[string]struct{ Entries int64 }
	}
	if err := json.Unmarshal([]byte(body), &info); code != http.StatusOK || err != nil || len(info.Members) != 3 {
		t.Fatalf("cluster view: %d %s (%v)", code, body, err)
	}
	if _, ok := info.Groups[auth.GroupUsers]; !ok {
		t.Fatalf("cluster view lacks the users group: %s", body)
	}
}

func adminCall(t *testing.T, n *nodetest.Node, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://%s%s", n.AdminAddr(), path), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCacheModes: every mode answers the same questions the same way; off
// loads from the source on every call, local loads once per node.
func TestCacheModes(t *testing.T) {
	for _, mode := range []string{node.ModeCluster, node.ModeLocal, node.ModeOff} {
		t.Run(mode, func(t *testing.T) {
			src := openStore(t, clusterPolicy+"api_keys:\n  - {key: ak_test_carol_0123456789, user: carol, name: ci}\n")
			nodes := nodetest.Start(t, 2, nodetest.Options{Config: func(_ int, cfg *node.Config) {
				cfg.Source, cfg.CacheMode = src, mode
			}})
			ctx := context.Background()
			before := src.Requests()[store.KindUserPolicy]
			for range 3 {
				for _, n := range nodes {
					if ok, err := n.Authorize(ctx, "carol", "docs:1", "read", nil); err != nil || !ok {
						t.Fatalf("%s: %v, %v", n.Name(), ok, err)
					}
				}
			}
			loads := src.Requests()[store.KindUserPolicy] - before
			want := map[string]uint64{node.ModeCluster: 1, node.ModeLocal: 2, node.ModeOff: 6}[mode]
			if loads != want {
				t.Fatalf("%d loads from the source, want %d", loads, want)
			}
			for _, n := range nodes {
				if info, err := n.VerifyAPIKey(ctx, "ak_test_carol_0123456789"); err != nil || info.UserID != "carol" {
					t.Fatalf("%s: VerifyAPIKey = %+v, %v", n.Name(), info, err)
				}
			}
		})
	}
}

// TestAdminWarmup: warming up the most recently active users loads their
// policies once, through their owners, so the first questions about them
// cost the source nothing.
func TestAdminWarmup(t *testing.T) {
	nodes, src := authCluster(t, 2, newSigner(t))
	ctx := context.Background()
	for _, u := range []string{"alice", "carol"} {
		if err := src.PutSession(ctx, u, json.RawMessage(`{}`), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+nodes[0].AdminAddr()+"/admin/cache/warmup", strings.NewReader(`{"recent": 10}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"loaded":2`) {
		t.Fatalf("warmup: %d %s", resp.StatusCode, body)
	}
	loads := src.Requests()[store.KindUserPolicy]
	for _, n := range nodes {
		for _, u := range []string{"alice", "carol"} {
			if _, err := n.Authorize(ctx, u, "posts:1", "write", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := src.Requests()[store.KindUserPolicy]; after != loads {
		t.Fatalf("%d policy loads after the warmup, want none", after-loads)
	}
}

// flakySource is a store whose Watermarks fails while down is set.
type flakySource struct {
	*store.Store
	down atomic.Bool
}

func (f *flakySource) Watermarks(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	if f.down.Load() {
		return nil, errors.New("source down")
	}
	return f.Store.Watermarks(ctx, since)
}

// TestNotReadyUntilWatermarksLoad: a node whose source does not answer
// stays unready and validates no token (it could accept revoked ones),
// says why, and serves once the source answers.
func TestNotReadyUntilWatermarksLoad(t *testing.T) {
	src := &flakySource{Store: openStore(t, clusterPolicy)}
	src.down.Store(true)
	s := newSigner(t)
	v := s.validator(t)
	nodes := nodetest.Start(t, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) { cfg.Source, cfg.Validator = src, v }})
	token := s.token(t, "alice", time.Now())
	if _, err := nodes[0].ValidateToken(context.Background(), token); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("a token validated before the watermarks were read: %v", err)
	}
	resp, err := http.Get("http://" + nodes[0].HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "watermarks") {
		t.Fatalf("readyz with the source down: %d %s", resp.StatusCode, body)
	}
	src.down.Store(false)
	waitReady(t, nodes[0])
	if _, err := nodes[0].ValidateToken(context.Background(), token); err != nil {
		t.Fatalf("once the watermarks are read: %v", err)
	}
}

// TestInvalidateUserReachesKeysAndTokens: with the change feed and the
// periodic watermark read too slow to help, and every node's clock
// different, InvalidateUser after a key is revoked and the user disabled in
// the source makes every node refuse the key and the user's tokens at once.
func TestInvalidateUserReachesKeysAndTokens(t *testing.T) {
	s := newSigner(t)
	path := filepath.Join(t.TempDir(), "authnode.db")
	src, err := store.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	importPolicy(t, src, clusterPolicy+"api_keys:\n  - {key: ak_test_alice_0123456789, user: alice, name: ci}\n  - {key: ak_test_carol_0123456789, user: carol, name: ci}\n", false)
	v := s.validator(t)
	nodes := nodetest.Start(t, 3, nodetest.Options{Config: func(i int, cfg *node.Config) {
		cfg.Source, cfg.Validator = src, v
		cfg.ChangePoll, cfg.WatermarkSync = time.Hour, time.Hour
		skew := time.Duration(i) * 300 * time.Millisecond
		cfg.Now = func() time.Time { return time.Now().Add(skew) }
	}})
	ctx := context.Background()
	token := s.token(t, "alice", time.Now().Add(-time.Minute))
	for _, n := range nodes {
		for _, key := range []string{"ak_test_alice_0123456789", "ak_test_carol_0123456789"} {
			if _, err := n.VerifyAPIKey(ctx, key); err != nil {
				t.Fatalf("%s: %v", n.Name(), err)
			}
		}
		if _, err := n.ValidateToken(ctx, token); err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `UPDATE api_keys SET revoked = TRUE WHERE user_id = 'carol'`)
	importPolicy(t, src, "users:\n  - {id: alice, roles: [editor], disabled: true}\n", false) // disabling revokes tokens
	for i, u := range []string{"carol", "alice"} {
		if acks, err := nodes[i].InvalidateUser(ctx, u); err != nil || acks.Acknowledged != 3 {
			t.Fatalf("InvalidateUser(%s) = %+v, %v", u, acks, err)
		}
	}
	for _, n := range nodes {
		if _, err := n.VerifyAPIKey(ctx, "ak_test_carol_0123456789"); keyErrCode(err) != auth.KeyRevoked {
			t.Fatalf("%s: a revoked key: %v", n.Name(), err)
		}
		if _, err := n.VerifyAPIKey(ctx, "ak_test_alice_0123456789"); keyErrCode(err) != auth.KeyUserDisabled {
			t.Fatalf("%s: a disabled user's key: %v", n.Name(), err)
		}
		if _, err := n.ValidateToken(ctx, token); auth.ErrorCode(err) != auth.CodeRevoked {
			t.Fatalf("%s: a disabled user's token: %v", n.Name(), err)
		}
	}
}

func keyErrCode(err error) string {
	var ke *auth.KeyError
	if errors.As(err, &ke) {
		return ke.Code
	}
	return ""
}
