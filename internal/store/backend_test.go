package store_test

import (
	"testing"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/store/storetest"
)

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

func requirePostgres(t *testing.T) { storetest.RequirePostgres(t) }

func newSQLiteDSN(t *testing.T) string { return storetest.SQLiteDSN(t) }

func newPostgresDSN(t *testing.T) string { return storetest.PostgresDSN(t) }

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
