package tpm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error of this package wraps one of them.
var (
	// ErrMalformed: a structure does not decode, or has trailing or
	// non-canonical bytes.
	ErrMalformed = errors.New("tpm: malformed")
	// ErrUnsupported: a structure is well formed but of a kind this
	// package does not verify (attestation type, algorithm, curve).
	ErrUnsupported = errors.New("tpm: unsupported")
	// ErrChain: the AK certificate does not chain to the trusted root.
	ErrChain = errors.New("tpm: AK certificate chain invalid")
	// ErrCertificateTime: a certificate is not valid at the
	// verification time. It wraps ErrChain.
	ErrCertificateTime = fmt.Errorf("%w: certificate not valid at verification time", ErrChain)
	// ErrRevoked: a certificate of the AK chain is on its issuer's CRL
	// (Options.Revocation). It wraps ErrChain.
	ErrRevoked = fmt.Errorf("%w: certificate revoked", ErrChain)
	// ErrCRL: the AK chain's revocation status is unknown: a CRL it names
	// is missing, invalid or not current, or could not be obtained
	// (Options.Revocation). Fail closed.
	ErrCRL = errors.New("tpm: CRL unavailable or invalid")
	// ErrSignature: the quote signature does not verify with the AK.
	ErrSignature = errors.New("tpm: quote signature invalid")
	// ErrPCRSelection: the quoted PCR selection is not SHA-256 only or
	// does not list the supplied PCR values in order.
	ErrPCRSelection = errors.New("tpm: PCR selection mismatch")
	// ErrPCRDigest: pcrDigest differs from the digest of the PCR values.
	ErrPCRDigest = errors.New("tpm: PCR digest mismatch")
	// ErrReplay: the event log does not replay to a quoted PCR value.
	ErrReplay = errors.New("tpm: PCR replay mismatch")
	// ErrExtraData: extraData (qualifying data) differs from the
	// expected value.
	ErrExtraData = errors.New("tpm: qualifying data mismatch")
	// ErrUKI: no UKI event in the log, or more than one candidate.
	ErrUKI = errors.New("tpm: UKI event")
)
