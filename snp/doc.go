// Package snp parses and verifies AMD SEV-SNP attestation reports
// (ATTESTATION_REPORT versions 2, 3 and 5 of the SEV-SNP firmware ABI) as
// described in ../shared/docs/specs/multi-tee.md §2: the ECDSA P-384
// signature over the exact 0x2A0 signed bytes, the ARK → ASK → VCEK (or
// ARK → ASVK → VLEK) certificate chain to the AMD root keys pinned in this
// package for Milan, Genoa and Turin, certificate validity at the
// verification time, the VCEK's TCB extensions against REPORTED_TCB (FMC
// included on Turin), its hardware ID against CHIP_ID, and AMD's
// ARK-signed CRLs.
//
// The layers follow package dcap: [ParseReport] parses (pure, fuzzed),
// [Verify] verifies (pure: no I/O, no clock unless Options.Now is zero)
// and [Policy] appraises, as a separate step. [Verifier] is the
// long-lived form that remembers certificate chains it has already
// verified, so a repeat report from a known chip costs one P-384
// verification.
//
// A TCB status is data, not a decision: [Result.TCBStatus] follows dstack
// (UpToDate iff CURRENT = REPORTED = COMMITTED = LAUNCH) and
// [Result.TCB] gives every field; [Policy] decides what is acceptable.
// An error means the report is not authentic or could not be evaluated;
// on error the result is always nil.
//
// # Security
//
// The trust anchors are the AMD ARK certificates embedded in trust/,
// pinned by the SHA-256 of their DER (see [ARKFingerprint]); an
// Options.Roots override is reported in [Result.AMDRoot]. The embedded
// ASK/ASVK certificates are a convenience for evidence that carries only a
// VCEK: they are verified against the ARK like any supplied one.
package snp
