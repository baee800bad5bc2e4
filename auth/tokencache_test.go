package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// clockValidator is testValidator (static RS256, ES256, EdDSA and HS256
// keys) reading clk.
func clockValidator(t testing.TB, clk *fakeClock) *Validator {
	t.Helper()
	return validatorAt(t, clk.Now)
}

// jwksClockValidator trusts one issuer whose keys come from j, reading clk.
func jwksClockValidator(t *testing.T, j *JWKS, clk *fakeClock) *Validator {
	t.Helper()
	v, err := NewValidator([]Issuer{{Issuer: "https://issuer.test", Audiences: []string{"api"}, JWKS: j}}, 0, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newTestTokenCache(t testing.TB, v *Validator, marks *Watermarks, cfg TokenCacheConfig) *TokenCache {
	t.Helper()
	c, err := NewTokenCache(v, marks, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// settle waits until the cache's buffered sets are applied (ristretto's Set
// is asynchronous).
func (c *TokenCache) settle() {
	c.valid.Wait()
	c.failed.Wait()
}

// slot is the 64-bit cache key of token.
func (c *TokenCache) slot(token string) uint64 {
	sum := c.digest(token)
	return binary.LittleEndian.Uint64(sum[:8])
}

// sameResult reports whether a and b are the very same validation result:
// a fresh validation builds a new Metadata map, a cache hit returns the
// stored one. Timing-free proof that the validator was not run again.
func sameResult(a, b Claims) bool {
	return a.Metadata != nil && reflect.ValueOf(a.Metadata).UnsafePointer() == reflect.ValueOf(b.Metadata).UnsafePointer()
}

// sameError reports whether a and b are the very same *TokenError: a
// fresh validation makes a new one, the failure cache returns the stored
// one.
func sameError(a, b error) bool {
	var ea, eb *TokenError
	return errors.As(a, &ea) && errors.As(b, &eb) && ea == eb
}

// rs256 signs claims with the rsa-1 test key.
func rs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodRS256, "rsa-1", testKeys().rsa, claims, nil)
}

// mustValid validates token through c and fails the test on an error.
func mustValid(t *testing.T, c *TokenCache, token string) Claims {
	t.Helper()
	claims, err := c.Validate(context.Background(), token)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return claims
}

// TestTokenCacheHitSkipsValidation: the second Validate of a token returns
// the stored result (not a re-validation) for every algorithm, and the entry
// lives no longer than min(MaxTTL, exp − now).
func TestTokenCacheHitSkipsValidation(t *testing.T) {
	t.Parallel()
	k := testKeys()
	hmac := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name    string
		method  jwt.SigningMethod
		kid     string
		key     any
		claims  jwt.MapClaims
		wantTTL time.Duration // upper bound of the entry's remaining TTL
	}{
		{"RS256", jwt.SigningMethodRS256, "rsa-1", k.rsa, baseClaims(), 5 * time.Minute},
		{"ES256", jwt.SigningMethodES256, "ec-1", k.ec, baseClaims(), 5 * time.Minute},
		{"EdDSA", jwt.SigningMethodEdDSA, "ed-1", k.ed, baseClaims(), 5 * time.Minute},
		{"HS256", jwt.SigningMethodHS256, "", hmac, with(baseClaims(), "iss", "https://hmac.test"), 5 * time.Minute},
		{"exp sooner than MaxTTL", jwt.SigningMethodRS256, "rsa-1", k.rsa, with(baseClaims(), "exp", now.Add(2*time.Minute).Unix()), 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
			tok := sign(t, tc.method, tc.kid, tc.key, tc.claims, nil)
			first := mustValid(t, c, tok)
			c.settle()
			for range 3 {
				again := mustValid(t, c, tok)
				if !sameResult(first, again) {
					t.Fatal("a repeated token was validated again instead of served from the cache")
				}
				if again.UserID != "alice" || !again.ExpiresAt.Equal(first.ExpiresAt) || strings.Join(again.Scopes, " ") != "read write" {
					t.Fatalf("cached claims %+v", again)
				}
			}
			ttl, ok := c.valid.GetTTL(c.slot(tok))
			if !ok || ttl <= 0 || ttl > tc.wantTTL {
				t.Fatalf("entry TTL %v (present %v), want in (0, %v]", ttl, ok, tc.wantTTL)
			}
			c.Clear()
			if again := mustValid(t, c, tok); sameResult(first, again) {
				t.Fatal("Clear kept the entry")
			}
		})
	}
}

// TestTokenCacheRechecksExpiry: a hit is answered expired once the
// validator's clock passes exp + leeway, exactly where a fresh validation
// starts to say so.
func TestTokenCacheRechecksExpiry(t *testing.T) {
	t.Parallel()
	exp := now.Add(time.Hour) // baseClaims' exp; the issuer's leeway is 30 s
	for _, tc := range []struct {
		name string
		at   time.Time
		want string // "" valid, from the cache
	}{
		{"before exp", exp.Add(-time.Second), ""},
		{"inside the leeway", exp.Add(30*time.Second - time.Nanosecond), ""},
		{"at exp + leeway", exp.Add(30 * time.Second), CodeExpired},
		{"long after", exp.Add(48 * time.Hour), CodeExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(now)
			v := clockValidator(t, clk)
			c := newTestTokenCache(t, v, NewWatermarks(), TokenCacheConfig{})
			tok := rs256(t, baseClaims())
			first := mustValid(t, c, tok)
			c.settle()
			clk.Set(tc.at)
			got, err := c.Validate(context.Background(), tok)
			if code := ErrorCode(err); code != tc.want {
				t.Fatalf("code %q (%v), want %q", code, err, tc.want)
			}
			if tc.want == "" && !sameResult(first, got) {
				t.Fatal("not served from the cache")
			}
			if _, err := v.Validate(context.Background(), tok); ErrorCode(err) != tc.want {
				t.Fatalf("the cache (%q) and a fresh validation (%v) disagree", tc.want, err)
			}
		})
	}
}

// TestTokenCacheRechecksWatermark: a watermark raised after a token was
// cached revokes it on the next hit when iat < watermark, including a
// token issued in the same second; a token issued at or after the
// watermark, or another user's, stays valid.
func TestTokenCacheRechecksWatermark(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		user string
		mark time.Time
		want string
	}{
		{"watermark after iat", "alice", now.Add(time.Minute), CodeRevoked},
		{"same second, 1 ns later", "alice", now.Add(time.Nanosecond), CodeRevoked},
		{"same second, at its end", "alice", now.Add(time.Second - time.Nanosecond), CodeRevoked},
		{"watermark equal to iat", "alice", now, ""},
		{"watermark before iat", "alice", now.Add(-time.Nanosecond), ""},
		{"another user's watermark", "bob", now.Add(time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(now)
			marks := NewWatermarks()
			c := newTestTokenCache(t, clockValidator(t, clk), marks, TokenCacheConfig{})
			tok := rs256(t, baseClaims()) // iat = now, whole seconds
			first := mustValid(t, c, tok)
			c.settle()
			marks.Raise(tc.user, tc.mark)
			got, err := c.Validate(context.Background(), tok)
			if code := ErrorCode(err); code != tc.want {
				t.Fatalf("code %q (%v), want %q", code, err, tc.want)
			}
			if tc.want == "" && !sameResult(first, got) {
				t.Fatal("not served from the cache")
			}
			// The same answer on a miss: a cache that never saw the token.
			cold := newTestTokenCache(t, clockValidator(t, clk), marks, TokenCacheConfig{})
			if _, err := cold.Validate(context.Background(), tok); ErrorCode(err) != tc.want {
				t.Fatalf("uncached: %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("a token issued after the watermark", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock(now)
		marks := NewWatermarks()
		c := newTestTokenCache(t, clockValidator(t, clk), marks, TokenCacheConfig{})
		old := rs256(t, baseClaims())
		mustValid(t, c, old)
		c.settle()
		marks.Raise("alice", now.Add(500*time.Millisecond)) // a logout
		clk.Add(2 * time.Second)
		fresh := rs256(t, with(baseClaims(), "iat", now.Add(time.Second).Unix()))
		first := mustValid(t, c, fresh)
		c.settle()
		if again := mustValid(t, c, fresh); !sameResult(first, again) {
			t.Fatal("the new token was not cached")
		}
		if _, err := c.Validate(context.Background(), old); ErrorCode(err) != CodeRevoked {
			t.Fatalf("the old token: %v, want revoked", err)
		}
	})
}

// rotatingJWKS is a JWKS served by an httptest server whose document the
// test changes, with unknown-kid refreshes allowed at any time.
func rotatingJWKS(t *testing.T, kids map[string]*rsa.PublicKey) (*jwksServer, *JWKS) {
	t.Helper()
	srv := newJWKSServer(t, jwksDoc(kids))
	return srv, newTestJWKS(t, JWKSConfig{URL: srv.URL, Cooldown: time.Nanosecond})
}

func jwksDoc(kids map[string]*rsa.PublicKey) string {
	var keys []string
	for kid, pub := range kids {
		keys = append(keys, jwkJSON(kid, pub))
	}
	return `{"keys":[` + strings.Join(keys, ",") + `]}`
}

// TestTokenCacheFollowsJWKS: a kid that vanishes or whose key changes ends
// every cached validation (Epoch), while a key that is only added (Version
// alone) leaves them served from the cache.
func TestTokenCacheFollowsJWKS(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()

	t.Run("kid removed", func(t *testing.T) {
		t.Parallel()
		srv, j := rotatingJWKS(t, map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey, "k2": &k.other.PublicKey})
		c := newTestTokenCache(t, jwksClockValidator(t, j, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
		t1 := sign(t, jwt.SigningMethodRS256, "k1", k.rsa, baseClaims(), nil)
		t2 := sign(t, jwt.SigningMethodRS256, "k2", k.other, baseClaims(), nil)
		c1, c2 := mustValid(t, c, t1), mustValid(t, c, t2)
		c.settle()
		if !sameResult(c1, mustValid(t, c, t1)) {
			t.Fatal("not cached before the rotation")
		}
		epoch := j.Epoch()
		srv.set(jwksDoc(map[string]*rsa.PublicKey{"k2": &k.other.PublicKey}), http.StatusOK)
		if err := j.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if j.Epoch() == epoch {
			t.Fatal("removing a kid did not change the epoch")
		}
		if _, err := c.Validate(ctx, t1); ErrorCode(err) != CodeUnknownKid {
			t.Fatalf("a cached token of the removed kid: %v, want unknown_kid", err)
		}
		again := mustValid(t, c, t2)
		if sameResult(c2, again) {
			t.Fatal("an entry made before the epoch change was served")
		}
	})

	t.Run("key replaced under the same kid", func(t *testing.T) {
		t.Parallel()
		srv, j := rotatingJWKS(t, map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey})
		c := newTestTokenCache(t, jwksClockValidator(t, j, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
		t1 := sign(t, jwt.SigningMethodRS256, "k1", k.rsa, baseClaims(), nil)
		mustValid(t, c, t1)
		c.settle()
		srv.set(jwksDoc(map[string]*rsa.PublicKey{"k1": &k.other.PublicKey}), http.StatusOK)
		if err := j.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Validate(ctx, t1); ErrorCode(err) != CodeSignatureInvalid {
			t.Fatalf("a cached token whose kid now names another key: %v, want signature_invalid", err)
		}
	})

	t.Run("key added", func(t *testing.T) {
		t.Parallel()
		srv, j := rotatingJWKS(t, map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey})
		c := newTestTokenCache(t, jwksClockValidator(t, j, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
		t1 := sign(t, jwt.SigningMethodRS256, "k1", k.rsa, baseClaims(), nil)
		first := mustValid(t, c, t1)
		c.settle()
		version, epoch := j.Version(), j.Epoch()
		srv.set(jwksDoc(map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey, "k2": &k.other.PublicKey}), http.StatusOK)
		if err := j.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if j.Version() == version || j.Epoch() != epoch {
			t.Fatalf("adding a key: version %d→%d, epoch %d→%d; want a new version, the same epoch", version, j.Version(), epoch, j.Epoch())
		}
		fetches := srv.fetches.Load()
		if !sameResult(first, mustValid(t, c, t1)) {
			t.Fatal("adding a key dropped a cached validation")
		}
		mustValid(t, c, sign(t, jwt.SigningMethodRS256, "k2", k.other, baseClaims(), nil))
		if n := srv.fetches.Load() - fetches; n != 0 {
			t.Fatalf("%d JWKS fetches for kids the set has", n)
		}
	})
}

// TestTokenCacheCachesFailures: a failed validation is answered from the
// failure cache (the same error, no second validation) until the key set
// changes; not_yet_valid never is.
func TestTokenCacheCachesFailures(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()
	payload := string(mustJSON(t, baseClaims()))
	for _, tc := range []struct {
		name, token, code string
	}{
		{"bad signature", sign(t, jwt.SigningMethodRS256, "rsa-1", k.other, baseClaims(), nil), CodeSignatureInvalid},
		{"malformed", "not.a.token", CodeMalformed},
		{"expired", rs256(t, with(baseClaims(), "exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix())), CodeExpired},
		{"wrong audience", rs256(t, with(baseClaims(), "aud", "other")), CodeAudienceInvalid},
		{"untrusted issuer", rs256(t, with(baseClaims(), "iss", "https://evil.test")), CodeIssuerInvalid},
		{"alg none", craft(`{"alg":"none"}`, payload, []byte("x")), CodeAlgNotAllowed},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "nope", k.rsa, baseClaims(), nil), CodeUnknownKid},
		{"crit", resignRaw(t, `{"alg":"RS256","kid":"rsa-1","crit":["x"]}`, payload, jwt.SigningMethodRS256, k.rsa), CodeCritUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
			_, first := c.Validate(ctx, tc.token)
			if ErrorCode(first) != tc.code {
				t.Fatalf("code %q (%v), want %q", ErrorCode(first), first, tc.code)
			}
			c.settle()
			if _, again := c.Validate(ctx, tc.token); !sameError(again, first) {
				t.Fatalf("the failure was validated again (%p, %p), not served from the failure cache", again, first)
			}
		})
	}

	t.Run("unknown kid: one JWKS fetch for two tries, until the set changes", func(t *testing.T) {
		t.Parallel()
		srv, j := rotatingJWKS(t, map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey})
		c := newTestTokenCache(t, jwksClockValidator(t, j, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
		tok := sign(t, jwt.SigningMethodRS256, "k9", k.other, baseClaims(), nil)
		before := srv.fetches.Load()
		_, first := c.Validate(ctx, tok)
		c.settle()
		_, second := c.Validate(ctx, tok)
		if ErrorCode(first) != CodeUnknownKid || !sameError(second, first) {
			t.Fatalf("errors %v, %v", first, second)
		}
		if n := srv.fetches.Load() - before; n != 1 {
			t.Fatalf("%d unknown-kid refreshes for the same token twice, want 1", n)
		}
		srv.set(jwksDoc(map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey, "k9": &k.other.PublicKey}), http.StatusOK)
		if err := j.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Validate(ctx, tok); err != nil {
			t.Fatalf("a cached failure outlived the key set it was made under: %v", err)
		}
	})

	t.Run("not_yet_valid is never cached", func(t *testing.T) {
		t.Parallel()
		for _, claims := range []jwt.MapClaims{
			with(baseClaims(), "nbf", now.Add(time.Minute).Unix()),
			with(baseClaims(), "iat", now.Add(time.Minute).Unix(), "exp", now.Add(2*time.Hour).Unix()),
		} {
			clk := newFakeClock(now)
			c := newTestTokenCache(t, clockValidator(t, clk), NewWatermarks(), TokenCacheConfig{})
			tok := rs256(t, claims)
			if _, err := c.Validate(ctx, tok); ErrorCode(err) != CodeNotYetValid {
				t.Fatalf("code %v, want not_yet_valid", err)
			}
			c.settle()
			if _, ok := c.failed.Get(c.slot(tok)); ok {
				t.Fatal("not_yet_valid was stored in the failure cache")
			}
			clk.Add(31 * time.Second) // inside the 30 s leeway of nbf / iat
			if _, err := c.Validate(ctx, tok); err != nil {
				t.Fatalf("once valid: %v", err)
			}
		}
	})
}

// TestTokenCacheFailuresDoNotEvictValid: a flood of distinct garbage tokens
// fills the (small) failure cache many times over; a cached valid token is
// still served from the cache.
func TestTokenCacheFailuresDoNotEvictValid(t *testing.T) {
	t.Parallel()
	c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(),
		TokenCacheConfig{MaxBytes: 64 << 10, FailedMaxBytes: 64 * 100})
	tok := rs256(t, baseClaims())
	first := mustValid(t, c, tok)
	c.settle()
	for i := range 20_000 {
		if _, err := c.Validate(context.Background(), fmt.Sprintf("garbage.%d.x", i)); ErrorCode(err) != CodeMalformed {
			t.Fatalf("garbage %d: %v", i, err)
		}
	}
	c.settle()
	if c.failed.MaxCost()-c.failed.RemainingCost() > 64*100 {
		t.Fatal("the failure cache grew beyond its bound")
	}
	if !sameResult(first, mustValid(t, c, tok)) {
		t.Fatal("failed validations evicted a valid entry")
	}
}

// TestTokenCacheOff: cache mode off validates every time and stores nothing,
// and still applies revocations.
func TestTokenCacheOff(t *testing.T) {
	t.Parallel()
	marks := NewWatermarks()
	c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), marks, TokenCacheConfig{Off: true})
	tok := rs256(t, baseClaims())
	bad := sign(t, jwt.SigningMethodRS256, "rsa-1", testKeys().other, baseClaims(), nil)
	first := mustValid(t, c, tok)
	_, badErr := c.Validate(context.Background(), bad)
	c.settle()
	if sameResult(first, mustValid(t, c, tok)) {
		t.Fatal("cache mode off served a stored result")
	}
	if _, err := c.Validate(context.Background(), bad); sameError(err, badErr) || ErrorCode(err) != CodeSignatureInvalid {
		t.Fatalf("cache mode off served a stored failure: %v", err)
	}
	if _, ok := c.valid.Get(c.slot(tok)); ok {
		t.Fatal("cache mode off stored a validation")
	}
	if _, ok := c.failed.Get(c.slot(bad)); ok {
		t.Fatal("cache mode off stored a failure")
	}
	marks.Raise("alice", now.Add(time.Second))
	if _, err := c.Validate(context.Background(), tok); ErrorCode(err) != CodeRevoked {
		t.Fatalf("cache mode off ignored the watermark: %v", err)
	}
}

// TestTokenCacheTooLarge: a token over the size limit is refused before it
// is hashed or cached, in both modes; one at the limit is not.
func TestTokenCacheTooLarge(t *testing.T) {
	t.Parallel()
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("off=%v", off), func(t *testing.T) {
			t.Parallel()
			c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{Off: off})
			limit := c.v.MaxBytes()
			big := strings.Repeat("a", limit+1)
			if _, err := c.Validate(context.Background(), big); ErrorCode(err) != CodeTooLarge {
				t.Fatalf("%d bytes: %v, want too_large", len(big), err)
			}
			if _, err := c.Validate(context.Background(), big[:limit]); ErrorCode(err) != CodeMalformed {
				t.Fatalf("%d bytes: %v, want malformed", limit, err)
			}
			c.settle()
			if _, ok := c.failed.Get(c.slot(big)); ok {
				t.Fatal("an oversized token was cached")
			}
		})
	}
}

// TestTokenCacheSettingsSeparateResults: validators that differ in one
// setting key the same token differently, and a token valid under one is
// refused under the other.
func TestTokenCacheSettingsSeparateResults(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(now)
	mk := func(aud string) *TokenCache {
		v, err := NewValidator([]Issuer{{Issuer: "https://issuer.test", Audiences: []string{aud},
			Keys: []Key{{ID: "rsa-1", Algorithm: "RS256", Public: &testKeys().rsa.PublicKey}}}}, 0, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		return newTestTokenCache(t, v, NewWatermarks(), TokenCacheConfig{})
	}
	api, other := mk("api"), mk("other")
	tok := rs256(t, baseClaims())
	mustValid(t, api, tok)
	api.settle()
	if api.digest(tok) == other.digest(tok) {
		t.Fatal("two validation settings give the same cache key")
	}
	if _, err := other.Validate(context.Background(), tok); ErrorCode(err) != CodeAudienceInvalid {
		t.Fatalf("under the other audience: %v", err)
	}
}

// TestSettingsHashCoversEverySetting: changing any one setting that affects
// a validation changes the settings hash; the same settings hash alike.
func TestSettingsHashCoversEverySetting(t *testing.T) {
	t.Parallel()
	k := testKeys()
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := func(cfg JWKSConfig) *JWKS {
		j, err := NewJWKS(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(j.Close)
		return j
	}
	base := func() ([]Issuer, int) {
		return []Issuer{{
			Issuer: "https://issuer.test", Audiences: []string{"api", "admin"}, Algorithms: []string{"RS256", "ES256"},
			Types: []string{"JWT"}, Leeway: 30 * time.Second, MaxLifetime: time.Hour,
			Keys: []Key{{ID: "rsa-1", Algorithm: "RS256", Public: &k.rsa.PublicKey}},
		}, {
			Issuer: "https://hmac.test", Audiences: []string{"api"}, Algorithms: []string{"HS256"},
			Keys: []Key{{Algorithm: "HS256", Secret: []byte("0123456789abcdef0123456789abcdef")}},
		}, {
			Issuer: "https://jwks.test", Audiences: []string{"api"}, JWKS: jwks(JWKSConfig{URL: "https://jwks.test/keys"}),
		}, {
			Issuer: "https://file.test", Audiences: []string{"api"}, JWKS: jwks(JWKSConfig{File: "/etc/authnode/jwks-a.json"}),
		}}, 8 << 10
	}
	hash := func(t *testing.T, issuers []Issuer, maxBytes int) [32]byte {
		t.Helper()
		v, err := NewValidator(issuers, maxBytes, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v.settings
	}
	issuers, maxBytes := base()
	want := hash(t, issuers, maxBytes)
	if issuers, maxBytes := base(); hash(t, issuers, maxBytes) != want {
		t.Fatal("the same settings hash differently")
	}
	for _, tc := range []struct {
		name   string
		change func(is []Issuer, maxBytes *int) []Issuer
	}{
		{"max bytes", func(is []Issuer, m *int) []Issuer { *m = 4 << 10; return is }},
		{"issuer", func(is []Issuer, _ *int) []Issuer { is[0].Issuer = "https://issuer2.test"; return is }},
		{"audience", func(is []Issuer, _ *int) []Issuer { is[0].Audiences = []string{"api", "other"}; return is }},
		{"one audience fewer", func(is []Issuer, _ *int) []Issuer { is[0].Audiences = []string{"api"}; return is }},
		{"audiences split differently", func(is []Issuer, _ *int) []Issuer { is[0].Audiences = []string{"api,admin"}; return is }},
		{"algorithms", func(is []Issuer, _ *int) []Issuer { is[0].Algorithms = []string{"RS256"}; return is }},
		{"types", func(is []Issuer, _ *int) []Issuer { is[0].Types = []string{"at+jwt"}; return is }},
		{"no types", func(is []Issuer, _ *int) []Issuer { is[0].Types = nil; return is }},
		{"leeway", func(is []Issuer, _ *int) []Issuer { is[0].Leeway = 31 * time.Second; return is }},
		{"max lifetime", func(is []Issuer, _ *int) []Issuer { is[0].MaxLifetime = 2 * time.Hour; return is }},
		{"static key", func(is []Issuer, _ *int) []Issuer {
			is[0].Keys = []Key{{ID: "rsa-1", Algorithm: "RS256", Public: &otherRSA.PublicKey}}
			return is
		}},
		{"static key id", func(is []Issuer, _ *int) []Issuer {
			is[0].Keys = []Key{{ID: "rsa-2", Algorithm: "RS256", Public: &k.rsa.PublicKey}}
			return is
		}},
		{"static key added", func(is []Issuer, _ *int) []Issuer {
			is[0].Keys = append(is[0].Keys[:1:1], Key{ID: "ec-1", Algorithm: "ES256", Public: &k.ec.PublicKey})
			return is
		}},
		{"HMAC secret", func(is []Issuer, _ *int) []Issuer {
			is[1].Keys = []Key{{Algorithm: "HS256", Secret: []byte("0123456789abcdef0123456789abcdeX")}}
			return is
		}},
		{"JWKS URL", func(is []Issuer, _ *int) []Issuer {
			is[2].JWKS = jwks(JWKSConfig{URL: "https://jwks.test/other"})
			return is
		}},
		{"JWKS URL replaced by a file", func(is []Issuer, _ *int) []Issuer {
			is[2].JWKS = jwks(JWKSConfig{File: "/etc/authnode/jwks-a.json"})
			return is
		}},
		{"JWKS file", func(is []Issuer, _ *int) []Issuer {
			is[3].JWKS = jwks(JWKSConfig{File: "/etc/authnode/jwks-b.json"})
			return is
		}},
		{"issuer removed", func(is []Issuer, _ *int) []Issuer { return is[:3] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issuers, maxBytes := base()
			issuers = tc.change(issuers, &maxBytes)
			if hash(t, issuers, maxBytes) == want {
				t.Fatalf("changing %s left the settings hash unchanged", tc.name)
			}
		})
	}
}

// TestTokenCacheConcurrent: validations race with key additions, clears and
// revocations (run with -race); a token of a revoked user is never accepted
// once its watermark is visible, and tokens of a key that stays are never
// refused.
func TestTokenCacheConcurrent(t *testing.T) {
	t.Parallel()
	k := testKeys()
	srv, j := rotatingJWKS(t, map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey})
	marks := NewWatermarks()
	c := newTestTokenCache(t, jwksClockValidator(t, j, newFakeClock(now)), marks, TokenCacheConfig{})
	alice := sign(t, jwt.SigningMethodRS256, "k1", k.rsa, baseClaims(), nil)
	bob := sign(t, jwt.SigningMethodRS256, "k1", k.rsa, with(baseClaims(), "sub", "bob"), nil)
	ctx := context.Background()
	stop := make(chan struct{})
	var changers sync.WaitGroup
	changers.Go(func() {
		docs := []string{
			jwksDoc(map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey}),
			jwksDoc(map[string]*rsa.PublicKey{"k1": &k.rsa.PublicKey, "k2": &k.other.PublicKey}),
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			srv.set(docs[i%2], http.StatusOK)
			_ = j.Refresh(ctx)
			if i%5 == 0 {
				c.Clear()
			}
			if i == 3 {
				marks.Raise("bob", now.Add(time.Second))
			}
		}
	})
	var readers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for range 300 {
				if _, err := c.Validate(ctx, alice); err != nil {
					t.Errorf("alice: %v", err)
					return
				}
				visible := marks.Revoked("bob", now)
				_, err := c.Validate(ctx, bob)
				switch code := ErrorCode(err); {
				case visible && code != CodeRevoked:
					t.Errorf("bob after his watermark became visible: %v", err)
					return
				case !visible && err != nil && code != CodeRevoked: // the watermark may land meanwhile
					t.Errorf("bob: %v", err)
					return
				}
			}
		})
	}
	readers.Wait()
	close(stop)
	changers.Wait()
	marks.Raise("bob", now.Add(time.Second)) // in case the changer stopped before raising it
	if _, err := c.Validate(ctx, bob); ErrorCode(err) != CodeRevoked {
		t.Fatalf("bob after the revocation: %v", err)
	}
	if _, err := c.Validate(ctx, alice); err != nil {
		t.Fatalf("alice: %v", err)
	}
}

// TestTokenCacheCloseDuringValidations: validations that run while the
// cache closes neither panic nor hang; afterwards tokens are checked
// without caching.
func TestTokenCacheCloseDuringValidations(t *testing.T) {
	clk := newFakeClock(now)
	c, err := NewTokenCache(clockValidator(t, clk), NewWatermarks(), TokenCacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, 64)
	for i := range tokens {
		claims := baseClaims()
		claims["sub"] = fmt.Sprintf("user-%d", i)
		tokens[i] = rs256(t, claims)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(tokens); i += 4 {
				if _, err := c.Validate(ctx, tokens[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	c.Close()
	wg.Wait()
	if _, err := c.Validate(ctx, tokens[0]); err != nil {
		t.Fatalf("a validation after Close: %v", err)
	}
}
