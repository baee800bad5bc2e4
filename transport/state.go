package transport

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/avion/authnode/hlc"
	"github.com/avion/authnode/shard"
	"github.com/avion/authnode/transport/peerpb"
)

// maxGossipState bounds the gossip state a node accepts from another.
const maxGossipState = 1 << 20

// EncodeGossipState encodes recent invalidations for memberlist's push-pull
// exchange.
func EncodeGossipState(invs []shard.Invalidation) ([]byte, error) {
	st := &peerpb.GossipState{Invalidations: make([]*peerpb.Invalidation, len(invs))}
	for i, inv := range invs {
		st.Invalidations[i] = &peerpb.Invalidation{Group: inv.Group, Key: inv.Key, All: inv.All, Gen: uint64(inv.Gen)}
	}
	b, err := proto.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("transport: encode gossip state: %w", err)
	}
	return b, nil
}

// DecodeGossipState decodes another node's gossip state. Oversized or
// malformed input is an error; entries are validated by shard.Cache.Apply.
func DecodeGossipState(b []byte) ([]shard.Invalidation, error) {
	if len(b) > maxGossipState {
		return nil, errors.New("transport: gossip state too large")
	}
	var st peerpb.GossipState
	if err := proto.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("transport: decode gossip state: %w", err)
	}
	out := make([]shard.Invalidation, len(st.GetInvalidations()))
	for i, inv := range st.GetInvalidations() {
		out[i] = shard.Invalidation{Group: inv.GetGroup(), Key: inv.GetKey(), All: inv.GetAll(), Gen: hlc.Gen(inv.GetGen())}
	}
	return out, nil
}
