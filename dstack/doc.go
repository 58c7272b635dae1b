// Package dstack verifies attestation evidence produced by dstack
// confidential VMs on Intel TDX: it parses the evidence formats dstack
// emits, checks the event log against a DCAP-verified quote and derives the
// application identity dstack's own verifier and KMS derive.
//
// # Evidence
//
// [ParseEvidence] detects and reads every form a relying party is handed
// (the inputs of dstack-verifier, as docs/service.md describes):
//
//   - the guest agent's GetQuote JSON: "quote" (hex), "event_log" (a JSON
//     string holding the event array), "report_data" and "vm_config" (a
//     JSON string or object, flat or as the older nested sys-config);
//   - a VersionedAttestation, raw or hex inside {"attestation": "…"}:
//     version 0 is SCALE, version 1 is msgpack ([ParseAttestation],
//     [Attestation.Marshal]);
//   - a dstack RA-TLS certificate (PEM or DER) carrying the attestation in
//     extension 1.3.6.1.4.1.62397.1.8, or the legacy quote and event log
//     pair .1.1 and .1.2 (optionally gzip with the "ELGZv1" magic).
//
// # Verification
//
// [Verify] is pure: it does no I/O and keeps no state. It verifies the quote
// with package dcap, rejects DEBUG TDs and TDs whose MRSIGNERSEAM (or, on
// TDX 1.5, MRSERVICETD) is not zero, checks every report data binding the
// evidence implies (the attestation's own copy, the RA-TLS public key, the
// dstack-pod payload, the caller's expectation), replays RTMR3 from the
// runtime events with digests recomputed from name and payload, replays
// RTMR0–2 when the boot events are present, validates the preimages of
// version 2 runtime events, derives the identity ([ReadIdentity],
// [MRSystem], [MRAggregated]) and checks it against MR_CONFIG_ID
// ([ParseMRConfigID]). The [Result] carries the facts of dstack-verifier's
// "details" object plus the dcap result.
//
// Identity values (app-id, compose-hash, instance-id, key-provider,
// init-script hashes, …) are read only from runtime events before the first
// "system-ready" event. Later events are application-controlled: they are
// replayed into RTMR3 and reported, but never used for identity.
//
// # OS image
//
// When the VM configuration carries tdx_measurement (dstack's lite
// variant), Verify checks it with package measure: the checksum file must
// hash to os_image_hash and list measurement.tdx.cbor, and MRTD and
// RTMR0–2 recomputed from that document for the configuration's
// memory_size and qemu_version (ACPI digests from the event log, or from
// [Options].ACPI) must equal the quote. With [Options].Image the same is
// done from the image itself (the legacy path). The VM configuration is
// not signed by the quote, so this recomputation is what binds it: a
// changed memory_size, qemu_version or measurement byte fails
// ([ErrMeasurement], [ErrOSImageHash]). [Result].OSImageHashVerified then
// says the TD booted the image os_image_hash names; whether that image
// is trustworthy is for an allowlist. With ACPI digests from the event
// log, the tables' contents and the device topology are not verified
// ([MeasurementCheck].ACPISource); cpu_count is checked against the MADT
// size the measured table loader describes
// ([MeasurementCheck].CPUCountVerified). Package dstack downloads nothing.
//
// Package dstack does not validate RA-TLS certificate chains (that is
// the TLS stack's job) and does not judge TCB status: OutOfDate and
// advisories are data for policy.
//
// # Security
//
// Everything in [Evidence] is unauthenticated until Verify returns without
// error, and even then only what the quote measures is bound: the quote
// signature (DCAP), RTMR3 through the replayed runtime events, RTMR0–2
// through the boot event digests, MR_CONFIG_ID through the identity, and
// REPORTDATA through the checks above. The VM configuration, including
// os_image_hash, is bound only through the OS image check above; without
// an image or lite material it is unverified.
//
// Event digests supplied in the log for runtime events are never trusted;
// a version 1 event whose supplied digest differs from the recomputed one
// is flagged in [RuntimeEventInfo], not rejected, as dstack does.
package dstack
