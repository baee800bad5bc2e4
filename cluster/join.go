package cluster

import (
	"context"
	"strings"
	"time"
)

// discover resolves the seeds and joins every address not yet in this
// node's view: at once, then with backoff until the first join, then every
// RejoinInterval. A lookup that fails or comes back empty keeps the current
// members; the next round tries again. Runs on its own goroutine until stop.
func (c *Cluster) discover() {
	defer c.tasks.Done()
	seeds, _ := ParseSeeds(strings.Join(c.cfg.Join, ",")) // validated in New
	if len(seeds) == 0 {
		c.joined.Store(true)
		return
	}
	delay := 100 * time.Millisecond
	for {
		c.joinRound(seeds)
		if c.joined.Load() {
			delay = c.cfg.RejoinInterval
		} else {
			delay = min(2*delay, c.cfg.RejoinInterval)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(delay):
		}
	}
}

// joinRound resolves the seeds once and joins the addresses that are not
// already live members.
func (c *Cluster) joinRound(seeds []Seed) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timing.TCPTimeout)
	defer cancel()
	addrs, err := resolve(ctx, c.cfg.Resolver, seeds)
	if err != nil {
		c.log.Warn("seed lookup", "err", err, "resolved", len(addrs))
	}
	fresh := c.unknown(addrs)
	if len(fresh) == 0 {
		if len(addrs) > 0 {
			c.joined.Store(true) // every seed is this node or already a member
		}
		return
	}
	n, err := c.ml.Join(fresh)
	switch {
	case n > 0:
		if !c.joined.Swap(true) {
			c.log.Info("joined", "seeds", fresh, "answered", n)
		} else {
			c.log.Info("rejoined members outside this node's view", "seeds", fresh, "answered", n)
		}
	case !c.joined.Load():
		c.log.Warn("join failed; retrying", "seeds", fresh, "err", err)
	default:
		c.log.Debug("seeds outside this node's view did not answer", "seeds", fresh, "err", err)
	}
}

// unknown returns the addresses that are neither this node nor a live member.
func (c *Cluster) unknown(addrs []string) []string {
	known := map[string]bool{c.GossipAddr(): true}
	for _, n := range c.events.snapshot() {
		known[n.addr] = true
	}
	var out []string
	for _, a := range addrs {
		if !known[a] {
			out = append(out, a)
		}
	}
	return out
}

// Joined reports whether this node has met its seeds (or has none, or they
// resolve only to itself and members it already knows).
func (c *Cluster) Joined() bool { return c.joined.Load() }
