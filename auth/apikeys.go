package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/avion/authnode/shard"
)

// ErrInvalidInput means a request was malformed (an empty or oversized user
// id, for example): callers answer 400 / InvalidArgument.
var ErrInvalidInput = errors.New("auth: invalid input")

// GroupAPIKeys is the cache group of API keys (ring key: the hex SHA-256 of
// the key).
const GroupAPIKeys = "apikeys"

// API key error codes, as the APIs report them.
const (
	KeyInvalid      = "invalid" // unknown or malformed
	KeyRevoked      = "revoked"
	KeyExpired      = "expired"
	KeyUserDisabled = "user_disabled"
)

// KeyError is why an API key is not accepted. It never contains the key.
type KeyError struct{ Code string }

func (e *KeyError) Error() string { return "auth: api key " + e.Code }

// APIKeyInfo is what a verified API key says.
type APIKeyInfo struct {
	UserID    string
	Name      string
	Scopes    []string
	ExpiresAt time.Time // zero: never expires
}

// maxAPIKeyBytes bounds an API key presented for verification.
const maxAPIKeyBytes = 1024

// KeyHash returns the hex SHA-256 of an API key: how keys are stored and
// cached. The plaintext never leaves the request.
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// storedKey is an API key's state as a user's cached policy holds it.
type storedKey struct {
	Name      string   `json:"name,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ExpiresAt int64    `json:"expires_at,omitempty"` // unix nanos; 0: never
	Revoked   bool     `json:"revoked,omitempty"`
}

func newStoredKey(r APIKeyRecord) storedKey {
	k := storedKey{Name: r.Name, Scopes: r.Scopes, Revoked: r.Revoked}
	if !r.ExpiresAt.IsZero() {
		k.ExpiresAt = r.ExpiresAt.UnixNano()
	}
	return k
}

// keyOwner is what the apikeys group holds for a key hash: whose it is.
type keyOwner struct {
	Found  bool   `json:"found"`
	UserID string `json:"user_id,omitempty"`
}

// unknownKeyTTL bounds how long a key is remembered as unknown: a key
// created since is accepted after at most this long.
const unknownKeyTTL = 5 * time.Second

// APIKeyLoader loads whose key a hash is from src for the apikeys group. An
// unknown key is cached as "not found" for a few seconds, so made-up keys
// cannot hammer the source.
func APIKeyLoader(src Source) shard.Loader {
	return shard.LoaderFunc(func(ctx context.Context, keyHash string) (shard.Value, error) {
		r, err := src.APIKey(ctx, keyHash)
		if err != nil {
			return shard.Value{}, err
		}
		b, err := json.Marshal(keyOwner{Found: r.Found, UserID: r.UserID})
		v := shard.Value{Bytes: b}
		if !r.Found {
			v.TTL = unknownKeyTTL
		}
		return v, err
	})
}

// APIKeys verifies API keys through the cluster cache. The apikeys group
// maps a key's hash to its user; the key's state (revoked, expiry, scopes)
// lives in the user's cached policy with the user's disabled flag, so
// invalidating the user (InvalidateUser, the change feed) reaches its keys
// without any node knowing which keys the user has.
type APIKeys struct {
	owners Cache
	users  *Authorizer
	now    func() time.Time
}

// NewAPIKeys returns a verifier over the apikeys group owners, taking user
// state from users.
func NewAPIKeys(owners Cache, users *Authorizer, now func() time.Time) *APIKeys {
	if now == nil {
		now = time.Now
	}
	return &APIKeys{owners: owners, users: users, now: now}
}

// Verify returns the key's owner and scopes, a *KeyError when the key is
// not accepted, or ErrUnavailable when the source could not answer.
func (a *APIKeys) Verify(ctx context.Context, key string) (APIKeyInfo, error) {
	if key == "" || len(key) > maxAPIKeyBytes {
		return APIKeyInfo{}, &KeyError{Code: KeyInvalid}
	}
	hash := KeyHash(key)
	e, err := a.owners.Get(ctx, hash)
	if err != nil {
		return APIKeyInfo{}, Unavailable(err)
	}
	var owner keyOwner
	if err := json.Unmarshal(e.Value, &owner); err != nil {
		return APIKeyInfo{}, fmt.Errorf("%w: cached api key: %w", ErrUnavailable, err)
	}
	if !owner.Found {
		return APIKeyInfo{}, &KeyError{Code: KeyInvalid}
	}
	st, err := a.users.userState(ctx, owner.UserID)
	if err != nil {
		return APIKeyInfo{}, err
	}
	k, ok := st.keys[hash]
	switch {
	case !ok: // deleted, or moved to another user, since
		return APIKeyInfo{}, &KeyError{Code: KeyInvalid}
	case st.set.Disabled():
		return APIKeyInfo{}, &KeyError{Code: KeyUserDisabled}
	case k.Revoked:
		return APIKeyInfo{}, &KeyError{Code: KeyRevoked}
	case k.ExpiresAt != 0 && !a.now().Before(time.Unix(0, k.ExpiresAt)):
		return APIKeyInfo{}, &KeyError{Code: KeyExpired}
	}
	info := APIKeyInfo{UserID: owner.UserID, Name: k.Name, Scopes: k.Scopes}
	if k.ExpiresAt != 0 {
		info.ExpiresAt = time.Unix(0, k.ExpiresAt).UTC()
	}
	return info, nil
}
