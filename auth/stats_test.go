package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestTokenCacheStats: a validation served from the valid or the failure
// cache is a hit, one checked from scratch is a miss; with the cache off
// every validation is a miss.
func TestTokenCacheStats(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()
	good := rs256(t, baseClaims())
	bad := sign(t, jwt.SigningMethodRS256, "rsa-1", k.other, baseClaims(), nil) // signature_invalid

	check := func(t *testing.T, c *TokenCache, what string, want TokenCacheStats) {
		t.Helper()
		if got := c.Stats(); got != want {
			t.Fatalf("%s: stats %+v, want %+v", what, got, want)
		}
	}

	t.Run("valid token", func(t *testing.T) {
		t.Parallel()
		c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
		check(t, c, "new cache", TokenCacheStats{})
		first := mustValid(t, c, good)
		check(t, c, "first validation", TokenCacheStats{Misses: 1})
		c.settle()
		if again := mustValid(t, c, good); !sameResult(first, again) {
			t.Fatal("the second validation was not served from the cache")
		}
		check(t, c, "second validation", TokenCacheStats{Hits: 1, Misses: 1})
	})

	t.Run("failed token", func(t *testing.T) {
		t.Parallel()
		c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{})
		_, first := c.Validate(ctx, bad)
		if ErrorCode(first) != CodeSignatureInvalid {
			t.Fatalf("bad token: %v", first)
		}
		check(t, c, "first failure", TokenCacheStats{Misses: 1})
		c.settle()
		if _, again := c.Validate(ctx, bad); !sameError(again, first) {
			t.Fatalf("the second failure was not served from the failure cache: %v", again)
		}
		check(t, c, "second failure", TokenCacheStats{Hits: 1, Misses: 1})
	})

	t.Run("cache off", func(t *testing.T) {
		t.Parallel()
		c := newTestTokenCache(t, clockValidator(t, newFakeClock(now)), NewWatermarks(), TokenCacheConfig{Off: true})
		for i := range 3 {
			mustValid(t, c, good)
			if _, err := c.Validate(ctx, bad); ErrorCode(err) != CodeSignatureInvalid {
				t.Fatalf("bad token: %v", err)
			}
			c.settle()
			check(t, c, "cache off", TokenCacheStats{Misses: uint64(2 * (i + 1))})
		}
	})
}

// jwksStatsWant is the part of JWKSStats a test checks exactly (LastOK is
// checked on its own).
type jwksStatsWant struct {
	Fetches, Failures, Skipped, KidHits, KidMisses, UnknownKidRefreshes uint64
	Keys                                                                int
}

func checkJWKSStats(t *testing.T, j *JWKS, what string, want jwksStatsWant) JWKSStats {
	t.Helper()
	st := j.Stats()
	got := jwksStatsWant{
		Fetches: st.Fetches, Failures: st.Failures, Skipped: st.Skipped, Keys: st.Keys,
		KidHits: st.KidHits, KidMisses: st.KidMisses, UnknownKidRefreshes: st.UnknownKidRefreshes,
	}
	if got != want {
		t.Fatalf("%s: stats %+v, want %+v", what, got, want)
	}
	return st
}

// TestJWKSStatsKids: a token whose kid is in the set is a kid hit; an
// unknown kid is a kid miss and, outside the cooldown only, starts an
// unknown-kid refresh.
func TestJWKSStatsKids(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()
	srv := newJWKSServer(t, jwksDoc(map[string]*rsa.PublicKey{"a": &k.rsa.PublicKey, "b": &k.other.PublicKey}))
	clk := newFakeClock(now)
	// A long Wait: each unknown-kid refresh is waited for, so the fetch
	// counts below are exact.
	j := newTestJWKS(t, JWKSConfig{URL: srv.URL, Cooldown: time.Minute, Wait: 10 * time.Second, Now: clk.Now})
	v := jwksClockValidator(t, j, clk)
	st := checkJWKSStats(t, j, "after the first fetch", jwksStatsWant{Fetches: 1, Keys: 2})
	if !st.LastOK.Equal(now) {
		t.Fatalf("LastOK %v, want %v", st.LastOK, now)
	}

	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "a", k.rsa, baseClaims(), nil)); err != nil {
		t.Fatal(err)
	}
	checkJWKSStats(t, j, "a known kid", jwksStatsWant{Fetches: 1, Keys: 2, KidHits: 1})

	unknown := func(kid string) {
		t.Helper()
		if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, kid, k.rsa, baseClaims(), nil)); ErrorCode(err) != CodeUnknownKid {
			t.Fatalf("kid %q: %v, want unknown_kid", kid, err)
		}
	}
	unknown("x1")
	checkJWKSStats(t, j, "an unknown kid", jwksStatsWant{Fetches: 2, Keys: 2, KidHits: 1, KidMisses: 1, UnknownKidRefreshes: 1})
	unknown("x2")
	checkJWKSStats(t, j, "an unknown kid inside the cooldown", jwksStatsWant{Fetches: 2, Keys: 2, KidHits: 1, KidMisses: 2, UnknownKidRefreshes: 1})

	clk.Add(time.Minute)
	unknown("x3")
	st = checkJWKSStats(t, j, "an unknown kid after the cooldown", jwksStatsWant{Fetches: 3, Keys: 2, KidHits: 1, KidMisses: 3, UnknownKidRefreshes: 2})
	if want := now.Add(time.Minute); !st.LastOK.Equal(want) {
		t.Fatalf("LastOK after the unknown-kid refresh %v, want %v", st.LastOK, want)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("the server saw %d fetches, Stats says 3", n)
	}

	// A kid that is not a string is malformed: no key was looked up.
	if _, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "", k.rsa, baseClaims(), map[string]any{"kid": 123})); ErrorCode(err) != CodeMalformed {
		t.Fatalf("a numeric kid: %v, want malformed", err)
	}
	checkJWKSStats(t, j, "a malformed kid", jwksStatsWant{Fetches: 3, Keys: 2, KidHits: 1, KidMisses: 3, UnknownKidRefreshes: 2})
}

// TestJWKSStatsFetches: LastOK is zero until the first successful fetch; a
// failed fetch counts a failure and leaves LastOK and the keys alone; Keys
// is the size of the current set and Skipped the keys that did not parse.
func TestJWKSStatsFetches(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()
	srv := newJWKSServer(t, "oops")
	srv.set("oops", http.StatusInternalServerError)
	clk := newFakeClock(now)
	j, err := NewJWKS(JWKSConfig{URL: srv.URL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	st := checkJWKSStats(t, j, "new", jwksStatsWant{})
	if !st.LastOK.IsZero() {
		t.Fatalf("LastOK %v before any fetch, want the zero time", st.LastOK)
	}

	if err := j.Refresh(ctx); err == nil {
		t.Fatal("a fetch answered with HTTP 500 succeeded")
	}
	st = checkJWKSStats(t, j, "a failed first fetch", jwksStatsWant{Fetches: 1, Failures: 1})
	if !st.LastOK.IsZero() {
		t.Fatalf("LastOK %v after a failed fetch only, want the zero time", st.LastOK)
	}

	good := `{"keys":[` + jwkJSON("a", &k.rsa.PublicKey) + `,` + jwkJSON("b", &k.other.PublicKey) +
		`,{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"}]}`
	srv.set(good, http.StatusOK)
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st = checkJWKSStats(t, j, "a good fetch", jwksStatsWant{Fetches: 2, Failures: 1, Skipped: 1, Keys: 2})
	if !st.LastOK.Equal(now) {
		t.Fatalf("LastOK %v, want %v", st.LastOK, now)
	}

	clk.Add(time.Hour)
	srv.set("oops", http.StatusInternalServerError)
	if err := j.Refresh(ctx); err == nil {
		t.Fatal("a fetch answered with HTTP 500 succeeded")
	}
	st = checkJWKSStats(t, j, "a failed fetch after a good one", jwksStatsWant{Fetches: 3, Failures: 2, Skipped: 1, Keys: 2})
	if !st.LastOK.Equal(now) {
		t.Fatalf("a failed fetch moved LastOK to %v, want %v", st.LastOK, now)
	}

	srv.set(`{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`]}`, http.StatusOK)
	if err := j.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st = checkJWKSStats(t, j, "a good fetch of a smaller set", jwksStatsWant{Fetches: 4, Failures: 2, Skipped: 1, Keys: 1})
	if want := now.Add(time.Hour); !st.LastOK.Equal(want) {
		t.Fatalf("LastOK %v, want %v", st.LastOK, want)
	}
}

// fetchLog records the calls of a JWKS's OnFetch hook.
type fetchLog struct {
	mu    sync.Mutex
	calls []fetchCall
}

type fetchCall struct {
	d   time.Duration
	err error
}

func (l *fetchLog) record(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fetchCall{d, err})
}

func (l *fetchLog) list() []fetchCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fetchCall(nil), l.calls...)
}

// TestJWKSOnFetch: the hook is called once per fetch (explicit or caused by
// an unknown kid) with the fetch's duration and its error.
func TestJWKSOnFetch(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ctx := context.Background()
	srv := newJWKSServer(t, `{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`]}`)
	j, err := NewJWKS(JWKSConfig{URL: srv.URL, Cooldown: time.Nanosecond, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	var log fetchLog
	j.OnFetch(log.record)

	// refresh runs one fetch and returns the hook's call for it, checking
	// that its duration is positive and no longer than the whole call.
	refresh := func(what string, do func() error) (fetchCall, error) {
		t.Helper()
		before := len(log.list())
		start := time.Now()
		err := do()
		elapsed := time.Since(start)
		calls := log.list()
		if len(calls) != before+1 {
			t.Fatalf("%s: %d hook calls, want 1", what, len(calls)-before)
		}
		c := calls[before]
		if c.d <= 0 || c.d > elapsed {
			t.Fatalf("%s: duration %v, want in (0, %v]", what, c.d, elapsed)
		}
		return c, err
	}

	c, err := refresh("a good fetch", func() error { return j.Refresh(ctx) })
	if err != nil || c.err != nil {
		t.Fatalf("a good fetch: Refresh %v, hook %v", err, c.err)
	}

	srv.set("oops", http.StatusInternalServerError)
	c, err = refresh("a failed fetch", func() error { return j.Refresh(ctx) })
	if err == nil || c.err == nil || !errors.Is(c.err, err) || !strings.Contains(c.err.Error(), "HTTP 500") {
		t.Fatalf("a failed fetch: Refresh %v, hook %v; want the same HTTP 500 error", err, c.err)
	}

	srv.set(`{"keys":[`+jwkJSON("a", &k.rsa.PublicKey)+`,`+jwkJSON("b", &k.other.PublicKey)+`]}`, http.StatusOK)
	v := jwksValidator(t, j)
	c, err = refresh("an unknown-kid refresh", func() error {
		_, err := v.Validate(ctx, sign(t, jwt.SigningMethodRS256, "b", k.other, baseClaims(), nil))
		return err
	})
	if err != nil || c.err != nil {
		t.Fatalf("a token whose kid the refresh brought: Validate %v, hook %v", err, c.err)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}
