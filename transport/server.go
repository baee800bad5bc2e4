// Package transport carries authnode's gRPC traffic: the peer service that
// nodes call on each other (Get, Invalidate) and the client pool that calls
// it, which implements shard.Peers.
package transport

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport/peerpb"
)

// Watermarks receives token revocations from peers; *auth.Watermarks
// implements it.
type Watermarks interface {
	Raise(userID string, before time.Time) bool
}

// Relay passes an invalidation on to a key's owner (member) for a caller
// that could not reach it; *Pool's Invalidate serves.
type Relay func(ctx context.Context, member, group, key string, gen hlc.Gen) error

// RegisterPeer registers the peer service for cache and marks on s; relay
// passes invalidations on to owners that their sender could not reach.
func RegisterPeer(s grpc.ServiceRegistrar, cache *shard.Cache, marks Watermarks, relay Relay) {
	peerpb.RegisterPeerServer(s, &peerService{cache: cache, marks: marks, relay: relay})
}

type peerService struct {
	peerpb.UnimplementedPeerServer
	cache *shard.Cache
	marks Watermarks
	relay Relay
}

// maxWatermarkAhead bounds how far in the future a peer may set a
// watermark: RevokeTokens accepts a minute ahead, and clocks differ a
// little. A far-future watermark would block a user's tokens for good.
const maxWatermarkAhead = 2 * time.Minute

func (p *peerService) Revoke(_ context.Context, req *peerpb.RevokeRequest) (*peerpb.RevokeResponse, error) {
	if shard.CheckKey(req.GetUserId()) != nil || req.GetBeforeUnixNanos() <= 0 ||
		req.GetBeforeUnixNanos() > time.Now().Add(maxWatermarkAhead).UnixNano() {
		return nil, status.Error(codes.InvalidArgument, "bad request: user id or watermark")
	}
	p.marks.Raise(req.GetUserId(), time.Unix(0, req.GetBeforeUnixNanos()))
	return &peerpb.RevokeResponse{}, nil
}

func (p *peerService) Get(ctx context.Context, req *peerpb.GetRequest) (*peerpb.GetResponse, error) {
	resp, err := p.cache.ServeForward(ctx, shard.ForwardRequest{
		Group:       req.GetGroup(),
		Key:         req.GetKey(),
		Fingerprint: req.GetRingFingerprint(),
		Hops:        req.GetHops(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &peerpb.GetResponse{Value: resp.Value, Gen: uint64(resp.Gen), TtlNanos: int64(resp.TTL)}, nil
}

func (p *peerService) Invalidate(ctx context.Context, req *peerpb.InvalidateRequest) (*peerpb.InvalidateResponse, error) {
	g := p.cache.Group(req.GetGroup())
	if g == nil {
		return nil, toStatus(shard.ErrUnknownGroup)
	}
	gen := hlc.Gen(req.GetGen())
	switch {
	case req.GetAll() && req.GetKey() == "":
		g.InvalidateAll(gen)
	case req.GetAll():
		return nil, status.Error(codes.InvalidArgument, "bad request: all with a key")
	case shard.CheckKey(req.GetKey()) != nil:
		return nil, toStatus(shard.CheckKey(req.GetKey()))
	default:
		if req.GetRelayOwner() != "" {
			// Stop asking the owner first: until the relay is
			// confirmed it may hold the old value.
			g.BypassOwner(req.GetKey())
		}
		g.Invalidate(req.GetKey(), gen)
		p.relayToOwner(ctx, g, req)
	}
	return &peerpb.InvalidateResponse{}, nil
}

// relayToOwner passes an invalidation the sender could not deliver on to
// the key's owner, within half of what is left of the caller's deadline (so
// this node still answers in time). The key stays bypassed on this node
// (shard.Group.BypassOwner, set before) until the owner's entries expire:
// an owner the sender could not reach may be flapping.
func (p *peerService) relayToOwner(ctx context.Context, _ *shard.Group, req *peerpb.InvalidateRequest) {
	owner := req.GetRelayOwner()
	if owner == "" || p.relay == nil {
		return
	}
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(deadline)/2)
		defer cancel()
	}
	_ = p.relay(ctx, owner, req.GetGroup(), req.GetKey(), hlc.Gen(req.GetGen()))
}
