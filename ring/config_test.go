package ring

import (
	"errors"
	"fmt"
	"testing"

	"github.com/buraksezer/consistent"
)

// libraryPanics builds a fresh library ring with n members and reports whether
// it panicked: the library itself is the model Validate is checked against.
func libraryPanics(cfg Config, n int) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	members := make([]consistent.Member, n)
	for i := range members {
		members[i] = member(fmt.Sprintf("node-%d", i))
	}
	consistent.New(members, consistent.Config{
		Hasher: hasher{}, PartitionCount: cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor, Load: cfg.Load,
	})
	return false
}

func firstPanic(cfg Config) int {
	for n := 1; n <= cfg.MaxMembers; n++ {
		if libraryPanics(cfg, n) {
			return n
		}
	}
	return 0
}

// TestValidateMatchesLibrary checks the rule against the library over a grid
// of small configurations: a config Validate accepts never panics, and among
// configs with load > 1 and replication ≥ 2 (the library's working domain)
// every config that never panics is accepted.
func TestValidateMatchesLibrary(t *testing.T) {
	for _, parts := range []int{1, 2, 3, 5, 7, 8, 13, 16, 31} {
		for _, load := range []float64{1.0, 1.01, 1.1, 1.25, 1.5, 2} {
			for _, repl := range []int{1, 2, 3} {
				for _, maxMembers := range []int{1, parts / 2, parts, parts + 1, parts + 3} {
					cfg := Config{PartitionCount: parts, MaxMembers: maxMembers, Load: load, ReplicationFactor: repl}
					if maxMembers < 1 {
						continue
					}
					valid := cfg.Validate() == nil
					panicsAt := firstPanic(cfg)
					if valid && panicsAt != 0 {
						t.Errorf("%+v: Validate accepts it, but the library panics at %d members", cfg, panicsAt)
					}
					if !valid && panicsAt == 0 && load > 1 && repl >= 2 {
						t.Errorf("%+v: Validate rejects it, but the library places every member count", cfg)
					}
				}
			}
		}
	}
}

func TestValidateRejectsKnownPanics(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"more members than partitions", Config{PartitionCount: 271, MaxMembers: 272, Load: 1.25, ReplicationFactor: 20}},
		{"load of one", Config{PartitionCount: 271, MaxMembers: 3, Load: 1, ReplicationFactor: 20}},
		{"replication of one", Config{PartitionCount: 271, MaxMembers: 3, Load: 1.25, ReplicationFactor: 1}},
		{"zero partitions", Config{PartitionCount: 0, MaxMembers: 3, Load: 1.25, ReplicationFactor: 20}},
		{"zero members", Config{PartitionCount: 271, MaxMembers: 0, Load: 1.25, ReplicationFactor: 20}},
		{"huge load", Config{PartitionCount: 271, MaxMembers: 3, Load: 1e9, ReplicationFactor: 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want ErrConfig", err)
			}
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New() = %v, want ErrConfig", err)
			}
		})
	}
	if !libraryPanics(cases[0].cfg, 272) || !libraryPanics(cases[2].cfg, 1) {
		t.Fatal("the library no longer panics where this test expects; revisit Validate")
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
