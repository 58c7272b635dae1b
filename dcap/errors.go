package dcap

import (
	"errors"
	"fmt"
)

// Sentinels. Match them with errors.Is; parse errors from package quote
// (quote.ErrMalformed, quote.ErrUnsupported, …) pass through unchanged.
var (
	// ErrQEVendor: the quote was not made by an Intel quoting enclave.
	ErrQEVendor = errors.New("dcap: unsupported QE vendor ID")
	// ErrSignature: a signature does not verify. The quote signature,
	// QE report signature, certificate and collateral signature errors
	// wrap it.
	ErrSignature = errors.New("dcap: signature invalid")
	// ErrQuoteSignature: the quote signature by the attestation key.
	ErrQuoteSignature = fmt.Errorf("%w: quote", ErrSignature)
	// ErrQEReportSignature: the QE report signature by the PCK key.
	ErrQEReportSignature = fmt.Errorf("%w: QE report", ErrSignature)
	// ErrQEReportData: the QE report does not bind the attestation key.
	ErrQEReportData = errors.New("dcap: QE report data does not match the attestation key")
	// ErrChain: a certificate chain is malformed, does not lead to the
	// trusted root, or has a bad signature or name.
	ErrChain = errors.New("dcap: certificate chain invalid")
	// ErrPCKCertUnsupported: the PCK certificate is of a kind Intel's QVL
	// does not accept (PCK_CERT_UNSUPPORTED_FORMAT): its SGX extension
	// says the platform is Scalable (or Scalable with integrity), which
	// only Platform CA certificates describe, but the Processor CA issued
	// it or it lacks the platform instance ID and configuration. It wraps
	// ErrChain.
	ErrPCKCertUnsupported = fmt.Errorf("%w: PCK certificate format unsupported", ErrChain)
	// ErrRevoked: a certificate in a chain is revoked.
	ErrRevoked = errors.New("dcap: certificate revoked")
	// ErrCRL: a CRL is not signed by, or not issued by, the expected CA.
	ErrCRL = errors.New("dcap: CRL invalid")
	// ErrCollateral: TCB info or QE identity is unusable for this quote
	// (bad signature, wrong id, version, type, FMSPC or PCE-ID,
	// missing pieces).
	ErrCollateral = errors.New("dcap: collateral invalid")
	// ErrCollateralSignature: a TCB info or QE identity signature does
	// not verify over the exact bytes. It wraps ErrCollateral and
	// ErrSignature.
	ErrCollateralSignature = fmt.Errorf("%w: %w", ErrCollateral, ErrSignature)
	// ErrFMSPCMismatch and ErrPCEIDMismatch wrap ErrCollateral.
	ErrFMSPCMismatch = fmt.Errorf("%w: FMSPC does not match the PCK certificate", ErrCollateral)
	ErrPCEIDMismatch = fmt.Errorf("%w: PCE-ID does not match the PCK certificate", ErrCollateral)
	// ErrQEIdentity: the QE report does not match the QE identity
	// (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES).
	ErrQEIdentity = errors.New("dcap: QE identity mismatch")
	// ErrTCBNotSupported: no TCB level matches (platform, QE ISVSVN or
	// TDX module SVN below every level). Intel's SGX_QL_TCB_NOT_SUPPORTED.
	ErrTCBNotSupported = errors.New("dcap: TCB not supported")
	// ErrTDXModuleMismatch: the TDX module identity is missing or the
	// quote's MRSIGNERSEAM / SEAMATTRIBUTES do not match it.
	ErrTDXModuleMismatch = errors.New("dcap: TDX module mismatch")
	// ErrExpired: collateral or a certificate is expired (Strict only).
	ErrExpired = errors.New("dcap: collateral expired")
	// ErrNotYetValid: collateral or a certificate is not yet valid
	// (Strict only).
	ErrNotYetValid = errors.New("dcap: collateral not yet valid")
)

// VerifyError names the verification step that failed.
type VerifyError struct {
	Step string
	Err  error
}

func (e *VerifyError) Error() string { return "dcap: " + e.Step + ": " + trimPrefix(e.Err.Error()) }

func (e *VerifyError) Unwrap() error { return e.Err }

func trimPrefix(s string) string {
	if len(s) > 6 && s[:6] == "dcap: " {
		return s[6:]
	}
	return s
}

func stepErr(step string, sentinel error, format string, a ...any) error {
	return &VerifyError{Step: step, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, a...)...)}
}
