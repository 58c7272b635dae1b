package snp

import (
	"encoding/binary"
	"fmt"
	"math/big"
)

// Report layout constants (SEV-SNP firmware ABI, ATTESTATION_REPORT).
const (
	// ReportSize is the size of an ATTESTATION_REPORT.
	ReportSize = 0x4A0
	// SignedSize is the number of leading report bytes the signature
	// covers.
	SignedSize = 0x2A0
	// SignatureAlgoECDSAP384SHA384 is the only defined SIGNATURE_ALGO.
	SignatureAlgoECDSAP384SHA384 = 1
	// sigComponentSize is the size of R and of S in the report
	// (little-endian, zero-padded).
	sigComponentSize = 72
)

// Guest policy bits (POLICY, report offset 0x08).
const (
	PolicySMT              = 1 << 16
	PolicyReserved17       = 1 << 17
	PolicyMigrateMA        = 1 << 18
	PolicyDebug            = 1 << 19
	PolicySingleSocket     = 1 << 20
	PolicyCXLAllow         = 1 << 21
	PolicyMemAES256XTS     = 1 << 22
	PolicyRAPLDis          = 1 << 23
	PolicyCiphertextHiding = 1 << 24
	PolicyPageSwapDisable  = 1 << 25
	policyKnownBits        = 1<<26 - 1
)

// PLATFORM_INFO bits (report offset 0x40).
const (
	PlatformSMTEnabled              = 1 << 0
	PlatformTSMEEnabled             = 1 << 1
	PlatformECCEnabled              = 1 << 2
	PlatformRAPLDisabled            = 1 << 3
	PlatformCiphertextHidingEnabled = 1 << 4
	PlatformAliasCheckComplete      = 1 << 5
)

// SigningKey is KEY_INFO.SIGNING_KEY: which key signed the report.
type SigningKey uint8

// Signing keys.
const (
	SigningKeyVCEK SigningKey = 0
	SigningKeyVLEK SigningKey = 1
	SigningKeyNone SigningKey = 7
)

func (k SigningKey) String() string {
	switch k {
	case SigningKeyVCEK:
		return "VCEK"
	case SigningKeyVLEK:
		return "VLEK"
	case SigningKeyNone:
		return "none"
	}
	return fmt.Sprintf("reserved(%d)", uint8(k))
}

// Report is a parsed ATTESTATION_REPORT. Raw holds a copy of the exact
// 1184 input bytes; every other field is decoded from it.
type Report struct {
	Raw []byte

	Version       uint32
	GuestSVN      uint32
	Policy        uint64
	FamilyID      [16]byte
	ImageID       [16]byte
	VMPL          uint32
	SignatureAlgo uint32
	CurrentTCB    TCBVersion
	PlatformInfo  uint64
	// KeyInfo is the raw KEY_INFO word (bit 0 AUTHOR_KEY_EN, bit 1
	// MASK_CHIP_KEY, bits 2–4 SIGNING_KEY).
	KeyInfo         uint32
	ReportData      [64]byte
	Measurement     [48]byte
	HostData        [32]byte
	IDKeyDigest     [48]byte
	AuthorKeyDigest [48]byte
	ReportID        [32]byte
	ReportIDMA      [32]byte
	ReportedTCB     TCBVersion
	// CPUIDFamily, CPUIDModel and CPUIDStepping are the combined CPUID
	// family, model and stepping (version 3 and later; zero in version 2).
	CPUIDFamily, CPUIDModel, CPUIDStepping         uint8
	ChipID                                         [64]byte
	CommittedTCB                                   TCBVersion
	CurrentBuild, CurrentMinor, CurrentMajor       uint8
	CommittedBuild, CommittedMinor, CommittedMajor uint8
	LaunchTCB                                      TCBVersion
	// LaunchMitVector and CurrentMitVector exist from version 5 on.
	LaunchMitVector, CurrentMitVector uint64
	// SignatureR and SignatureS are the ECDSA signature components as
	// stored (72 bytes little-endian each).
	SignatureR, SignatureS [sigComponentSize]byte
}

// AuthorKeyEnabled reports KEY_INFO.AUTHOR_KEY_EN.
func (r *Report) AuthorKeyEnabled() bool { return r.KeyInfo&1 != 0 }

// MaskChipKey reports KEY_INFO.MASK_CHIP_KEY.
func (r *Report) MaskChipKey() bool { return r.KeyInfo&2 != 0 }

// SigningKey returns KEY_INFO.SIGNING_KEY.
func (r *Report) SigningKey() SigningKey { return SigningKey(r.KeyInfo >> 2 & 7) }

// SignedBytes returns the bytes the signature covers (0x000–0x29F).
func (r *Report) SignedBytes() []byte { return r.Raw[:SignedSize] }

// SignatureInts returns R and S as integers.
func (r *Report) SignatureInts() (*big.Int, *big.Int) {
	return leInt(r.SignatureR[:]), leInt(r.SignatureS[:])
}

func leInt(le []byte) *big.Int {
	be := make([]byte, len(le))
	for i, b := range le {
		be[len(le)-1-i] = b
	}
	return new(big.Int).SetBytes(be)
}

// ParseReport parses an ATTESTATION_REPORT of version 2, 3 or 5. The
// input must be exactly ReportSize bytes; reserved (must-be-zero) ranges
// must be zero, POLICY bit 17 must be set and SIGNATURE_ALGO must be
// ECDSA P-384 with SHA-384. Errors wrap ErrMalformed or ErrUnsupported.
func ParseReport(b []byte) (*Report, error) {
	if len(b) != ReportSize {
		return nil, parseErr("report", -1, ErrMalformed, "%d bytes, want %d", len(b), ReportSize)
	}
	r := &Report{Raw: append([]byte(nil), b...)}
	b = r.Raw
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	le64 := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	r.Version = le32(0x00)
	switch r.Version {
	case 2, 3, 5:
	default:
		return nil, parseErr("VERSION", 0x00, ErrUnsupported, "report version %d (2, 3 and 5 are supported)", r.Version)
	}
	r.GuestSVN = le32(0x04)
	r.Policy = le64(0x08)
	if r.Policy&PolicyReserved17 == 0 {
		return nil, parseErr("POLICY", 0x08, ErrMalformed, "reserved bit 17 must be 1 (policy 0x%x)", r.Policy)
	}
	if r.Policy&^uint64(policyKnownBits) != 0 {
		return nil, parseErr("POLICY", 0x08, ErrMalformed, "reserved bits 26–63 set (policy 0x%x)", r.Policy)
	}
	copy(r.FamilyID[:], b[0x10:])
	copy(r.ImageID[:], b[0x20:])
	r.VMPL = le32(0x30)
	r.SignatureAlgo = le32(0x34)
	if r.SignatureAlgo != SignatureAlgoECDSAP384SHA384 {
		return nil, parseErr("SIGNATURE_ALGO", 0x34, ErrUnsupported, "signature algorithm %d", r.SignatureAlgo)
	}
	r.CurrentTCB = TCBVersion(le64(0x38))
	r.PlatformInfo = le64(0x40)
	r.KeyInfo = le32(0x48)
	if r.KeyInfo>>5 != 0 {
		return nil, parseErr("KEY_INFO", 0x48, ErrMalformed, "reserved bits 5–31 set (0x%x)", r.KeyInfo)
	}
	if k := r.SigningKey(); k != SigningKeyVCEK && k != SigningKeyVLEK && k != SigningKeyNone {
		return nil, parseErr("KEY_INFO", 0x48, ErrMalformed, "SIGNING_KEY %d is reserved", uint8(k))
	}
	if err := mbz(b, 0x4C, 0x50); err != nil {
		return nil, err
	}
	copy(r.ReportData[:], b[0x50:])
	copy(r.Measurement[:], b[0x90:])
	copy(r.HostData[:], b[0xC0:])
	copy(r.IDKeyDigest[:], b[0xE0:])
	copy(r.AuthorKeyDigest[:], b[0x110:])
	copy(r.ReportID[:], b[0x140:])
	copy(r.ReportIDMA[:], b[0x160:])
	r.ReportedTCB = TCBVersion(le64(0x180))
	reservedFrom := 0x188
	if r.Version >= 3 {
		r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = b[0x188], b[0x189], b[0x18A]
		reservedFrom = 0x18B
	}
	if err := mbz(b, reservedFrom, 0x1A0); err != nil {
		return nil, err
	}
	copy(r.ChipID[:], b[0x1A0:])
	r.CommittedTCB = TCBVersion(le64(0x1E0))
	r.CurrentBuild, r.CurrentMinor, r.CurrentMajor = b[0x1E8], b[0x1E9], b[0x1EA]
	if err := mbz(b, 0x1EB, 0x1EC); err != nil {
		return nil, err
	}
	r.CommittedBuild, r.CommittedMinor, r.CommittedMajor = b[0x1EC], b[0x1ED], b[0x1EE]
	if err := mbz(b, 0x1EF, 0x1F0); err != nil {
		return nil, err
	}
	r.LaunchTCB = TCBVersion(le64(0x1F0))
	reservedFrom = 0x1F8
	if r.Version >= 5 {
		r.LaunchMitVector = le64(0x1F8)
		r.CurrentMitVector = le64(0x200)
		reservedFrom = 0x208
	}
	if err := mbz(b, reservedFrom, SignedSize); err != nil {
		return nil, err
	}
	copy(r.SignatureR[:], b[0x2A0:])
	copy(r.SignatureS[:], b[0x2A0+sigComponentSize:])
	// A P-384 scalar takes 48 bytes; the zero padding of R and S and the
	// rest of the signature area must be zero.
	if err := mbz(b, 0x2A0+48, 0x2A0+sigComponentSize); err != nil {
		return nil, err
	}
	if err := mbz(b, 0x2A0+sigComponentSize+48, ReportSize); err != nil {
		return nil, err
	}
	return r, nil
}

func mbz(b []byte, lo, hi int) error {
	for i := lo; i < hi; i++ {
		if b[i] != 0 {
			return parseErr("reserved", i, ErrMalformed, "must-be-zero range 0x%03x–0x%03x has byte 0x%02x", lo, hi-1, b[i])
		}
	}
	return nil
}
