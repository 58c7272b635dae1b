package quote

import (
	"errors"
	"fmt"
)

// Category sentinels. Every error returned by [Parse] wraps exactly one of
// ErrMalformed or ErrUnsupported, and is a *ParseError naming the field.
var (
	// ErrMalformed: the bytes are not a well-formed quote.
	ErrMalformed = errors.New("quote: malformed")
	// ErrTruncated: a structure extends past the end of the input. It
	// wraps ErrMalformed.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrMalformed)
	// ErrUnsupported: a well-formed quote of a kind tdproof does not verify.
	ErrUnsupported = errors.New("quote: unsupported")
	// ErrVersion: the header version is not 3, 4 or 5, or the version
	// does not fit the TEE type. It wraps ErrUnsupported.
	ErrVersion = fmt.Errorf("%w version", ErrUnsupported)
	// ErrKeyType: the attestation key type is not ECDSA-256-with-P-256.
	// It wraps ErrUnsupported.
	ErrKeyType = fmt.Errorf("%w attestation key type", ErrUnsupported)
	// ErrTEEType: the TEE type is neither SGX nor TDX. It wraps
	// ErrUnsupported.
	ErrTEEType = fmt.Errorf("%w tee type", ErrUnsupported)
	// ErrBodyType: the v5 body type is unknown, unsupported (TD 1.5 EX)
	// or does not fit the TEE type. It wraps ErrUnsupported.
	ErrBodyType = fmt.Errorf("%w body type", ErrUnsupported)
	// ErrBodySize: the v5 body size does not match its body type. It
	// wraps ErrMalformed.
	ErrBodySize = fmt.Errorf("%w: body size does not match body type", ErrMalformed)
	// ErrCertificationType: a certification data type that is unknown
	// or not allowed in that position. It wraps ErrUnsupported.
	ErrCertificationType = fmt.Errorf("%w certification data type", ErrUnsupported)
)

// ParseError reports where parsing failed. Offset is the byte offset in
// the input at which the failing field starts.
type ParseError struct {
	Field  string
	Offset int
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%v (field %s at offset %d)", e.Err, e.Field, e.Offset)
}

func (e *ParseError) Unwrap() error { return e.Err }

func perrf(field string, off int, sentinel error, format string, a ...any) error {
	return &ParseError{Field: field, Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, a...)...)}
}
