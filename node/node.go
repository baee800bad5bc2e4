package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/avion/authnode/cluster"
	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/metrics"
	"github.com/avion/authnode/redisfallback"
	"github.com/avion/authnode/ring"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport"
)

// Node is one authnode. New binds its listeners; Run serves until its context
// ends and then shuts down in order. A Node runs once.
type Node struct {
	cfg     Config
	log     *slog.Logger
	metrics *prometheus.Registry
	obs     *metrics.Metrics
	clock   *hlc.Clock // issues this node's generations

	peerLis, grpcLis, httpLis, adminLis net.Listener

	ring     atomic.Pointer[ring.Snapshot] // the cluster's members
	routing  atomic.Pointer[ring.Snapshot] // what the cache routes by: ring, or only this node outside cluster mode
	self     *ring.Snapshot                // a ring of only this node
	changed  atomic.Int64                  // unix nanos of the last ring change
	stopping atomic.Bool

	cluster     *cluster.Cluster
	pool        *transport.Pool
	cache       *shard.Cache
	auth        authParts
	redis       *redisfallback.Fallback // nil without RedisURL
	lastCleanup time.Time               // of the source; used by the watermark goroutine only
	syncNow     chan struct{}           // asks the watermark goroutine for a read now
	health      *health.Server
	direct      map[string]*atomic.Uint64 // cache mode off: loads by group, made without the cache

	started chan struct{} // closed once gossip runs and the cache is built
	runOnce sync.Once
	tasks   sync.WaitGroup // every goroutine Run starts
}

// New validates cfg and binds the peer, gRPC and HTTP listeners, so their
// addresses are known before Run. Call Run, or Close to release them.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", cfg.Name), metrics: prometheus.NewRegistry(),
		clock: hlc.New(cfg.Now), started: make(chan struct{}), syncNow: make(chan struct{}, 1),
	}
	n.obs = metrics.New(n.metrics, n.snapshot)
	rc, _ := cfg.ringConfig()
	empty, err := ring.New(rc)
	if err != nil {
		return nil, err
	}
	n.ring.Store(empty.Current())
	n.routing.Store(empty.Current())
	if n.self, err = empty.SetMembers([]string{cfg.Name}); err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) listen() error {
	var err error
	if n.peerLis, err = net.Listen("tcp", n.cfg.PeerAddr); err != nil {
		return fmt.Errorf("node: peer listener: %w", err)
	}
	if n.grpcLis, err = net.Listen("tcp", n.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("node: grpc listener: %w", err)
	}
	if n.httpLis, err = net.Listen("tcp", n.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("node: http listener: %w", err)
	}
	if n.adminLis, err = net.Listen("tcp", n.cfg.AdminAddr); err != nil {
		return fmt.Errorf("node: admin listener: %w", err)
	}
	return nil
}

// Close releases the listeners of a node that will not Run.
func (n *Node) Close() {
	for _, l := range []net.Listener{n.peerLis, n.grpcLis, n.httpLis, n.adminLis} {
		if l != nil {
			_ = l.Close()
		}
	}
}

// Name returns the member name.
func (n *Node) Name() string { return n.cfg.Name }

// PeerAddr returns the peer gRPC listener address.
func (n *Node) PeerAddr() string { return n.peerLis.Addr().String() }

// GRPCAddr returns the public gRPC listener address.
func (n *Node) GRPCAddr() string { return n.grpcLis.Addr().String() }

// HTTPAddr returns the HTTP listener address.
func (n *Node) HTTPAddr() string { return n.httpLis.Addr().String() }

// AdminAddr returns the admin listener address.
func (n *Node) AdminAddr() string { return n.adminLis.Addr().String() }

// Started is closed once gossip runs and the cache is built; GossipAddr,
// Group and Cache are usable from then on.
func (n *Node) Started() <-chan struct{} { return n.started }

// GossipAddr returns the address other nodes join through.
func (n *Node) GossipAddr() string { return n.cluster.GossipAddr() }

// Current returns the ring of the cluster's members; it never blocks.
func (n *Node) Current() *ring.Snapshot { return n.ring.Load() }

// route returns the ring the cache routes by: the cluster's in cache mode
// cluster, else one of only this node (every key is its own).
func (n *Node) route() *ring.Snapshot { return n.routing.Load() }

// routeSource gives the peer pool the routing ring.
type routeSource struct{ n *Node }

func (r routeSource) Current() *ring.Snapshot { return r.n.route() }

// Group returns the named cache group, or nil.
func (n *Node) Group(name string) *shard.Group { return n.cache.Group(name) }

// Cache returns the node's cache.
func (n *Node) Cache() *shard.Cache { return n.cache }

// Peers returns the peer gRPC address of every other member, by name.
func (n *Node) Peers() map[string]string { return n.pool.Peers() }

// Clock returns the node's generation clock.
func (n *Node) Clock() *hlc.Clock { return n.clock }

// Metrics returns the node's Prometheus registry.
func (n *Node) Metrics() *prometheus.Registry { return n.metrics }

// Run serves until ctx ends, then shuts down: readiness goes false, the node
// leaves the cluster, servers drain (bounded by ShutdownTimeout), and the
// cache closes. It returns nil after a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	ran := false
	n.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("node: Run called twice")
	}
	defer n.Close()
	if err := n.build(); err != nil {
		return err
	}
	servers := n.servers()
	errs := make(chan error, len(servers))
	for _, s := range servers {
		n.tasks.Go(func() {
			if err := s.serve(); err != nil {
				errs <- err
			}
		})
	}
	close(n.started)
	bg, stopBackground := context.WithCancel(ctx)
	n.tasks.Go(func() { n.reportHealth(bg) })
	if n.cfg.Source != nil {
		n.tasks.Go(func() { n.syncWatermarks(bg) })
		n.tasks.Go(func() { n.watchChanges(bg) })
	}
	n.runJWKS(bg)
	if n.redis != nil {
		n.tasks.Go(func() { n.redis.Run(bg, gossipState{n: n, channel: metrics.ChannelRedis}.Merge) })
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		n.log.Error("server failed", "err", runErr)
	}
	stopBackground()
	n.shutdown(servers)
	n.tasks.Wait()
	return runErr
}

// build creates the pool, the cache and its groups, and starts gossip.
func (n *Node) build() error {
	n.pool = transport.NewPool(routeSource{n})
	n.pool.Observe(n.obs.PeerCall)
	if n.cfg.Faults != nil {
		n.pool.SetFaults(n.cfg.Faults)
	}
	sc := shard.DefaultConfig(n.cfg.Name)
	sc.PeerTimeout, sc.Logger, sc.Clock, sc.Now = n.cfg.PeerTimeout, n.log, n.clock, n.cfg.Now
	sc.MaxPause, sc.Mono = n.cfg.MaxPause, n.cfg.Mono
	sc.OnFlush, sc.OnInvalidate = n.flushed, n.invalidated
	if sc.MaxPause == 0 {
		sc.MaxPause = time.Duration(n.cfg.Timing.SuspicionMult) * n.cfg.Timing.ProbeInterval
	}
	cache, err := shard.New(sc, n.pool)
	if err != nil {
		return err
	}
	n.cache = cache
	if err := n.startRedis(); err != nil {
		cache.Close()
		return err
	}
	if err := n.addGroups(); err != nil {
		cache.Close()
		return err
	}
	if err := n.startAuth(); err != nil {
		cache.Close()
		return err
	}
	n.health = health.NewServer()
	return n.startCluster()
}

func (n *Node) addGroups() error {
	specs := n.groupSpecs()
	if len(specs) == 0 {
		return nil
	}
	share := n.cfg.CacheMaxBytes / int64(len(specs))
	for _, spec := range specs {
		gc := shard.DefaultGroupConfig()
		gc.MaxBytes, gc.HotMaxBytes = share-share/8, share/8
		gc.HotTTL = n.cfg.HotTTL
		if spec.TTL > 0 {
			gc.TTL = spec.TTL
		}
		gc.HotTTL = min(gc.HotTTL, gc.TTL)
		gc.ObserveAge = n.obs.EntryAge(spec.Name)
		if spec.NoHotCopies {
			gc.HotSampleEvery = 0
		}
		loader := spec.Loader
		if n.redis != nil {
			loader = n.redis.Wrap(spec.Name, byUser(spec.Name), gc.TTL, loader)
		}
		if _, err := n.cache.NewGroup(spec.Name, loader, gc); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) startCluster() error {
	cc, err := n.clusterConfig()
	if err != nil {
		return err
	}
	c, err := cluster.New(cc, n.onRingChange)
	if err != nil {
		return err
	}
	n.cluster = c
	return nil
}

func (n *Node) clusterConfig() (cluster.Config, error) {
	host, port, err := net.SplitHostPort(n.cfg.GossipAddr)
	if err != nil {
		return cluster.Config{}, err
	}
	cc := cluster.DefaultConfig(n.cfg.Name)
	cc.BindAddr, cc.BindPort = host, atoi(port)
	if cc.BindAddr == "" {
		cc.BindAddr = "0.0.0.0"
	}
	cc.AdvertiseAddr = n.cfg.AdvertiseAddr
	advertise, err := n.advertiseHost(cc.BindAddr)
	if err != nil {
		return cluster.Config{}, err
	}
	_, peerPort, _ := net.SplitHostPort(n.PeerAddr())
	cc.Meta = cluster.Meta{Version: cluster.ProtocolVersion, PeerAddr: net.JoinHostPort(advertise, peerPort), Zone: n.cfg.Zone}
	cc.GossipKey, cc.Timing, cc.Logger = n.cfg.GossipKey, n.cfg.Timing, n.log
	cc.Join, cc.RejoinInterval = n.cfg.Join, n.cfg.RejoinInterval
	cc.MaxSilence = n.cfg.MaxSilence
	cc.State = gossipState{n: n, channel: metrics.ChannelGossip}
	cc.OnReconnect = func(gap time.Duration) {
		n.cache.Flush("reached no peer for " + gap.Round(time.Millisecond).String() + ": invalidations may have been missed")
	}
	if cc.Resolver, err = cluster.NewResolver(n.cfg.DNSServer); err != nil {
		return cluster.Config{}, err
	}
	if n.cfg.Faults != nil {
		cc.Faults = n.cfg.Faults
	}
	cc.Ring, _ = n.cfg.ringConfig()
	return cc, nil
}

// advertiseHost is the host others reach this node on: the configured
// advertise address, else the gossip bind host, else the first private
// address when binding every interface.
func (n *Node) advertiseHost(bind string) (string, error) {
	if n.cfg.AdvertiseAddr != "" {
		return n.cfg.AdvertiseAddr, nil
	}
	if bind != "0.0.0.0" && bind != "::" {
		return bind, nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil {
		return "", fmt.Errorf("node: finding a private address to advertise: %w", err)
	}
	if ip == "" {
		return "", errors.New("node: no private address to advertise; set the advertise address")
	}
	return ip, nil
}

// onRingChange runs on the cluster goroutine for every new ring.
func (n *Node) onRingChange(v cluster.View) {
	peers := make(map[string]string, len(v.Members))
	names := make([]string, 0, len(v.Members))
	for name, m := range v.Members {
		if name != n.cfg.Name {
			peers[name] = m.PeerAddr
			names = append(names, name)
		}
	}
	n.obs.SetPeers(names) // first: calls to a new member are labelled with its name
	if err := n.pool.SetPeers(peers); err != nil {
		n.log.Warn("peer connections", "err", err)
	}
	n.ring.Store(v.Ring)
	if n.cfg.CacheMode == ModeCluster {
		n.routing.Store(v.Ring)
	} else { // local, redis, off: every node owns every key
		n.routing.Store(n.self)
	}
	n.changed.Store(time.Now().UnixNano())
	n.cache.RingChanged()
}

func atoi(s string) int {
	v, _ := strconv.Atoi(s)
	return v
}

// reportHealth keeps the public gRPC health status in step with readiness
// until ctx ends.
func (n *Node) reportHealth(ctx context.Context) {
	tick := time.NewTicker(max(n.cfg.SettleTime/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		status := healthpb.HealthCheckResponse_NOT_SERVING
		if n.Ready() {
			status = healthpb.HealthCheckResponse_SERVING
		}
		n.health.SetServingStatus("", status)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gossipState carries this node's recent invalidations and revocations in
// memberlist's push-pull exchange, so a node returning from a partition
// catches up, and takes the ones other nodes broadcast (through gossip or
// Redis: channel).
type gossipState struct {
	n       *Node
	channel metrics.Channel
}

// recentRevocations bounds the revocations a node gossips: those of the
// last ten minutes, at most 4,096 (the rest are read from the source every
// WatermarkSync).
const (
	recentRevocations   = 10 * time.Minute
	maxGossipRevocation = 4096
	// maxWatermarkAhead bounds how far ahead a gossiped watermark may be:
	// a far-future one would block a user's tokens for good.
	maxWatermarkAhead = 2 * time.Minute
)

func (s gossipState) Local() []byte {
	n := s.n
	b, err := transport.EncodeGossipState(transport.GossipState{
		Invalidations: n.cache.Recent(),
		Revocations:   n.auth.marks.Since(n.cfg.Now().Add(-recentRevocations), maxGossipRevocation),
	})
	if err != nil {
		n.log.Error("gossip state", "err", err)
		return nil
	}
	return b
}

func (s gossipState) Merge(remote []byte) {
	st, err := transport.DecodeGossipState(remote)
	if err != nil {
		s.n.log.Warn("gossip state from a peer ignored", "err", err)
		return
	}
	applied := s.n.cache.Apply(st.Invalidations)
	s.n.obs.Invalidated(s.channel, applied)
	limit := s.n.cfg.Now().Add(maxWatermarkAhead)
	for user, before := range st.Revocations {
		if before.After(limit) { // as the peer Revoke RPC: never far ahead
			delete(st.Revocations, user)
		}
	}
	raised := s.n.auth.marks.Merge(st.Revocations)
	if applied > 0 || raised > 0 {
		s.n.log.Debug("caught up from a peer", "invalidations", applied, "revocations", raised)
	}
}

// broadcast gossips st to every member, and publishes it on Redis when
// configured: the channels for members a direct call missed. Failures are
// logged; the direct calls carry the guarantee.
func (n *Node) broadcast(st transport.GossipState) {
	b, err := transport.EncodeGossipState(st)
	if err == nil && n.redis != nil {
		n.redis.Publish(b)
	}
	if err == nil {
		err = n.cluster.Broadcast(b)
	}
	if err != nil {
		n.log.Warn("broadcast", "err", err)
	}
}
