package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/avion/authnode/shard"
)

// GroupUsers is the cache group of users' permission sets (ring key: the
// user id).
const GroupUsers = "users"

// ErrUnavailable means the source could not answer and nothing usable is
// cached: callers answer 503 / Unavailable, never a made-up allow or deny.
var ErrUnavailable = errors.New("auth: source unavailable")

// Cache is the cluster cache group auth reads users through; *shard.Group
// implements it.
type Cache interface {
	Get(ctx context.Context, key string) (shard.Entry, error)
}

// UserLoader loads a user's policy from src for the users group. An unknown
// user is cached like any other (as "not found"), so unknown ids cannot
// hammer the source.
func UserLoader(src Source) shard.Loader {
	return shard.LoaderFunc(func(ctx context.Context, userID string) (shard.Value, error) {
		p, err := src.UserPolicy(ctx, userID)
		if err != nil {
			return shard.Value{}, err
		}
		b, err := json.Marshal(storedPolicy{Found: p.Found, Disabled: p.Disabled, RevokedBefore: p.TokensRevokedBefore.UnixNano(), Permissions: p.Permissions})
		return shard.Value{Bytes: b}, err
	})
}

// storedPolicy is a user's policy as the cache holds it.
type storedPolicy struct {
	Found         bool         `json:"found"`
	Disabled      bool         `json:"disabled,omitempty"`
	RevokedBefore int64        `json:"revoked_before,omitempty"`
	Permissions   []Permission `json:"permissions,omitempty"`
}

// Authorizer decides "may user U do action A on resource R" from the user's
// permission set, cached once in the cluster by its owner and compiled and
// memoised on each node under the entry's generation: a new generation
// (after an invalidation) never meets an old memo.
type Authorizer struct {
	users Cache
	sets  *ristretto.Cache[string, *PermissionSet] // user + generation → compiled set
	memo  *ristretto.Cache[string, bool]           // user + generation + request → decision
	off   bool                                     // cache mode off: no memo
}

// NewAuthorizer returns an authorizer over users with memoBytes of memory
// for compiled sets and decisions. With memoBytes 0 nothing is memoised
// (cache mode off).
func NewAuthorizer(users Cache, memoBytes int64) (*Authorizer, error) {
	off := memoBytes <= 0
	memoBytes = max(memoBytes, 1<<20)
	sets, err := ristretto.NewCache(&ristretto.Config[string, *PermissionSet]{NumCounters: 1e5, MaxCost: memoBytes / 2, BufferItems: 64})
	if err != nil {
		return nil, err
	}
	memo, err := ristretto.NewCache(&ristretto.Config[string, bool]{NumCounters: 1e6, MaxCost: memoBytes / 2, BufferItems: 64})
	if err != nil {
		sets.Close()
		return nil, err
	}
	return &Authorizer{users: users, sets: sets, memo: memo, off: off}, nil
}

// Clear drops every memoised set and decision.
func (a *Authorizer) Clear() {
	a.sets.Clear()
	a.memo.Clear()
}

// Close releases the memo caches.
func (a *Authorizer) Close() {
	a.sets.Close()
	a.memo.Close()
}

// Authorize reports whether userID may do action on resource under
// conditions. An unknown user, a disabled user and a malformed request are
// denied. It fails only when the user's policy could not be loaded
// (ErrUnavailable).
func (a *Authorizer) Authorize(ctx context.Context, userID, resource, action string, conditions map[string]string) (bool, error) {
	if shard.CheckKey(userID) != nil {
		return false, nil
	}
	e, err := a.entry(ctx, userID)
	if err != nil {
		return false, err
	}
	gen := strconv.FormatUint(uint64(e.Gen), 36)
	key := memoKey(userID, gen, resource, action, conditions)
	if allowed, ok := a.memo.Get(key); ok && !a.off {
		return allowed, nil
	}
	set, err := a.compiled(memoKey(userID, gen, "", "", nil), e.Value)
	if err != nil {
		return false, err
	}
	allowed := set.Allows(resource, action, conditions)
	if !a.off {
		a.memo.SetWithTTL(key, allowed, int64(len(key)+16), time.Until(e.Expires))
	}
	return allowed, nil
}

// entry returns the user's cache entry.
func (a *Authorizer) entry(ctx context.Context, userID string) (shard.Entry, error) {
	e, err := a.users.Get(ctx, userID)
	if err != nil {
		return e, unavailable(err)
	}
	return e, nil
}

// userSet returns the user's compiled permission set and its entry. An
// unknown or malformed user id gets the empty, denying set.
func (a *Authorizer) userSet(ctx context.Context, userID string) (*PermissionSet, shard.Entry, error) {
	if shard.CheckKey(userID) != nil {
		return denyAll, shard.Entry{}, nil
	}
	e, err := a.entry(ctx, userID)
	if err != nil {
		return nil, e, err
	}
	set, err := a.compiled(memoKey(userID, strconv.FormatUint(uint64(e.Gen), 36), "", "", nil), e.Value)
	return set, e, err
}

// denyAll is the set of an unknown user.
var denyAll = &PermissionSet{disabled: true}

func (a *Authorizer) compiled(key string, value []byte) (*PermissionSet, error) {
	if set, ok := a.sets.Get(key); ok && !a.off {
		return set, nil
	}
	var p storedPolicy
	if err := json.Unmarshal(value, &p); err != nil {
		return nil, fmt.Errorf("%w: cached policy: %w", ErrUnavailable, err)
	}
	perms := p.Permissions
	if !p.Found {
		perms = nil
	}
	set, err := Compile(p.Disabled || !p.Found, perms)
	if err != nil {
		// A stored permission that does not compile grants nothing; the
		// rest of the user's permissions still apply.
		set, _ = Compile(p.Disabled, slices.DeleteFunc(slices.Clone(perms), func(perm Permission) bool {
			_, e := Compile(false, []Permission{perm})
			return e != nil
		}))
	}
	if !a.off {
		a.sets.Set(key, set, int64(len(value)+len(key)))
	}
	return set, nil
}

// memoKey identifies a decision exactly: user, generation, resource,
// action and the sorted conditions, each length-prefixed, so no two
// different questions share a key (a hash, or plain separators, would let a
// crafted user id or resource read another question's answer).
func memoKey(userID, gen, resource, action string, conds map[string]string) string {
	b := make([]byte, 0, 64+len(userID)+len(resource)+len(action))
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	field(userID)
	field(gen)
	field(resource)
	field(action)
	keys := make([]string, 0, len(conds))
	for k := range conds {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k)
		field(conds[k])
	}
	return string(b)
}
