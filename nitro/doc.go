// Package nitro verifies AWS Nitro attestation documents: the NSM
// document of a Nitro Enclave and the NitroTPM document of an EC2 instance
// (../shared/docs/specs/multi-tee.md §3, §4).
//
// A document is a COSE_Sign1 (RFC 9052) signed with ES384 whose payload is
// a CBOR map: module_id, digest ("SHA384"), timestamp (ms since the
// epoch), pcrs (enclave) or nitrotpm_pcrs (NitroTPM) with 48-byte values,
// the signing certificate, the cabundle (root first) and the optional
// public_key, user_data and nonce.
//
// [Parse] decodes a document without trusting it: the input must be
// exactly one CBOR item (tagged with tag 18 or untagged); bytes before or
// after it, duplicate map keys, indefinite lengths and other tags are
// errors (the payload map itself is indefinite-length, as NSM writes it). [Verify] then checks, in order: the COSE algorithm (ES384 only,
// no critical header but alg), the document fields, the freshness of the
// timestamp against the verification time ([Options.Time], window
// [Options.MaxAge] back and [Options.MaxSkew] forward), the chain from the
// signing certificate through cabundle[1:] to the pinned AWS Nitro
// Enclaves Root-G1 ([Root]) with every certificate valid at the
// verification time (cabundle[0] is never trusted: trust rests on the
// pinned root only), the ES384 signature over the exact protected header
// and payload bytes, the caller's expected user_data, nonce and public_key,
// and finally the debug rule: an enclave whose PCR0, PCR1 and PCR2 are all
// zero runs in debug mode and is refused unless [Options.AllowDebug].
//
// Verify is pure: no I/O, no clock unless Options.Time is zero. Every
// failure wraps one of the sentinel errors ([ErrMalformed],
// [ErrAlgorithm], [ErrStale], [ErrChain], [ErrSignature], …) so callers
// match with errors.Is; on error no document is returned.
//
// For NitroTPM, [ReplayPCR14] replays dstack runtime events (SHA-384) into
// the PCR14 value the document quotes, and [BootPCRDigest] folds PCR4, 7
// and 12 into the boot_pcr_digest of dstack's aws_measurement.
package nitro
