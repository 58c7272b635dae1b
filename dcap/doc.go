// Package dcap verifies Intel DCAP quotes (SGX v3, TDX v4 and v5) against
// their collateral with Intel's semantics (those of Intel's Quote
// Verification Library, docs/verifier.md): the PCK certificate chain to the
// pinned Intel SGX Root CA, the root CA and PCK CRLs, the TCB signing
// chain, the TCB info and QE identity signatures over their exact bytes,
// FMSPC / PCE-ID / tcbType checks, the QE report signature and its binding
// to the attestation key, the QE identity, the TDX module identity, TCB
// level matching, status convergence (with TD relaunch), advisory IDs,
// TCB date and collateral expiry.
//
// [Verify] is pure: no I/O, no context, no logging. [Verifier] is the
// long-lived form that remembers collateral and platforms it has already
// verified (keyed by their exact bytes), so a repeat quote from a known
// platform costs one ECDSA verification.
//
// A TCB status is data, not a decision: OutOfDate, expired collateral and
// advisories are fields of [Result]; [Policy] (a separate step) decides
// what is acceptable. An error means the quote is not authentic or could
// not be evaluated; on error the result is always nil.
//
// # Security
//
// The trust anchor is the embedded Intel SGX Root CA (SHA-256 of its DER
// 44a0196b…74d3) unless [Options.TrustedRoot] replaces it; a result made
// with another root says so in [Result.IntelRoot]. Following Intel,
// certificate notBefore is not checked and expiry is reported
// ([Result.CollateralExpired]), not enforced, unless [Options.Strict] is
// set. A CRL, TCB info or QE identity issued after the verification time
// is reported the same way ([Result.CollateralNotYetValid]); for TCB info
// and QE identity this is stricter than Intel, which ignores issue dates.
package dcap
