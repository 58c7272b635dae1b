package measure

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// SNPMeasurementVersion is the version of measurement.snp.cbor this
// package reads.
const SNPMeasurementVersion = 3

// SNP OVMF metadata section types (dstack-mr sev.rs).
const (
	SNPSectionSecMemory    = 1
	SNPSectionSecrets      = 2
	SNPSectionCPUID        = 3
	SNPSectionSvsmCaa      = 4
	SNPSectionKernelHashes = 0x10
)

// SNP page types of PAGE_INFO (SEV-SNP firmware ABI).
const (
	snpPageNormal  = 1
	snpPageVMSA    = 2
	snpPageZero    = 3
	snpPageSecrets = 5
	snpPageCPUID   = 6
)

// snpVMSAGPA is the guest physical address every VMSA page is measured
// at.
const snpVMSAGPA = 0xFFFFFFFFF000

// SNPSection is one OVMF SEV metadata section.
type SNPSection struct {
	GPA  uint64 `cbor:"gpa" json:"gpa"`
	Size uint64 `cbor:"size" json:"size"`
	Type uint32 `cbor:"type" json:"type"`
}

// SNPLaunch is every input of the SEV-SNP launch digest
// (multi-tee.md §7): the measurement.snp.cbor document plus the vCPU
// count, vCPU type and guest features of dstack's sev_snp_measurement.
type SNPLaunch struct {
	// OVMFHash is the launch digest of the OVMF firmware pages, the
	// starting value.
	OVMFHash       [48]byte     `json:"ovmf_hash"`
	Cmdline        string       `json:"cmdline"`
	KernelHash     [32]byte     `json:"kernel_hash"`
	InitrdHash     [32]byte     `json:"initrd_hash"`
	HashesTableGPA uint64       `json:"hashes_table_gpa"`
	ResetEIP       uint32       `json:"reset_eip"`
	Sections       []SNPSection `json:"ovmf_sections"`
	VCPUs          uint32       `json:"vcpus"`
	VCPUType       string       `json:"vcpu_type"`
	GuestFeatures  uint64       `json:"guest_features"`
}

type snpWire struct {
	Version        uint64       `cbor:"version"`
	Cmdline        string       `cbor:"cmdline"`
	OVMFHash       []byte       `cbor:"ovmf_hash"`
	KernelHash     []byte       `cbor:"kernel_hash"`
	InitrdHash     []byte       `cbor:"initrd_hash"`
	HashesTableGPA uint64       `cbor:"hashes_table_gpa"`
	ResetEIP       uint32       `cbor:"reset_eip"`
	Sections       []SNPSection `cbor:"ovmf_sections"`
}

var snpDecMode = mustDecMode(func() cbor.DecOptions {
	o := liteDecodeOptions
	o.MaxArrayElements = 128
	o.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
	return o
}())

// ParseSNPMeasurement decodes measurement.snp.cbor into the image part of
// an SNPLaunch (VCPUs, VCPUType and GuestFeatures stay zero). The
// document must be a version 3 map with exactly the known fields; an
// empty initrd_hash means SHA-256 of the empty initrd. Errors wrap
// ErrMalformed or ErrUnsupported.
func ParseSNPMeasurement(doc []byte) (*SNPLaunch, error) {
	if len(doc) > maxLiteSize {
		return nil, fmt.Errorf("%w: measurement.snp.cbor of %d bytes", ErrMalformed, len(doc))
	}
	var w snpWire
	if err := snpDecMode.Unmarshal(doc, &w); err != nil {
		return nil, fmt.Errorf("%w: measurement.snp.cbor: %v", ErrMalformed, err)
	}
	if w.Version != SNPMeasurementVersion {
		return nil, fmt.Errorf("%w: measurement.snp.cbor version %d", ErrUnsupported, w.Version)
	}
	l := &SNPLaunch{Cmdline: w.Cmdline, HashesTableGPA: w.HashesTableGPA, ResetEIP: w.ResetEIP, Sections: w.Sections}
	if len(w.OVMFHash) != 48 || len(w.KernelHash) != 32 || len(w.InitrdHash) != 32 && len(w.InitrdHash) != 0 {
		return nil, fmt.Errorf("%w: measurement.snp.cbor digest sizes ovmf %d kernel %d initrd %d", ErrMalformed, len(w.OVMFHash), len(w.KernelHash), len(w.InitrdHash))
	}
	copy(l.OVMFHash[:], w.OVMFHash)
	copy(l.KernelHash[:], w.KernelHash)
	if len(w.InitrdHash) == 0 {
		l.InitrdHash = sha256.Sum256(nil)
	} else {
		copy(l.InitrdHash[:], w.InitrdHash)
	}
	return l, nil
}

// Document encodes l's image part as measurement.snp.cbor (version 3):
// a definite-length map in dstack's member order (version, cmdline,
// ovmf_hash, kernel_hash, initrd_hash, hashes_table_gpa, reset_eip,
// ovmf_sections of {gpa, size, type}) with minimal integer encodings, as
// dstack's image build writes it. VCPUs, VCPUType and GuestFeatures are
// not part of the document.
func (l *SNPLaunch) Document() ([]byte, error) {
	w := snpWire{
		Version: SNPMeasurementVersion, Cmdline: l.Cmdline, OVMFHash: l.OVMFHash[:], KernelHash: l.KernelHash[:],
		InitrdHash: l.InitrdHash[:], HashesTableGPA: l.HashesTableGPA, ResetEIP: l.ResetEIP, Sections: l.Sections,
	}
	if w.Sections == nil {
		w.Sections = []SNPSection{}
	}
	b, err := liteEncMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: measurement.snp.cbor: %v", ErrMalformed, err)
	}
	return b, nil
}

// snpLaunchJSON is SNPLaunch with its digests in hex.
type snpLaunchJSON struct {
	OVMFHash       string       `json:"ovmf_hash"`
	Cmdline        string       `json:"cmdline"`
	KernelHash     string       `json:"kernel_hash"`
	InitrdHash     string       `json:"initrd_hash"`
	HashesTableGPA uint64       `json:"hashes_table_gpa"`
	ResetEIP       uint32       `json:"reset_eip"`
	Sections       []SNPSection `json:"ovmf_sections"`
	VCPUs          uint32       `json:"vcpus"`
	VCPUType       string       `json:"vcpu_type"`
	GuestFeatures  uint64       `json:"guest_features"`
}

// MarshalJSON writes the digests as lowercase hex.
func (l SNPLaunch) MarshalJSON() ([]byte, error) {
	sections := l.Sections
	if sections == nil {
		sections = []SNPSection{}
	}
	return json.Marshal(snpLaunchJSON{
		OVMFHash: hex.EncodeToString(l.OVMFHash[:]), Cmdline: l.Cmdline, KernelHash: hex.EncodeToString(l.KernelHash[:]),
		InitrdHash: hex.EncodeToString(l.InitrdHash[:]), HashesTableGPA: l.HashesTableGPA, ResetEIP: l.ResetEIP,
		Sections: sections, VCPUs: l.VCPUs, VCPUType: l.VCPUType, GuestFeatures: l.GuestFeatures,
	})
}

// UnmarshalJSON reads what MarshalJSON writes; digests must be hex of
// their exact size.
func (l *SNPLaunch) UnmarshalJSON(b []byte) error {
	var w snpLaunchJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	out := SNPLaunch{Cmdline: w.Cmdline, HashesTableGPA: w.HashesTableGPA, ResetEIP: w.ResetEIP, Sections: w.Sections,
		VCPUs: w.VCPUs, VCPUType: w.VCPUType, GuestFeatures: w.GuestFeatures}
	for _, f := range []struct {
		name, v string
		dst     []byte
	}{{"ovmf_hash", w.OVMFHash, out.OVMFHash[:]}, {"kernel_hash", w.KernelHash, out.KernelHash[:]}, {"initrd_hash", w.InitrdHash, out.InitrdHash[:]}} {
		raw, err := hex.DecodeString(f.v)
		if err != nil || len(raw) != len(f.dst) {
			return fmt.Errorf("%w: SNP launch %s %q", ErrMalformed, f.name, f.v)
		}
		copy(f.dst, raw)
	}
	*l = out
	return nil
}

// MaxSNPSectionPages bounds the pages the OVMF metadata sections of an
// SNPLaunch may cover together: 2^14 pages, 64 MiB of guest memory.
// dstack's validate_measurement_input allows 2^24 (64 GiB). The sections
// come from the unsigned vm_config, and every page costs a SHA-384
// update, so 2^24 pages would let any client holding one validly signed
// report buy seconds of verifier CPU per request; an AmdSev OVMF's
// sections cover a few dozen pages (the shared fixture: 29).
const MaxSNPSectionPages = 1 << 14

// Validate applies dstack's validate_measurement_input, with the section
// pages capped at MaxSNPSectionPages.
func (l *SNPLaunch) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: SNP launch: "+f, append([]any{ErrMalformed}, a...)...)
	}
	switch {
	case l.GuestFeatures == 0:
		return bad("guest_features is 0")
	case l.VCPUs < 1 || l.VCPUs > 512:
		return bad("vcpus %d not in 1..512", l.VCPUs)
	case l.VCPUType == "":
		return bad("empty vcpu_type")
	case len(l.Sections) == 0 || len(l.Sections) > 64:
		return bad("%d OVMF sections (1..64)", len(l.Sections))
	case l.HashesTableGPA == 0:
		return bad("hashes_table_gpa is 0")
	case l.ResetEIP == 0:
		return bad("reset_eip is 0")
	}
	var pages uint64
	kernel := false
	for i, s := range l.Sections {
		if s.Size == 0 {
			return bad("section %d has size 0", i)
		}
		pages += (s.Size + 4095) / 4096
		if pages > MaxSNPSectionPages {
			return bad("sections cover more than %d pages (dstack allows 2^24; tdproof caps them, see MaxSNPSectionPages)", MaxSNPSectionPages)
		}
		if s.Type == SNPSectionKernelHashes {
			kernel = true
		}
	}
	if !kernel {
		return bad("no kernel hashes section (type 0x10)")
	}
	if _, err := snpVCPUSignature(l.VCPUType); err != nil {
		return err
	}
	return nil
}

// Digest computes the launch digest (the report's MEASUREMENT).
func (l *SNPLaunch) Digest() ([48]byte, error) {
	ld, err := l.sectionsDigest()
	if err != nil {
		return [48]byte{}, err
	}
	sig, _ := snpVCPUSignature(l.VCPUType)
	return snpVMSAs(ld, l.VCPUs, sig, l.ResetEIP, l.GuestFeatures), nil
}

// sectionsDigest validates l and returns the launch digest after the
// OVMF metadata sections, before the VMSAs.
func (l *SNPLaunch) sectionsDigest() ([48]byte, error) {
	if err := l.Validate(); err != nil {
		return [48]byte{}, err
	}
	ld := l.OVMFHash
	var zero [48]byte
	for i, s := range l.Sections {
		switch s.Type {
		case SNPSectionSecMemory, SNPSectionSvsmCaa:
			for off := uint64(0); off < s.Size; off += 4096 {
				ld = snpPageUpdate(ld, zero, snpPageZero, s.GPA+off)
			}
		case SNPSectionSecrets:
			ld = snpPageUpdate(ld, zero, snpPageSecrets, s.GPA)
		case SNPSectionCPUID:
			ld = snpPageUpdate(ld, zero, snpPageCPUID, s.GPA)
		case SNPSectionKernelHashes:
			page, err := l.hashesPage()
			if err != nil {
				return [48]byte{}, err
			}
			ld = snpPageUpdate(ld, sha512.Sum384(page[:]), snpPageNormal, s.GPA)
		default:
			return [48]byte{}, fmt.Errorf("%w: SNP launch: section %d has unknown type 0x%x", ErrMalformed, i, s.Type)
		}
	}
	return ld, nil
}

// snpVMSAs adds one VMSA page per vCPU to ld: the BSP's (reset vector
// 0xFFFFFFF0) first, then the APs' (resetEIP).
func snpVMSAs(ld [48]byte, vcpus, sig, resetEIP uint32, features uint64) [48]byte {
	bsp := sha512.Sum384(snpVMSA(0xFFFFFFF0, sig, features))
	ap := sha512.Sum384(snpVMSA(resetEIP, sig, features))
	for i := range vcpus {
		v := ap
		if i == 0 {
			v = bsp
		}
		ld = snpPageUpdate(ld, v, snpPageVMSA, snpVMSAGPA)
	}
	return ld
}

// snpPageUpdate is SNP_LAUNCH_UPDATE's digest step over PAGE_INFO.
func snpPageUpdate(ld, contents [48]byte, pageType byte, gpa uint64) [48]byte {
	var info [0x70]byte
	copy(info[0:], ld[:])
	copy(info[48:], contents[:])
	binary.LittleEndian.PutUint16(info[96:], 0x70)
	info[98] = pageType
	binary.LittleEndian.PutUint64(info[104:], gpa)
	return sha512.Sum384(info[:])
}

// guidLE returns a GUID's bytes in the little-endian (table) order.
func guidLE(s string) [16]byte {
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 {
		panic("measure: bad GUID " + s)
	}
	var g [16]byte
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

var (
	guidHashesTable = guidLE("9438d606-4f22-4cc9-b479-a793d411fd21")
	guidCmdline     = guidLE("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
	guidInitrd      = guidLE("44baf731-3a2f-4bd7-9af1-41e29169781d")
	guidKernel      = guidLE("4de79437-abd2-427f-b835-d5b172d2045b")
)

// SNPCmdlineHash is SHA-256 of the trimmed command line followed by a
// NUL, as OVMF measures it.
func SNPCmdlineHash(cmdline string) [32]byte {
	return sha256.Sum256(append([]byte(strings.TrimSpace(cmdline)), 0))
}

func (l *SNPLaunch) hashesPage() ([4096]byte, error) {
	var page [4096]byte
	const entry = 16 + 2 + 32
	const total = 16 + 2 + 3*entry
	off := int(l.HashesTableGPA & 0xFFF)
	if off+(total+15)/16*16 > len(page) {
		return page, fmt.Errorf("%w: SNP launch: hashes table at page offset 0x%x does not fit", ErrMalformed, off)
	}
	t := page[off:]
	copy(t, guidHashesTable[:])
	binary.LittleEndian.PutUint16(t[16:], total)
	p := 18
	cmd := SNPCmdlineHash(l.Cmdline)
	for _, e := range []struct {
		g [16]byte
		h [32]byte
	}{{guidCmdline, cmd}, {guidInitrd, l.InitrdHash}, {guidKernel, l.KernelHash}} {
		copy(t[p:], e.g[:])
		binary.LittleEndian.PutUint16(t[p+16:], entry)
		copy(t[p+18:], e.h[:])
		p += entry
	}
	return page, nil
}

// snpVCPUSignature maps dstack's vcpu_type names (case-insensitive) to
// the CPUID signature QEMU reports.
func snpVCPUSignature(name string) (uint32, error) {
	var fam, model, step uint32
	switch strings.ToLower(name) {
	case "epyc", "epyc-v1", "epyc-v2", "epyc-ibpb", "epyc-v3", "epyc-v4":
		fam, model, step = 23, 1, 2
	case "epyc-rome", "epyc-rome-v1", "epyc-rome-v2", "epyc-rome-v3":
		fam, model, step = 23, 49, 0
	case "epyc-milan", "epyc-milan-v1", "epyc-milan-v2":
		fam, model, step = 25, 1, 1
	case "epyc-genoa", "epyc-genoa-v1":
		fam, model, step = 25, 17, 0
	default:
		return 0, fmt.Errorf("%w: SNP launch: unknown vcpu_type %q", ErrUnsupported, name)
	}
	famLo, famHi := fam, uint32(0)
	if fam > 0xF {
		famLo, famHi = 0xF, fam-0xF
	}
	return famHi<<20 | (model>>4)<<16 | famLo<<8 | (model&0xF)<<4 | step, nil
}

// snpVMSA builds the initial VMSA page of a vCPU starting at eip.
func snpVMSA(eip, sig uint32, features uint64) []byte {
	v := make([]byte, 4096)
	seg := func(off int, sel, attrib uint16, limit uint32, base uint64) {
		binary.LittleEndian.PutUint16(v[off:], sel)
		binary.LittleEndian.PutUint16(v[off+2:], attrib)
		binary.LittleEndian.PutUint32(v[off+4:], limit)
		binary.LittleEndian.PutUint64(v[off+8:], base)
	}
	seg(0x00, 0, 0x93, 0xFFFF, 0)                           // ES
	seg(0x10, 0xF000, 0x9B, 0xFFFF, uint64(eip&0xFFFF0000)) // CS
	seg(0x20, 0, 0x93, 0xFFFF, 0)                           // SS
	seg(0x30, 0, 0x93, 0xFFFF, 0)                           // DS
	seg(0x40, 0, 0x93, 0xFFFF, 0)                           // FS
	seg(0x50, 0, 0x93, 0xFFFF, 0)                           // GS
	seg(0x60, 0, 0, 0xFFFF, 0)                              // GDTR
	seg(0x70, 0, 0x82, 0xFFFF, 0)                           // LDTR
	seg(0x80, 0, 0, 0xFFFF, 0)                              // IDTR
	seg(0x90, 0, 0x8B, 0xFFFF, 0)                           // TR
	le64 := func(off int, x uint64) { binary.LittleEndian.PutUint64(v[off:], x) }
	le64(0xD0, 0x1000)      // EFER
	le64(0x148, 0x40)       // CR4
	le64(0x158, 0x10)       // CR0
	le64(0x160, 0x400)      // DR7
	le64(0x168, 0xFFFF0FF0) // DR6
	le64(0x170, 0x2)        // RFLAGS
	le64(0x178, uint64(eip&0xFFFF))
	le64(0x268, 0x0007040600070406) // G_PAT
	le64(0x310, uint64(sig))        // RDX
	le64(0x3B0, features)           // SEV_FEATURES
	le64(0x3E8, 1)                  // XCR0
	binary.LittleEndian.PutUint32(v[0x408:], 0x1F80)
	binary.LittleEndian.PutUint16(v[0x410:], 0x037F)
	return v
}

// DiagnoseSNP names the launch inputs in which got differs from ref (a
// known-good input set): "ovmf_hash", "cmdline", "kernel_hash",
// "initrd_hash", "hashes_table_gpa", "reset_eip", "ovmf_sections",
// "vcpus", "vcpu_type", "guest_features".
func DiagnoseSNP(ref, got *SNPLaunch) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("ovmf_hash", ref.OVMFHash != got.OVMFHash)
	add("cmdline", SNPCmdlineHash(ref.Cmdline) != SNPCmdlineHash(got.Cmdline))
	add("kernel_hash", ref.KernelHash != got.KernelHash)
	add("initrd_hash", ref.InitrdHash != got.InitrdHash)
	add("hashes_table_gpa", ref.HashesTableGPA != got.HashesTableGPA)
	add("reset_eip", ref.ResetEIP != got.ResetEIP)
	same := len(ref.Sections) == len(got.Sections)
	for i := 0; same && i < len(ref.Sections); i++ {
		same = ref.Sections[i] == got.Sections[i]
	}
	add("ovmf_sections", !same)
	add("vcpus", ref.VCPUs != got.VCPUs)
	rs, _ := snpVCPUSignature(ref.VCPUType)
	gs, _ := snpVCPUSignature(got.VCPUType)
	add("vcpu_type", rs != gs || rs == 0 && !strings.EqualFold(ref.VCPUType, got.VCPUType))
	add("guest_features", ref.GuestFeatures != got.GuestFeatures)
	return out
}
