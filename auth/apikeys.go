package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

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

// storedKey is an API key as the cache holds it.
type storedKey struct {
	Found     bool     `json:"found"`
	UserID    string   `json:"user_id,omitempty"`
	Name      string   `json:"name,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ExpiresAt int64    `json:"expires_at,omitempty"` // unix nanos; 0: never
	Revoked   bool     `json:"revoked,omitempty"`
}

// APIKeyLoader loads API keys by hash from src for the apikeys group. An
// unknown key is cached as "not found", so made-up keys cannot hammer the
// source.
func APIKeyLoader(src Source) shard.Loader {
	return shard.LoaderFunc(func(ctx context.Context, keyHash string) (shard.Value, error) {
		r, err := src.APIKey(ctx, keyHash)
		if err != nil {
			return shard.Value{}, err
		}
		k := storedKey{Found: r.Found, UserID: r.UserID, Name: r.Name, Scopes: r.Scopes, Revoked: r.Revoked}
		if !r.ExpiresAt.IsZero() {
			k.ExpiresAt = r.ExpiresAt.UnixNano()
		}
		b, err := json.Marshal(k)
		return shard.Value{Bytes: b}, err
	})
}

// InvalidateFunc drops key of a cache group on every member, its owner
// first; it fails when the owner did not acknowledge. The node provides it.
type InvalidateFunc func(ctx context.Context, group, key string) error

// APIKeys verifies API keys through the cluster cache: the key's record is
// cached by its owner under the key's hash, and checked on every call
// against the owning user's entry (disabled or unknown users' keys are not
// accepted). A key record older than its user's entry is reloaded first, so
// InvalidateUser also reaches the user's keys without knowing them.
type APIKeys struct {
	keys       Cache
	users      *Authorizer
	invalidate InvalidateFunc
	now        func() time.Time
	flight     singleflight.Group
}

// NewAPIKeys returns a verifier over the apikeys group keys, taking user
// state from users.
func NewAPIKeys(keys Cache, users *Authorizer, invalidate InvalidateFunc, now func() time.Time) *APIKeys {
	if now == nil {
		now = time.Now
	}
	return &APIKeys{keys: keys, users: users, invalidate: invalidate, now: now}
}

// Verify returns the key's owner and scopes, a *KeyError when the key is
// not accepted, or ErrUnavailable when the source could not answer.
func (a *APIKeys) Verify(ctx context.Context, key string) (APIKeyInfo, error) {
	if key == "" || len(key) > maxAPIKeyBytes {
		return APIKeyInfo{}, &KeyError{Code: KeyInvalid}
	}
	hash := KeyHash(key)
	rec, e, err := a.record(ctx, hash)
	if err != nil || !rec.Found {
		return APIKeyInfo{}, keyErr(err)
	}
	set, ue, err := a.users.userSet(ctx, rec.UserID)
	if err != nil {
		return APIKeyInfo{}, err
	}
	if ue.Gen > e.Gen {
		if rec, err = a.reload(ctx, hash); err != nil || !rec.Found {
			return APIKeyInfo{}, keyErr(err)
		}
		if set, _, err = a.users.userSet(ctx, rec.UserID); err != nil {
			return APIKeyInfo{}, err
		}
	}
	switch {
	case set.Disabled():
		return APIKeyInfo{}, &KeyError{Code: KeyUserDisabled}
	case rec.Revoked:
		return APIKeyInfo{}, &KeyError{Code: KeyRevoked}
	case rec.ExpiresAt != 0 && !a.now().Before(time.Unix(0, rec.ExpiresAt)):
		return APIKeyInfo{}, &KeyError{Code: KeyExpired}
	}
	info := APIKeyInfo{UserID: rec.UserID, Name: rec.Name, Scopes: rec.Scopes}
	if rec.ExpiresAt != 0 {
		info.ExpiresAt = time.Unix(0, rec.ExpiresAt).UTC()
	}
	return info, nil
}

// keyErr is the answer for a key record that could not be read (err) or
// does not exist (nil).
func keyErr(err error) error {
	if err != nil {
		return err
	}
	return &KeyError{Code: KeyInvalid}
}

func (a *APIKeys) record(ctx context.Context, hash string) (storedKey, shard.Entry, error) {
	e, err := a.keys.Get(ctx, hash)
	if err != nil {
		return storedKey{}, e, unavailable(err)
	}
	var k storedKey
	if err := json.Unmarshal(e.Value, &k); err != nil {
		return storedKey{}, e, fmt.Errorf("%w: cached api key: %w", ErrUnavailable, err)
	}
	return k, e, nil
}

// reload drops the key's record everywhere and reads it again: the user
// changed since the record was loaded. Concurrent reloads of one key on
// this node share one, detached from the callers' cancellation (one caller
// giving up must not fail the others); each caller waits at most until its
// own context ends.
func (a *APIKeys) reload(ctx context.Context, hash string) (storedKey, error) {
	done := a.flight.DoChan(hash, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reloadTimeout)
		defer cancel()
		if err := a.invalidate(rctx, GroupAPIKeys, hash); err != nil {
			return nil, unavailable(err)
		}
		k, _, err := a.record(rctx, hash)
		return k, err
	})
	select {
	case r := <-done:
		if r.Err != nil {
			return storedKey{}, r.Err
		}
		return r.Val.(storedKey), nil
	case <-ctx.Done():
		return storedKey{}, ctx.Err()
	}
}

// reloadTimeout bounds a shared reload of an API key record.
const reloadTimeout = 5 * time.Second
