package ring

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Snapshot is one immutable view of the ring. All methods are safe for
// concurrent use and never block.
type Snapshot struct {
	epoch       uint64
	fingerprint uint64
	parts       uint64
	members     []string // sorted by name
	owners      []uint32 // partition → index into members
	circle      []uint32 // member indices ordered by the hash of their name
	circlePos   []uint32 // member index → position in circle
}

// snapshot copies the library's current placement. Caller holds r.mu.
func (r *Ring) snapshot() *Snapshot {
	s := &Snapshot{
		epoch:   r.epoch,
		parts:   uint64(r.cfg.PartitionCount),
		members: sortedKeys(r.members),
	}
	s.fingerprint = fingerprint(r.cfg, s.members)
	if len(s.members) == 0 {
		return s
	}
	index := make(map[string]uint32, len(s.members))
	for i, n := range s.members {
		index[n] = uint32(i)
	}
	s.owners = make([]uint32, s.parts)
	for p := range s.owners {
		s.owners[p] = index[r.lib.GetPartitionOwner(p).(member).name()]
	}
	s.buildCircle()
	return s
}

func (s *Snapshot) buildCircle() {
	s.circle = make([]uint32, len(s.members))
	for i := range s.circle {
		s.circle[i] = uint32(i)
	}
	slices.SortFunc(s.circle, func(a, b uint32) int {
		ha, hb := xxhash.Sum64String(s.members[a]), xxhash.Sum64String(s.members[b])
		switch {
		case ha < hb:
			return -1
		case ha > hb:
			return 1
		}
		return int(a) - int(b)
	})
	s.circlePos = make([]uint32, len(s.members))
	for pos, m := range s.circle {
		s.circlePos[m] = uint32(pos)
	}
}

// fingerprint hashes the Config and the sorted member names. Equal
// fingerprints on two nodes mean they place every key on the same owner.
func fingerprint(cfg Config, sorted []string) uint64 {
	d := xxhash.New()
	var b [8]byte
	_, _ = d.WriteString("authnode-ring-v1")
	for _, v := range []uint64{uint64(cfg.PartitionCount), uint64(cfg.ReplicationFactor), math.Float64bits(cfg.Load)} {
		binary.LittleEndian.PutUint64(b[:], v)
		_, _ = d.Write(b[:])
	}
	for _, m := range sorted {
		_, _ = d.WriteString(m)
		_, _ = d.Write([]byte{0})
	}
	return d.Sum64()
}

// Epoch counts the membership changes this node has applied; it is local and
// not comparable across nodes (use Fingerprint for that).
func (s *Snapshot) Epoch() uint64 { return s.epoch }

// Fingerprint identifies the member set and Config; equal on every node that
// agrees on both.
func (s *Snapshot) Fingerprint() uint64 { return s.fingerprint }

// Len returns the number of members.
func (s *Snapshot) Len() int { return len(s.members) }

// Members returns the member names, sorted. The caller owns the returned slice.
func (s *Snapshot) Members() []string { return slices.Clone(s.members) }

// Has reports whether name is a member.
func (s *Snapshot) Has(name string) bool {
	_, ok := slices.BinarySearch(s.members, name)
	return ok
}

// Partition returns the partition key hashes into.
func (s *Snapshot) Partition(key string) int {
	return int(xxhash.Sum64String(key) % s.parts)
}

// Owner returns the member that owns key, or "" when the ring is empty.
func (s *Snapshot) Owner(key string) string {
	if len(s.members) == 0 {
		return ""
	}
	return s.members[s.owners[xxhash.Sum64String(key)%s.parts]]
}

// Replicas returns up to n distinct members for key: its owner first, then the
// members that follow the owner on the circle of member-name hashes. It
// returns fewer than n only when the ring has fewer members. The caller owns
// the returned slice.
func (s *Snapshot) Replicas(key string, n int) []string {
	n = min(n, len(s.members))
	if n <= 0 {
		return nil
	}
	out := make([]string, 0, n)
	pos := s.circlePos[s.owners[xxhash.Sum64String(key)%s.parts]]
	for i := range n {
		out = append(out, s.members[s.circle[(int(pos)+i)%len(s.circle)]])
	}
	return out
}

// PartitionsOwned returns how many partitions name owns.
func (s *Snapshot) PartitionsOwned(name string) int {
	i, ok := slices.BinarySearch(s.members, name)
	if !ok {
		return 0
	}
	count := 0
	for _, o := range s.owners {
		if o == uint32(i) {
			count++
		}
	}
	return count
}
