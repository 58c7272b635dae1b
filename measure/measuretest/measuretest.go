// Package measuretest builds small synthetic images for tests of the
// packages that measure them: a TDVF firmware with a metadata table, an
// AmdSev-like OVMF with SEV metadata, and a PE32+ bzImage stand-in. The bytes are fixed, so measurements of them are
// stable across runs.
package measuretest

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/tdproof/tdproof/eventlog"

	"github.com/tdproof/tdproof/measure"
)

// Firmware builds a 64 KiB TDVF: a measured BFV, the TD HOB and a
// temporary-memory section, with the OVMF table at the end.
func Firmware() []byte {
	const size = 0x10000
	fw := make([]byte, size)
	for i := range fw {
		fw[i] = byte(i * 31)
	}
	secs := []measure.Section{
		{DataOffset: 0x1000, RawDataSize: 0x2000, MemoryAddress: 0xFFFF0000, MemoryDataSize: 0x2000, Type: measure.SectionBFV, Attributes: measure.AttrMRExtend},
		{MemoryAddress: 0x809000, MemoryDataSize: 0x2000, Type: measure.SectionTDHOB},
		{MemoryAddress: 0x800000, MemoryDataSize: 0x6000, Type: measure.SectionTempMem},
	}
	le := binary.LittleEndian
	d := fw[size-0x1000:]
	copy(d, "TDVF")
	le.PutUint32(d[4:], uint32(16+32*len(secs)))
	le.PutUint32(d[8:], 1)
	le.PutUint32(d[12:], uint32(len(secs)))
	for i, s := range secs {
		e := d[16+32*i:]
		le.PutUint32(e, s.DataOffset)
		le.PutUint32(e[4:], s.RawDataSize)
		le.PutUint64(e[8:], s.MemoryAddress)
		le.PutUint64(e[16:], s.MemoryDataSize)
		le.PutUint32(e[24:], uint32(s.Type))
		le.PutUint32(e[28:], s.Attributes)
	}
	footer := size - 50
	le.PutUint16(fw[footer:], 40)
	copy(fw[footer+2:], measure.OVMFTableFooterGUID[:])
	le.PutUint32(fw[footer-22:], 0x1000)
	le.PutUint16(fw[footer-18:], 22)
	copy(fw[footer-16:], measure.TDXMetadataGUID[:])
	return fw
}

// Kernel builds a 16 KiB PE32+ bzImage stand-in: boot protocol 2.15,
// one section after 4 KiB of headers.
func Kernel() []byte {
	k := make([]byte, 0x4000)
	for i := range k {
		k[i] = byte(i * 7)
	}
	le := binary.LittleEndian
	clear(k[:0x300])
	copy(k, "MZ")
	le.PutUint32(k[0x3c:], 0x40)
	copy(k[0x40:], "PE\x00\x00")
	le.PutUint16(k[0x46:], 1)   // sections
	le.PutUint16(k[0x54:], 240) // optional header size
	opt := 0x58
	le.PutUint16(k[opt:], 0x20b)
	le.PutUint32(k[opt+60:], 0x1000) // SizeOfHeaders
	le.PutUint32(k[opt+108:], 16)    // data directories
	sec := opt + 240
	copy(k[sec:], ".text")
	le.PutUint32(k[sec+16:], 0x3000)
	le.PutUint32(k[sec+20:], 0x1000)
	le.PutUint16(k[0x206:], 0x020f)
	k[0x211] = 0x01
	le.PutUint16(k[0x236:], 0x03)
	return k
}

// SNPFirmwareSpec describes a synthetic SEV-SNP firmware for
// [SNPFirmware]. The zero MetadataLength is 16 + 12·len(Sections) and
// the zero Version 1.
type SNPFirmwareSpec struct {
	Size           int
	Sections       []measure.SNPSection
	ResetEIP       uint32
	HashTableGPA   uint32
	NoHashTable    bool
	MetadataLength int
	Version        uint32
	Seed           uint64
}

// SNPFixtureSections are the OVMF sections of the dstack SEV-SNP
// fixture's measurement.snp.cbor (testdata/multitee), in its order: the
// AmdSev OVMF dstack ships.
var SNPFixtureSections = []measure.SNPSection{
	{GPA: 0x800000, Size: 0x9000, Type: 1}, {GPA: 0x80A000, Size: 0x3000, Type: 1}, {GPA: 0x80D000, Size: 0x1000, Type: 2},
	{GPA: 0x80E000, Size: 0x1000, Type: 3}, {GPA: 0x80F000, Size: 0x1000, Type: 4}, {GPA: 0x811000, Size: 0xF000, Type: 1},
	{GPA: 0x810000, Size: 0x1000, Type: 0x10},
}

// The fixture's reset EIP and hashes table GPA.
const (
	SNPFixtureResetEIP     = 0x80B004
	SNPFixtureHashTableGPA = 0x810C00
)

// SNPFixtureSpec is a 64 KiB firmware with the fixture's SEV metadata.
func SNPFixtureSpec() SNPFirmwareSpec {
	return SNPFirmwareSpec{Size: 0x10000, Sections: SNPFixtureSections, ResetEIP: SNPFixtureResetEIP, HashTableGPA: SNPFixtureHashTableGPA, Seed: 1}
}

// SNPFirmware builds a firmware of pseudo-random bytes (PCG seeded with
// Seed) with an OVMF table (SEV hash table of 0x400 bytes, SEV-ES reset
// block and SEV metadata entries, in edk2's ResetVectorVtf0.asm order)
// and "ASEV" metadata 4 KiB before the end.
func SNPFirmware(s SNPFirmwareSpec) []byte {
	fw := make([]byte, s.Size)
	r := rand.New(rand.NewPCG(s.Seed, 0x736e70))
	for i := 0; i+8 <= s.Size; i += 8 {
		binary.LittleEndian.PutUint64(fw[i:], r.Uint64())
	}
	le := binary.LittleEndian
	meta := s.Size - 0x1000
	m := fw[meta:]
	length := s.MetadataLength
	if length == 0 {
		length = 16 + 12*len(s.Sections)
	}
	version := s.Version
	if version == 0 {
		version = 1
	}
	copy(m, "ASEV")
	le.PutUint32(m[4:], uint32(length))
	le.PutUint32(m[8:], version)
	le.PutUint32(m[12:], uint32(len(s.Sections)))
	for i, sec := range s.Sections {
		e := m[16+12*i:]
		le.PutUint32(e, uint32(sec.GPA))
		le.PutUint32(e[4:], uint32(sec.Size))
		le.PutUint32(e[8:], sec.Type)
	}
	type entry struct {
		guid eventlog.GUID
		data []byte
	}
	u32 := func(v ...uint32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			le.PutUint32(b[4*i:], x)
		}
		return b
	}
	entries := []entry{{measure.SEVMetadataGUID, u32(uint32(s.Size - meta))}, {measure.SEVESResetBlockGUID, u32(s.ResetEIP)}}
	if !s.NoHashTable {
		entries = append([]entry{{measure.SEVHashTableGUID, u32(s.HashTableGPA, 0x400)}}, entries...)
	}
	// The footer entry ends 32 bytes before the end of the image; the
	// entries precede it, each ending with its length and GUID.
	total := 18
	for _, e := range entries {
		total += len(e.data) + 18
	}
	pos := s.Size - 32 - 18
	le.PutUint16(fw[pos:], uint16(total))
	copy(fw[pos+2:], measure.OVMFTableFooterGUID[:])
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		n := len(e.data) + 18
		pos -= n
		copy(fw[pos:], e.data)
		le.PutUint16(fw[pos+len(e.data):], uint16(n))
		copy(fw[pos+len(e.data)+2:], e.guid[:])
	}
	return fw
}

// PseudoFile is n deterministic pseudo-random bytes.
func PseudoFile(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 0x66696c65))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}
