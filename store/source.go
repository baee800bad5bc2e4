package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/avion/authnode/auth"
)

// nanos stores a time as Unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// UserPolicy implements auth.Source.
func (s *Store) UserPolicy(ctx context.Context, userID string) (auth.UserPolicy, error) {
	s.count(KindUserPolicy)
	var p auth.UserPolicy
	var disabled bool
	var revoked int64
	err := s.db.QueryRowContext(ctx, `SELECT disabled, tokens_revoked_before FROM users WHERE id = ?`, userID).Scan(&disabled, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("store: user policy: %w", err)
	}
	p.Found, p.Disabled, p.TokensRevokedBefore = true, disabled, fromNanos(revoked)
	rows, err := s.db.QueryContext(ctx, `SELECT rp.resource, rp.action, rp.conditions
		FROM user_roles ur JOIN role_permissions rp ON rp.role = ur.role
		WHERE ur.user_id = ? ORDER BY rp.id`, userID)
	if err != nil {
		return p, fmt.Errorf("store: user policy: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var perm auth.Permission
		var conds string
		if err := rows.Scan(&perm.Resource, &perm.Action, &conds); err != nil {
			return p, fmt.Errorf("store: user policy: %w", err)
		}
		if err := json.Unmarshal([]byte(conds), &perm.Conditions); err != nil {
			return p, fmt.Errorf("store: user policy: conditions: %w", err)
		}
		p.Permissions = append(p.Permissions, perm)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("store: user policy: %w", err)
	}
	p.APIKeys, err = s.userKeys(ctx, userID)
	return p, err
}

// userKeys returns a user's API keys by hash.
func (s *Store) userKeys(ctx context.Context, userID string) (map[string]auth.APIKeyRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key_sha256, user_id, name, scopes, expires_at, revoked FROM api_keys WHERE user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: user keys: %w", err)
	}
	defer rows.Close()
	var keys map[string]auth.APIKeyRecord
	for rows.Next() {
		var hash string
		r, err := scanKey(rows, &hash)
		if err != nil {
			return nil, fmt.Errorf("store: user keys: %w", err)
		}
		if keys == nil {
			keys = map[string]auth.APIKeyRecord{}
		}
		keys[hash] = r
	}
	return keys, rows.Err()
}

// scanKey reads one api_keys row (key_sha256 when hash is not nil, then
// user_id, name, scopes, expires_at, revoked).
func scanKey(row interface{ Scan(...any) error }, hash *string) (auth.APIKeyRecord, error) {
	var r auth.APIKeyRecord
	var scopes string
	var expires int64
	dest := []any{&r.UserID, &r.Name, &scopes, &expires, &r.Revoked}
	if hash != nil {
		dest = append([]any{hash}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(scopes), &r.Scopes); err != nil {
		return r, fmt.Errorf("scopes: %w", err)
	}
	r.Found, r.ExpiresAt = true, fromNanos(expires)
	return r, nil
}

// APIKey implements auth.Source.
func (s *Store) APIKey(ctx context.Context, keySHA256 string) (auth.APIKeyRecord, error) {
	s.count(KindAPIKey)
	r, err := scanKey(s.db.QueryRowContext(ctx, `SELECT user_id, name, scopes, expires_at, revoked FROM api_keys WHERE key_sha256 = ?`, keySHA256), nil)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.APIKeyRecord{}, nil
	}
	if err != nil {
		return r, fmt.Errorf("store: api key: %w", err)
	}
	return r, nil
}

// Session implements auth.Source; an expired session is not found.
func (s *Store) Session(ctx context.Context, userID string) (auth.SessionRecord, error) {
	s.count(KindSession)
	var r auth.SessionRecord
	var data string
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT data, expires_at FROM sessions WHERE user_id = ? AND expires_at > ?`,
		userID, time.Now().UnixNano()).Scan(&data, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("store: session: %w", err)
	}
	return auth.SessionRecord{Found: true, Data: json.RawMessage(data), ExpiresAt: fromNanos(expires)}, nil
}

// PutSession implements auth.Source.
func (s *Store) PutSession(ctx context.Context, userID string, data json.RawMessage, expiresAt time.Time) error {
	s.count(KindWrite)
	if !json.Valid(data) {
		return errors.New("store: session data is not JSON")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (user_id, data, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
		userID, string(data), nanos(expiresAt))
	if err != nil {
		return fmt.Errorf("store: put session: %w", err)
	}
	return nil
}

// DeleteSession implements auth.Source.
func (s *Store) DeleteSession(ctx context.Context, userID string) error {
	s.count(KindWrite)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// RevokeTokens implements auth.Source. The watermark only moves forward; a
// user the store does not know yet is created, so a revocation is never
// lost.
func (s *Store) RevokeTokens(ctx context.Context, userID string, before time.Time) (time.Time, error) {
	s.count(KindWrite)
	var stored int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO users (id, tokens_revoked_before) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET tokens_revoked_before = CASE
			WHEN excluded.tokens_revoked_before > users.tokens_revoked_before THEN excluded.tokens_revoked_before
			ELSE users.tokens_revoked_before END
		RETURNING tokens_revoked_before`, userID, nanos(before)).Scan(&stored)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: revoke tokens: %w", err)
	}
	return fromNanos(stored), nil
}

// Watermarks implements auth.Source.
func (s *Store) Watermarks(ctx context.Context, since time.Time) (map[string]time.Time, error) {
	s.count(KindWatermarks)
	rows, err := s.db.QueryContext(ctx, `SELECT id, tokens_revoked_before FROM users WHERE tokens_revoked_before > ?`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("store: watermarks: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("store: watermarks: %w", err)
		}
		out[id] = fromNanos(n)
	}
	return out, rows.Err()
}

// Cleanup deletes sessions expired at now and forgets watermarks older than
// the longest token lifetime (no token issued before them is still valid).
func (s *Store) Cleanup(ctx context.Context, now time.Time, maxTokenLifetime time.Duration) error {
	s.count(KindAdmin)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now.UnixNano()); err != nil {
		return fmt.Errorf("store: cleanup: %w", err)
	}
	_, err := s.db.ExecContext(ctx, `UPDATE users SET tokens_revoked_before = 0 WHERE tokens_revoked_before > 0 AND tokens_revoked_before < ?`,
		now.Add(-maxTokenLifetime).UnixNano())
	if err != nil {
		return fmt.Errorf("store: cleanup: %w", err)
	}
	if !s.db.d.dollarArgs { // SQLite's change feed: a day of history is plenty
		if _, err := s.db.ExecContext(ctx, `DELETE FROM changes WHERE at < ?`, now.Add(-24*time.Hour).UnixMilli()); err != nil {
			return fmt.Errorf("store: cleanup: %w", err)
		}
	}
	return nil
}

// RecentUsers returns up to limit users with a live session, the latest
// expiring first: a proxy for the most recently active users, for cache
// warmup.
func (s *Store) RecentUsers(ctx context.Context, limit int) ([]string, error) {
	s.count(KindAdmin)
	out, err := s.strings(ctx, `SELECT user_id FROM sessions WHERE expires_at > ? ORDER BY expires_at DESC LIMIT ?`,
		time.Now().UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent users: %w", err)
	}
	return out, nil
}

// strings runs a query of one text column and returns its values.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
