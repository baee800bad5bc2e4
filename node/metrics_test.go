package node_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
)

// metricValue returns the value of the series name{labels} in reg (a
// histogram's sample count), failing when there is no such series.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return seriesValue(m)
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}

func seriesValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// wantMetrics fails for every series of want whose value differs.
func wantMetrics(t *testing.T, reg prometheus.Gatherer, want []wantSeries) {
	t.Helper()
	for _, w := range want {
		if got := metricValue(t, reg, w.name, w.labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
}

type wantSeries struct {
	name   string
	labels map[string]string
	value  float64
}

func cacheType(t string) map[string]string { return map[string]string{"cache_type": t} }

func op(cacheType, operation string) map[string]string {
	return map[string]string{"cache_type": cacheType, "operation": operation}
}

// jwksValidator is s's issuer with its key served from a JWKS file.
func (s signer) jwksValidator(t *testing.T) *auth.Validator {
	t.Helper()
	file := filepath.Join(t.TempDir(), "jwks.json")
	doc := `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","alg":"EdDSA","x":"` + base64.RawURLEncoding.EncodeToString(s.pub) + `"}]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := auth.NewJWKS(auth.JWKSConfig{File: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewValidator([]auth.Issuer{{Issuer: testIssuer, Audiences: []string{"api"}, Algorithms: []string{"EdDSA"}, JWKS: j}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tokenWithKid is s.token naming kid.
func (s signer) tokenWithKid(t *testing.T, sub, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": testIssuer, "aud": "api", "sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = kid
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricValuesAfterKnownRequests: after a known sequence of requests on
// one node, the plan's counters, the latency histograms and authnode's own
// metrics have exactly the expected values.
func TestMetricValuesAfterKnownRequests(t *testing.T) {
	s := newSigner(t)
	src := openStore(t, clusterPolicy+"api_keys:\n  - {key: ak_test_alice_0123456789, user: alice, name: ci, scopes: [read]}\n")
	n := nodetest.Start(t, 1, nodetest.Options{Config: func(_ int, cfg *node.Config) {
		cfg.Source, cfg.Validator = src, s.jwksValidator(t)
	}})[0]
	waitReady(t, n)
	ctx := context.Background()
	reg := n.Metrics()

	tok := s.token(t, "alice", time.Now())
	for range 3 { // one miss, then two hits
		if _, err := n.ValidateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.ValidateToken(ctx, s.tokenWithKid(t, "alice", "rotated")); auth.ErrorCode(err) != auth.CodeUnknownKid {
		t.Fatalf("a token with an unknown kid: %v", err)
	}
	for range 3 { // users: one miss, two hits
		if ok, err := n.Authorize(ctx, "alice", "posts:1", "write", nil); err != nil || !ok {
			t.Fatalf("authorize: %v, %v", ok, err)
		}
	}
	for range 2 { // apikeys: one miss, one hit; users: two more hits
		if _, err := n.VerifyAPIKey(ctx, "ak_test_alice_0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	// A rejected key is an answer, not an error; its hash is an apikeys miss.
	if _, err := n.VerifyAPIKey(ctx, "ak_test_nobody_0123456789"); err == nil {
		t.Fatal("an unknown API key verified")
	}
	for range 2 { // sessions: one miss, one hit
		if _, err := n.GetSession(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	wantMetrics(t, reg, []wantSeries{
		{"auth_cache_hits_total", cacheType("jwt_validation"), 2},
		{"auth_cache_misses_total", cacheType("jwt_validation"), 2},
		{"auth_cache_hits_total", cacheType("jwks"), 1},
		{"auth_cache_misses_total", cacheType("jwks"), 1},
		{"auth_cache_hits_total", cacheType("authorization"), 4},
		{"auth_cache_misses_total", cacheType("authorization"), 1},
		{"auth_cache_hits_total", cacheType("apikey"), 1},
		{"auth_cache_misses_total", cacheType("apikey"), 2},
		{"auth_cache_hits_total", cacheType("session"), 1},
		{"auth_cache_misses_total", cacheType("session"), 1},
		{"auth_cache_hit_rate", cacheType("jwt_validation"), 50},
		{"auth_cache_hit_rate", cacheType("authorization"), 80},
		{"auth_cache_latency_seconds", op("jwt_validation", "validate"), 4},
		{"auth_cache_latency_seconds", op("authorization", "authorize"), 3},
		{"auth_cache_latency_seconds", op("apikey", "verify"), 3},
		{"auth_cache_errors_total", op("apikey", "verify"), 0},
		{"auth_cache_latency_seconds", op("session", "get"), 2},
		{"auth_cache_errors_total", op("jwt_validation", "validate"), 0},
		{"auth_cache_errors_total", op("authorization", "authorize"), 0},
		{"authnode_jwks_keys", map[string]string{"issuer": testIssuer}, 1},
		{"authnode_jwks_unknown_kid_refreshes_total", map[string]string{"issuer": testIssuer}, 1},
		{"authnode_jwks_refresh_failures_total", map[string]string{"issuer": testIssuer}, 0},
		{"authnode_loads_total", map[string]string{"group": "users"}, 1},
		{"authnode_forwards_total", map[string]string{"group": "users"}, 0},
		{"authnode_cluster_members", map[string]string{"state": "alive"}, 1},
		{"authnode_ring_members", nil, 1},
		{"authnode_entry_age_seconds", map[string]string{"group": "users"}, 0},
	})
	if at := metricValue(t, reg, "authnode_jwks_last_refresh_timestamp_seconds", map[string]string{"issuer": testIssuer}); time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("last JWKS refresh at %v", time.Unix(int64(at), 0))
	}

	// The 16th hit of a group has its age measured.
	for range 12 {
		if _, err := n.Authorize(ctx, "alice", "posts:1", "write", nil); err != nil {
			t.Fatal(err)
		}
	}
	wantMetrics(t, reg, []wantSeries{{"authnode_entry_age_seconds", map[string]string{"group": "users"}, 1}})

	// An invalidation is a fan-out of kind key, two groups dropped here.
	if _, err := n.InvalidateUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, reg, []wantSeries{
		{"authnode_invalidations_total", map[string]string{"channel": "call"}, 2},
		{"authnode_invalidation_duration_seconds", map[string]string{"kind": "key"}, 1},
		{"auth_cache_latency_seconds", op("authorization", "invalidate"), 1},
	})

	// With the source gone, a user nothing caches is an error, and a miss.
	_ = src.Close()
	if _, err := n.Authorize(ctx, "carol", "posts:1", "read", nil); err == nil {
		t.Fatal("authorize with the source closed succeeded")
	}
	wantMetrics(t, reg, []wantSeries{
		{"auth_cache_errors_total", op("authorization", "authorize"), 1},
		{"auth_cache_misses_total", cacheType("authorization"), 2},
	})
}

// TestMetricsCountForwardsOnTheOwner: a lookup forwarded to its owner is a
// hit or miss on the owner only; the forwarding node counts a forward and a
// peer call, and the owner counts the invalidations it is sent.
func TestMetricsCountForwardsOnTheOwner(t *testing.T) {
	s := newSigner(t)
	nodes, _ := authCluster(t, 2, s)
	for _, n := range nodes {
		waitReady(t, n)
	}
	ctx := context.Background()
	user := userOwnedBy(t, nodes[1], "node-1")
	for range 2 {
		if _, err := nodes[0].Authorize(ctx, user, "posts:1", "read", nil); err != nil {
			t.Fatal(err)
		}
	}
	owner, asker := nodes[1].Metrics(), nodes[0].Metrics()
	wantMetrics(t, owner, []wantSeries{
		{"auth_cache_misses_total", cacheType("authorization"), 1},
		{"auth_cache_hits_total", cacheType("authorization"), 1},
	})
	wantMetrics(t, asker, []wantSeries{
		{"auth_cache_misses_total", cacheType("authorization"), 0},
		{"auth_cache_hits_total", cacheType("authorization"), 0},
		{"authnode_forwards_total", map[string]string{"group": "users"}, 2},
		{"authnode_peer_request_duration_seconds", map[string]string{"peer": "node-1", "method": "get"}, 2},
		{"auth_cache_latency_seconds", op("authorization", "authorize"), 2},
	})
	if _, err := nodes[0].InvalidateUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, owner, []wantSeries{{"authnode_invalidations_total", map[string]string{"channel": "peer"}, 2}})
	wantMetrics(t, asker, []wantSeries{
		{"authnode_invalidations_total", map[string]string{"channel": "call"}, 2},
		{"authnode_peer_request_duration_seconds", map[string]string{"peer": "node-1", "method": "invalidate"}, 2},
	})
}

// userOwnedBy returns a user id n's ring gives to owner.
func userOwnedBy(t *testing.T, n *nodetest.Node, owner string) string {
	t.Helper()
	for i := range 1000 {
		if u := "user-" + strconv.Itoa(i); n.Current().Owner(u) == owner {
			return u
		}
	}
	t.Fatalf("no user owned by %s", owner)
	return ""
}
