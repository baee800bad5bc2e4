package redisfallback

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// keys lists the keys matching pattern, sorted.
func keys(t testing.TB, c *redis.Client, pattern string) []string {
	t.Helper()
	ks, err := c.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return sortStrings(ks)
}
