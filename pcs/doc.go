// Package pcs obtains Intel DCAP collateral from the Intel Provisioning
// Certification Service (PCS, API v4) or any PCCS-compatible mirror, and
// defines [Source], the interface a verifier uses to get the collateral
// for a quote.
//
// Collateral is keyed by [Key]: TEE (SGX or TDX), FMSPC, PCK CA type,
// update channel (standard or early) and an optional TCB evaluation data
// number. A key expands to four [ItemKey]s — TCB info, QE identity, PCK
// CRL and root CA CRL — which are fetched, verified and cached one by one
// (the QE identity and the CRLs are shared by every FMSPC).
//
// [Client] speaks the PCS and PCCS routes (dcap.md §3.1–3.2): tcb,
// qe/identity, pckcrl (DER), the root CA CRL (PCCS rootcacrl hex text, or
// the CRL distribution point of the root certificate for Intel PCS),
// pckcert for quotes that carry an encrypted PPID, and the fmspcs list.
// It normalises the base URL, bounds every attempt with a timeout,
// retries network errors, timeouts, 5xx and 429 with backoff (honouring
// Retry-After) and stops on context cancellation.
//
// Every response is verified before it is accepted ([DecodeItem]): it
// parses, its issuer chain (v3 or v4 header spelling, URL-decoded with
// path unescaping) parses and ends in the trust anchor, the signer is
// signed by the anchor and has the expected name, the signature covers
// the exact bytes served, the document matches the request (TEE, FMSPC,
// CA, evaluation data number) and it is inside its validity window.
//
// Package [github.com/tdproof/tdproof/pcs/pcscache] adds memory and disk
// caching, refresh ahead, single-flight and offline operation on top of a
// [Fetcher] such as [Client].
//
// # Errors
//
// Failures to obtain collateral wrap [ErrUnavailable] (network, timeout,
// 5xx, 429, [ErrNotFound] for 404); responses that were received but are
// unacceptable wrap [ErrInvalidResponse] ([ErrIssuerChain], [ErrSignature],
// [ErrExpired], [ErrMismatch], or a parse error of package collateral).
// Both are returned inside an [*Error] naming the item and URL.
//
// # Security
//
// The trust anchor is the pinned Intel SGX Root CA ([dcap.IntelRoot])
// unless replaced with [WithTrustedRoot]. Verification here is what makes
// a cache safe to fill from an untrusted mirror; package dcap verifies the
// same collateral again (once per distinct bytes) when it verifies a
// quote, including revocation of the signing certificates.
package pcs
