// Package nodetest starts real authnode nodes in one process for tests: on
// 127.0.0.1, free ports, fast failure-detection timings, cleaned up with
// t.Cleanup.
package nodetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/avion/authnode/node"
)

// Node is a running node and the means to stop it.
type Node struct {
	*node.Node
	cancel context.CancelFunc
	done   chan error
}

// Stop shuts the node down (gracefully, unless its config says SkipLeave)
// and waits for Run to return.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	n.cancel()
	if err := <-n.done; err != nil {
		t.Errorf("node %s: Run: %v", n.Name(), err)
	}
	n.done <- nil // later Stops (and the cleanup) return at once
}

// Options shape the nodes Start creates.
type Options struct {
	// Config adjusts node i's config before it starts.
	Config func(i int, cfg *node.Config)
	// Timeout bounds waiting for the cluster to agree on one ring. Default 20 s.
	Timeout time.Duration
	// Network, when set, gives every node its fault hook and registers it.
	Network *Network
}

// Start runs n nodes named node-0 … node-(n-1), each joining node-0, and
// waits until every node reports the same ring of n members.
func Start(t testing.TB, n int, opts Options) []*Node {
	t.Helper()
	nodes := make([]*Node, 0, n)
	for i := range n {
		cfg := node.LocalConfig(fmt.Sprintf("node-%d", i))
		cfg.Logger = Logger(t)
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		if opts.Network != nil {
			cfg.Faults = opts.Network.Faults(cfg.Name)
		}
		if opts.Config != nil {
			opts.Config(i, &cfg)
		}
		nd := Run(t, cfg)
		if opts.Network != nil {
			opts.Network.Register(nd)
		}
		nodes = append(nodes, nd)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	WaitConverged(t, timeout, nodes...)
	return nodes
}

// Run starts one node from cfg and waits until it has started.
func Run(t testing.TB, cfg node.Config) *Node {
	t.Helper()
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Node{Node: nd, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- nd.Run(ctx) }()
	t.Cleanup(func() { h.Stop(t) })
	select {
	case <-nd.Started():
	case err := <-h.done:
		h.done <- err
		t.Fatalf("node %s stopped while starting: %v", cfg.Name, err)
	}
	return h
}

// WaitConverged waits until every node's ring holds exactly these nodes and
// all have the same fingerprint; it returns how long that took.
func WaitConverged(t testing.TB, timeout time.Duration, nodes ...*Node) time.Duration {
	t.Helper()
	start := time.Now()
	for !Converged(nodes...) {
		if time.Since(start) > timeout {
			t.Fatalf("nodes did not agree on one ring of %d within %v", len(nodes), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// Converged reports whether every node's ring holds exactly these nodes.
func Converged(nodes ...*Node) bool {
	fp := nodes[0].Current().Fingerprint()
	for _, n := range nodes {
		r := n.Current()
		if r.Fingerprint() != fp || r.Len() != len(nodes) {
			return false
		}
		for _, m := range nodes {
			if !r.Has(m.Name()) {
				return false
			}
		}
	}
	return true
}

// Logger returns a logger for test nodes: silent unless -v.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}
