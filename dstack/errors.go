package dstack

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinels. Every error returned by this package wraps at least one of
// them; match with errors.Is. Errors from dcap.Verify are wrapped inside
// ErrQuote unchanged, so dcap's sentinels match too.
var (
	// ErrMalformed: the input is not well-formed dstack evidence (bad
	// JSON, hex, SCALE, msgpack, certificate, missing fields, trailing
	// bytes, inconsistent copies of the runtime events).
	ErrMalformed = errors.New("dstack: malformed evidence")
	// ErrUnsupported: well-formed evidence of a kind this package does
	// not verify (another platform, another attestation version, an SGX
	// quote).
	ErrUnsupported = errors.New("dstack: unsupported evidence")
	// ErrQuote: DCAP verification of the quote failed. The dcap error is
	// wrapped as well.
	ErrQuote = errors.New("dstack: quote verification failed")
	// ErrTDRejected: the TD's attributes or TDX module identity are not
	// acceptable (dstack.md §1.3 step A.2).
	ErrTDRejected = errors.New("dstack: TD rejected")
	// ErrDebugTD: the DEBUG TD attribute is set. It wraps ErrTDRejected.
	ErrDebugTD = fmt.Errorf("%w: DEBUG attribute set", ErrTDRejected)
	// ErrMRSignerSEAM: MRSIGNERSEAM is not zero (not Intel's TDX
	// module). It wraps ErrTDRejected.
	ErrMRSignerSEAM = fmt.Errorf("%w: MRSIGNERSEAM is not zero", ErrTDRejected)
	// ErrServiceTD: MRSERVICETD of a TD 1.5 report is not zero. It wraps
	// ErrTDRejected.
	ErrServiceTD = fmt.Errorf("%w: MRSERVICETD is not zero", ErrTDRejected)
	// ErrEventLog: the event log is not consistent with the quote.
	ErrEventLog = errors.New("dstack: event log verification failed")
	// ErrRTMRMismatch: a register replayed from the event log differs
	// from the quote. It wraps ErrEventLog; the error is an
	// *RTMRMismatchError.
	ErrRTMRMismatch = fmt.Errorf("%w: RTMR mismatch", ErrEventLog)
	// ErrPreimage: a version 2 runtime event's preimage is missing or
	// does not hash to its digest. It wraps ErrEventLog (and
	// eventlog.ErrDigestMismatch).
	ErrPreimage = fmt.Errorf("%w: runtime event preimage", ErrEventLog)
	// ErrReportData: REPORTDATA differs from the value it must have. The
	// error is a *ReportDataError.
	ErrReportData = errors.New("dstack: report data mismatch")
	// ErrCertificateBinding: the RA-TLS certificate's public key is not
	// the one the quote's REPORTDATA binds. It wraps ErrReportData.
	ErrCertificateBinding = fmt.Errorf("%w: RA-TLS certificate key not bound", ErrReportData)
	// ErrMRConfigID: MR_CONFIG_ID is malformed or does not match the app
	// identity read from the runtime events.
	ErrMRConfigID = errors.New("dstack: MR_CONFIG_ID mismatch")
	// ErrMeasurement: MRTD or RTMR0–2 recomputed from the OS image
	// (Options.Image) or from the VM configuration's lite measurement
	// document differ from the quote, or the VM configuration contradicts
	// what the quote binds: the TD did not boot the claimed image with
	// the claimed configuration. A register mismatch is a
	// *MeasurementMismatchError.
	ErrMeasurement = errors.New("dstack: measurement mismatch")
	// ErrOSImageHash: the OS image is not bound to the VM configuration's
	// os_image_hash: SHA-256 of tdx_measurement.checksum_file is not
	// os_image_hash, the checksum file does not list the measurement
	// document, or the image given has another os_image_hash. It wraps
	// ErrMeasurement (and measure.ErrOSImageHash or
	// measure.ErrMeasurementBinding for the lite material).
	ErrOSImageHash = fmt.Errorf("%w: OS image not bound to os_image_hash", ErrMeasurement)
)

// ParseError locates a problem in binary evidence (SCALE or msgpack) or in
// one field of JSON evidence.
type ParseError struct {
	// Field names what was being read, e.g. "runtime_events[3].payload".
	Field string
	// Offset is the byte offset in the decoded input at which Field
	// starts, or -1 when it is not known (JSON).
	Offset int
	// Err wraps ErrMalformed or ErrUnsupported.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	s := "dstack: " + e.Field
	if e.Offset >= 0 {
		s += " (offset " + strconv.Itoa(e.Offset) + ")"
	}
	return s + ": " + trimPrefix(e.Err.Error())
}

// Unwrap returns the underlying cause.
func (e *ParseError) Unwrap() error { return e.Err }

// trimPrefix drops the package prefix of a wrapped message so that it is
// not repeated.
func trimPrefix(s string) string {
	const p = "dstack: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// RTMRMismatchError reports a register whose replay from the event log
// differs from the value in the quote. It wraps ErrRTMRMismatch.
type RTMRMismatchError struct {
	// Index is the register, 0–3.
	Index int
	// Quoted is the register in the quote; Replayed the value the events
	// give.
	Quoted, Replayed [48]byte
}

// Error implements error.
func (e *RTMRMismatchError) Error() string {
	return fmt.Sprintf("dstack: RTMR%d mismatch, quoted: %x, replayed: %x", e.Index, e.Quoted, e.Replayed)
}

// Unwrap returns ErrRTMRMismatch.
func (e *RTMRMismatchError) Unwrap() error { return ErrRTMRMismatch }

// Report data sources checked by Verify, as used in ReportDataError.Source.
const (
	// SourceEvidence is the report data carried next to the quote (the
	// attestation's stack report_data, GetQuote's "report_data").
	SourceEvidence = "evidence"
	// SourceCertificate is the RA-TLS binding
	// SHA-512("ratls-cert:" ‖ SubjectPublicKeyInfo).
	SourceCertificate = "ratls-cert"
	// SourcePodPayload is the dstack-pod binding
	// SHA-512("app-data:" ‖ report_data_payload).
	SourcePodPayload = "dstack-pod"
	// SourceCaller is Options.ReportData.
	SourceCaller = "caller"
)

// ReportDataError reports a REPORTDATA mismatch. It wraps ErrReportData,
// and ErrCertificateBinding when Source is SourceCertificate.
type ReportDataError struct {
	// Source says which expectation failed (SourceEvidence, …).
	Source string
	// Want is the expected value; Quoted the quote's REPORTDATA.
	Want, Quoted [64]byte
}

// Error implements error.
func (e *ReportDataError) Error() string {
	return fmt.Sprintf("dstack: report data mismatch (%s): quoted %x, expected %x", e.Source, e.Quoted, e.Want)
}

// Unwrap returns ErrCertificateBinding or ErrReportData.
func (e *ReportDataError) Unwrap() error {
	if e.Source == SourceCertificate {
		return ErrCertificateBinding
	}
	return ErrReportData
}

// malformed returns a *ParseError wrapping ErrMalformed.
func malformed(field string, offset int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: offset, Err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)}
}

// unsupported returns a *ParseError wrapping ErrUnsupported.
func unsupported(field string, offset int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: offset, Err: fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)}
}
