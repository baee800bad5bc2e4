package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

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

var kinds = []string{KindUserPolicy, KindAPIKey, KindSession, KindWrite, KindWatermarks, KindAdmin}

// Store is the source of truth on SQLite (the default) or PostgreSQL. It
// implements auth.Source and counts every call by kind.
type Store struct {
	db     *sql.DB
	counts map[string]*atomic.Uint64
}

var _ auth.Source = (*Store)(nil)

// Open connects to url (sqlite://PATH) and applies the
// embedded migrations, under a lock, so replicas starting together are safe.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	dsn, err := sqliteDSN(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s := &Store{db: db, counts: map[string]*atomic.Uint64{}}
	for _, k := range kinds {
		s.counts[k] = new(atomic.Uint64)
	}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN turns sqlite://PATH into a modernc DSN with foreign keys on,
// WAL and a busy timeout. PATH may be relative (sqlite://./data/a.db).
func sqliteDSN(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, "sqlite://")
	if !ok || rest == "" || strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("%w: want sqlite://PATH (postgres:// arrives with the PostgreSQL driver)", ErrURL)
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_txlock", "immediate")
	return "file:" + rest + "?" + q.Encode(), nil
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
	files, err := fs.Glob(migrations, "migrations/sqlite/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	sort.Strings(files)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
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
