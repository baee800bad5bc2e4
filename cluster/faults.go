package cluster

import (
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// Faults decides which of this node's gossip traffic is dropped. Tests and
// the chaos suite use it to cut nodes apart; production nodes have none.
type Faults interface {
	// Blocked reports whether this node may not send to addr (host:port).
	// It is called for every packet and connection, from several
	// goroutines, and must not block.
	Blocked(addr string) bool
}

// errCut is what a dial across a cut returns, as a refused connection would.
var errCut = errors.New("cluster: traffic cut by a fault hook")

// faultyTransport drops what Faults blocks: outgoing packets vanish and
// outgoing connections fail. A cut between two nodes is made by blocking
// each side's sends to the other.
type faultyTransport struct {
	*memberlist.NetTransport
	faults Faults
}

// newFaultyTransport binds a memberlist network transport the way memberlist
// itself would (retrying a dynamic port) and wraps it. It sets mc's ports to
// the bound one.
func newFaultyTransport(mc *memberlist.Config, faults Faults, logger *log.Logger) (*faultyTransport, error) {
	var nt *memberlist.NetTransport
	var err error
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: logger,
		})
		if err == nil || mc.BindPort != 0 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip transport: %w", err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = mc.BindPort
		}
	}
	return &faultyTransport{NetTransport: nt, faults: faults}, nil
}

func (t *faultyTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.faults.Blocked(addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *faultyTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *faultyTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.faults.Blocked(addr) {
		return nil, errCut
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *faultyTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}
