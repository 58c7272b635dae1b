package cli

import (
	"errors"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/revocation/crlcache"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/verifier"
)

// Exit codes (architecture.md, CLI).
const (
	exitOK                    = 0
	exitInternal              = 1
	exitUsage                 = 2
	exitMalformed             = 3
	exitNotAuthentic          = 4
	exitRejected              = 5
	exitCollateralUnavailable = 6
)

// Stable error codes of the JSON output ("error": {"code": …}).
const (
	codeInternal              = "internal"
	codeUsage                 = "usage"
	codeMalformed             = "malformed"
	codeUnsupported           = "unsupported"
	codeCollateralMalformed   = "collateral_malformed"
	codeCollateralUnavailable = "collateral_unavailable"
	codeCollateralInvalid     = "collateral_invalid"
	codeNotAuthentic          = "not_authentic"
	codeRevoked               = "revoked"
	codeExpired               = "expired"
	codeNotYetValid           = "not_yet_valid"
	codeTCBNotSupported       = "tcb_not_supported"
	codeRejected              = "rejected"
	codeMeasurementMismatch   = "measurement_mismatch"
)

// codeCollateralResponseInvalid: a PCS or PCCS response failed
// verification (signature, issuer chain, validity, parse).
const codeCollateralResponseInvalid = "collateral_response_invalid"

var (
	// errCollateralUnavailable: the collateral path does not exist or
	// cannot be read, or a PCS directory lacks a required response.
	errCollateralUnavailable = errors.New("collateral unavailable")
	// errMalformedInput: an input other than quote or collateral (the
	// trusted root certificate) does not parse.
	errMalformedInput = errors.New("malformed input")
	// errNotAuthentic: the service's pipeline found the evidence not
	// authentic for a reason classify does not know otherwise.
	errNotAuthentic = errors.New("not authentic")
)

// usageError is a command-line mistake (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// hintError attaches "tdproof: hint:" lines to an error.
type hintError struct {
	err   error
	hints []string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHints(err error, hints ...string) error {
	if err == nil || len(hints) == 0 {
		return err
	}
	return &hintError{err: err, hints: hints}
}

// classify maps an error to its exit code and stable JSON code, with
// errors.Is only. The order matters where sentinels overlap:
// dcap.ErrCollateralSignature wraps both ErrCollateral and ErrSignature,
// and dcap passes quote parse errors through.
func classify(err error) (int, string) {
	switch {
	case err == nil:
		return exitOK, ""
	case errors.As(err, new(*usageError)):
		return exitUsage, codeUsage
	case errors.Is(err, errCollateralUnavailable), errors.Is(err, collateral.ErrNotFound),
		errors.Is(err, pcs.ErrUnavailable), errors.Is(err, pcs.ErrInvalidKey), errors.Is(err, crlcache.ErrUnavailable):
		return exitCollateralUnavailable, codeCollateralUnavailable
	case errors.Is(err, pcs.ErrInvalidResponse):
		// A PCS or PCCS response that fails verification leaves the
		// quote without collateral; it says nothing about the quote.
		return exitCollateralUnavailable, codeCollateralResponseInvalid
	case errors.Is(err, snp.ErrRejected):
		return exitRejected, codeRejected
	case errors.Is(err, snp.ErrRevoked):
		return exitNotAuthentic, codeRevoked
	case errors.Is(err, snp.ErrExpired):
		return exitNotAuthentic, codeExpired
	case errors.Is(err, snp.ErrNotYetValid):
		return exitNotAuthentic, codeNotYetValid
	case errors.Is(err, snp.ErrUnsupported):
		return exitMalformed, codeUnsupported
	case errors.Is(err, snp.ErrMalformed):
		return exitMalformed, codeMalformed
	case errors.Is(err, snp.ErrSignature), errors.Is(err, snp.ErrChain), errors.Is(err, snp.ErrCRL),
		errors.Is(err, snp.ErrTCBMismatch), errors.Is(err, snp.ErrChipID), errors.Is(err, snp.ErrProduct),
		errors.Is(err, snp.ErrSigningKey):
		return exitNotAuthentic, codeNotAuthentic
	case errors.Is(err, amdkds.ErrUnavailable):
		return exitCollateralUnavailable, codeCollateralUnavailable
	case errors.Is(err, amdkds.ErrInvalidResponse):
		return exitCollateralUnavailable, codeCollateralResponseInvalid
	case errors.Is(err, dstack.ErrMeasurement):
		// Before the malformed cases: a lite checksum file bound to
		// os_image_hash may wrap measure.ErrMalformed as well.
		return exitNotAuthentic, codeNotAuthentic
	case errors.Is(err, quote.ErrUnsupported), errors.Is(err, dstack.ErrUnsupported), errors.Is(err, measure.ErrUnsupported):
		return exitMalformed, codeUnsupported
	case errors.Is(err, quote.ErrMalformed), errors.Is(err, errMalformedInput), errors.Is(err, dstack.ErrMalformed),
		errors.Is(err, measure.ErrMalformed), errors.Is(err, verifier.ErrMalformedEvidence):
		return exitMalformed, codeMalformed
	case errors.Is(err, collateral.ErrMalformed):
		return exitMalformed, codeCollateralMalformed
	case errors.Is(err, errNotAppraised):
		return exitNotAuthentic, codeNotAppraised
	case errors.Is(err, dcap.ErrRejected), errors.Is(err, dstack.ErrTDRejected), errors.Is(err, policy.ErrRejected):
		return exitRejected, codeRejected
	case errors.Is(err, errMeasurementMismatch):
		return exitRejected, codeMeasurementMismatch
	case errors.Is(err, dcap.ErrTCBNotSupported):
		return exitRejected, codeTCBNotSupported
	case errors.Is(err, dcap.ErrRevoked):
		return exitNotAuthentic, codeRevoked
	case errors.Is(err, dcap.ErrExpired):
		return exitNotAuthentic, codeExpired
	case errors.Is(err, dcap.ErrNotYetValid):
		return exitNotAuthentic, codeNotYetValid
	case errors.Is(err, dcap.ErrCollateral):
		return exitNotAuthentic, codeCollateralInvalid
	case errors.Is(err, dcap.ErrSignature), errors.Is(err, dcap.ErrChain), errors.Is(err, dcap.ErrCRL),
		errors.Is(err, dcap.ErrQEReportData), errors.Is(err, dcap.ErrQEVendor), errors.Is(err, dcap.ErrQEIdentity),
		errors.Is(err, dcap.ErrTDXModuleMismatch), errors.Is(err, errRTMRMismatch), errors.Is(err, dstack.ErrEventLog),
		errors.Is(err, dstack.ErrReportData), errors.Is(err, dstack.ErrMRConfigID), errors.Is(err, dstack.ErrQuote),
		errors.Is(err, verifier.ErrEventLog), errors.Is(err, errNotAuthentic):
		return exitNotAuthentic, codeNotAuthentic
	}
	if code, name, ok := classifyNitro(err); ok {
		return code, name
	}
	return exitInternal, codeInternal
}

// errorJSON is the "error" member of JSON outputs.
type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func newErrorJSON(err error) *errorJSON {
	if err == nil {
		return nil
	}
	_, code := classify(err)
	return &errorJSON{Code: code, Message: oneLine(err.Error())}
}
