package nodetest

import (
	"sync"

	"github.com/avion/authnode/node"
)

// Network cuts traffic between named test nodes: gossip and peer calls from
// one side of a cut to the other are dropped. Give each node its view with
// Faults (Options.Network does it for Start).
type Network struct {
	mu      sync.Mutex
	addrs   map[string]string // gossip or peer address → node name
	peers   map[string]bool   // the peer addresses among addrs
	cut     map[[2]string]bool
	peerCut map[[2]string]bool // peer calls only
}

// NewNetwork returns a network with no cuts.
func NewNetwork() *Network {
	return &Network{addrs: map[string]string{}, peers: map[string]bool{}, cut: map[[2]string]bool{}, peerCut: map[[2]string]bool{}}
}

// Faults returns the fault hook of the node called name.
func (n *Network) Faults(name string) node.Faults { return view{n, name} }

// Register records a started node's addresses.
func (n *Network) Register(nd *Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[nd.GossipAddr()] = nd.Name()
	n.addrs[nd.PeerAddr()] = nd.Name()
	n.peers[nd.PeerAddr()] = true
}

// CutPeerCalls drops the peer gRPC calls from node from to node to, and
// nothing else: gossip still flows.
func (n *Network) CutPeerCalls(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.peerCut[[2]string{from, to}] = true
}

// Partition cuts every node in a from every node in b, both ways.
func (n *Network) Partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}], n.cut[[2]string{y, x}] = true, true
		}
	}
}

// Isolate cuts name from every registered node.
func (n *Network) Isolate(name string) {
	n.mu.Lock()
	var others []string
	for _, o := range n.addrs {
		if o != name {
			others = append(others, o)
		}
	}
	n.mu.Unlock()
	n.Partition([]string{name}, others)
}

// Heal removes every cut.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	clear(n.peerCut)
}

type view struct {
	net  *Network
	self string
}

func (v view) Blocked(addr string) bool {
	v.net.mu.Lock()
	defer v.net.mu.Unlock()
	to := [2]string{v.self, v.net.addrs[addr]}
	return v.net.cut[to] || v.net.peers[addr] && v.net.peerCut[to]
}
