package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/avion/authnode/cluster"
	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/ring"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport/peerpb"
)

// Errors a call may return before reaching the network.
var (
	// ErrNoPeer means the pool has no connection to the named member.
	ErrNoPeer = errors.New("transport: no connection to peer")
	// ErrCut means a fault hook blocks traffic to the peer.
	ErrCut = errors.New("transport: traffic to peer cut by a fault hook")
)

// Faults decides which peers this node cannot reach; tests and the chaos
// suite use it to cut nodes apart.
type Faults interface {
	// Blocked reports whether calls to addr (host:port) must fail. It must be
	// safe for concurrent use and must not block.
	Blocked(addr string) bool
}

// RingSource supplies the current ring; *ring.Ring implements it.
type RingSource interface {
	Current() *ring.Snapshot
}

// Pool holds one client connection per peer and implements shard.Peers.
// SetPeers opens connections to members that joined and closes those of
// members that left. All methods are safe for concurrent use.
type Pool struct {
	ring RingSource
	opts []grpc.DialOption

	faults   atomic.Pointer[Faults]
	observer atomic.Pointer[CallObserver]

	mu      sync.RWMutex
	peers   map[string]*peerConn
	closed  bool
	closing sync.WaitGroup // connections of departed peers, draining
}

// peerConn is one peer's connection. calls counts RPCs in flight, so a
// departed peer's connection is closed only after they end: closing it at
// once would fail requests that were sent before the ring changed.
type peerConn struct {
	addr   string
	conn   *grpc.ClientConn
	client peerpb.PeerClient
	calls  sync.WaitGroup
}

// NewPool returns an empty pool that routes by rs. Extra dial options (for
// example TLS credentials) replace the default insecure transport.
func NewPool(rs RingSource, opts ...grpc.DialOption) *Pool {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	return &Pool{ring: rs, opts: opts, peers: map[string]*peerConn{}}
}

// SetFaults installs a fault hook; calls to addresses it blocks fail with
// ErrCut as if the network dropped them.
func (p *Pool) SetFaults(f Faults) { p.faults.Store(&f) }

// CallObserver is told of every call the pool makes to a peer: the member,
// the method ("get", "invalidate" or "revoke"), how long it took and its
// error (nil on success; ErrNoPeer or ErrCut when it never left this node).
// It runs on the caller's goroutine and must not block.
type CallObserver func(member, method string, d time.Duration, err error)

// Observe installs o (nil removes it); it sees every later call.
func (p *Pool) Observe(o CallObserver) {
	if o == nil {
		p.observer.Store(nil)
		return
	}
	p.observer.Store(&o)
}

// observed reports a call that began at start to the observer, and returns
// err.
func (p *Pool) observed(member, method string, start time.Time, err error) error {
	if o := p.observer.Load(); o != nil {
		(*o)(member, method, time.Since(start), err)
	}
	return err
}

// Ring returns the current ring snapshot.
func (p *Pool) Ring() *ring.Snapshot { return p.ring.Current() }

// SetPeers makes addrs (member name → peer host:port, without this node) the
// set of peers. Connections are created lazily by gRPC, so SetPeers does not
// block on the network. A member whose address changed gets a new connection.
func (p *Pool) SetPeers(addrs map[string]string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return shard.ErrClosed
	}
	next := make(map[string]*peerConn, len(addrs))
	var errs []error
	for name, addr := range addrs {
		if pc := p.peers[name]; pc != nil && pc.addr == addr {
			next[name] = pc
			continue
		}
		if err := cluster.CheckHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("transport: peer %s: %w", name, err))
			continue
		}
		conn, err := grpc.NewClient("passthrough:///"+addr, p.opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("transport: peer %s at %q: %w", name, addr, err))
			continue
		}
		next[name] = &peerConn{addr: addr, conn: conn, client: peerpb.NewPeerClient(conn)}
	}
	for name, pc := range p.peers {
		if next[name] != pc {
			p.retire(pc)
		}
	}
	p.peers = next
	return errors.Join(errs...)
}

// Peers returns the current peer addresses by member name.
func (p *Pool) Peers() map[string]string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make(map[string]string, len(p.peers))
	for name, pc := range p.peers {
		out[name] = pc.addr
	}
	return out
}

// retire closes pc once its calls in flight have ended. Caller holds p.mu.
func (p *Pool) retire(pc *peerConn) {
	p.closing.Go(func() {
		pc.calls.Wait()
		_ = pc.conn.Close()
	})
}

// acquire returns name's connection with one call registered on it; the
// caller must call pc.calls.Done when the call ends.
func (p *Pool) acquire(name string) (*peerConn, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pc := p.peers[name]
	if pc == nil {
		return nil, fmt.Errorf("%w %s", ErrNoPeer, name)
	}
	if f := p.faults.Load(); f != nil && (*f).Blocked(pc.addr) {
		return nil, fmt.Errorf("%w: %s", ErrCut, name)
	}
	pc.calls.Add(1)
	return pc, nil
}

// Get implements shard.Peers: it forwards req to owner. An error wraps
// shard.ErrSourceFailed only when the owner answered that its load failed.
func (p *Pool) Get(ctx context.Context, owner string, req shard.ForwardRequest) (shard.ForwardResponse, error) {
	start := time.Now()
	pc, err := p.acquire(owner)
	if err != nil {
		return shard.ForwardResponse{}, p.observed(owner, "get", start, err)
	}
	defer pc.calls.Done()
	resp, err := pc.client.Get(ctx, &peerpb.GetRequest{
		Group: req.Group, Key: req.Key, RingFingerprint: req.Fingerprint, Hops: req.Hops,
	})
	if p.observed(owner, "get", start, err) != nil {
		if sourceFailed(err) {
			return shard.ForwardResponse{}, fmt.Errorf("%w: reported by %s", shard.ErrSourceFailed, owner)
		}
		return shard.ForwardResponse{}, fmt.Errorf("transport: get from %s: %w", owner, err)
	}
	return shard.ForwardResponse{Value: resp.GetValue(), Gen: hlc.Gen(resp.GetGen()), TTL: time.Duration(resp.GetTtlNanos())}, nil
}

// Invalidate asks member to drop key of group (every key when all is set).
func (p *Pool) Invalidate(ctx context.Context, member, group, key string, all bool, gen hlc.Gen) error {
	return p.invalidate(ctx, member, &peerpb.InvalidateRequest{Group: group, Key: key, All: all, Gen: uint64(gen)})
}

// InvalidateRelayed asks member to drop key of group and to pass the
// invalidation on to owner, which did not acknowledge it (see
// RegisterPeer's relay).
func (p *Pool) InvalidateRelayed(ctx context.Context, member, group, key, owner string, gen hlc.Gen) error {
	return p.invalidate(ctx, member, &peerpb.InvalidateRequest{Group: group, Key: key, Gen: uint64(gen), RelayOwner: owner})
}

// Relay is the Relay the peer service uses: a plain Invalidate on member.
func (p *Pool) Relay(ctx context.Context, member, group, key string, gen hlc.Gen) error {
	return p.Invalidate(ctx, member, group, key, false, gen)
}

func (p *Pool) invalidate(ctx context.Context, member string, req *peerpb.InvalidateRequest) error {
	start := time.Now()
	pc, err := p.acquire(member)
	if err != nil {
		return p.observed(member, "invalidate", start, err)
	}
	defer pc.calls.Done()
	_, err = pc.client.Invalidate(ctx, req)
	if p.observed(member, "invalidate", start, err) != nil {
		return fmt.Errorf("transport: invalidate on %s: %w", member, err)
	}
	return nil
}

// Revoke raises userID's token watermark on member to before.
func (p *Pool) Revoke(ctx context.Context, member, userID string, before time.Time) error {
	start := time.Now()
	pc, err := p.acquire(member)
	if err != nil {
		return p.observed(member, "revoke", start, err)
	}
	defer pc.calls.Done()
	_, err = pc.client.Revoke(ctx, &peerpb.RevokeRequest{UserId: userID, BeforeUnixNanos: before.UnixNano()})
	if p.observed(member, "revoke", start, err) != nil {
		return fmt.Errorf("transport: revoke on %s: %w", member, err)
	}
	return nil
}

// Close closes every connection once its calls end, and waits; later calls
// fail with ErrNoPeer.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	for _, pc := range p.peers {
		p.retire(pc)
	}
	p.peers = map[string]*peerConn{}
	p.mu.Unlock()
	p.closing.Wait()
}
