package auth

import (
	"context"
	"encoding/json"
	"time"
)

// Source is the source of truth auth reads through the cache: a database
// (package store) in production. Implementations must be safe for
// concurrent use; an error means the source could not answer (an unknown
// user or key is not an error, see the Found fields).
type Source interface {
	// UserPolicy returns a user's disabled flag, token watermark, the
	// permissions of all its roles and its API keys.
	UserPolicy(ctx context.Context, userID string) (UserPolicy, error)
	// APIKey looks a key up by the hex SHA-256 of its plaintext.
	APIKey(ctx context.Context, keySHA256 string) (APIKeyRecord, error)
	// Session returns the user's session; an expired one is not found.
	Session(ctx context.Context, userID string) (SessionRecord, error)
	// PutSession stores the user's one session, replacing any other.
	PutSession(ctx context.Context, userID string, data json.RawMessage, expiresAt time.Time) error
	// DeleteSession removes the user's session; deleting none is no error.
	DeleteSession(ctx context.Context, userID string) error
	// RevokeTokens moves the user's tokens-revoked-before watermark forward
	// to before (never back) and returns the stored watermark.
	RevokeTokens(ctx context.Context, userID string, before time.Time) (time.Time, error)
	// Watermarks returns every watermark later than since, by user.
	Watermarks(ctx context.Context, since time.Time) (map[string]time.Time, error)
}

// UserPolicy is what the source holds about one user's authorization.
type UserPolicy struct {
	Found               bool
	Disabled            bool
	TokensRevokedBefore time.Time // zero: never revoked
	Permissions         []Permission
	// APIKeys are the user's keys by hex SHA-256: a key's state lives in
	// its user's entry, so invalidating the user reaches its keys.
	APIKeys map[string]APIKeyRecord
}

// APIKeyRecord is a stored API key; the plaintext is never stored.
type APIKeyRecord struct {
	Found     bool
	UserID    string
	Name      string
	Scopes    []string
	ExpiresAt time.Time // zero: never expires
	Revoked   bool
}

// SessionRecord is a user's session.
type SessionRecord struct {
	Found     bool
	Data      json.RawMessage
	ExpiresAt time.Time
}

// Change names what changed in the source: one user (their roles, disabled
// flag, watermark or API keys), every user of a role (its permissions),
// everything (a table was truncated), or, with Reset, possibly anything:
// the feed (re)started and may have missed changes made before.
type Change struct {
	UserID string
	Role   string
	All    bool
	Reset  bool // with All
}
