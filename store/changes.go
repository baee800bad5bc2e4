package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/avion/authnode/auth"
)

// KindChanges counts reads of the change feed.
const KindChanges = "changes"

// changeChannel is the PostgreSQL notification channel of the change feed
// (see migrations/postgres/0002_changes.sql).
const changeChannel = "authnode_changes"

// WatchChanges reports every change to users, user roles, roles, role
// permissions and API keys through apply until ctx ends, whoever made it
// (an import, plain SQL). It first reports auth.Change{All: true, Reset:
// true}, and again whenever changes may have been missed (after every reconnect on
// PostgreSQL, whose notifications are not kept for absent listeners), so a
// consumer that invalidates what apply names never keeps stale state.
// PostgreSQL is LISTENed to; SQLite is polled every poll. apply runs on
// WatchChanges's goroutine. It returns ctx's error.
func (s *Store) WatchChanges(ctx context.Context, poll time.Duration, apply func(auth.Change)) error {
	if s.db.d.dollarArgs {
		return s.listen(ctx, apply)
	}
	return s.pollChanges(ctx, poll, apply)
}

// pollChanges reads the SQLite changes table every poll.
func (s *Store) pollChanges(ctx context.Context, poll time.Duration, apply func(auth.Change)) error {
	var last int64
	for {
		err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM changes`).Scan(&last)
		if err == nil {
			break
		}
		if werr := wait(ctx, poll); werr != nil {
			return werr
		}
	}
	apply(auth.Change{All: true, Reset: true})
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		next, err := s.readChanges(ctx, last, apply)
		if err == nil {
			last = next
		}
	}
}

// readChanges applies the changes after id last and returns the last id
// read.
func (s *Store) readChanges(ctx context.Context, last int64, apply func(auth.Change)) (int64, error) {
	s.count(KindChanges)
	rows, err := s.db.QueryContext(ctx, `SELECT id, COALESCE(user_id, ''), COALESCE(role, '') FROM changes WHERE id > ? ORDER BY id LIMIT 10000`, last)
	if err != nil {
		return last, err
	}
	defer rows.Close()
	var batch []auth.Change
	for rows.Next() {
		var c auth.Change
		if err := rows.Scan(&last, &c.UserID, &c.Role); err != nil {
			return last, err
		}
		batch = append(batch, c)
	}
	if err := rows.Err(); err != nil {
		return last, err
	}
	rows.Close()
	for _, c := range batch {
		apply(c)
	}
	return last, nil
}

// listen LISTENs on its own PostgreSQL connection, reconnecting with
// backoff; after every (re)connect it reports everything as changed.
func (s *Store) listen(ctx context.Context, apply func(auth.Change)) error {
	const first = 100 * time.Millisecond
	backoff := first
	for {
		listened, _ := s.listenOnce(ctx, apply)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened { // the connection worked: a new failure starts over
			backoff = first
		}
		if err := wait(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// listenOnce connects, LISTENs and applies notifications until the
// connection fails; listened reports whether LISTEN succeeded.
func (s *Store) listenOnce(ctx context.Context, apply func(auth.Change)) (listened bool, err error) {
	s.count(KindChanges)
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		return false, err
	}
	apply(auth.Change{All: true, Reset: true})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		apply(parseChange(n.Payload))
	}
}

// parseChange decodes a notification; anything unexpected counts as
// everything changed.
func parseChange(payload string) auth.Change {
	var p struct {
		User *string `json:"user"`
		Role *string `json:"role"`
		All  bool    `json:"all"`
	}
	switch {
	case json.Unmarshal([]byte(payload), &p) != nil || p.All:
		return auth.Change{All: true}
	case p.User != nil && *p.User != "":
		return auth.Change{UserID: *p.User}
	case p.Role != nil && *p.Role != "":
		return auth.Change{Role: *p.Role}
	}
	return auth.Change{All: true}
}

// UsersWithRole returns up to limit users holding role.
func (s *Store) UsersWithRole(ctx context.Context, role string, limit int) ([]string, error) {
	s.count(KindChanges)
	out, err := s.strings(ctx, `SELECT user_id FROM user_roles WHERE role = ? ORDER BY user_id LIMIT ?`, role, limit)
	if err != nil {
		return nil, fmt.Errorf("store: users with role: %w", err)
	}
	return out, nil
}

// wait sleeps for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
