package measure

import "errors"

// Sentinel errors. Every error returned by this package wraps one of
// them; test with errors.Is.
var (
	// ErrMalformed: an input does not parse (firmware metadata, PE image,
	// kernel setup header, TD HOB witness, CBOR document, checksum file,
	// metadata.json, ACPI tables).
	ErrMalformed = errors.New("measure: malformed input")
	// ErrUnsupported: the input is well formed but outside what is
	// modelled (an RTMR0 layout other than pre202505, QEMU before 8.0, a
	// lite document version other than 3, a RAM size lite mode cannot
	// express, an ACPI table set the loader cannot be synthesised for).
	// Nothing is ever guessed instead.
	ErrUnsupported = errors.New("measure: unsupported")
	// ErrNoOVMFTable: the firmware has no OVMF GUIDed table footer.
	ErrNoOVMFTable = errors.New("measure: firmware has no OVMF table footer")
	// ErrNoTDXMetadata: the OVMF table has no TDX metadata entry, so the
	// firmware is not a TDVF.
	ErrNoTDXMetadata = errors.New("measure: firmware has no TDX metadata")
	// ErrOSImageHash: SHA-256 of the checksum file (sha256sum.txt) is not
	// the claimed os_image_hash.
	ErrOSImageHash = errors.New("measure: checksum file does not match os_image_hash")
	// ErrMeasurementBinding: the measurement.tdx.cbor line of the
	// checksum file is missing or is not SHA-256 of the document.
	ErrMeasurementBinding = errors.New("measure: measurement document not bound by the checksum file")
	// ErrImageFile: a file of an image directory does not match its line
	// in sha256sum.txt, or a listed file is missing.
	ErrImageFile = errors.New("measure: image file does not match sha256sum.txt")
)
