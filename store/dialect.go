package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver, pure Go
)

// dialect is what differs between the drivers. Queries are written with '?'
// placeholders and portable SQL (ON CONFLICT, RETURNING, CASE instead of
// MAX/GREATEST); rebind adapts the placeholders.
type dialect struct {
	name       string // migrations/<name>
	driver     string
	dollarArgs bool // $1, $2 … instead of ?
	// lock serialises migrations across replicas; it runs first in the
	// migration transaction.
	lock string
}

var (
	sqliteDialect   = dialect{name: "sqlite", driver: "sqlite"}
	postgresDialect = dialect{
		name: "postgres", driver: "pgx", dollarArgs: true,
		lock: "SELECT pg_advisory_xact_lock(7261636800)",
	}
)

// rebind rewrites '?' placeholders for the driver. Queries hold no '?'
// inside string literals.
func (d dialect) rebind(q string) string {
	if !d.dollarArgs {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// parseURL picks the dialect and data source name for a --source URL.
func parseURL(raw string) (dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		dsn, err := sqliteDSN(raw)
		return sqliteDialect, dsn, err
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			// url.Error quotes the whole URL, password included: keep
			// only what is wrong with it.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return dialect{}, "", fmt.Errorf("%w: %w", ErrURL, err)
		}
		return postgresDialect, raw, nil
	}
	return dialect{}, "", fmt.Errorf("%w: want sqlite://PATH or postgres://…", ErrURL)
}

// sqliteDSN turns sqlite://PATH into a modernc DSN with foreign keys on,
// WAL, a busy timeout and write-locking transactions. PATH may be relative
// (sqlite://./data/authnode.db).
func sqliteDSN(raw string) (string, error) {
	rest := strings.TrimPrefix(raw, "sqlite://")
	if rest == "" || strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("%w: want sqlite://PATH", ErrURL)
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_txlock", "immediate")
	return "file:" + rest + "?" + q.Encode(), nil
}

// db wraps *sql.DB so every query is rebound for the dialect.
type db struct {
	*sql.DB
	d dialect
}

func (x db) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return x.DB.ExecContext(ctx, x.d.rebind(q), args...)
}

func (x db) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return x.DB.QueryContext(ctx, x.d.rebind(q), args...)
}

func (x db) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return x.DB.QueryRowContext(ctx, x.d.rebind(q), args...)
}

// tx wraps *sql.Tx the same way.
type tx struct {
	*sql.Tx
	d dialect
}

func (x tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return x.Tx.ExecContext(ctx, x.d.rebind(q), args...)
}

func (x tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return x.Tx.QueryRowContext(ctx, x.d.rebind(q), args...)
}

func (x db) begin(ctx context.Context) (tx, error) {
	t, err := x.BeginTx(ctx, nil)
	return tx{t, x.d}, err
}

// SQLiteDir returns the directory of a sqlite://PATH source, so callers can
// create it; ok is false for other sources.
func SQLiteDir(source string) (string, bool) {
	rest, ok := strings.CutPrefix(source, "sqlite://")
	if !ok || rest == "" {
		return "", false
	}
	return filepath.Dir(rest), true
}
