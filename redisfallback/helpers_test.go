package redisfallback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"go.uber.org/goleak"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
)

// TestMain fails the run when goroutines outlive the tests. go-redis's pool
// probes a dead server from a goroutine of its own that notices Close only
// after up to a second, so leftovers are polled for up to a deadline.
func TestMain(m *testing.M) {
	// go-redis reports every failed dial on a process-wide logger; the
	// outage tests cause hundreds of them.
	redis.SetLogger(&logging.VoidLogger{})
	code := m.Run()
	if code == 0 {
		if err := waitNoLeaks(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func waitNoLeaks(limit time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(limit)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testConfig is a config for tests that are not about timing: a generous
// OpTimeout keeps a loaded machine from opening the breaker by accident.
func testConfig(url string) Config {
	return Config{
		URL:            url,
		Prefix:         "t:",
		OpTimeout:      time.Second,
		FailuresToOpen: 3,
		RetryInterval:  50 * time.Millisecond,
		QueueSize:      1000,
	}
}

// knownMap is a node's record of invalidation generations.
type knownMap struct {
	mu   sync.Mutex
	gens map[string]hlc.Gen
}

func (k *knownMap) get(group, key string) hlc.Gen {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gens[group+"\x00"+key]
}

func (k *knownMap) set(group, key string, g hlc.Gen) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gens == nil {
		k.gens = map[string]hlc.Gen{}
	}
	k.gens[group+"\x00"+key] = g
}

// node is one Fallback with its clock and known generations, running until
// the test ends.
type node struct {
	f     *Fallback
	clock *hlc.Clock
	known *knownMap
	msgs  chan string // pub/sub payloads delivered to this node

	cancel context.CancelFunc
	done   chan struct{}
}

// newNode builds a Fallback from cfg. When run is true it runs until the
// test ends, with a subscriber that collects messages in msgs.
func newNode(t *testing.T, cfg Config, run bool) *node {
	t.Helper()
	n := &node{clock: hlc.New(nil), known: &knownMap{}, msgs: make(chan string, 64)}
	f, err := New(cfg, n.clock, n.known.get)
	if err != nil {
		t.Fatal(err)
	}
	n.f = f
	t.Cleanup(func() {
		if n.cancel == nil { // never ran: Run did not close the client
			_ = f.client.Close()
		}
	})
	if run {
		n.run(t)
	}
	return n
}

// run starts Run; cleanup stops it and waits for it to return.
func (n *node) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		n.f.Run(ctx, func(b []byte) { n.msgs <- string(b) })
	}()
	t.Cleanup(func() { n.stop(t) })
}

func (n *node) stop(t *testing.T) {
	n.cancel()
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		t.Error("Run did not return within 5s of its context ending")
	}
}

// source is a fake source of truth: a value per key and a load counter.
type source struct {
	mu     sync.Mutex
	values map[string]string
	loads  atomic.Int64
	during func(key string) // runs inside every load
}

func newSource() *source { return &source{values: map[string]string{}} }

func (s *source) put(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = value
}

func (s *source) Load(_ context.Context, key string) (shard.Value, error) {
	s.loads.Add(1)
	s.mu.Lock()
	v, ok := s.values[key]
	during := s.during
	s.mu.Unlock()
	if during != nil {
		during(key)
	}
	if !ok {
		v = "value of " + key
	}
	return shard.Value{Bytes: []byte(v)}, nil
}

// mustNotLoad is a loader that fails the test when called.
func mustNotLoad(t *testing.T) shard.Loader {
	return shard.LoaderFunc(func(_ context.Context, key string) (shard.Value, error) {
		t.Errorf("source loaded %q: the Redis copy should have been served", key)
		return shard.Value{}, errors.New("unexpected load")
	})
}

// load calls ld and fails the test on an error.
func load(t *testing.T, ld shard.Loader, key string) shard.Value {
	t.Helper()
	v, err := ld.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return v
}

// eventually polls cond every 5 ms until it holds, failing the test after
// limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}

// loaderFunc adapts a function of the key to shard.Loader.
type loaderFunc func(key string) ([]byte, error)

func (l loaderFunc) Load(_ context.Context, key string) (shard.Value, error) {
	b, err := l(key)
	return shard.Value{Bytes: b}, err
}
