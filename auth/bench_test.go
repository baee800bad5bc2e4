package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The validation cache's hot path against a full validation. The uncached
// RS256 baseline is BenchmarkValidateRS256Uncached (jwt_test.go): the same
// validator and token as BenchmarkValidateCached.

// benchTokenCache returns a TokenCache over testValidator with a watermark
// map of realistic size (other users), and one token signed with method,
// already cached.
func benchTokenCache(b *testing.B, method jwt.SigningMethod, kid string, key any) (*TokenCache, string) {
	b.Helper()
	marks := NewWatermarks()
	for i := range 10_000 {
		marks.Raise(fmt.Sprintf("revoked-%d", i), now.Add(-time.Minute))
	}
	c, err := NewTokenCache(testValidator(b), marks, TokenCacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	tok := sign(b, method, kid, key, baseClaims(), nil)
	if _, err := c.Validate(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	c.settle()
	return c, tok
}

// benchCached measures cache hits of one token, serially.
func benchCached(b *testing.B, method jwt.SigningMethod, kid string, key any) {
	c, tok := benchTokenCache(b, method, kid, key)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// benchUncached measures full validations of the same token.
func benchUncached(b *testing.B, method jwt.SigningMethod, kid string, key any) {
	v := testValidator(b)
	tok := sign(b, method, kid, key, baseClaims(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateCached: an RS256 token answered from the TokenCache
// (hash, lookup, exp and watermark re-check), on one goroutine and on all.
func BenchmarkValidateCached(b *testing.B) {
	k := testKeys()
	b.Run("serial", func(b *testing.B) { benchCached(b, jwt.SigningMethodRS256, "rsa-1", k.rsa) })
	b.Run("parallel", func(b *testing.B) {
		c, tok := benchTokenCache(b, jwt.SigningMethodRS256, "rsa-1", k.rsa)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := c.Validate(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkValidateCachedES256: an ES256 token answered from the cache.
func BenchmarkValidateCachedES256(b *testing.B) {
	benchCached(b, jwt.SigningMethodES256, "ec-1", testKeys().ec)
}

// BenchmarkValidateCachedEdDSA: an EdDSA token answered from the cache.
func BenchmarkValidateCachedEdDSA(b *testing.B) {
	benchCached(b, jwt.SigningMethodEdDSA, "ed-1", testKeys().ed)
}

// BenchmarkValidateUncachedES256: the full ES256 validation the cache saves.
func BenchmarkValidateUncachedES256(b *testing.B) {
	benchUncached(b, jwt.SigningMethodES256, "ec-1", testKeys().ec)
}

// BenchmarkValidateUncachedEdDSA: the full EdDSA validation the cache saves.
func BenchmarkValidateUncachedEdDSA(b *testing.B) {
	benchUncached(b, jwt.SigningMethodEdDSA, "ed-1", testKeys().ed)
}
