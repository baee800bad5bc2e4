package store

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/avion/authnode/store/storetest"
)

// TestMain starts a PostgreSQL server for the store suite (or uses
// AUTHNODE_TEST_POSTGRES), so every store test also runs against it.
func TestMain(m *testing.M) {
	admin, stop, err := storetest.StartPostgres()
	switch {
	case errors.Is(err, storetest.ErrNoPostgres):
		fmt.Fprintf(os.Stderr, "store: PostgreSQL runs skipped: %v\n", err)
	case err != nil:
		fmt.Fprintf(os.Stderr, "store: cannot start PostgreSQL: %v\n", err)
		os.Exit(1)
	default:
		drivers["postgres"] = func(t *testing.T) string { return storetest.Database(admin)(t) }
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}
