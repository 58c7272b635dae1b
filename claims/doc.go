// Package claims builds one normalized claim set from a verified quote:
// the dcap.Result (and optionally the parsed quote), RTMRs replayed from
// an event log and a dstack.Result. Policies (package policy) and
// attestation results (package ear) consume it.
//
// Claim names follow Trustee's TDX verifier (tdx.quote.body.mr_td,
// tdx.quote.body.rtmr_0 … rtmr_3, tdx.tcb_status, tdx.advisory_ids,
// tdx.td_attributes.debug, …; see docs/claims.md) so
// Trustee policies port over, plus tdproof's own collateral facts
// (tdx.collateral.tcb_eval_num, tdx.collateral.issue_date, tdx.tcb_date …)
// and dstack identity (dstack.app_id, dstack.compose_hash, …). SGX quotes
// get the same facts under sgx.*. Every claim, its type and meaning are
// listed in docs/claims.md; a test keeps that table complete.
//
// In Go a Set is flat (dotted names); as JSON it is nested, the shape Rego
// reads as input (input.tdx.quote.body.mr_td). Hex is lowercase; quote
// fields are the hex of their raw little-endian bytes, as in Trustee.
//
// Reference values use short measurement names (tdx.mr_td, tdx.rtmr_1,
// sgx.mr_enclave, dstack.compose_hash); MeasurementClaim maps them to
// claims.
//
// # Security
//
// New does not verify anything: it trusts its inputs to come from
// dcap.Verify, an event-log replay and dstack.Verify. A Set decoded from
// JSON (UnmarshalJSON) is only as trustworthy as its source; policy
// dry-runs may use it, appraisals of evidence must not.
package claims
