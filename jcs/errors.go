package jcs

import (
	"errors"
	"strconv"
)

// Error categories. Every error returned by this package wraps exactly one
// of them; match with errors.Is.
var (
	// ErrSyntax reports input that is not JSON text, or not I-JSON: bad
	// grammar, invalid UTF-8, an unpaired surrogate escape, nesting that
	// is too deep, or trailing data.
	ErrSyntax = errors.New("invalid JSON")
	// ErrDuplicateKey reports an object with two members of the same name
	// (after unescaping).
	ErrDuplicateKey = errors.New("duplicate object member name")
	// ErrNumber reports a number that is not representable as a finite
	// IEEE-754 double (its magnitude is too large).
	ErrNumber = errors.New("number out of IEEE-754 double range")
)

// SyntaxError describes where canonicalization failed. Err wraps one of
// [ErrSyntax], [ErrDuplicateKey] or [ErrNumber].
type SyntaxError struct {
	// Offset is the byte offset in the input at which the problem was
	// detected.
	Offset int
	// Err is the underlying cause.
	Err error
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return "jcs: offset " + strconv.Itoa(e.Offset) + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *SyntaxError) Unwrap() error { return e.Err }
