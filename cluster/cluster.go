// Package cluster keeps this node's view of membership with
// hashicorp/memberlist and turns it into consistent-hash ring snapshots.
//
// One goroutine owns the ring: memberlist's callbacks only signal it, and it
// rebuilds the member list from memberlist's current view, publishes a new
// snapshot (rebuild, then swap) and tells the OnChange callback. Members whose
// metadata cannot be decoded, or who speak another protocol version, stay out
// of the ring: they could not answer a forwarded get.
package cluster

import (
	"bytes"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/avion/authnode/ring"
)

// Member is a node in the ring.
type Member struct {
	Name       string
	GossipAddr string // host:port of its gossip listener
	Meta
}

// View is one membership state: the ring snapshot and the members in it.
type View struct {
	Ring    *ring.Snapshot
	Members map[string]Member // by name, this node included
}

// Cluster is this node's membership. Create it with New, stop it with
// Leave (optional) and Shutdown.
type Cluster struct {
	cfg      Config
	log      *slog.Logger
	ml       *memberlist.Memberlist
	ring     *ring.Ring
	onChange func(View)

	changed chan struct{} // capacity 1: coalesces membership events
	stop    chan struct{}
	tasks   sync.WaitGroup // the ring and discovery goroutines
	joined  atomic.Bool

	events     *events
	delegate   *delegate
	silence    *silence
	broadcasts *broadcasts
	gossipAddr string

	mu   sync.RWMutex
	view View

	shutdownOnce sync.Once
}

// New starts gossip for cfg and returns once this node is a cluster of one;
// call Join to meet the others. onChange (optional) is called from the
// cluster's goroutine after each new ring is published, one call at a time;
// it may block briefly, and membership changes queue behind it.
func New(cfg Config, onChange func(View)) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	meta, err := cfg.Meta.Encode()
	if err != nil {
		return nil, err
	}
	return start(cfg, onChange, meta)
}

// start runs gossip advertising meta as this node's metadata.
func start(cfg Config, onChange func(View), meta []byte) (*Cluster, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := ring.New(cfg.Ring)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, log: cfg.Logger.With("component", "cluster"), ring: r, onChange: onChange,
		changed: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	c.events = &events{c: c, nodes: map[string]nodeInfo{}, departed: map[string]departure{}}
	c.broadcasts = newBroadcasts(func() int { return len(c.events.snapshot()) })
	limit := cfg.MaxSilence
	if limit <= 0 {
		// Twice the suspicion timeout: probes in both directions normally
		// come every ProbeInterval, but one interval often stretches to two.
		limit = 2 * time.Duration(cfg.Timing.SuspicionMult) * cfg.Timing.ProbeInterval
	}
	c.silence = &silence{limit: limit, notify: cfg.OnReconnect}
	if c.cfg.Resolver == nil {
		c.cfg.Resolver = net.DefaultResolver
	}
	mc := c.memberlistConfig(meta)
	if cfg.Faults != nil {
		t, err := newFaultyTransport(mc, cfg.Faults, mc.Logger)
		if err != nil {
			return nil, err
		}
		mc.Transport = t
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown()
		}
		return nil, fmt.Errorf("cluster: start gossip: %w", err)
	}
	c.ml = ml
	self := ml.LocalNode()
	c.gossipAddr = net.JoinHostPort(self.Addr.String(), fmt.Sprint(self.Port))
	c.rebuild()
	c.tasks.Add(2)
	go c.loop()
	go c.discover()
	return c, nil
}

func (c *Cluster) memberlistConfig(meta []byte) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.cfg.Name
	mc.BindAddr, mc.BindPort = c.cfg.BindAddr, c.cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = c.cfg.AdvertiseAddr, c.cfg.AdvertisePort
	t := c.cfg.Timing
	mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult = t.ProbeInterval, t.ProbeTimeout, t.SuspicionMult
	mc.GossipInterval, mc.PushPullInterval, mc.TCPTimeout = t.GossipInterval, t.PushPullInterval, t.TCPTimeout
	mc.DeadNodeReclaimTime = t.DeadNodeReclaimTime
	mc.SecretKey = c.cfg.GossipKey
	c.delegate = &delegate{state: c.cfg.State, broadcasts: c.broadcasts}
	c.delegate.meta.Store(&meta)
	mc.Delegate = c.delegate
	mc.Events = c.events
	mc.Ping = pings{c.silence}
	mc.Logger = log.New(&logWriter{log: c.log}, "", 0)
	return mc
}

// Join contacts seeds (host:port) at once and returns how many answered. It
// fails only when none did. Seeds in the Config are joined in the
// background without it.
func (c *Cluster) Join(seeds []string) (int, error) {
	if len(seeds) == 0 {
		return 0, nil
	}
	n, err := c.ml.Join(seeds)
	if n > 0 {
		return n, nil
	}
	return 0, fmt.Errorf("cluster: join %v: %w", seeds, err)
}

// Ring returns the current ring snapshot; it never blocks.
func (c *Cluster) Ring() *ring.Snapshot { return c.ring.Current() }

// Current implements transport.RingSource.
func (c *Cluster) Current() *ring.Snapshot { return c.ring.Current() }

// View returns the latest membership view.
func (c *Cluster) View() View {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.view
}

// GossipAddr returns the address other nodes use to reach this node's gossip.
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// Leave tells the others this node is going, waiting up to timeout (0: no
// limit) for the messages to spread: first, for at most a quarter of the
// time (and 1 s), its metadata marked leaving, so they count it as left
// rather than failed (memberlist does not tell them which); then the leave
// itself, which they act on at once, dropping it from their rings.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.announceLeaving(timeout)
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// announceLeaving gossips this node's metadata marked leaving, waiting at
// most timeout/4 and 1 s. Failing is harmless: the others then count the
// leave as a failure.
func (c *Cluster) announceLeaving(timeout time.Duration) {
	meta := c.cfg.Meta
	meta.Leaving = true
	b, err := meta.Encode()
	if err != nil { // too large with the flag: stay as is
		return
	}
	c.delegate.meta.Store(&b)
	wait := time.Second
	if timeout > 0 {
		wait = min(wait, timeout/4)
	}
	if err := c.ml.UpdateNode(wait); err != nil {
		c.log.Warn("announcing the leave", "err", err)
	}
}

// Shutdown stops gossip and the ring goroutine. It is idempotent. Without a
// Leave first, the others detect the failure (seconds, see
// docs/operations.md).
func (c *Cluster) Shutdown() error {
	var err error
	c.shutdownOnce.Do(func() {
		close(c.stop)
		c.tasks.Wait()
		if e := c.ml.Shutdown(); e != nil {
			err = fmt.Errorf("cluster: shutdown: %w", e)
		}
	})
	return err
}

func (c *Cluster) signal() {
	select {
	case c.changed <- struct{}{}:
	default: // a rebuild is already pending; it will see this change too
	}
}

func (c *Cluster) loop() {
	defer c.tasks.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.changed:
			c.rebuild()
		}
	}
}

// rebuild reads memberlist's current view, publishes a ring for it, and
// reports the change. Runs on the cluster goroutine (or before it starts).
func (c *Cluster) rebuild() {
	members := c.members()
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	before := c.ring.Current()
	snap, err := c.ring.SetMembers(names)
	if err != nil {
		c.log.Error("ring not updated", "members", len(names), "err", err)
		return
	}
	view := View{Ring: snap, Members: members}
	c.mu.Lock()
	c.view = view
	c.mu.Unlock()
	if snap == before {
		return
	}
	c.log.Info("ring changed", "epoch", snap.Epoch(), "fingerprint", fmt.Sprintf("%016x", snap.Fingerprint()), "members", names)
	if c.onChange != nil {
		c.onChange(view)
	}
}

// members returns the live members with valid metadata, from the copy the
// event callbacks keep.
func (c *Cluster) members() map[string]Member {
	out := map[string]Member{}
	for name, n := range c.events.snapshot() {
		m, err := DecodeMeta(n.meta)
		if err != nil {
			c.log.Warn("member left out of the ring", "member", name, "err", err)
			continue
		}
		out[name] = Member{Name: name, GossipAddr: n.addr, Meta: m}
	}
	return out
}

// delegate serves this node's metadata and state to memberlist.
type delegate struct {
	meta       atomic.Pointer[[]byte]
	state      State // nil: no state
	broadcasts *broadcasts
}

func (d *delegate) NodeMeta(limit int) []byte {
	meta := *d.meta.Load()
	if len(meta) > limit {
		return nil
	}
	return meta
}

// NotifyMsg passes a broadcast from another member to the state. The
// buffer is memberlist's: State.Merge must not keep it.
func (d *delegate) NotifyMsg(msg []byte) {
	if d.state != nil && len(msg) > 0 {
		d.state.Merge(msg)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.broadcasts.q.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	if d.state == nil {
		return nil
	}
	return d.state.Local()
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if d.state != nil && len(buf) > 0 {
		d.state.Merge(buf)
	}
}

// events keeps a copy of the live members and signals a rebuild on every
// change. memberlist calls it from its own goroutines while holding its node
// lock, which is the only time its *Node may be read safely: the pointers
// Memberlist.Members returns are updated in place afterwards. It must not
// block.
type events struct {
	c        *Cluster
	mu       sync.Mutex
	nodes    map[string]nodeInfo
	departed map[string]departure // members that left the view, until they rejoin
}

type nodeInfo struct {
	addr string // gossip host:port
	meta []byte
}

func (e *events) put(n *memberlist.Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes[n.Name] = nodeInfo{addr: n.Address(), meta: bytes.Clone(n.Meta)}
	delete(e.departed, n.Name)
}

func (e *events) snapshot() map[string]nodeInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.nodes)
}

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.put(n)
	if n.Name != e.c.cfg.Name {
		e.c.silence.expect() // silence counts from when there is a peer to hear
	}
	e.c.log.Info("member joined", "member", n.Name, "addr", n.Address(), "state", StateAlive)
	e.c.signal()
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.mu.Lock()
	delete(e.nodes, n.Name)
	peers := len(e.nodes) - 1 // without this node
	state := e.departedLocked(n, time.Now())
	e.mu.Unlock()
	e.c.silence.peerLeft(n, peers)
	e.c.log.Info("member "+state, "member", n.Name, "addr", n.Address(), "state", state)
	e.c.signal()
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	e.put(n)
	e.c.log.Info("member updated", "member", n.Name, "addr", n.Address())
	e.c.signal()
}

// State is application state a node adds to memberlist's push-pull
// exchange (at join and every push-pull interval). Both methods are called
// from memberlist's goroutines and must not block for long.
type State interface {
	// Local returns this node's state to send.
	Local() []byte
	// Merge takes another node's state, or a message another node
	// broadcast. It must tolerate any bytes and not keep remote.
	Merge(remote []byte)
}
