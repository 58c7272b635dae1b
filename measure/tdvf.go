package measure

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tdproof/tdproof/eventlog"
)

// GUIDs of the OVMF GUIDed table (edk2 OvmfPkg/ResetVector).
var (
	// OVMFTableFooterGUID ends the OVMF GUIDed table, 32 bytes before the
	// end of the firmware: 96b582de-1fb2-45f7-baea-a366c55a082d.
	OVMFTableFooterGUID = mustGUID("96b582de-1fb2-45f7-baea-a366c55a082d")
	// TDXMetadataGUID marks the table entry holding the offset, from the
	// end of the firmware, of the TDVF metadata descriptor:
	// e47a6535-984a-4798-865e-4685a7bf8ec2.
	TDXMetadataGUID = mustGUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
)

// mustGUID parses the registry form of a GUID into its in-memory byte
// order (first three groups little endian). It panics on a bad literal.
func mustGUID(s string) eventlog.GUID {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("measure: bad GUID literal " + s)
	}
	var g eventlog.GUID
	binary.LittleEndian.PutUint32(g[0:4], binary.BigEndian.Uint32(b[0:4]))
	binary.LittleEndian.PutUint16(g[4:6], binary.BigEndian.Uint16(b[4:6]))
	binary.LittleEndian.PutUint16(g[6:8], binary.BigEndian.Uint16(b[6:8]))
	copy(g[8:], b[8:])
	return g
}

// OVMFTableEntry is one entry of the OVMF GUIDed table.
type OVMFTableEntry struct {
	// GUID identifies the entry.
	GUID eventlog.GUID
	// Data is the entry's payload, the bytes before its length and GUID.
	// It aliases the firmware.
	Data []byte
	// Offset is where the entry starts in the firmware.
	Offset int
}

// ParseOVMFTable returns the entries of the OVMF GUIDed table of a
// firmware image, in firmware order. The table ends 32 bytes before the
// end of the image with an 18-byte footer entry (LE16 length of the whole
// table including the footer, then [OVMFTableFooterGUID]); each entry
// ends with its own LE16 length and GUID and is walked backwards from the
// footer.
//
// dstack-mr windows the table 18 bytes lower (it does not count the
// footer in the length); the entries found are the same whenever a TDX
// metadata entry exists.
//
// Errors wrap [ErrNoOVMFTable] when there is no footer and [ErrMalformed]
// when the table does not walk.
func ParseOVMFTable(fw []byte) ([]OVMFTableEntry, error) {
	const footerEnd = 32 // the footer entry ends this far before the end
	if len(fw) < footerEnd+18 {
		return nil, fmt.Errorf("measure: ovmf table: %w (image is %d bytes)", ErrNoOVMFTable, len(fw))
	}
	off := len(fw) - footerEnd
	if eventlog.GUID(fw[off-16:off]) != OVMFTableFooterGUID {
		return nil, fmt.Errorf("measure: ovmf table: %w", ErrNoOVMFTable)
	}
	total := int(binary.LittleEndian.Uint16(fw[off-18 : off-16]))
	if total < 18 || total > off {
		return nil, fmt.Errorf("measure: ovmf table: %w: table length %d", ErrMalformed, total)
	}
	start := off - total
	var rev []OVMFTableEntry
	for o := off - 18; o > start; {
		if o-start < 18 {
			return nil, fmt.Errorf("measure: ovmf table: %w: %d stray bytes at offset %#x", ErrMalformed, o-start, start)
		}
		n := int(binary.LittleEndian.Uint16(fw[o-18 : o-16]))
		if n < 18 || n > o-start {
			return nil, fmt.Errorf("measure: ovmf table: %w: entry at %#x has length %d", ErrMalformed, o, n)
		}
		rev = append(rev, OVMFTableEntry{GUID: eventlog.GUID(fw[o-16 : o]), Data: fw[o-n : o-18], Offset: o - n})
		o -= n
	}
	out := make([]OVMFTableEntry, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out, nil
}

// SectionType is the type of a TDVF metadata section.
type SectionType uint32

// TDVF section types (Intel TDX Virtual Firmware Design Guide, §11.3).
const (
	SectionBFV          SectionType = 0
	SectionCFV          SectionType = 1
	SectionTDHOB        SectionType = 2
	SectionTempMem      SectionType = 3
	SectionPermMem      SectionType = 4
	SectionPayload      SectionType = 5
	SectionPayloadParam SectionType = 6
)

var sectionTypeNames = [...]string{"BFV", "CFV", "TD_HOB", "TEMP_MEM", "PERM_MEM", "PAYLOAD", "PAYLOAD_PARAM"}

// String returns the design guide's name of t.
func (t SectionType) String() string {
	if int(t) < len(sectionTypeNames) {
		return sectionTypeNames[t]
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// Section attributes.
const (
	// AttrMRExtend: the section's pages are measured into MRTD
	// (TDH.MR.EXTEND over each 256-byte chunk).
	AttrMRExtend uint32 = 1 << 0
	// AttrPageAug: the pages are added after boot (TDH.MEM.PAGE.AUG), so
	// no TDH.MEM.PAGE.ADD is measured.
	AttrPageAug uint32 = 1 << 1
)

// Section is one TDVF metadata section.
type Section struct {
	DataOffset     uint32 // offset of the raw data in the firmware image
	RawDataSize    uint32
	MemoryAddress  uint64 // guest physical address, 4 KiB aligned
	MemoryDataSize uint64 // bytes, 4 KiB aligned, ≥ RawDataSize
	Type           SectionType
	Attributes     uint32 // AttrMRExtend, AttrPageAug
}

// TDVF is the TDX metadata of a TDVF firmware image.
type TDVF struct {
	// Firmware is the whole image; it aliases the input of [ParseTDVF].
	Firmware []byte
	// MetadataOffset is the offset of the "TDVF" descriptor.
	MetadataOffset int
	// Version is the descriptor version (1).
	Version uint32
	// Sections are in descriptor order, which is the MRTD order.
	Sections []Section
}

// Limits that keep malformed metadata from costing unbounded work.
const (
	maxSections = 64
	// maxTDVFMemory bounds the sum of MemoryDataSize: real TDVF sections
	// total a few MiB.
	maxTDVFMemory = 256 << 20
)

// ParseTDVF locates and validates the TDX metadata of a TDVF image: the
// OVMF table entry [TDXMetadataGUID] gives the descriptor's offset from
// the end of the image; the descriptor is "TDVF", length, version (1),
// section count, then 32-byte sections (data offset, raw size, memory
// address, memory size, type, attributes).
//
// Validation: the descriptor and every section's raw data lie inside the
// image; memory address and size are 4 KiB aligned; memory size ≥ raw
// size; types and attribute bits are known; sections that are measured
// (AttrMRExtend) have memory size bytes of image data from their data
// offset (the MRTD reads them from there, as dstack-mr does).
//
// Errors wrap [ErrNoOVMFTable], [ErrNoTDXMetadata], [ErrMalformed] or
// [ErrUnsupported]. The result aliases fw.
func ParseTDVF(fw []byte) (*TDVF, error) {
	entries, err := ParseOVMFTable(fw)
	if err != nil {
		return nil, err
	}
	var meta *OVMFTableEntry
	for i := range entries {
		if entries[i].GUID == TDXMetadataGUID {
			meta = &entries[i]
			break
		}
	}
	if meta == nil {
		return nil, fmt.Errorf("measure: tdvf: %w (%d OVMF table entries)", ErrNoTDXMetadata, len(entries))
	}
	if len(meta.Data) < 4 {
		return nil, fmt.Errorf("measure: tdvf: %w: TDX metadata entry has %d bytes", ErrMalformed, len(meta.Data))
	}
	fromEnd := uint64(binary.LittleEndian.Uint32(meta.Data[len(meta.Data)-4:]))
	if fromEnd < 16 || fromEnd > uint64(len(fw)) {
		return nil, fmt.Errorf("measure: tdvf: %w: metadata offset %#x from the end of a %d-byte image", ErrMalformed, fromEnd, len(fw))
	}
	d := len(fw) - int(fromEnd)
	desc := fw[d:]
	if string(desc[:4]) != "TDVF" {
		return nil, fmt.Errorf("measure: tdvf: %w: descriptor signature %q", ErrMalformed, desc[:4])
	}
	length := uint64(binary.LittleEndian.Uint32(desc[4:]))
	version := binary.LittleEndian.Uint32(desc[8:])
	n := uint64(binary.LittleEndian.Uint32(desc[12:]))
	if version != 1 {
		return nil, fmt.Errorf("measure: tdvf: %w: descriptor version %d", ErrUnsupported, version)
	}
	if n == 0 || n > maxSections {
		return nil, fmt.Errorf("measure: tdvf: %w: %d sections", ErrMalformed, n)
	}
	if length < 16+32*n || length > uint64(len(desc)) {
		return nil, fmt.Errorf("measure: tdvf: %w: descriptor length %d for %d sections (%d bytes available)", ErrMalformed, length, n, len(desc))
	}
	t := &TDVF{Firmware: fw, MetadataOffset: d, Version: version, Sections: make([]Section, n)}
	var total uint64
	for i := range t.Sections {
		b := desc[16+32*i:]
		s := Section{
			DataOffset:     binary.LittleEndian.Uint32(b[0:]),
			RawDataSize:    binary.LittleEndian.Uint32(b[4:]),
			MemoryAddress:  binary.LittleEndian.Uint64(b[8:]),
			MemoryDataSize: binary.LittleEndian.Uint64(b[16:]),
			Type:           SectionType(binary.LittleEndian.Uint32(b[24:])),
			Attributes:     binary.LittleEndian.Uint32(b[28:]),
		}
		if err := s.validate(len(fw)); err != nil {
			return nil, fmt.Errorf("measure: tdvf: section %d (%s): %w", i, s.Type, err)
		}
		if s.MemoryDataSize > maxTDVFMemory-total {
			return nil, fmt.Errorf("measure: tdvf: %w: sections total more than %d bytes of memory", ErrUnsupported, maxTDVFMemory)
		}
		total += s.MemoryDataSize
		t.Sections[i] = s
	}
	return t, nil
}

func (s *Section) validate(fwLen int) error {
	switch {
	case s.MemoryDataSize > maxTDVFMemory: // first: keeps the sums below from wrapping
		return fmt.Errorf("%w: memory size %#x", ErrUnsupported, s.MemoryDataSize)
	case s.MemoryAddress%pageSize != 0 || s.MemoryDataSize%pageSize != 0:
		return fmt.Errorf("%w: memory %#x+%#x is not 4 KiB aligned", ErrMalformed, s.MemoryAddress, s.MemoryDataSize)
	case s.MemoryDataSize < uint64(s.RawDataSize):
		return fmt.Errorf("%w: memory size %#x below raw size %#x", ErrMalformed, s.MemoryDataSize, s.RawDataSize)
	case s.MemoryAddress+s.MemoryDataSize < s.MemoryAddress:
		return fmt.Errorf("%w: memory %#x+%#x wraps", ErrMalformed, s.MemoryAddress, s.MemoryDataSize)
	case uint64(s.DataOffset)+uint64(s.RawDataSize) > uint64(fwLen):
		return fmt.Errorf("%w: raw data %#x+%#x beyond the %#x-byte image", ErrMalformed, s.DataOffset, s.RawDataSize, fwLen)
	case s.Type > SectionPayloadParam:
		return fmt.Errorf("%w: section type %d", ErrUnsupported, uint32(s.Type))
	case s.Attributes&^(AttrMRExtend|AttrPageAug) != 0:
		return fmt.Errorf("%w: attributes %#x", ErrUnsupported, s.Attributes)
	case s.Attributes&AttrMRExtend != 0 && uint64(s.DataOffset)+s.MemoryDataSize > uint64(fwLen):
		return fmt.Errorf("%w: measured memory %#x+%#x beyond the %#x-byte image", ErrMalformed, s.DataOffset, s.MemoryDataSize, fwLen)
	}
	return nil
}

const pageSize = 4096
