// Package storetest starts a PostgreSQL server for tests: the store suite
// runs against it, and cluster tests use it as a shared source.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// ErrNoPostgres means no PostgreSQL server can be started here.
var ErrNoPostgres = errors.New("no PostgreSQL: set AUTHNODE_TEST_POSTGRES, or install Debian's postgresql and run as root (make deps)")

// StartPostgres runs initdb and postgres as the postgres user on a free
// port of 127.0.0.1, in a fresh directory, and returns an admin URL and a
// function that stops the server and removes the directory. With
// AUTHNODE_TEST_POSTGRES set it returns that URL and starts nothing.
func StartPostgres() (string, func(), error) {
	if u := os.Getenv("AUTHNODE_TEST_POSTGRES"); u != "" {
		return u, nil, nil
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	pgUser, err := user.Lookup("postgres")
	if len(bins) == 0 || err != nil || os.Geteuid() != 0 {
		return "", nil, ErrNoPostgres
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "authnode-pg")
	if err != nil {
		return "", nil, err
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", nil, err
	}
	data := filepath.Join(dir, "data")
	asPostgres := func(args ...string) *exec.Cmd {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	if out, err := asPostgres(bin+"/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	server := asPostgres(bin+"/postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	if err := server.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	stop := func() {
		_ = asPostgres(bin+"/pg_ctl", "-D", data, "stop", "-m", "fast").Run()
		select {
		case err := <-exited:
			if err != nil {
				fmt.Fprintf(os.Stderr, "storetest: postgres exited: %v\n", err)
			}
		case <-time.After(30 * time.Second):
			_ = server.Process.Kill()
		}
		_ = os.RemoveAll(dir)
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitForPostgres(admin, exited); err != nil {
		stop()
		return "", nil, err
	}
	return admin, stop, nil
}

func waitForPostgres(url string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", url)
		if err == nil {
			err = db.Ping()
			_ = db.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case e := <-exited:
			return fmt.Errorf("postgres exited: %w", e)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Database returns a function that creates a fresh database on the server
// at admin for a test, drops it when the test ends, and returns its URL.
func Database(admin string) func(t testing.TB) string {
	return func(t testing.TB) string {
		t.Helper()
		name := fmt.Sprintf("authnode_test_%d", rand.Uint64())
		db, err := sql.Open("pgx", admin)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db, err := sql.Open("pgx", admin)
			if err == nil {
				_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
				_ = db.Close()
			}
		})
		u, _ := urlWithDatabase(admin, name)
		return u
	}
}

func urlWithDatabase(admin, name string) (string, error) {
	u, err := neturl.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
