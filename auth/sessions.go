package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/avion/authnode/shard"
)

// GroupSessions is the cache group of sessions (ring key: the user id).
const GroupSessions = "sessions"

// Session limits.
const (
	MaxSessionBytes = 64 << 10
	MaxSessionTTL   = 30 * 24 * time.Hour
)

// Session is a user's session as the APIs return it.
type Session struct {
	Found     bool
	UserID    string
	Data      json.RawMessage
	ExpiresAt time.Time
}

// storedSession is a session as the cache holds it.
type storedSession struct {
	Found     bool            `json:"found"`
	Data      json.RawMessage `json:"data,omitempty"`
	ExpiresAt int64           `json:"expires_at,omitempty"` // unix nanos
}

// SessionLoader loads sessions from src for the sessions group; a session
// is cached no longer than it lives.
func SessionLoader(src Source, now func() time.Time) shard.Loader {
	if now == nil {
		now = time.Now
	}
	return shard.LoaderFunc(func(ctx context.Context, userID string) (shard.Value, error) {
		r, err := src.Session(ctx, userID)
		if err != nil {
			return shard.Value{}, err
		}
		s := storedSession{Found: r.Found, Data: r.Data}
		var ttl time.Duration
		if r.Found {
			s.ExpiresAt = r.ExpiresAt.UnixNano()
			ttl = max(r.ExpiresAt.Sub(now()), time.Millisecond)
		}
		b, err := json.Marshal(s)
		return shard.Value{Bytes: b, TTL: ttl}, err
	})
}

// InvalidateFunc drops key of a cache group on every member, its owner
// first; it fails when the owner did not acknowledge. The node provides it.
type InvalidateFunc func(ctx context.Context, group, key string) error

// Sessions reads sessions through the cluster cache and writes them to the
// source first, then drops the cached copy on every member (owner first),
// so the next read anywhere sees the write.
type Sessions struct {
	cache      Cache
	src        Source
	invalidate InvalidateFunc
	now        func() time.Time
}

// NewSessions returns sessions over the sessions group cache.
func NewSessions(cache Cache, src Source, invalidate InvalidateFunc, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{cache: cache, src: src, invalidate: invalidate, now: now}
}

// Get returns userID's session; Found is false when there is none or it
// expired.
func (s *Sessions) Get(ctx context.Context, userID string) (Session, error) {
	if err := CheckUserID(userID); err != nil {
		return Session{}, err
	}
	e, err := s.cache.Get(ctx, userID)
	if err != nil {
		return Session{}, Unavailable(err)
	}
	var st storedSession
	if err := json.Unmarshal(e.Value, &st); err != nil {
		return Session{}, fmt.Errorf("%w: cached session: %w", ErrUnavailable, err)
	}
	exp := time.Unix(0, st.ExpiresAt)
	if !st.Found || !s.now().Before(exp) {
		return Session{UserID: userID}, nil
	}
	return Session{Found: true, UserID: userID, Data: st.Data, ExpiresAt: exp.UTC()}, nil
}

// Put stores userID's session: data must be a JSON object of at most
// MaxSessionBytes, expiresAt in the future and within MaxSessionTTL.
func (s *Sessions) Put(ctx context.Context, userID string, data json.RawMessage, expiresAt time.Time) error {
	if err := CheckUserID(userID); err != nil {
		return err
	}
	now := s.now()
	switch {
	case len(data) > MaxSessionBytes:
		return fmt.Errorf("%w: session data larger than %d bytes", ErrInvalidInput, MaxSessionBytes)
	case !isJSONObject(data):
		return fmt.Errorf("%w: session data must be a JSON object", ErrInvalidInput)
	case !expiresAt.After(now):
		return fmt.Errorf("%w: session expiry is not in the future", ErrInvalidInput)
	case expiresAt.Sub(now) > MaxSessionTTL:
		return fmt.Errorf("%w: session expiry more than %s ahead", ErrInvalidInput, MaxSessionTTL)
	}
	if err := s.src.PutSession(ctx, userID, data, expiresAt); err != nil {
		return Unavailable(err)
	}
	return s.dropCached(ctx, userID)
}

// Delete removes userID's session; removing none is no error.
func (s *Sessions) Delete(ctx context.Context, userID string) error {
	if err := CheckUserID(userID); err != nil {
		return err
	}
	if err := s.src.DeleteSession(ctx, userID); err != nil {
		return Unavailable(err)
	}
	return s.dropCached(ctx, userID)
}

func (s *Sessions) dropCached(ctx context.Context, userID string) error {
	if err := s.invalidate(ctx, GroupSessions, userID); err != nil {
		return fmt.Errorf("%w: the session was stored, but its cached copy could not be dropped: %w", ErrUnavailable, err)
	}
	return nil
}

func isJSONObject(data json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(data, &m) == nil && m != nil
}

// CheckUserID rejects a user id that cannot be a cache key, with an error
// wrapping ErrInvalidInput.
func CheckUserID(userID string) error {
	if err := shard.CheckKey(userID); err != nil {
		return fmt.Errorf("%w: user id: %w", ErrInvalidInput, err)
	}
	return nil
}

// Unavailable wraps a source or cache failure as ErrUnavailable, leaving
// the caller's cancellation (and an error already ErrUnavailable) as it is.
func Unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
