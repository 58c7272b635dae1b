package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
)

// GUIDs of the OVMF GUIDed table entries SEV-SNP uses (edk2
// OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm).
var (
	// SEVMetadataGUID marks the entry holding the offset, from the end of
	// the firmware, of the SEV metadata ("ASEV"):
	// dc886566-984a-4798-a75e-5585a7bf67cc.
	SEVMetadataGUID = mustGUID("dc886566-984a-4798-a75e-5585a7bf67cc")
	// SEVHashTableGUID marks the entry with the GPA and size of the area
	// the VMM fills with the kernel hashes table (SEV_HASH_TABLE_RV_GUID):
	// 7255371f-3a3b-4b04-927b-1da6efa8d454.
	SEVHashTableGUID = mustGUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
	// SEVESResetBlockGUID marks the entry with the APs' reset EIP
	// (SEV_INFO_BLOCK_GUID): 00f771de-1a7e-4fcb-890e-68c77e2fb44e.
	SEVESResetBlockGUID = mustGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
)

// maxSNPFirmware bounds the firmware size: it is mapped just below 4 GiB.
const maxSNPFirmware = 64 << 20

// SNPFirmware is what the SEV-SNP launch digest takes from an OVMF
// build: the digest of its pages and its SEV metadata.
type SNPFirmware struct {
	// Size is the firmware's size in bytes; it is mapped at 4 GiB − Size.
	Size uint64 `json:"size"`
	// OVMFHash is the launch digest after the firmware's pages, each
	// added as a normal page at its GPA starting from a zero digest:
	// measurement.snp.cbor's ovmf_hash.
	OVMFHash [48]byte `json:"-"`
	// Sections are the SEV metadata sections, in firmware order.
	Sections []SNPSection `json:"ovmf_sections"`
	// ResetEIP is the APs' reset EIP (SEV-ES reset block).
	ResetEIP uint32 `json:"reset_eip"`
	// HashesTableGPA and HashesTableSize locate the kernel hashes table
	// (0 in builds without measured direct boot, such as OvmfPkgX64).
	HashesTableGPA  uint64 `json:"hashes_table_gpa"`
	HashesTableSize uint32 `json:"hashes_table_size"`
}

// ParseSNPFirmware reads the SEV-SNP inputs of an OVMF image: the OVMF
// table entries [SEVMetadataGUID] (the "ASEV" metadata: signature,
// length, version 1, count, then {gpa, size, type} u32 triples),
// [SEVESResetBlockGUID] and [SEVHashTableGUID], and computes the
// firmware's launch digest (ovmf_hash).
//
// Validation: the image is a non-empty multiple of 4 KiB of at most
// 64 MiB; each SEV entry appears at most once; the metadata lies inside
// the image, its length is exactly 16 + 12·count with 1–64 sections of
// known type, non-zero size and 4 KiB-aligned GPA; the reset block is
// present and non-zero. Errors wrap [ErrNoOVMFTable], [ErrMalformed] or
// [ErrUnsupported]; the result does not alias fw.
func ParseSNPFirmware(fw []byte) (*SNPFirmware, error) {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("measure: sev firmware: %w: "+f, append([]any{ErrMalformed}, a...)...)
	}
	if len(fw) == 0 || len(fw)%pageSize != 0 || len(fw) > maxSNPFirmware {
		return nil, bad("size %d is not a non-zero multiple of 4 KiB up to %d", len(fw), maxSNPFirmware)
	}
	entries, err := ParseOVMFTable(fw)
	if err != nil {
		return nil, err
	}
	found := map[eventlog.GUID][]byte{}
	for _, e := range entries {
		switch e.GUID {
		case SEVMetadataGUID, SEVHashTableGUID, SEVESResetBlockGUID:
			if _, dup := found[e.GUID]; dup {
				return nil, bad("OVMF table entry %x appears twice", e.GUID[:])
			}
			found[e.GUID] = e.Data
		}
	}
	f := &SNPFirmware{Size: uint64(len(fw))}
	meta, ok := found[SEVMetadataGUID]
	if !ok {
		return nil, fmt.Errorf("measure: sev firmware: %w: no SEV metadata entry (not an SEV-SNP capable OVMF)", ErrUnsupported)
	}
	if f.Sections, err = parseSEVMetadata(fw, meta); err != nil {
		return nil, err
	}
	reset, ok := found[SEVESResetBlockGUID]
	if !ok || len(reset) < 4 {
		return nil, bad("no SEV-ES reset block")
	}
	if f.ResetEIP = binary.LittleEndian.Uint32(reset); f.ResetEIP == 0 {
		return nil, bad("SEV-ES reset EIP is 0")
	}
	if ht, ok := found[SEVHashTableGUID]; ok {
		if len(ht) < 8 {
			return nil, bad("SEV hash table entry of %d bytes", len(ht))
		}
		f.HashesTableGPA = uint64(binary.LittleEndian.Uint32(ht))
		f.HashesTableSize = binary.LittleEndian.Uint32(ht[4:])
	}
	f.OVMFHash = snpFirmwareDigest(fw)
	return f, nil
}

func parseSEVMetadata(fw, entry []byte) ([]SNPSection, error) {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("measure: sev metadata: %w: "+f, append([]any{ErrMalformed}, a...)...)
	}
	if len(entry) < 4 {
		return nil, bad("entry of %d bytes", len(entry))
	}
	fromEnd := uint64(binary.LittleEndian.Uint32(entry))
	if fromEnd < 16 || fromEnd > uint64(len(fw)) {
		return nil, bad("offset %#x from the end of a %d-byte image", fromEnd, len(fw))
	}
	m := fw[len(fw)-int(fromEnd):]
	if string(m[:4]) != "ASEV" {
		return nil, bad("signature %q", m[:4])
	}
	length := uint64(binary.LittleEndian.Uint32(m[4:]))
	version := binary.LittleEndian.Uint32(m[8:])
	n := uint64(binary.LittleEndian.Uint32(m[12:]))
	if version != 1 {
		return nil, fmt.Errorf("measure: sev metadata: %w: version %d", ErrUnsupported, version)
	}
	if n == 0 || n > 64 {
		return nil, bad("%d sections (1..64)", n)
	}
	if length != 16+12*n || length > uint64(len(m)) {
		return nil, bad("length %d for %d sections (%d bytes available)", length, n, len(m))
	}
	out := make([]SNPSection, n)
	for i := range out {
		b := m[16+12*i:]
		s := SNPSection{GPA: uint64(binary.LittleEndian.Uint32(b)), Size: uint64(binary.LittleEndian.Uint32(b[4:])), Type: binary.LittleEndian.Uint32(b[8:])}
		switch s.Type {
		case SNPSectionSecMemory, SNPSectionSecrets, SNPSectionCPUID, SNPSectionSvsmCaa, SNPSectionKernelHashes:
		default:
			return nil, fmt.Errorf("measure: sev metadata: %w: section %d has type %#x", ErrUnsupported, i, s.Type)
		}
		if s.Size == 0 || s.GPA%pageSize != 0 {
			return nil, bad("section %d at %#x of %#x bytes", i, s.GPA, s.Size)
		}
		out[i] = s
	}
	return out, nil
}

// snpFirmwareDigest is the launch digest of the firmware pages at
// 4 GiB − len(fw), starting from zero.
func snpFirmwareDigest(fw []byte) [48]byte {
	var ld [48]byte
	gpa := uint64(1<<32) - uint64(len(fw))
	for off := 0; off < len(fw); off += pageSize {
		ld = snpPageUpdate(ld, sha512.Sum384(fw[off:off+pageSize]), snpPageNormal, gpa+uint64(off))
	}
	return ld
}

// MarshalJSON writes OVMFHash as lowercase hex.
func (f SNPFirmware) MarshalJSON() ([]byte, error) {
	type plain SNPFirmware
	sections := f.Sections
	if sections == nil {
		sections = []SNPSection{}
	}
	f.Sections = sections
	return json.Marshal(struct {
		OVMFHash string `json:"ovmf_hash"`
		plain
	}{hex.EncodeToString(f.OVMFHash[:]), plain(f)})
}

// KernelHashes reports whether the firmware supports measured direct
// boot: a kernel hashes section (type 0x10) and a hashes table GPA.
func (f *SNPFirmware) KernelHashes() bool {
	if f.HashesTableGPA == 0 {
		return false
	}
	for _, s := range f.Sections {
		if s.Type == SNPSectionKernelHashes {
			return true
		}
	}
	return false
}
