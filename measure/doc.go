// Package measure computes the reference values of a TDX guest image:
// the MRTD and RTMR0–RTMR2 a TD booted by QEMU with a TDVF (OVMF)
// firmware, a Linux kernel, an initrd and a command line will report, for
// a given RAM size and QEMU version. It reproduces dstack-mr (see
// docs/reference-values.md) and is the reference-value
// provider of the RATS architecture. It also computes the AMD SEV-SNP
// launch digest (MEASUREMENT) of such an image (docs/snp.md).
//
// Start with [MeasureImage] for an image held as bytes ([Image], or
// [LoadImage] for a dstack image directory), or with the lite measurement
// document ([ParseLiteMeasurement], [VerifyLiteMaterial],
// [LiteMeasurement.Measure]) when only vm_config.tdx_measurement is at
// hand. [NewLiteMeasurement] and [ImageDir.PublishLite] write that
// document for a build pipeline. [Diagnose], [DiagnoseImage] and
// [DiagnoseLite] compare an expectation with a quote's registers and its
// event log, event by event, and name the input that likely changed.
// [Lint] checks a measured command line against the hardened-CVM
// baseline.
//
// The pieces are exported for tools and tests: [ParseTDVF] and
// [TDVF.MRTD] (§4.2, both page orders, [Machine.PageOrder] for the QEMU
// version rule and the inverted qemu_single_pass_add_pages flag),
// [TDHOBLayout] (§4.3, the TD HOB for any RAM size and its lite witness),
// [ACPITables] and [ACPIFromEventLog] (§4.4), [PatchKernelHeader],
// [KernelAuthenticode] and [AuthenticodeSHA384] (§4.5), [CmdlineDigest]
// (§4.6), [ParseChecksumFile] and [OSImageHash] (§5).
//
// Only the RTMR0 layout of OVMF before edk2-stable202505 (13 events,
// "pre202505") is modelled; any other layout is [ErrUnsupported], never a
// guess. The ACPI tables are not generated: they come as the fw_cfg blobs
// (the loader and RSDP can be synthesised from the tables for QEMU's q35
// TDX table set) or as digests from a reference event log. From the
// digests alone, [RecoverACPILayout] finds the table layout the loader
// and RSDP describe, whose MADT size gives the vCPU count.
//
// For AMD SEV-SNP, [ParseSNPFirmware] reads an OVMF's SEV metadata and
// the digest of its pages, [NewSNPImage] and [LoadSNPImage] hash the
// kernel and initrd while reading them, and [SNPImage.Launch] gives the
// launch inputs ([SNPLaunch], also parsed from measurement.snp.cbor by
// [ParseSNPMeasurement]) whose [SNPLaunch.Digest] is the report's
// MEASUREMENT; [DiagnoseSNPLaunch] names the input behind a mismatch.
//
// Every function is pure and safe for concurrent use, except
// [LoadImage] and [LoadSNPImage], which read files. Results alias their inputs where
// documented.
//
// # Security
//
// Reference values are only as trustworthy as the image they come from:
// reproduce the build before trusting them. Digests taken from an event
// log ([ACPIFromEventLog], [FirmwareFromEventLog]) prove nothing by
// themselves; lite mode takes the ACPI digests from the TD's own log, so
// the ACPI tables' contents, and with them the device topology, are not
// verified; the vCPU count is, through the MADT size the measured table
// loader describes ([Measurement].CPUsBound), but that binds lengths, not
// entries. [VerifyLiteMaterial] binds the lite document to
// os_image_hash, but anyone can mint a self-consistent os_image_hash:
// trust comes from allowlisting the hash. This package does not verify
// quotes (see package dcap) and does not parse vm_config (see package
// dstack).
package measure
