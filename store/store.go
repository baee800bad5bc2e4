package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/avion/authnode/auth"
)

// ErrURL marks a --source URL that cannot be used.
var ErrURL = errors.New("store: bad source URL")

//go:embed migrations
var migrations embed.FS

// Kinds of source requests, counted: the database load.
const (
	KindUserPolicy = "user_policy"
	KindAPIKey     = "api_key"
	KindSession    = "session"
	KindWrite      = "write"
	KindWatermarks = "watermarks"
	KindAdmin      = "admin"
)

var kinds = []string{KindUserPolicy, KindAPIKey, KindSession, KindWrite, KindWatermarks, KindAdmin, KindChanges}

// Store is the source of truth on SQLite (the default) or PostgreSQL. It
// implements auth.Source and counts every call by kind.
type Store struct {
	db     db
	url    string // the source URL, for the change feed's own connection
	counts map[string]*atomic.Uint64
}

var _ auth.Source = (*Store)(nil)

// Open connects to url (sqlite://PATH or postgres://…) and applies the
// embedded migrations, under a lock (a write-locking transaction on SQLite,
// pg_advisory_xact_lock on PostgreSQL), so replicas starting together are
// safe.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	d, dsn, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	sqldb, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s := &Store{db: db{sqldb, d}, url: rawURL, counts: map[string]*atomic.Uint64{}}
	for _, k := range kinds {
		s.counts[k] = new(atomic.Uint64)
	}
	if err := s.migrate(ctx); err != nil {
		_ = sqldb.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Requests returns how many calls of each kind the store has served.
func (s *Store) Requests() map[string]uint64 {
	out := make(map[string]uint64, len(s.counts))
	for k, c := range s.counts {
		out[k] = c.Load()
	}
	return out
}

func (s *Store) count(kind string) { s.counts[kind].Add(1) }

// migrate applies the embedded migrations not yet applied, in order, in one
// immediate (write-locking) transaction: a second replica waits for the
// first and then finds nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	files, err := fs.Glob(migrations, "migrations/"+s.db.d.name+"/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	sort.Strings(files)
	tx, err := s.db.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.db.d.lock != "" {
		if _, err := tx.ExecContext(ctx, s.db.d.lock); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, f := range files {
		v, err := strconv.Atoi(strings.SplitN(path.Base(f), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s: no version", f)
		}
		if v <= current {
			continue
		}
		body, _ := migrations.ReadFile(f)
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("store: migration %s: %w", path.Base(f), err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, v); err != nil {
			return fmt.Errorf("store: migration %s: %w", path.Base(f), err)
		}
	}
	return tx.Commit()
}
