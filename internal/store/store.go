package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Error categories. Errors returned by a [Store] wrap one of these (match
// them with errors.Is) or a driver error.
var (
	// ErrNotFound means the policy, policy version, reference value, key or
	// collateral item does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint would be violated: a policy
	// version or key id that already exists, or a second active key.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid means an argument was rejected before reaching the database
	// (empty name, unknown policy kind, bad DSN, …).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrSchemaTooNew means the database was migrated by a newer tdproof than
	// this one; it is not opened rather than risking misreading it.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
)

// DefaultSQLitePath is the SQLite file [Open] uses for an empty DSN,
// relative to the working directory.
const DefaultSQLitePath = "tdproof-data/tdproof.db"

// Dialect names a database backend.
type Dialect string

// The supported backends.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is an open database with tdproof's schema at the latest version.
// A Store is safe for concurrent use; several Stores (in one or several
// processes) may share one database.
type Store struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	// stmts caches prepared statements of the hot queries (query text →
	// *sql.Stmt), so SQLite does not parse them on every call.
	stmts sync.Map
	// kbs, for SQLite, is a pool of one connection that the key broker's
	// handshake statements (session writes, resource reads) go through,
	// with its own statements (kbsStmts): SQLite serialises writers
	// anyway, and one connection keeps its page cache across its own
	// writes and queues writers in Go rather than in SQLite's busy
	// handler. nil for PostgreSQL (db serves them).
	kbs      *sql.DB
	kbsStmts sync.Map
	// writes counts the writes to the tables a Cache holds made through
	// this Store, so its Caches reload before the next read.
	writes atomic.Int64

	// keyAEAD seals EAR private keys at rest (SealEARKeys); nil: plain.
	keyAEAD cipher.AEAD

	// testHookPolicyInserted, when set by tests, runs inside the
	// CreatePolicy transaction after the new version row is written.
	testHookPolicyInserted func(ctx context.Context)
}

type config struct {
	observe     func(query string)
	now         func() time.Time
	busyTimeout time.Duration
	maxConns    int
}

// Option configures [Open].
type Option func(*config)

// WithNow sets the clock used for created_at and similar timestamps.
// If unset, time.Now.
func WithNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithBusyTimeout sets how long a SQLite connection waits for a lock held
// by another connection or process before failing. If unset, 10s.
// Ignored for PostgreSQL.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithMaxOpenConns limits the number of open connections. If unset,
// 4 for SQLite (writers are serialized by the file lock anyway) and 16 for
// PostgreSQL. A SQLite store has one more connection, the key broker's
// (its session writes and resource reads).
func WithMaxOpenConns(n int) Option {
	return func(c *config) { c.maxConns = n }
}

// Open opens (creating if needed) the database named by dsn and migrates
// it to the latest schema version before returning.
//
//   - "" opens the SQLite file [DefaultSQLitePath].
//   - "sqlite://PATH", "sqlite:PATH", "file:PATH" or a plain PATH opens the
//     SQLite file PATH, creating it (mode 0600) and its directory (mode
//     0700) on first run.
//   - "postgres://…" or "postgresql://…" (or a libpq key=value string
//     starting with "host=") connects to PostgreSQL with pgx; the database
//     must exist.
//
// Open fails with [ErrInvalid] for a DSN it cannot use and with
// [ErrSchemaTooNew] when the database was migrated by a newer tdproof.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{now: time.Now, busyTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		return nil, fmt.Errorf("%w: nil clock", ErrInvalid)
	}
	if cfg.busyTimeout < 0 || cfg.maxConns < 0 {
		return nil, fmt.Errorf("%w: negative busy timeout or connection limit", ErrInvalid)
	}

	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"), strings.HasPrefix(dsn, "host="):
		dialect = Postgres
		db, err = openPostgres(dsn, cfg)
	default:
		dialect = SQLite
		db, err = openSQLite(dsn, cfg)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dialect: dialect, now: cfg.now}
	if dialect == SQLite {
		one := cfg
		one.maxConns = 1
		if s.kbs, err = openSQLite(dsn, one); err != nil {
			db.Close()
			return nil, err
		}
	}
	// SQLite can answer SQLITE_BUSY without calling the busy handler while
	// another process converts a new file to WAL or checkpoints it on
	// close; opening retries that until the busy timeout.
	deadline := time.Now().Add(cfg.busyTimeout)
	if err := retryBusy(ctx, deadline, func() error { return db.PingContext(ctx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", dialect, err)
	}
	if err := retryBusy(ctx, deadline, func() error { return s.migrate(ctx) }); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// retryBusy calls fn until it returns something other than SQLITE_BUSY or
// the deadline passes.
func retryBusy(ctx context.Context, deadline time.Time, fn func() error) error {
	wait := 5 * time.Millisecond
	for {
		err := fn()
		se, ok := errors.AsType[*sqlite.Error](err)
		if !ok || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func sqlitePath(dsn string) (string, error) {
	path := dsn
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		if strings.HasPrefix(path, p) {
			path = path[len(p):]
			break
		}
	}
	if dsn == "" {
		path = DefaultSQLitePath
	}
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return "", fmt.Errorf("%w: SQLite DSN %q: want a file path without '?' or '#'", ErrInvalid, dsn)
	}
	return path, nil
}

func openSQLite(dsn string, cfg config) (*sql.DB, error) {
	path, err := sqlitePath(dsn)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create SQLite directory: %w", err)
	}
	// Create the file ourselves so that it (and with it the -wal and -shm
	// files, which SQLite gives the same mode) is private: it holds keys.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create SQLite file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: create SQLite file: %w", err)
	}
	q := "_busy_timeout=" + strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10) +
		"&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1&_txlock=immediate"
	db, err := sql.Open("sqlite", "file:"+path+"?"+q)
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite: %w", err)
	}
	if cfg.observe != nil {
		drv := db.Driver()
		_ = db.Close()
		db = sql.OpenDB(observedConnector{c: dsnConnector{d: drv, dsn: "file:" + path + "?" + q}, fn: cfg.observe})
	}
	n := cfg.maxConns
	if n == 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

func openPostgres(dsn string, cfg config) (*sql.DB, error) {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may echo the password; do not wrap it.
		return nil, fmt.Errorf("%w: PostgreSQL DSN cannot be parsed", ErrInvalid)
	}
	var db *sql.DB
	if cfg.observe != nil {
		db = sql.OpenDB(observedConnector{c: stdlib.GetConnector(*pc), fn: cfg.observe})
	} else {
		db = stdlib.OpenDB(*pc)
	}
	n := cfg.maxConns
	if n == 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// Close closes the database. It does not wait for other Stores on the
// same database.
func (s *Store) Close() error {
	s.stmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	s.kbsStmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		s.kbsStmts.Delete(k)
		return true
	})
	err := s.db.Close()
	if s.kbs != nil {
		err = errors.Join(err, s.kbs.Close())
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Dialect reports the backend of s.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// stmt returns the prepared statement of query (already rewritten by q),
// preparing it on first use.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return prepared(ctx, s.db, &s.stmts, query)
}

// prepared returns the statement of query on db from cache, preparing it
// on first use.
func prepared(ctx context.Context, db *sql.DB, cache *sync.Map, query string) (*sql.Stmt, error) {
	if v, ok := cache.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := cache.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// execPrepared is ExecContext through the cached statement of query.
func (s *Store) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// kbsExec is execPrepared through the key broker's connection (SQLite)
// or the pool (PostgreSQL).
func (s *Store) kbsExec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.kbs == nil {
		return s.execPrepared(ctx, query, args...)
	}
	st, err := prepared(ctx, s.kbs, &s.kbsStmts, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// kbsQueryRow is queryRowPrepared through the key broker's connection
// (SQLite) or the pool (PostgreSQL).
func (s *Store) kbsQueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s.kbs == nil {
		return s.queryRowPrepared(ctx, query, args...)
	}
	st, err := prepared(ctx, s.kbs, &s.kbsStmts, query)
	if err != nil {
		return s.kbs.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// queryRowPrepared is QueryRowContext through the cached statement of
// query; if it cannot be prepared, the unprepared query reports the error
// through the Row.
func (s *Store) queryRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// wrote records a write to the cached tables (deferred by every write
// method, so it runs after the commit, whether or not it succeeded).
func (s *Store) wrote() { s.writes.Add(1) }

// querier runs a query on a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// q rewrites the '?' placeholders of a query for the backend. Queries in
// this package never contain '?' elsewhere.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// inTx runs fn in a transaction, committing when fn returns nil and
// rolling back otherwise (including when ctx is cancelled part way).
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", mapErr(err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", mapErr(err))
	}
	return nil
}

// mapErr wraps unique-constraint violations in ErrConflict.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23505" {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
	}
	return err
}

// Timestamps are Unix nanoseconds in the database: an int64, so only
// times from minDBTime to maxDBTime (1677-09-21 to 2262-04-11 UTC) can be
// stored. Every write path checks its times with checkTime first, since
// time.Time.UnixNano silently wraps outside that range.
var (
	minDBTime = time.Unix(0, math.MinInt64).UTC()
	maxDBTime = time.Unix(0, math.MaxInt64).UTC()
)

// checkTime fails with [ErrInvalid] if t cannot be stored; what names t.
func checkTime(what string, t time.Time) error {
	if t.Before(minDBTime) || t.After(maxDBTime) {
		return fmt.Errorf("%w: %s %s is outside the storable range %s to %s", ErrInvalid, what,
			t.UTC().Format(time.RFC3339Nano), minDBTime.Format(time.RFC3339Nano), maxDBTime.Format(time.RFC3339Nano))
	}
	return nil
}

// checkTimePtr is checkTime for an optional time (nil passes).
func checkTimePtr(what string, t *time.Time) error {
	if t == nil {
		return nil
	}
	return checkTime(what, *t)
}

// clock returns the store clock's time, or [ErrInvalid] if it cannot be
// stored.
func (s *Store) clock() (time.Time, error) {
	now := s.now()
	return now, checkTime("current time", now)
}

func toDB(t time.Time) int64 { return t.UnixNano() }

func fromDB(n int64) time.Time { return time.Unix(0, n).UTC() }

func toDBPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromDBPtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromDB(n.Int64)
	return &t
}
