package store

import "testing"

// TestMigrationsMatchAcrossDialects: both dialects have the same
// migrations (versions and names), so a schema version means the same
// tables everywhere.
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	lite, err := loadMigrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL migrations", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].name != pg[i].name || lite[i].version != pg[i].version {
			t.Errorf("migration %d: sqlite %s, postgres %s", i+1, lite[i].name, pg[i].name)
		}
	}
	if LatestSchemaVersion() != len(lite) {
		t.Errorf("LatestSchemaVersion() = %d, want %d", LatestSchemaVersion(), len(lite))
	}
}

func TestRebind(t *testing.T) {
	s := &Store{dialect: Postgres}
	if got, want := s.q("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)"; got != want {
		t.Errorf("q() = %q, want %q", got, want)
	}
	s.dialect = SQLite
	if got := s.q("a = ?"); got != "a = ?" {
		t.Errorf("q() = %q for SQLite", got)
	}
}
