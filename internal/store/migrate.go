package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// migrateLockKey is the PostgreSQL advisory lock (session level) that
// serializes migrations between processes: "tdproof\x01".
const migrateLockKey int64 = 0x7464_7072_6f6f_6601

type migration struct {
	version int
	name    string // file name without the .sql suffix, e.g. "0001_policies"
	sql     string
}

// loadMigrations returns the embedded migrations of a dialect in version
// order; versions are 1, 2, 3, … without gaps.
func loadMigrations(d Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migrations: bad file name %q", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	// fs.ReadDir sorts by name and names are zero padded.
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migrations: %s: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// LatestSchemaVersion is the schema version this binary migrates to.
func LatestSchemaVersion() int {
	ms, err := loadMigrations(SQLite)
	if err != nil {
		return 0
	}
	return len(ms)
}

// SchemaVersion reports the highest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// migrate applies the pending migrations, each in its own transaction
// together with its schema_migrations row. On PostgreSQL the whole run holds
// a session advisory lock, so concurrent processes wait for each other; on
// SQLite each transaction takes the write lock when it begins
// (_txlock=immediate) and re-checks whether the migration was applied
// meanwhile.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()

	if s.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer func() {
			_, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey)
			if uerr != nil {
				// Never return a connection that may still hold the lock
				// to the pool: discarding it ends the session.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
				if err == nil {
					err = fmt.Errorf("store: migrate: unlock: %w", uerr)
				}
			}
		}()
	}

	applied := map[int]string{}
	err = s.connTx(ctx, conn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at BIGINT  NOT NULL
)`); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT version, name FROM schema_migrations")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			var name string
			if err := rows.Scan(&v, &name); err != nil {
				return err
			}
			applied[v] = name
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for v, name := range applied {
		if v > len(ms) {
			return fmt.Errorf("%w: database has migration %d (%s), this binary knows %d", ErrSchemaTooNew, v, name, len(ms))
		}
		if ms[v-1].name != name {
			return fmt.Errorf("store: migrate: database migration %d is %q, this binary's is %q", v, name, ms[v-1].name)
		}
	}

	for _, m := range ms {
		if _, ok := applied[m.version]; ok {
			continue
		}
		err := s.connTx(ctx, conn, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil // applied by another process meanwhile (SQLite)
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			now, err := s.clock()
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
				m.version, m.name, toDB(now))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate: %s: %w", m.name, err)
		}
	}
	return nil
}

// connTx runs fn in a transaction on one connection.
func (s *Store) connTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
