package quote

// EnclaveReport is the 384-byte SGX report: the body of SGX quotes and
// the QE report inside every quote's signature data (dcap.md §1.3).
type EnclaveReport struct {
	CPUSVN     [16]byte
	MiscSelect uint32
	Reserved1  [28]byte
	Attributes [16]byte
	MREnclave  [32]byte
	Reserved2  [32]byte
	MRSigner   [32]byte
	Reserved3  [96]byte
	ISVProdID  uint16
	ISVSVN     uint16
	Reserved4  [60]byte
	ReportData [64]byte
	// Raw holds the 384 bytes as they appear in the quote (aliases the
	// input). It is nil for a report built in memory.
	Raw []byte
}

// Debug reports whether the DEBUG attribute (ATTRIBUTES bit 1) is set.
func (r *EnclaveReport) Debug() bool { return r.Attributes[0]&0x02 != 0 }

// TD attribute bits (TDATTRIBUTES, 64-bit little endian).
const (
	TDAttributeDebug         uint64 = 1 << 0
	TDAttributeSEPTVEDisable uint64 = 1 << 28
	TDAttributePKS           uint64 = 1 << 30
	TDAttributeKL            uint64 = 1 << 31
	TDAttributePerfmon       uint64 = 1 << 63
)

// TDReport is the TD report body: 584 bytes for TDX 1.0 and 648 bytes for
// TDX 1.5, which appends TEETCBSVN2 and MRServiceTD (dcap.md §1.4).
type TDReport struct {
	TEETCBSVN      [16]byte
	MRSEAM         [48]byte
	MRSignerSEAM   [48]byte
	SEAMAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRConfigID     [48]byte
	MROwner        [48]byte
	MROwnerConfig  [48]byte
	RTMRs          [4][48]byte
	ReportData     [64]byte
	// TD15 is true for a TD 1.5 body; TEETCBSVN2 and MRServiceTD are
	// meaningful only then.
	TD15        bool
	TEETCBSVN2  [16]byte
	MRServiceTD [48]byte
	// Raw holds the body bytes as they appear in the quote (aliases the
	// input). It is nil for a report built in memory.
	Raw []byte
}

// Attributes returns TDATTRIBUTES as a little-endian integer.
func (r *TDReport) Attributes() uint64 { return le64(r.TDAttributes[:]) }

// Debug reports whether the TD's DEBUG attribute is set.
func (r *TDReport) Debug() bool { return r.Attributes()&TDAttributeDebug != 0 }

// SEPTVEDisable reports whether SEPT_VE_DISABLE is set.
func (r *TDReport) SEPTVEDisable() bool { return r.Attributes()&TDAttributeSEPTVEDisable != 0 }

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
