// Package jcs implements the JSON Canonicalization Scheme (JCS) of
// RFC 8785.
//
// [Canonicalize] turns any JSON text into its canonical form: object
// members sorted by the UTF-16 code units of their names, numbers in the
// ECMAScript (ES2015+) Number-to-String form of RFC 8785 §3.2.2.3, strings
// with the minimal escaping of §3.2.2.2, literals as is, and no
// whitespace. [Marshal] is json.Marshal followed by Canonicalize.
//
// The input must be I-JSON (RFC 7493), as RFC 8785 §3.1 requires: valid
// UTF-8, no unpaired surrogates in \u escapes, no duplicate object member
// names, and every number representable as an IEEE-754 double. Numbers
// too small to represent round to zero, as ECMAScript's JSON.parse does;
// numbers too large are rejected. Nesting deeper than 1000 arrays or
// objects is rejected.
//
// [Canonicalize] and [Validate] errors are [*SyntaxError] values that
// carry the byte offset of the problem and wrap one of [ErrSyntax],
// [ErrDuplicateKey] or [ErrNumber]. [Marshal] also returns json.Marshal's
// errors.
//
// Package jcs does not preserve integer precision beyond 2^53: like
// every RFC 8785 implementation it converts all numbers to doubles.
// It does no I/O and keeps no state; all functions are safe for
// concurrent use.
//
// # Security
//
// Canonical bytes are only as meaningful as the parser that produced the
// value being hashed or signed. Two JSON texts that differ only in member
// order, whitespace, escaping or number spelling canonicalize to the same
// bytes; that is the point of the scheme.
package jcs
