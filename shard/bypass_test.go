package shard

import (
	"fmt"
	"testing"
	"time"
)

func TestBypassExpiresAndIsBounded(t *testing.T) {
	var b bypass
	now := time.Unix(1000, 0)
	if b.active("k", now) {
		t.Fatal("an empty bypass is active")
	}
	b.add("k", now.Add(time.Minute), now)
	if !b.active("k", now) || b.active("other", now) {
		t.Fatal("the bypass covers the wrong keys")
	}
	if b.active("k", now.Add(time.Minute)) {
		t.Fatal("the bypass outlived its time")
	}
	if b.n.Load() != 0 {
		t.Fatalf("an expired bypass still counts %d", b.n.Load())
	}
	for i := range maxBypassed + 1 {
		b.add(fmt.Sprint("key-", i), now.Add(time.Minute), now)
	}
	if !b.active("never-added", now) {
		t.Fatal("past maxBypassed the whole group must be bypassed")
	}
	if b.active("never-added", now.Add(time.Minute)) {
		t.Fatal("the group-wide bypass outlived its time")
	}
}
