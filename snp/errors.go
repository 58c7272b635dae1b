package snp

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels. Match them with errors.Is. Every error returned by this
// package wraps exactly one of them (ErrChain-derived errors also wrap
// ErrChain).
var (
	// ErrMalformed: the report, a certificate, a certificate table or a
	// CRL does not parse, or a must-be-zero field is not zero.
	ErrMalformed = errors.New("snp: malformed")
	// ErrUnsupported: a well-formed input this package does not handle
	// (report version, signature algorithm, product).
	ErrUnsupported = errors.New("snp: unsupported")
	// ErrSignature: the report signature does not verify with the
	// endorsement key over the exact signed bytes.
	ErrSignature = errors.New("snp: report signature invalid")
	// ErrChain: the ARK → ASK → VCEK chain is incomplete, malformed, does
	// not lead to the pinned ARK, or has a bad signature, name or key.
	ErrChain = errors.New("snp: certificate chain invalid")
	// ErrRootMismatch: the supplied ARK is not the pinned AMD root. It
	// wraps ErrChain.
	ErrRootMismatch = fmt.Errorf("%w: ARK is not the pinned AMD root", ErrChain)
	// ErrExpired: a certificate or CRL of the chain is past its end of
	// validity (CRL: its NextUpdate) at the verification time.
	ErrExpired = errors.New("snp: certificate expired")
	// ErrNotYetValid: a certificate or CRL of the chain starts after the
	// verification time.
	ErrNotYetValid = errors.New("snp: certificate not yet valid")
	// ErrRevoked: the ASK, ASVK, VCEK or VLEK is listed in the ARK's CRL.
	ErrRevoked = errors.New("snp: certificate revoked")
	// ErrCRL: a CRL is not issued or not signed by the ARK, or is
	// missing when Options.RequireCRL is set.
	ErrCRL = errors.New("snp: CRL invalid")
	// ErrTCBMismatch: the endorsement key certificate's TCB extensions
	// (blSPL, teeSPL, snpSPL, ucodeSPL, the reserved SPLs and, on Turin,
	// fmcSPL) differ from the report's REPORTED_TCB.
	ErrTCBMismatch = errors.New("snp: VCEK TCB does not match REPORTED_TCB")
	// ErrChipID: the VCEK's hwID extension differs from CHIP_ID.
	ErrChipID = errors.New("snp: VCEK hwID does not match CHIP_ID")
	// ErrProduct: the VCEK's product name or the report's CPUID does not
	// match the chain's product line.
	ErrProduct = errors.New("snp: product mismatch")
	// ErrSigningKey: the report's KEY_INFO.SIGNING_KEY names no usable
	// key (reserved value, "none"), or the key kind does not match the
	// certificate supplied (VCEK for a VLEK-signed report or vice versa).
	ErrSigningKey = errors.New("snp: signing key")
)

// VerifyError names the verification step that failed.
type VerifyError struct {
	Step string
	Err  error
}

func (e *VerifyError) Error() string {
	return "snp: " + e.Step + ": " + strings.TrimPrefix(e.Err.Error(), "snp: ")
}

func (e *VerifyError) Unwrap() error { return e.Err }

func stepErr(step string, sentinel error, format string, a ...any) error {
	return &VerifyError{Step: step, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, a...)...)}
}

// ParseError locates a parse failure: the field name and its byte offset
// in the report (-1 when not applicable).
type ParseError struct {
	Field  string
	Offset int
	Err    error
}

func (e *ParseError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("snp: %s at 0x%03x: %s", e.Field, e.Offset, strings.TrimPrefix(e.Err.Error(), "snp: "))
	}
	return fmt.Sprintf("snp: %s: %s", e.Field, strings.TrimPrefix(e.Err.Error(), "snp: "))
}

func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(field string, off int, sentinel error, format string, a ...any) error {
	return &ParseError{Field: field, Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, a...)...)}
}
