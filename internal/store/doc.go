// Package store keeps tdproof's server state in SQL: the versioned
// appraisal policies, the reference values, the EAR signing keys and
// cached collateral.
//
// Two backends share one schema, created and upgraded by versioned
// migrations embedded in the binary (migrations/sqlite, migrations/postgres):
//
//   - SQLite through the pure-Go driver modernc.org/sqlite: the embedded
//     default, a single file created on first run (WAL journal, busy
//     timeout, foreign keys on).
//   - PostgreSQL through github.com/jackc/pgx/v5 (its database/sql driver):
//     any number of tdproof processes share one database; migrations are
//     serialized across processes by an advisory lock.
//
// [Open] picks the backend from the DSN and migrates before it returns.
// Every migration runs in one transaction and is recorded in the
// schema_migrations table, so opening a database again (or from two
// processes at once) is safe and does nothing when it is up to date.
//
// Times are stored as Unix nanoseconds (UTC) in BIGINT columns on both
// backends, so validity windows are compared in SQL with the same
// semantics everywhere: a reference value is valid at t when
// not_before <= t < expires (a missing bound is open).
//
// A [Cache] serves the reference values, the active policies and the key
// broker policies from memory for the verification path (no SQL per
// verification), and the key broker's sealed resources from memory once
// read; triggers increment the store_generation row on every write to
// those tables, and a Cache reloads when it changes.
//
// Package store does not interpret what it stores: policies are opaque
// text, reference values opaque strings, keys opaque PKCS #8 bytes.
// Adapters in the consumer packages (refvalue, policy, ear) map these
// records onto their interfaces.
//
// # Security
//
// EAR private keys are stored unencrypted in the database. The SQLite file
// is created with mode 0600 in a directory created with mode 0700; a
// PostgreSQL database must be protected by its own access control.
// [Store.RemoveKey] erases the private key bytes, not only the state.
package store
