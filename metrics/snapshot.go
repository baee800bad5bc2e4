package metrics

import (
	"github.com/avion/authnode/auth"
	"github.com/avion/authnode/redisfallback"
	"github.com/avion/authnode/shard"
)

// Snapshot is the state of a node's parts at one scrape. A zero field
// means the part is absent (no token cache, no Redis, ...).
type Snapshot struct {
	Version string // the build's
	Tokens  auth.TokenCacheStats
	Groups  []Group
	Members map[string]int // by state: cluster.MemberStates
	Ring    Ring
	// SuspectPeers counts the peers this node stopped forwarding to.
	SuspectPeers int
	Flushes      uint64
	// Source counts requests to the source of truth by kind; nil when the
	// source does not count them.
	Source map[string]uint64
	JWKS   map[string]auth.JWKSStats // by issuer
	Redis  *redisfallback.Stats      // nil without Redis
}

// Group is one cache group's state.
type Group struct {
	Name  string
	Stats shard.Stats
	// Size walks the group (see shard.Group.Size); the collector calls it
	// at most once per sizeEvery.
	Size func() (entries, bytes int64)
}

// Ring is this node's ring.
type Ring struct {
	Members, PartitionsOwned int
	Epoch                    uint64
}

// groupCacheTypes maps the auth groups to the plan's cache types.
var groupCacheTypes = map[string]string{
	auth.GroupUsers: Authorization, auth.GroupAPIKeys: APIKey, auth.GroupSessions: Session,
}

// lookups are one cache type's hits and misses.
type lookups struct{ hits, misses uint64 }

// byCacheType adds up the snapshot's hits and misses per cache type (see
// docs/metrics.md for what each counts).
func (s Snapshot) byCacheType() map[string]lookups {
	out := make(map[string]lookups, len(cacheTypes))
	for _, t := range cacheTypes {
		out[t] = lookups{}
	}
	out[JWTValidation] = lookups{s.Tokens.Hits, s.Tokens.Misses}
	for _, g := range s.Groups {
		if t, ok := groupCacheTypes[g.Name]; ok {
			out[t] = lookups{g.Stats.Hits + g.Stats.HotHits, g.Stats.Misses}
		}
	}
	var kids lookups
	for _, st := range s.JWKS {
		kids.hits += st.KidHits
		kids.misses += st.KidMisses
	}
	out[JWKS] = kids
	return out
}
