package redisfallback

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/redisfallback/redistest"
)

// next returns the next message delivered to n, failing after 5 s.
func (n *node) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no pub/sub message within 5s")
		return ""
	}
}

func TestPubSubReachesOthersOnly(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	a := newNode(t, testConfig(srv.URL()), true)
	b := newNode(t, testConfig(srv.URL()), true)
	eventually(t, 5*time.Second, "both nodes subscribed", func() bool {
		return rc.PubSubNumSub(context.Background(), "t:invalidations").Val()["t:invalidations"] == 2
	})

	a.f.Publish([]byte("from A"))
	if m := b.next(t); m != "from A" {
		t.Fatalf("B got %q, want from A", m)
	}
	// Redis delivers one channel's messages in order, so had A been given
	// its own message it would come before B's.
	b.f.Publish([]byte("from B"))
	if m := a.next(t); m != "from B" {
		t.Errorf("A got %q first, want from B: its own message came back", m)
	}
	a.f.Publish([]byte("again from A"))
	if m := b.next(t); m != "again from A" {
		t.Errorf("B got %q, want again from A: its own message came back", m)
	}
	// A counts a message sent once PUBLISH has answered, which can be
	// after B received it.
	eventually(t, 5*time.Second, "counted: A sent 2 and received 1, B sent 1 and received 2", func() bool {
		sa, sb := a.f.Stats(), b.f.Stats()
		return sa.Published == 2 && sb.Published == 1 && sa.Received == 1 && sb.Received == 2
	})
}

func TestPubSubResubscribesAfterRestart(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, testConfig(srv.URL()), true)
	b := newNode(t, testConfig(srv.URL()), true)
	subscribed := func() bool {
		return srv.Client().PubSubNumSub(context.Background(), "t:invalidations").Val()["t:invalidations"] == 2
	}
	eventually(t, 5*time.Second, "both nodes subscribed", subscribed)
	srv.Restart()
	eventually(t, 10*time.Second, "both nodes subscribed again", subscribed)
	eventually(t, 10*time.Second, "A's breaker closed", func() bool {
		_, _ = a.f.Wrap(groupPerms, true, time.Minute, newSource()).Load(context.Background(), "u")
		return !a.f.Stats().Open
	})
	a.f.Publish([]byte("after restart"))
	if m := b.next(t); m != "after restart" {
		t.Errorf("B got %q, want after restart", m)
	}
}

func TestQueueOverflowDropsAndCounts(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(srv.URL())
	cfg.QueueSize = 2
	a := newNode(t, cfg, false) // not running: nothing drains the queue yet
	perms := a.f.Wrap(groupPerms, true, time.Minute, newSource())
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		load(t, perms, u)
	}
	if s := a.f.Stats(); s.WriteDrops != 3 || s.Misses != 5 {
		t.Fatalf("stats %+v, want 3 write drops and 5 misses", s)
	}
	a.run(t)
	eventually(t, 5*time.Second, "queued writes sent", func() bool { return a.f.Stats().Writes == 2 })
	if got := keys(t, srv.Client(), "t:*"); strings.Join(got, " ") != "t:u:u1 t:u:u2" {
		t.Errorf("keys = %v, want the two queued users", got)
	}
}

func TestTooManyPendingDeletesRaiseFloor(t *testing.T) {
	cfg := testConfig("redis://127.0.0.1:1/0")
	cfg.QueueSize = 2
	a := newNode(t, cfg, false)
	for _, u := range []string{"u1", "u2", "u3"} {
		a.f.DeleteUser(u)
	}
	if s := a.f.Stats(); s.DeletesPending != 2 || s.DeleteDrops != 1 {
		t.Errorf("stats %+v, want 2 pending and 1 dropped", s)
	}
	if a.f.floor.Load() == 0 {
		t.Error("distrust floor not raised for the dropped delete")
	}
}

func TestRunStopsEverything(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	before := goleak.IgnoreCurrent()
	n := &node{clock: hlc.New(nil), known: &knownMap{}}
	f, err := New(testConfig(srv.URL()), n.clock, n.known.get)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, func([]byte) {})
	}()
	perms := f.Wrap(groupPerms, true, time.Minute, newSource())
	load(t, perms, "u1")
	f.Publish([]byte("x"))
	f.DeleteUser("u2")
	eventually(t, 5*time.Second, "subscribed and written", func() bool {
		return f.Stats().Writes == 1 && rc.PubSubNumSub(ctx, "t:invalidations").Val()["t:invalidations"] == 1
	})

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context ending")
	}
	if err := waitNoLeaks(5*time.Second, before); err != nil {
		t.Errorf("goroutines left after Run returned: %v", err)
	}
	// After Run, loads go straight to the source.
	src := newSource()
	load(t, f.Wrap(groupSessions, true, time.Minute, src), "u1")
	if src.loads.Load() != 1 {
		t.Error("a load after Run did not reach the source")
	}
	f.Run(context.Background(), nil) // a second Run returns at once
}

func TestSourceErrorsPassThrough(t *testing.T) {
	srv := redistest.Start(t)
	a := newNode(t, testConfig(srv.URL()), true)
	want := errors.New("database down")
	ld := a.f.Wrap(groupPerms, true, time.Minute, loaderFunc(func(string) ([]byte, error) { return nil, want }))
	if _, err := ld.Load(context.Background(), "u1"); err != want { //nolint:errorlint // must be the very same error
		t.Errorf("Load error = %v, want the source's error unchanged", err)
	}
}

func TestConfigErrors(t *testing.T) {
	const secret = "s3cr3t-pa55"
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"empty URL", func(c *Config) { c.URL = "" }},
		{"bad port", func(c *Config) { c.URL = "redis://user:" + secret + "@host:port/0" }},
		{"bad host", func(c *Config) { c.URL = "redis://user:" + secret + "@ho st:6379/0" }},
		{"control character", func(c *Config) { c.URL = "redis://user:" + secret + "@host\x7f:6379" }},
		{"bad scheme", func(c *Config) { c.URL = "http://user:" + secret + "@host:6379" }},
		{"bad db", func(c *Config) { c.URL = "redis://user:" + secret + "@host:6379/x" }},
		{"unknown option", func(c *Config) { c.URL = "redis://user:" + secret + "@host:6379/0?password=" + secret }},
		{"negative op timeout", func(c *Config) { c.OpTimeout = -time.Millisecond }},
		{"negative failures", func(c *Config) { c.FailuresToOpen = -1 }},
		{"negative retry", func(c *Config) { c.RetryInterval = -time.Second }},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig("redis://user:" + secret + "@127.0.0.1:6379/0")
			tc.edit(&cfg)
			f, err := New(cfg, hlc.New(nil), func(string, string) hlc.Gen { return 0 })
			if err == nil {
				_ = f.client.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error echoes the password: %v", err)
			}
		})
	}
	if _, err := New(DefaultConfig("redis://127.0.0.1:6379"), nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("New without clock and known: %v, want ErrConfig", err)
	}
	f, err := New(DefaultConfig("redis://user:"+secret+"@127.0.0.1:6379/2"), hlc.New(nil), func(string, string) hlc.Gen { return 0 })
	if err != nil {
		t.Fatalf("a valid URL was rejected: %v", err)
	}
	_ = f.client.Close()
}
