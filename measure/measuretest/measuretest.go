// Package measuretest builds small synthetic images for tests of the
// packages that measure them: a TDVF firmware with a metadata table and a
// PE32+ bzImage stand-in. The bytes are fixed, so measurements of them are
// stable across runs.
package measuretest

import (
	"encoding/binary"

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
