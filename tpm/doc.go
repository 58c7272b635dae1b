// Package tpm verifies TPM 2.0 quotes as dstack's GCP TDX variant carries
// them (../shared/docs/specs/multi-tee.md §1.2, §5): a marshalled
// TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE, its TPMT_SIGNATURE by the
// attestation key (AK), the AK certificate chained to Google's EK/AK CA
// ([Root], [Intermediate], both pinned), the quoted SHA-256 PCR values and
// the (PCR, digest) pairs of the TCG event log.
//
// [ParseAttest] decodes TPMS_ATTEST with go-tpm's structures and accepts
// only bytes that re-marshal to themselves (no trailing data, no
// non-canonical encodings). [Verify] checks, in order: the AK certificate
// chain at the verification time, the signature (RSASSA-PKCS1-v1_5, RSA-PSS
// or ECDSA P-256, SHA-256 only) over the exact message bytes, the magic and
// type, that the quoted PCR selection is SHA-256 only and lists exactly
// the supplied PCR values in order, that pcrDigest equals SHA-256 over
// their concatenation, that every PCR with events replays (SHA-256 from
// zeros) to its quoted value, and the caller's expected extraData (for
// dstack: SHA-256 of the raw TDX quote, binding the two quotes).
//
// [ReplayLog] replays a parsed binary TCG crypto-agile log (package
// eventlog) into SHA-256 PCR values, honouring the StartupLocality event;
// [FindUKI] finds the UKI's Authenticode event by its content (an
// EV_EFI_BOOT_SERVICES_APPLICATION whose device path names a file on a
// disk partition), not by its position; [RuntimeReplay] replays dstack
// runtime events into the SHA-256 PCR14 value.
//
// Verify is pure: no I/O, no clock unless Options.Time is zero. Errors
// wrap the package's sentinels; on error no result is returned.
package tpm
