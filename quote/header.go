package quote

import "fmt"

// Sizes of the fixed structures, in bytes.
const (
	HeaderSize         = 48
	BodyDescriptorSize = 6
	EnclaveReportSize  = 384
	TDReport10Size     = 584
	TDReport15Size     = 648
	TDReport15EXSize   = 885
	SignatureSize      = 64
	PublicKeySize      = 64
)

// TEEType is the header's TEE type.
type TEEType uint32

// TEE types.
const (
	TEETypeSGX TEEType = 0x00000000
	TEETypeTDX TEEType = 0x00000081
)

func (t TEEType) String() string {
	switch t {
	case TEETypeSGX:
		return "SGX"
	case TEETypeTDX:
		return "TDX"
	}
	return fmt.Sprintf("TEEType(%#x)", uint32(t))
}

// MarshalText encodes the TEE type as "SGX" or "TDX" (or a hex fallback).
func (t TEEType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// AttestationKeyType is the header's attestation key type.
type AttestationKeyType uint16

// Attestation key types. Only ECDSA256P256 is supported.
const (
	ECDSA256P256 AttestationKeyType = 2
	ECDSA384P384 AttestationKeyType = 3
)

// IntelQEVendorID is the QE vendor ID of Intel's quoting enclaves.
var IntelQEVendorID = [16]byte{0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07}

// Header is the 48-byte quote header (dcap.md §1.1). Field order follows
// Intel's QVL: QESVN at offset 8, PCESVN at offset 10.
type Header struct {
	Version            uint16             `json:"version"`
	AttestationKeyType AttestationKeyType `json:"attestation_key_type"`
	TEEType            TEEType            `json:"tee_type"`
	QESVN              uint16             `json:"qe_svn"`
	PCESVN             uint16             `json:"pce_svn"`
	QEVendorID         [16]byte           `json:"-"`
	UserData           [20]byte           `json:"-"`
}

// BodyType is the v5 body descriptor type; v3 and v4 quotes get the type
// their body implies.
type BodyType uint16

// Body types.
const (
	BodySGXEnclave BodyType = 1
	BodyTD10       BodyType = 2
	BodyTD15       BodyType = 3
	BodyTD15EX     BodyType = 4
)

func (b BodyType) String() string {
	switch b {
	case BodySGXEnclave:
		return "SGX enclave report"
	case BodyTD10:
		return "TD report 1.0"
	case BodyTD15:
		return "TD report 1.5"
	case BodyTD15EX:
		return "TD report 1.5 EX"
	}
	return fmt.Sprintf("BodyType(%d)", uint16(b))
}

// Size returns the body size in bytes that the type requires, or 0 for an
// unknown type.
func (b BodyType) Size() int {
	switch b {
	case BodySGXEnclave:
		return EnclaveReportSize
	case BodyTD10:
		return TDReport10Size
	case BodyTD15:
		return TDReport15Size
	case BodyTD15EX:
		return TDReport15EXSize
	}
	return 0
}
