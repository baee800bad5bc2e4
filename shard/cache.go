package shard

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Cache is one node's set of named groups. It shares the peers, the clock,
// the source-load cap and peer suspicion between its groups. Create it with
// New; it owns every goroutine it starts, and Close stops them.
type Cache struct {
	cfg      Config
	peers    Peers
	limiter  chan struct{} // one token per source load in flight
	suspects *suspects

	base   context.Context // parent of every detached load; cancelled by Close
	cancel context.CancelFunc
	pause  *pauseGuard // nil when MaxPause is 0

	flushes atomic.Uint64
	recent  recent // latest invalidations, shared with other nodes

	mu     sync.RWMutex
	groups map[string]*Group
	closed bool
	active sync.WaitGroup // loads and store writes in flight; Close waits for them
}

// New validates cfg and returns an empty cache that reaches other nodes
// through peers.
func New(cfg Config, peers Peers) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if peers == nil {
		return nil, fmt.Errorf("%w: peers are required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	c := &Cache{
		cfg:      cfg,
		peers:    peers,
		limiter:  make(chan struct{}, cfg.MaxConcurrentLoads),
		suspects: newSuspects(cfg.SuspectAfter, cfg.SuspectFor, cfg.Now),
		base:     base,
		cancel:   cancel,
		groups:   map[string]*Group{},
	}
	if cfg.MaxPause > 0 {
		c.pause = &pauseGuard{max: cfg.MaxPause, mono: cfg.Mono, stop: make(chan struct{}), done: make(chan struct{})}
		c.pause.beat.Store(int64(cfg.Mono()))
		go c.pause.run(c.flushAfterPause)
	}
	return c, nil
}

// NewGroup adds a group named name (lowercase letters, digits and '_',
// starting with a letter, at most 63 bytes) that loads misses through loader.
func (c *Cache) NewGroup(name string, loader Loader, cfg GroupConfig) (*Group, error) {
	if !groupName.MatchString(name) {
		return nil, fmt.Errorf("%w: group name %q", ErrConfig, name)
	}
	if loader == nil {
		return nil, fmt.Errorf("%w: group %s has no loader", ErrConfig, name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("group %s: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.groups[name] != nil {
		return nil, fmt.Errorf("%w: group %s exists", ErrConfig, name)
	}
	g, err := newGroup(c, name, loader, cfg)
	if err != nil {
		return nil, err
	}
	c.groups[name] = g
	return g, nil
}

// Group returns the group called name, or nil.
func (c *Cache) Group(name string) *Group {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.groups[name]
}

// Groups returns the group names, sorted.
func (c *Cache) Groups() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.groups))
	for n := range c.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ServeForward answers a get that another node forwarded to this one. It
// never forwards again: this node answers as the owner, from a hot copy, or
// by loading the key itself.
func (c *Cache) ServeForward(ctx context.Context, req ForwardRequest) (ForwardResponse, error) {
	if req.Hops != 1 {
		return ForwardResponse{}, fmt.Errorf("%w: hop count %d, want 1", ErrBadRequest, req.Hops)
	}
	g := c.Group(req.Group)
	if g == nil {
		return ForwardResponse{}, fmt.Errorf("%w: %q", ErrUnknownGroup, req.Group)
	}
	return g.serveForward(ctx, req)
}

// RingChanged must be called after each new ring is published. It drops the
// owner entries of keys this node no longer owns, drops hot copies of keys it
// now owns, and forgets peer suspicion. It may block briefly.
func (c *Cache) RingChanged() {
	c.suspects.reset()
	for _, g := range c.groupList() {
		g.ringChanged()
	}
}

func (c *Cache) groupList() []*Group {
	c.mu.RLock()
	defer c.mu.RUnlock()
	groups := make([]*Group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	return groups
}

// Suspects lists the peers currently skipped because their calls kept failing.
func (c *Cache) Suspects() []string { return c.suspects.suspected() }

// Close stops every load in flight, waits for them and for invalidations in
// progress, and releases the groups. Gets that run during or after Close fail
// with ErrClosed or return a value without caching it.
func (c *Cache) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	if c.pause != nil {
		close(c.pause.stop)
		<-c.pause.done
	}
	c.active.Wait()
	for _, g := range c.groups {
		g.close()
	}
}

// enter registers work that writes to the stores (a load, a store, an
// invalidation), or reports that the cache is closed. Close waits for every
// registered piece of work to call leave before it closes the stores.
func (c *Cache) enter() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false
	}
	c.active.Add(1)
	return true
}

func (c *Cache) leave() { c.active.Done() }
