package shard

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeMono is a monotonic clock a test can make jump, as a paused process
// sees it when it runs again.
type fakeMono struct{ t atomic.Int64 }

func (m *fakeMono) now() time.Duration { return time.Duration(m.t.Load()) }

func (m *fakeMono) jump(d time.Duration) { m.t.Add(int64(d)) }

// TestPauseFlushesBeforeServing: after the clock jumps past MaxPause, the
// next Get flushes the cache before answering, so a value that might have
// been invalidated while the process was stopped is loaded again.
func TestPauseFlushesBeforeServing(t *testing.T) {
	mono := &fakeMono{}
	src := newSource()
	net := newNet(t, []string{"a", "b"}, src, testGroupConfig(), func(c *Config) {
		if c.Self == "a" {
			c.MaxPause, c.Mono = time.Hour, mono.now // the heartbeat never fires here
		}
	})
	a := net.group("a")
	own := keyOwnedBy(t, net.node("a").Ring(), "a")
	other := keyOwnedBy(t, net.node("a").Ring(), "b")
	mustGet(t, a, own)
	mustGet(t, a, other) // a hot copy on a
	mono.jump(30 * time.Minute)
	if got := mustGet(t, a, own); got != own+"@1" {
		t.Fatalf("a pause shorter than MaxPause flushed: %q", got)
	}
	mono.jump(2 * time.Hour)
	if got := mustGet(t, a, own); got != own+"@2" {
		t.Fatalf("after a pause the owner entry was served: %q", got)
	}
	if n := net.node("a").cache.Flushes(); n != 1 {
		t.Fatalf("%d flushes, want 1", n)
	}
	mustGet(t, a, other)
	if n := net.node("b").received.Load(); n != 2 {
		t.Fatalf("the hot copy survived the pause: the owner was asked %d times, want 2", n)
	}
	if n := net.node("b").cache.Flushes(); n != 0 {
		t.Fatal("a node whose clock did not jump flushed")
	}
}

// TestHeartbeatNoticesPause: the heartbeat goroutine flushes after a pause
// even when no request comes.
func TestHeartbeatNoticesPause(t *testing.T) {
	mono := &fakeMono{}
	net := newNet(t, []string{"a"}, newSource(), testGroupConfig(), func(c *Config) {
		c.MaxPause, c.Mono = 40*time.Millisecond, mono.now
	})
	mono.jump(time.Second)
	eventually(t, "the heartbeat to flush", func() bool { return net.node("a").cache.Flushes() == 1 })
}
