package transport

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport/peerpb"
)

// maxGossipState bounds the gossip state a node accepts from another.
const maxGossipState = 1 << 20

// GossipState is what nodes exchange through gossip: recent invalidations
// and token revocations (user → watermark). The push-pull exchange carries
// a node's recent ones, a broadcast one change.
type GossipState struct {
	Invalidations []shard.Invalidation
	Revocations   map[string]time.Time
}

// EncodeGossipState encodes st for gossip.
func EncodeGossipState(st GossipState) ([]byte, error) {
	pb := &peerpb.GossipState{Invalidations: make([]*peerpb.Invalidation, len(st.Invalidations))}
	for i, inv := range st.Invalidations {
		pb.Invalidations[i] = &peerpb.Invalidation{Group: inv.Group, Key: inv.Key, All: inv.All, Gen: uint64(inv.Gen)}
	}
	for user, before := range st.Revocations {
		pb.Revocations = append(pb.Revocations, &peerpb.Revocation{UserId: user, BeforeUnixNanos: before.UnixNano()})
	}
	b, err := proto.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("transport: encode gossip state: %w", err)
	}
	return b, nil
}

// DecodeGossipState decodes another node's gossip state. Oversized or
// malformed input is an error; revocations with a bad user id or watermark
// are dropped; invalidations are validated by shard.Cache.Apply.
func DecodeGossipState(b []byte) (GossipState, error) {
	if len(b) > maxGossipState {
		return GossipState{}, errors.New("transport: gossip state too large")
	}
	var pb peerpb.GossipState
	if err := proto.Unmarshal(b, &pb); err != nil {
		return GossipState{}, fmt.Errorf("transport: decode gossip state: %w", err)
	}
	st := GossipState{Invalidations: make([]shard.Invalidation, len(pb.GetInvalidations()))}
	for i, inv := range pb.GetInvalidations() {
		st.Invalidations[i] = shard.Invalidation{Group: inv.GetGroup(), Key: inv.GetKey(), All: inv.GetAll(), Gen: hlc.Gen(inv.GetGen())}
	}
	for _, r := range pb.GetRevocations() {
		if shard.CheckKey(r.GetUserId()) != nil || r.GetBeforeUnixNanos() <= 0 {
			continue
		}
		if st.Revocations == nil {
			st.Revocations = map[string]time.Time{}
		}
		before := time.Unix(0, r.GetBeforeUnixNanos())
		if cur, ok := st.Revocations[r.GetUserId()]; !ok || before.After(cur) {
			st.Revocations[r.GetUserId()] = before
		}
	}
	return st, nil
}
