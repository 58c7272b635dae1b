package eventlog

import (
	"errors"
	"strconv"
)

// Error categories. Errors returned by this package wrap one of them;
// match with errors.Is.
var (
	// ErrMalformed reports input that does not follow the CCEL or JSON
	// event format: truncated structures, lengths that exceed the data,
	// bad hex, invalid JSON, an event for a register that does not exist.
	ErrMalformed = errors.New("malformed event log")
	// ErrUnsupported reports well-formed input this package does not
	// handle: a log that is not crypto-agile, an event without a SHA-384
	// digest, an unknown runtime-event digest version.
	ErrUnsupported = errors.New("unsupported event log")
	// ErrDigestMismatch reports a runtime event whose supplied digest or
	// preimage disagrees with the value recomputed from its name and
	// payload, or a version 2 runtime event without a preimage.
	ErrDigestMismatch = errors.New("runtime event digest mismatch")
)

// ParseError locates a problem in a binary (CCEL) event log.
type ParseError struct {
	// Offset is the byte offset in the input of the structure being read.
	Offset int
	// Field names that structure, for example "event size".
	Field string
	// Err wraps [ErrMalformed] or [ErrUnsupported].
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return "eventlog: offset " + strconv.Itoa(e.Offset) + ": " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *ParseError) Unwrap() error { return e.Err }

// EventError locates a problem in one event of a sequence (a JSON event
// log, or the events passed to [Replay] or [CheckDigests]).
type EventError struct {
	// Index is the zero-based position of the event in the sequence.
	Index int
	// Err wraps [ErrMalformed], [ErrUnsupported] or [ErrDigestMismatch].
	Err error
}

// Error implements error.
func (e *EventError) Error() string {
	return "eventlog: event " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *EventError) Unwrap() error { return e.Err }
