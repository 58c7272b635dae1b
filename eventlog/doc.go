// Package eventlog parses TDX measurement event logs and replays them into
// RTMR values.
//
// It reads two formats:
//
//   - the binary TDX CCEL ([ParseCCEL]): a TCG PC Client crypto-agile
//     event log whose first record carries the "Spec ID Event03" algorithm
//     table, followed by TCG_PCR_EVENT2 records up to the 0xFF (or zero)
//     fill of the ACPI CCEL region. MR index 0 is MRTD and 1–4 are
//     RTMR0–RTMR3. Records keep their exact bytes (TCGEvent.Raw).
//   - the dstack JSON event log ([ParseJSON], [MarshalEvents]): an array of
//     {"imr","event_type","digest","event","event_payload"[,"version"]
//     [,"preimage"]} objects, full or stripped, which encodes back to the
//     same bytes dstack produced.
//
// Both become a sequence of [Event], which [Replay] and [ReplayRTMR] fold
// into RTMRs with the TDX extend operation SHA-384(old ‖ digest) starting
// from 48 zero bytes. dstack runtime events (type [EvDstackRuntime],
// RTMR3) are always replayed with digests recomputed from their name and
// payload ([RuntimeDigest], versions 1 and 2, the latter over RFC 8785
// canonical JSON from package jcs); the digest and preimage a log supplies
// are only compared, by [Event.CheckDigest] and [CheckDigests]. For
// display, [TCGEvent.Describe] and [Event.Describe] decode common UEFI
// event data ([ParseVariableData], [ParseImageLoadEvent],
// [ParseFirmwareBlob2], [ParseHandoffTables2], [ParseTaggedEvent]).
//
// The formats are the TCG PC Client Platform Firmware Profile (§10, the
// crypto-agile log) and dstack's JSON event log and runtime events.
//
// Package eventlog does not read quotes and does not compare replayed
// values with a quote; it does not compute expected boot measurements
// (MRTD, the RTMR0–2 reference values) and does not derive dstack
// application identity from runtime events. It does no I/O and keeps no
// state; all functions are safe for concurrent use.
//
// # Security
//
// An event log is unauthenticated input. Nothing parsed here means
// anything until the replayed registers are compared with RTMRs taken
// from a verified quote, and even then only the replayed digests are bound:
// event data that is not hashed into the digest (boot-event payloads,
// names of boot events, the supplied digest of runtime events) can be
// altered freely without changing the replay. Describe output is for
// humans only.
//
// Replay rejects runtime events whose imr is not 3. dstack's own verifier
// selects runtime events by type alone; rejecting the mismatch closes a
// gap where the same event would be counted for RTMR3 by one verifier and
// for another register by a generic replay.
package eventlog
