// Package storetest gives tests fresh, empty databases of both backends
// of package store: a SQLite file in a temporary directory, and a schema
// of its own on the test PostgreSQL server named by TDPROOF_TEST_POSTGRES_DSN
// (scripts/start-postgres.sh prints one), dropped when the test ends.
//
// Without that variable the PostgreSQL tests are skipped with a message,
// unless CI=true or TDPROOF_REQUIRE_POSTGRES=1, where they fail: CI cannot
// skip them silently. The variables are read when the package is
// initialized, before a TestMain that clears TDPROOF_* variables runs.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for schema setup
)

// PostgresEnv names the DSN of the test PostgreSQL server.
const PostgresEnv = "TDPROOF_TEST_POSTGRES_DSN"

var (
	postgresBase    = os.Getenv(PostgresEnv)
	postgresRequire = os.Getenv("CI") == "true" || os.Getenv("TDPROOF_REQUIRE_POSTGRES") == "1"
)

// SQLiteDSN returns the DSN of a new SQLite database file under
// tb.TempDir() (not yet created).
func SQLiteDSN(tb testing.TB) string {
	tb.Helper()
	return "sqlite://" + filepath.Join(tb.TempDir(), "data", "tdproof.db")
}

// RequirePostgres skips tb (or fails it when PostgreSQL is required) if
// no test server is configured.
func RequirePostgres(tb testing.TB) {
	tb.Helper()
	if postgresBase != "" {
		return
	}
	if postgresRequire {
		tb.Fatalf("%s is not set, but CI=true or TDPROOF_REQUIRE_POSTGRES=1 requires the PostgreSQL tests; run scripts/start-postgres.sh and export its output as %s", PostgresEnv, PostgresEnv)
	}
	tb.Skipf("PostgreSQL test skipped: %s is not set (run scripts/start-postgres.sh and export its output)", PostgresEnv)
}

// PostgresDSN returns the DSN of a new, empty schema of the test server
// (search_path set in the DSN), dropped when tb ends: after the cleanups
// registered later, such as closing stores and stopping servers. It calls
// RequirePostgres first.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	RequirePostgres(tb)
	u, err := url.Parse(postgresBase)
	if err != nil {
		tb.Fatalf("%s: %v", PostgresEnv, err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		tb.Fatal(err)
	}
	schema := "tdproof_test_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", postgresBase)
	if err != nil {
		tb.Fatalf("open %s: %v", PostgresEnv, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		if err := admin.Close(); err != nil {
			tb.Errorf("close the admin connection: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema) // a pgx runtime parameter
	u.RawQuery = q.Encode()
	return u.String()
}

// ForEachBackend runs f as the subtests "sqlite" and "postgres", each with
// the DSN of a fresh database.
func ForEachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, PostgresDSN(t)) })
}
