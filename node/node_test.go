package node_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/avion/authnode/node"
	"github.com/avion/authnode/node/nodetest"
	"github.com/avion/authnode/shard"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(runChild(name))
	}
	// The PostgreSQL server some tests share runs until the end: its
	// waiting goroutine is expected; Cleanup stops it and exits.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/avion/authnode/store/storetest.StartPostgres.func2"),
		goleak.Cleanup(func(code int) {
			postgres.stop()
			os.Exit(code)
		}))
}

// source is a source of truth shared by every node of a test: it counts loads
// per key across the cluster.
type source struct {
	mu    sync.Mutex
	loads map[string]int
}

func newSource() *source { return &source{loads: map[string]int{}} }

func (s *source) Load(_ context.Context, key string) (shard.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads[key]++
	return shard.Value{Bytes: []byte("v:" + key)}, nil
}

func (s *source) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads[key]
}

func withGroup(src *source, more func(i int, cfg *node.Config)) nodetest.Options {
	return nodetest.Options{Config: func(i int, cfg *node.Config) {
		cfg.Groups = []node.GroupSpec{{Name: "g", Loader: src}}
		if more != nil {
			more(i, cfg)
		}
	}}
}

func randomKeys(n int) []string {
	r := rand.New(rand.NewPCG(1, 1))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%x", r.Uint64())
	}
	return keys
}

func TestClusterAgreesAndLoadsOnce(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			src := newSource()
			nodes := nodetest.Start(t, size, withGroup(src, nil))
			keys := randomKeys(10_000)
			for _, k := range keys {
				owner := nodes[0].Current().Owner(k)
				for _, n := range nodes[1:] {
					if got := n.Current().Owner(k); got != owner {
						t.Fatalf("%s says %s owns %s, node-0 says %s", n.Name(), got, k, owner)
					}
				}
			}
			for _, k := range keys[:300] {
				for _, n := range nodes {
					e, err := n.Group("g").Get(context.Background(), k)
					if err != nil || string(e.Value) != "v:"+k {
						t.Fatalf("Get(%s) via %s = %q, %v", k, n.Name(), e.Value, err)
					}
				}
				if c := src.count(k); c != 1 {
					t.Fatalf("%s loaded %d times across %d nodes", k, c, size)
				}
			}
		})
	}
}

// load runs workers that get keys through nodes until stop is closed or a
// bound is reached, and counts failures.
type load struct {
	ok, failed atomic.Int64
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(t *testing.T, nodes []*nodetest.Node, keys []string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	deadline := time.Now().Add(60 * time.Second)
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				n := nodes[(w+i)%len(nodes)]
				if _, err := n.Group("g").Get(context.Background(), keys[(w*7919+i)%len(keys)]); err != nil {
					l.failed.Add(1)
					t.Errorf("Get via %s: %v", n.Name(), err)
					return
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

func stats(nodes []*nodetest.Node) (s shard.Stats) {
	for _, n := range nodes {
		g := n.Group("g").Stats()
		s.DegradedLoads += g.DegradedLoads
		s.ForwardErrors += g.ForwardErrors
		s.Forwards += g.Forwards
	}
	return s
}

// TestKilledNodeUnderLoad stops a node without Leave while workers keep
// asking the survivors for its keys: every request succeeds, the survivors
// wait on the dead owner only a few times before suspecting it, and the ring
// converges.
func TestKilledNodeUnderLoad(t *testing.T) {
	src := newSource()
	nodes := nodetest.Start(t, 3, withGroup(src, func(i int, cfg *node.Config) { cfg.SkipLeave = i == 2 }))
	survivors := nodes[:2]
	var keys []string
	for _, k := range randomKeys(5000) {
		if nodes[0].Current().Owner(k) == "node-2" {
			keys = append(keys, k)
		}
	}
	const workers = 6
	l := startLoad(t, survivors, keys, workers)
	for l.ok.Load() < 500 {
		time.Sleep(time.Millisecond)
	}
	killed := time.Now()
	nodes[2].Stop(t)
	took := nodetest.WaitConverged(t, 30*time.Second, survivors...)
	for n := l.ok.Load(); l.ok.Load() < n+500; {
		time.Sleep(time.Millisecond)
	}
	l.finish()
	s := stats(survivors)
	t.Logf("ring converged %v after the kill (%v after the node stopped); %d gets, %d degraded loads, %d failed forwards",
		time.Since(killed), took, l.ok.Load(), s.DegradedLoads, s.ForwardErrors)
	if l.failed.Load() != 0 {
		t.Fatalf("%d requests failed", l.failed.Load())
	}
	if s.DegradedLoads == 0 {
		t.Fatal("no degraded loads: the test did not exercise a dead owner")
	}
	// Before suspicion each worker may fail a few forwards; after it only a
	// probe per SuspectFor interval per node goes to the dead owner.
	if limit := uint64(len(survivors) * (workers + shard.DefaultConfig("x").SuspectAfter + 10)); s.ForwardErrors > limit {
		t.Fatalf("%d forwards waited on the dead owner, limit %d", s.ForwardErrors, limit)
	}
}

// TestGracefulLeave: a node that leaves is dropped by the others at once and
// no request needs the degraded path.
func TestGracefulLeave(t *testing.T) {
	src := newSource()
	nodes := nodetest.Start(t, 3, withGroup(src, nil))
	survivors := nodes[:2]
	keys := randomKeys(2000)
	l := startLoad(t, survivors, keys, 4)
	for l.ok.Load() < 500 {
		time.Sleep(time.Millisecond)
	}
	nodes[2].Stop(t)
	took := nodetest.WaitConverged(t, 5*time.Second, survivors...)
	for n := l.ok.Load(); l.ok.Load() < n+500; {
		time.Sleep(time.Millisecond)
	}
	l.finish()
	s := stats(survivors)
	t.Logf("a graceful leave converged %v after Run returned; %d gets, %d forwards", took, l.ok.Load(), s.Forwards)
	if s.DegradedLoads != 0 || l.failed.Load() != 0 {
		t.Fatalf("graceful leave: %d degraded loads, %d failed requests", s.DegradedLoads, l.failed.Load())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthReadinessMetrics(t *testing.T) {
	nodes := nodetest.Start(t, 1, nodetest.Options{})
	base := "http://" + nodes[0].HTTPAddr()
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "ring changed") || time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "authnode_ring_members 1") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics lacks the ring gauge:\n%.500s", body)
	}
	if code, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown path = %d", code)
	}
}

func TestConfigValidation(t *testing.T) {
	good := node.LocalConfig("n")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*node.Config){
		"no name":      func(c *node.Config) { c.Name = "" },
		"bad gossip":   func(c *node.Config) { c.GossipAddr = "nope" },
		"bad peer":     func(c *node.Config) { c.PeerAddr = "127.0.0.1:70000" },
		"tiny cache":   func(c *node.Config) { c.CacheMaxBytes = 10 },
		"peer timeout": func(c *node.Config) { c.PeerTimeout = 0 },
		"members":      func(c *node.Config) { c.MaxMembers = 0 },
		"group":        func(c *node.Config) { c.Groups = []node.GroupSpec{{Name: "g"}} },
	} {
		cfg := good
		mod(&cfg)
		if _, err := node.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
