package cluster

import (
	"errors"

	"github.com/hashicorp/memberlist"
)

// MaxBroadcast is the largest message Broadcast takes: it must fit one
// gossip packet with memberlist's framing.
const MaxBroadcast = 1024

// maxQueued bounds the broadcasts waiting to be gossiped; the oldest are
// dropped first (every broadcast is also sent another way).
const maxQueued = 4096

// ErrBroadcastTooLarge is returned for a message over MaxBroadcast.
var ErrBroadcastTooLarge = errors.New("cluster: broadcast message too large")

// broadcasts queues messages for memberlist's gossip. Each is retransmitted
// a few times (scaled by the log of the cluster size) and then dropped:
// best effort, for members a direct call missed.
type broadcasts struct {
	q *memberlist.TransmitLimitedQueue
}

func newBroadcasts(numNodes func() int) *broadcasts {
	return &broadcasts{q: &memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: 4}}
}

// Broadcast gossips msg to every member; each passes it to its State's
// Merge. It never blocks.
func (c *Cluster) Broadcast(msg []byte) error {
	if len(msg) > MaxBroadcast {
		return ErrBroadcastTooLarge
	}
	c.broadcasts.q.QueueBroadcast(message(append([]byte(nil), msg...)))
	c.broadcasts.q.Prune(maxQueued)
	return nil
}

// message is one queued broadcast; none replaces another.
type message []byte

func (m message) Invalidates(memberlist.Broadcast) bool { return false }
func (m message) Message() []byte                       { return m }
func (m message) Finished()                             {}
