package ring

import (
	"errors"
	"fmt"
	"math"
)

// Limits on Config values. They bound the memory of a snapshot and the time
// Validate and a membership change take.
const (
	maxPartitions  = 1 << 16
	maxReplication = 1 << 10
	maxLoad        = 16.0
)

// Config shapes the ring. Every node of a cluster must use the same Config:
// it is part of the ring fingerprint, so nodes that differ are told apart.
type Config struct {
	// PartitionCount is the number of partitions keys hash into; ownership
	// moves a partition at a time. It must be at least MaxMembers, or the
	// library cannot give every member a partition. A prime spreads keys
	// evenly. Default 8191.
	PartitionCount int

	// MaxMembers is the largest cluster this Config is validated for. A member
	// list longer than this is refused by SetMembers. Default 1024.
	MaxMembers int

	// Load bounds the partitions one member may own to
	// ceil(⌊PartitionCount/N⌋·Load) for N members. It must exceed 1; a larger
	// value balances worse but moves fewer partitions on a change. Default 1.25.
	Load float64

	// ReplicationFactor is the number of virtual points each member gets on
	// the hash circle. It must be at least 2 (with 1 the library cannot place
	// partitions even for one member). Default 20.
	ReplicationFactor int
}

// DefaultConfig returns the configuration production nodes use.
func DefaultConfig() Config {
	return Config{PartitionCount: 8191, MaxMembers: 1024, Load: 1.25, ReplicationFactor: 20}
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("ring: invalid config")

// Validate reports whether the library can place every partition for every
// member count from 1 to MaxMembers. buraksezer/consistent panics exactly
// when N·ceil(⌊P/N⌋·Load) < P (the members' total capacity is below the
// partition count) or when fewer than two points per member leave its probe
// loop without a candidate; Validate rejects both, so SetMembers never meets
// the panic for a validated Config.
func (c Config) Validate() error {
	switch {
	case c.PartitionCount < 1 || c.PartitionCount > maxPartitions:
		return fmt.Errorf("%w: partition count %d not in [1, %d]", ErrConfig, c.PartitionCount, maxPartitions)
	case c.MaxMembers < 1:
		return fmt.Errorf("%w: max members %d < 1", ErrConfig, c.MaxMembers)
	case c.ReplicationFactor < 2 || c.ReplicationFactor > maxReplication:
		return fmt.Errorf("%w: replication factor %d not in [2, %d]", ErrConfig, c.ReplicationFactor, maxReplication)
	case math.IsNaN(c.Load) || c.Load <= 1 || c.Load > maxLoad:
		return fmt.Errorf("%w: load %v not in (1, %v]", ErrConfig, c.Load, maxLoad)
	}
	for n := 1; n <= c.MaxMembers; n++ {
		if !c.fits(n) {
			return fmt.Errorf("%w: %d partitions cannot be placed on %d members with load %v (need partitions >= max members)",
				ErrConfig, c.PartitionCount, n, c.Load)
		}
	}
	return nil
}

// fits mirrors the library's capacity arithmetic (float64, as it computes it)
// for n members.
func (c Config) fits(n int) bool {
	return float64(n)*c.bound(n) >= float64(c.PartitionCount)
}

// bound is the most partitions one of n members may own.
func (c Config) bound(n int) float64 {
	return math.Ceil(float64(c.PartitionCount/n) * c.Load)
}
