package pcs

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels. Match them with errors.Is.
var (
	// ErrUnavailable: collateral could not be obtained (network error,
	// timeout, HTTP 5xx, 429 after retries, any other unexpected status,
	// or, in caches, an offline miss).
	ErrUnavailable = errors.New("pcs: collateral unavailable")
	// ErrNotFound: the service answered 404 (unknown FMSPC, no TDX TCB
	// info for an SGX-only platform, unknown PCK certificate). It wraps
	// ErrUnavailable.
	ErrNotFound = fmt.Errorf("%w: not found", ErrUnavailable)
	// ErrRateLimited: the service answered 429 and the retries, or the
	// Retry-After it asked for, ran out. It wraps ErrUnavailable.
	ErrRateLimited = fmt.Errorf("%w: rate limited", ErrUnavailable)

	// ErrInvalidResponse: a response was received but is unacceptable.
	// Parse errors (collateral.ErrMalformed) are wrapped together with it.
	ErrInvalidResponse = errors.New("pcs: invalid response")
	// ErrIssuerChain: the issuer-chain header is missing, does not parse,
	// does not end in the trust anchor, or its signer is not signed by it
	// or has the wrong name. It wraps ErrInvalidResponse.
	ErrIssuerChain = fmt.Errorf("%w: issuer chain", ErrInvalidResponse)
	// ErrSignature: the document or CRL signature does not verify. It
	// wraps ErrInvalidResponse.
	ErrSignature = fmt.Errorf("%w: signature does not verify", ErrInvalidResponse)
	// ErrExpired: the document, CRL or a certificate of its chain is
	// outside its validity window. It wraps ErrInvalidResponse.
	ErrExpired = fmt.Errorf("%w: outside its validity window", ErrInvalidResponse)
	// ErrMismatch: the response is for another TEE, FMSPC, CA or
	// evaluation data number than requested. It wraps ErrInvalidResponse.
	ErrMismatch = fmt.Errorf("%w: does not match the request", ErrInvalidResponse)
)

// Error is a failed request for one item. Err wraps ErrUnavailable or
// ErrInvalidResponse (and a more specific sentinel where one applies).
type Error struct {
	// Item describes what was requested (an ItemKey's String, "pck
	// certificate", "fmspc list").
	Item string
	// URL is the last URL requested (empty if no request was made).
	URL string
	// StatusCode is the last HTTP status received, or 0.
	StatusCode int
	// Attempts is the number of requests made.
	Attempts int
	// RetryAfter is the wait the service asked for in its last 429 or
	// 503 response, or 0.
	RetryAfter time.Duration
	// Err is the cause.
	Err error
}

// Error describes the item, the URL, the last status and the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pcs: ")
	b.WriteString(e.Item)
	if e.URL != "" {
		b.WriteString(": GET ")
		b.WriteString(e.URL)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Attempts > 1 {
		b.WriteString(" after " + strconv.Itoa(e.Attempts) + " attempts")
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (Retry-After " + e.RetryAfter.String() + ")")
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "pcs: "))
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// invalid wraps a cause that made a response unacceptable.
func invalid(sentinel error, format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, a...)...)
}
