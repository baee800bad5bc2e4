package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/avion/authnode/ring"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("cluster: invalid config")

// Config describes this node's membership. Timings follow memberlist's LAN
// profile by default (DefaultConfig) and its loopback profile in tests
// (LocalConfig).
type Config struct {
	// Name is this node's member name; unique in the cluster. (Required)
	Name string
	// BindAddr and BindPort are where gossip listens (TCP and UDP). Port 0
	// picks a free port. Default 0.0.0.0:7946.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what other nodes use to reach this
	// node's gossip; empty/0 means memberlist picks (the bind address, or the
	// first private address when binding 0.0.0.0).
	AdvertiseAddr string
	AdvertisePort int
	// Meta is what this node advertises: its peer gRPC address and zone.
	Meta Meta
	// Join lists seeds: host:port, dns+a://name:port (every address of a
	// headless Service) or dns+srv://_service._proto.name. They are resolved
	// and joined at start and again every RejoinInterval, so the halves of a
	// healed partition merge. Empty means this node starts a cluster of its
	// own.
	Join []string
	// Resolver looks seed names up. Default: the system resolver.
	Resolver Resolver
	// RejoinInterval is how often seeds are resolved and members not in
	// this node's view are joined. Default 30 s.
	RejoinInterval time.Duration
	// Faults, when set, is asked before every gossip packet or connection
	// this node sends; tests and the chaos suite cut traffic with it.
	Faults Faults
	// GossipKey, when set, encrypts gossip with AES (16, 24 or 32 bytes).
	GossipKey []byte
	// Ring shapes the consistent-hash ring; every node must use the same.
	Ring ring.Config
	// Timing holds the failure-detection timings.
	Timing Timing
	// Logger receives membership changes and memberlist's own log lines.
	Logger *slog.Logger
	// State, when set, is exchanged with other nodes in push-pull.
	State State
	// OnReconnect, when set, is called when this node reaches a peer again
	// after reaching none for longer than MaxSilence: it may have missed
	// invalidations. Called from memberlist's goroutines; must not block.
	OnReconnect func(gap time.Duration)
	// MaxSilence is how long this node may reach no peer before
	// OnReconnect fires on the next contact. Default: twice the suspicion
	// timeout, 2·Timing.SuspicionMult·Timing.ProbeInterval.
	MaxSilence time.Duration
}

// Timing holds the memberlist timings that decide how fast failures are
// detected (see docs/operations.md).
type Timing struct {
	ProbeInterval    time.Duration // how often a random member is probed
	ProbeTimeout     time.Duration // how long a probe waits for an ack
	SuspicionMult    int           // suspicion lasts SuspicionMult·log(N+1)·ProbeInterval
	GossipInterval   time.Duration
	PushPullInterval time.Duration // full state exchange with a random member
	TCPTimeout       time.Duration
	// DeadNodeReclaimTime is how long after a node is declared dead another
	// node may take its name (a StatefulSet pod restarted on a new address).
	DeadNodeReclaimTime time.Duration
}

// LANTiming is memberlist's LAN profile with a reclaim time for restarts.
func LANTiming() Timing {
	return Timing{
		ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, SuspicionMult: 4,
		GossipInterval: 200 * time.Millisecond, PushPullInterval: 30 * time.Second,
		TCPTimeout: 10 * time.Second, DeadNodeReclaimTime: 10 * time.Second,
	}
}

// LocalTiming detects failures fast on loopback; for tests.
func LocalTiming() Timing {
	return Timing{
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, SuspicionMult: 2,
		GossipInterval: 50 * time.Millisecond, PushPullInterval: 2 * time.Second,
		TCPTimeout: time.Second, DeadNodeReclaimTime: time.Second,
	}
}

// DefaultConfig returns production defaults for the node named name.
func DefaultConfig(name string) Config {
	return Config{
		Name: name, BindAddr: "0.0.0.0", BindPort: 7946,
		Meta: Meta{Version: ProtocolVersion}, Ring: ring.DefaultConfig(), Timing: LANTiming(),
		RejoinInterval: 30 * time.Second,
	}
}

// LocalConfig returns a config for a node on 127.0.0.1 with a free port and
// fast timings; for tests.
func LocalConfig(name string) Config {
	c := DefaultConfig(name)
	c.BindAddr, c.BindPort, c.Timing = "127.0.0.1", 0, LocalTiming()
	c.RejoinInterval = 500 * time.Millisecond
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: node name is required", ErrConfig)
	case c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return fmt.Errorf("%w: port out of range", ErrConfig)
	case len(c.GossipKey) != 0 && len(c.GossipKey) != 16 && len(c.GossipKey) != 24 && len(c.GossipKey) != 32:
		return fmt.Errorf("%w: gossip key is %d bytes, want 16, 24 or 32", ErrConfig, len(c.GossipKey))
	case c.Timing.ProbeInterval <= 0 || c.Timing.ProbeTimeout <= 0 || c.Timing.SuspicionMult < 1 ||
		c.Timing.GossipInterval <= 0 || c.Timing.PushPullInterval <= 0 || c.Timing.TCPTimeout <= 0:
		return fmt.Errorf("%w: timings must be positive", ErrConfig)
	}
	if _, err := ParseSeeds(strings.Join(c.Join, ",")); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.RejoinInterval <= 0 {
		return fmt.Errorf("%w: rejoin interval must be positive", ErrConfig)
	}
	if _, err := c.Meta.Encode(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c.Ring.Validate()
}
