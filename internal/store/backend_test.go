package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for schema setup

	"github.com/tdproof/tdproof/internal/store"
)

// postgresEnv names the DSN of a PostgreSQL database the tests may use
// (scripts/start-postgres.sh prints one). Each test works in a schema of
// its own, created and dropped by the test.
const postgresEnv = "TDPROOF_TEST_POSTGRES_DSN"

// backend opens fresh, empty databases of one kind.
type backend struct {
	name string
	// newDSN returns the DSN of a new empty database (SQLite: a file in
	// t.TempDir; PostgreSQL: a schema dropped when the test ends).
	newDSN func(t *testing.T) string
}

var backends = []backend{
	{name: "sqlite", newDSN: newSQLiteDSN},
	{name: "postgres", newDSN: newPostgresDSN},
}

// forEachBackend runs f as one subtest per backend. PostgreSQL is skipped
// without a DSN unless CI=true or TDPROOF_REQUIRE_POSTGRES=1, where a
// missing DSN fails the test, so CI cannot silently skip it.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				requirePostgres(t)
			}
			f(t, b)
		})
	}
}

func requirePostgres(t *testing.T) {
	t.Helper()
	if os.Getenv(postgresEnv) != "" {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("TDPROOF_REQUIRE_POSTGRES") == "1" {
		t.Fatalf("%s is not set, but CI=true or TDPROOF_REQUIRE_POSTGRES=1 requires the PostgreSQL tests; run scripts/start-postgres.sh and export its output as %s", postgresEnv, postgresEnv)
	}
	t.Skipf("PostgreSQL tests skipped: %s is not set (run scripts/start-postgres.sh and export its output)", postgresEnv)
}

func newSQLiteDSN(t *testing.T) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "data", "tdproof.db")
}

func newPostgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(postgresEnv)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	schema := "tdproof_test_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", postgresEnv, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		if err := admin.Close(); err != nil {
			t.Errorf("close admin connection: %v", err)
		}
	})
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema) // a pgx runtime parameter
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens dsn and closes the store when the test ends.
func open(t *testing.T, dsn string, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
