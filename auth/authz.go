package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/avion/authnode/hlc"
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
		sp := storedPolicy{Found: p.Found, Disabled: p.Disabled, Permissions: p.Permissions}
		if !p.TokensRevokedBefore.IsZero() {
			sp.RevokedBefore = p.TokensRevokedBefore.UnixNano()
		}
		for hash, k := range p.APIKeys {
			if sp.Keys == nil {
				sp.Keys = map[string]storedKey{}
			}
			sp.Keys[hash] = newStoredKey(k)
		}
		b, err := json.Marshal(sp)
		return shard.Value{Bytes: b}, err
	})
}

// storedPolicy is a user's policy as the cache holds it.
type storedPolicy struct {
	Found         bool                 `json:"found"`
	Disabled      bool                 `json:"disabled,omitempty"`
	RevokedBefore int64                `json:"revoked_before,omitempty"`
	Permissions   []Permission         `json:"permissions,omitempty"`
	Keys          map[string]storedKey `json:"keys,omitempty"` // by hash
}

// userState is a user's policy as each node uses it: the compiled set and
// the API keys.
type userState struct {
	set  *PermissionSet
	keys map[string]storedKey
}

// Authorizer decides "may user U do action A on resource R" from the user's
// permission set, cached once in the cluster by its owner and compiled and
// memoised on each node under the entry's generation: a new generation
// (after an invalidation) never meets an old memo.
type Authorizer struct {
	users Cache
	sets  *memo[*userState] // user + generation → compiled state
	memo  *memo[bool]       // user + generation + request → decision
	off   bool              // cache mode off: no memo
	marks *Watermarks       // raised from loaded policies; may be nil
}

// NewAuthorizer returns an authorizer over users with memoBytes of memory
// for compiled sets and decisions. With memoBytes 0 nothing is memoised
// (cache mode off). A loaded policy's token watermark is raised in marks
// (when not nil): one more way a revocation reaches this node.
func NewAuthorizer(users Cache, memoBytes int64, marks *Watermarks) (*Authorizer, error) {
	off := memoBytes <= 0
	memoBytes = max(memoBytes, 1<<20)
	sets, err := newMemo[*userState](memoBytes/2, 1e5)
	if err != nil {
		return nil, err
	}
	decisions, err := newMemo[bool](memoBytes/2, 1e6)
	if err != nil {
		sets.close()
		return nil, err
	}
	return &Authorizer{users: users, sets: sets, memo: decisions, off: off, marks: marks}, nil
}

// Clear drops every memoised set and decision.
func (a *Authorizer) Clear() {
	a.sets.clear()
	a.memo.clear()
}

// Close releases the memo caches.
func (a *Authorizer) Close() {
	a.sets.close()
	a.memo.close()
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
	var buf [questionBuf]byte
	question := appendQuestion(buf[:0], userID, e.Gen, resource, action, conditions)
	if allowed, ok := a.memo.get(question); ok && !a.off {
		return allowed, nil
	}
	st, err := a.state(userID, e.Gen, e.Value)
	if err != nil {
		return false, err
	}
	allowed := st.set.Allows(resource, action, conditions)
	if ttl := time.Until(e.Expires); !a.off && ttl > 0 {
		a.memo.set(question, allowed, 48, ttl)
	}
	return allowed, nil
}

// entry returns the user's cache entry.
func (a *Authorizer) entry(ctx context.Context, userID string) (shard.Entry, error) {
	e, err := a.users.Get(ctx, userID)
	if err != nil {
		return e, Unavailable(err)
	}
	return e, nil
}

// userState returns the user's state. An unknown or malformed user id gets
// the empty, denying state.
func (a *Authorizer) userState(ctx context.Context, userID string) (*userState, error) {
	if shard.CheckKey(userID) != nil {
		return denyAll, nil
	}
	e, err := a.entry(ctx, userID)
	if err != nil {
		return nil, err
	}
	return a.state(userID, e.Gen, e.Value)
}

// denyAll is the state of an unknown user.
var denyAll = &userState{set: &PermissionSet{disabled: true}}

// state decodes and compiles a user's cached policy, once per generation on
// this node.
func (a *Authorizer) state(userID string, gen hlc.Gen, value []byte) (*userState, error) {
	var buf [questionBuf]byte
	question := appendQuestion(buf[:0], userID, gen, "", "", nil)
	if st, ok := a.sets.get(question); ok && !a.off {
		return st, nil
	}
	var p storedPolicy
	if err := json.Unmarshal(value, &p); err != nil {
		return nil, fmt.Errorf("%w: cached policy: %w", ErrUnavailable, err)
	}
	if !p.Found {
		return denyAll, nil
	}
	if a.marks != nil && p.RevokedBefore > 0 {
		a.marks.Raise(userID, time.Unix(0, p.RevokedBefore))
	}
	st := &userState{set: compileLenient(p.Disabled, p.Permissions), keys: p.Keys}
	if !a.off {
		a.sets.set(question, st, int64(len(value)), 0)
	}
	return st, nil
}

// compileLenient compiles perms; a stored permission that does not compile
// grants nothing, and the rest still apply.
func compileLenient(disabled bool, perms []Permission) *PermissionSet {
	if set, err := Compile(disabled, perms); err == nil {
		return set
	}
	set, _ := Compile(disabled, slices.DeleteFunc(slices.Clone(perms), func(perm Permission) bool {
		_, e := Compile(false, []Permission{perm})
		return e != nil
	}))
	return set
}
