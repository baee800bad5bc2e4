package ring

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/buraksezer/consistent"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("authnode-%d", i)
	}
	return out
}

func mustRing(t testing.TB, cfg Config) *Ring {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSet(t testing.TB, r *Ring, members []string) *Snapshot {
	t.Helper()
	s, err := r.SetMembers(members)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// movedPartitions is the fraction of partitions whose owner differs between a
// and b: keys hash uniformly onto partitions, so it is the expected fraction
// of keys that move.
func movedPartitions(a, b *Snapshot) float64 {
	moved := 0
	for p := range a.owners {
		if a.members[a.owners[p]] != b.members[b.owners[p]] {
			moved++
		}
	}
	return float64(moved) / float64(len(a.owners))
}

func checkLoadBound(t *testing.T, cfg Config, s *Snapshot) {
	t.Helper()
	bound := int(cfg.bound(s.Len()))
	counts := make([]int, s.Len())
	for _, o := range s.owners {
		counts[o]++
	}
	for i, c := range counts {
		if c > bound {
			t.Fatalf("%d members: %s owns %d partitions, bound is %d", s.Len(), s.members[i], c, bound)
		}
	}
}

// lowChurnMembers is the cluster size up to which a join or leave moves at
// most 2/N of the keys: the library's bound ceil(⌊P/N⌋·Load) jumps when
// ⌊P/N⌋ drops, and once P/N is small each jump reshuffles many partitions.
// Measured on DefaultConfig: ≤ 2/N while P/N ≥ 128.
func lowChurnMembers(cfg Config) int { return cfg.PartitionCount / 128 }

// TestGrowToThousandOneByOne adds members 1 → 1,000 to one ring: no panic or
// error, every snapshot respects the load bound, and while N is within
// lowChurnMembers a join moves at most 2/N of the partitions.
func TestGrowToThousandOneByOne(t *testing.T) {
	cfg := DefaultConfig()
	r := mustRing(t, cfg)
	all := names(1000)
	prev := mustSet(t, r, all[:1])
	for n := 2; n <= len(all); n++ {
		s := mustSet(t, r, all[:n])
		checkLoadBound(t, cfg, s)
		if moved := movedPartitions(prev, s); n <= lowChurnMembers(cfg) && moved > 2/float64(n) {
			t.Fatalf("join to %d members moved %.4f of partitions, want <= %.4f", n, moved, 2/float64(n))
		}
		prev = s
	}
}

// TestShrinkOneByOne removes the oldest member until one is left: every leave
// within lowChurnMembers moves at most 2/N of the partitions.
func TestShrinkOneByOne(t *testing.T) {
	cfg := DefaultConfig()
	r := mustRing(t, cfg)
	all := names(lowChurnMembers(cfg))
	prev := mustSet(t, r, all)
	for i := 1; i < len(all); i++ {
		s := mustSet(t, r, all[i:])
		checkLoadBound(t, cfg, s)
		if n := prev.Len(); movedPartitions(prev, s) > 2/float64(n) {
			t.Fatalf("leave from %d members moved %.4f of partitions, want <= %.4f", n, movedPartitions(prev, s), 2/float64(n))
		}
		prev = s
	}
}

// TestKeysMovedOnJoinAndLeave measures moved keys directly on random keys.
func TestKeysMovedOnJoinAndLeave(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", rng.Uint64())
	}
	for _, n := range []int{3, 5, 10, 50} {
		r := mustRing(t, DefaultConfig())
		base := mustSet(t, r, names(n))
		joined := mustSet(t, r, names(n+1))
		left := mustSet(t, r, names(n + 1)[1:])
		for _, step := range []struct {
			what    string
			a, b    *Snapshot
			members int
		}{{"join", base, joined, n + 1}, {"leave", joined, left, n + 1}} {
			moved := 0
			for _, k := range keys {
				if step.a.Owner(k) != step.b.Owner(k) {
					moved++
				}
			}
			frac := float64(moved) / float64(len(keys))
			if limit := 2 / float64(step.members); frac > limit {
				t.Errorf("%d→%s: %.4f of keys moved, want <= %.4f", n, step.what, frac, limit)
			}
		}
	}
}

func TestOwnerMatchesLibrary(t *testing.T) {
	cfg := DefaultConfig()
	r := mustRing(t, cfg)
	members := names(7)
	s := mustSet(t, r, members)
	libMembers := make([]consistent.Member, len(members))
	for i, m := range members {
		libMembers[i] = member(m)
	}
	lib := consistent.New(libMembers, r.libConfig())
	for i := range 10_000 {
		key := fmt.Sprintf("key-%d", i)
		if got, want := s.Owner(key), lib.LocateKey([]byte(key)).(member).name(); got != want {
			t.Fatalf("Owner(%q) = %s, library says %s", key, got, want)
		}
		if got, want := s.Partition(key), lib.FindPartitionID([]byte(key)); got != want {
			t.Fatalf("Partition(%q) = %d, library says %d", key, got, want)
		}
	}
}

// TestOwnershipIndependentOfHistory: two rings that reach one member set by
// different paths agree on fingerprint and on every partition's owner.
// TestNamesThatShareVirtualPoints: the library names virtual points
// name+index, so "authnode-1" (point 10) and "authnode-11" (point 0) collide;
// removing one used to corrupt the library's ring (nil dereference).
func TestNamesThatShareVirtualPoints(t *testing.T) {
	r := mustRing(t, DefaultConfig())
	mustSet(t, r, names(12))
	s := mustSet(t, r, names(9))
	if s.Len() != 9 || s.Owner("k") == "" {
		t.Fatalf("members after shrink: %v", s.Members())
	}
}

func TestOwnershipIndependentOfHistory(t *testing.T) {
	a, b := mustRing(t, DefaultConfig()), mustRing(t, DefaultConfig())
	all := names(9)
	for i := 1; i <= len(all); i++ {
		mustSet(t, a, all[:i])
	}
	mustSet(t, b, names(12))
	reversed := slices.Clone(all)
	slices.Reverse(reversed)
	sa, sb := a.Current(), mustSet(t, b, reversed)
	if sa.Fingerprint() != sb.Fingerprint() {
		t.Fatalf("fingerprints differ: %x vs %x", sa.Fingerprint(), sb.Fingerprint())
	}
	if moved := movedPartitions(sa, sb); moved != 0 {
		t.Fatalf("%.4f of partitions differ between rings with the same members", moved)
	}
	if sa.Epoch() == sb.Epoch() {
		t.Fatalf("epochs are local: expected them to differ (%d)", sa.Epoch())
	}
}

func TestFingerprintCoversMembersAndConfig(t *testing.T) {
	r := mustRing(t, DefaultConfig())
	s3 := mustSet(t, r, names(3))
	other := DefaultConfig()
	other.PartitionCount = 4093
	r2 := mustRing(t, other)
	if mustSet(t, r2, names(3)).Fingerprint() == s3.Fingerprint() {
		t.Fatal("fingerprint ignores the partition count")
	}
	if mustSet(t, r, names(4)).Fingerprint() == s3.Fingerprint() {
		t.Fatal("fingerprint ignores the member set")
	}
	// "ab"+"c" and "a"+"bc" must not collide through concatenation.
	x := mustSet(t, mustRing(t, DefaultConfig()), []string{"ab", "c"})
	y := mustSet(t, mustRing(t, DefaultConfig()), []string{"a", "bc"})
	if x.Fingerprint() == y.Fingerprint() {
		t.Fatal("fingerprint is ambiguous across name boundaries")
	}
}

func TestSetMembersEpochs(t *testing.T) {
	r := mustRing(t, DefaultConfig())
	if e := r.Current(); e.Epoch() != 0 || e.Len() != 0 || e.Owner("k") != "" || e.Replicas("k", 3) != nil {
		t.Fatalf("new ring not empty: epoch %d, %d members", e.Epoch(), e.Len())
	}
	s1 := mustSet(t, r, []string{"a", "b"})
	if s1.Epoch() != 1 {
		t.Fatalf("epoch %d after first change, want 1", s1.Epoch())
	}
	if same := mustSet(t, r, []string{"b", "a"}); same != s1 {
		t.Fatal("an unchanged member set published a new snapshot")
	}
	if s2 := mustSet(t, r, []string{"a"}); s2.Epoch() != 2 || s2.Has("b") || !s2.Has("a") {
		t.Fatalf("after removing b: epoch %d, members %v", s2.Epoch(), s2.Members())
	}
}

func TestSetMembersRejectsBadInput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMembers = 3
	r := mustRing(t, cfg)
	good := mustSet(t, r, []string{"a", "b"})
	for name, in := range map[string][]string{
		"duplicate": {"a", "a"},
		"empty":     {"a", ""},
		"nul":       {"a", "b\x00"},
		"too long":  {strings.Repeat("x", 257)},
		"too many":  {"a", "b", "c", "d"},
	} {
		if _, err := r.SetMembers(in); !errors.Is(err, ErrMembers) {
			t.Errorf("%s: SetMembers(%q) = %v, want ErrMembers", name, in, err)
		}
	}
	if r.Current() != good {
		t.Fatal("a rejected member list replaced the snapshot")
	}
}

// TestPlacementPanicIsContained bypasses Validate to reach the library's panic
// and checks SetMembers turns it into an error and keeps the last good ring.
func TestPlacementPanicIsContained(t *testing.T) {
	cfg := Config{PartitionCount: 3, MaxMembers: 10, Load: 1.25, ReplicationFactor: 20}
	r := &Ring{cfg: cfg, members: map[string]bool{}}
	r.lib = consistent.New(nil, r.libConfig())
	r.cur.Store(r.snapshot())
	good := mustSet(t, r, names(3))
	if _, err := r.SetMembers(names(4)); !errors.Is(err, ErrPlacement) {
		t.Fatalf("SetMembers over capacity = %v, want ErrPlacement", err)
	}
	if r.Current() != good {
		t.Fatal("a failed placement replaced the snapshot")
	}
	s := mustSet(t, r, names(2))
	if s.Len() != 2 || s.Owner("k") == "" {
		t.Fatalf("ring unusable after a contained panic: %v", s.Members())
	}
}

func TestReplicas(t *testing.T) {
	r := mustRing(t, DefaultConfig())
	s := mustSet(t, r, names(5))
	for i := range 1000 {
		key := fmt.Sprintf("k%d", i)
		reps := s.Replicas(key, 3)
		if len(reps) != 3 || reps[0] != s.Owner(key) {
			t.Fatalf("Replicas(%q, 3) = %v, owner %s", key, reps, s.Owner(key))
		}
		if len(slices.Compact(slices.Sorted(slices.Values(reps)))) != 3 {
			t.Fatalf("Replicas(%q, 3) = %v: not distinct", key, reps)
		}
	}
	if got := s.Replicas("k", 9); len(got) != 5 {
		t.Fatalf("Replicas capped at %d members, want 5", len(got))
	}
	total := 0
	for _, m := range s.Members() {
		total += s.PartitionsOwned(m)
	}
	if total != DefaultConfig().PartitionCount || s.PartitionsOwned("nobody") != 0 {
		t.Fatalf("partitions owned sum to %d", total)
	}
}
