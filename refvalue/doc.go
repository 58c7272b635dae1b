// Package refvalue models reference values: named sets of accepted
// values (tdx.mr_td, tdx.rtmr_1, dstack.compose_hash, or a user name) with
// their provenance (source, author, time, digest of the artifact they
// were computed from) and a validity window, and the Store interface that
// holds them. NewMemoryStore is the in-memory Store; the SQL stores live
// in internal/store. FromMeasure ingests the JSON output of
// `tdproof measure --format json`.
//
// Unlike Trustee's reference value provider service (RVPS), validity
// is enforced when values are read: Store.Lookup never returns a value
// that has expired or is not yet valid at the query time, so an expired
// reference value no longer matches.
//
// # Security
//
// Provenance is recorded, not verified: whoever can Add to a Store decides
// what is accepted. Signed CoRIM and in-toto inputs are not implemented
// yet.
package refvalue
