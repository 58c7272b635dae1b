package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
)

// peView is a PE image whose first len(head) bytes are replaced by head
// (the QEMU-patched kernel setup header), so that patching a kernel does
// not copy it.
type peView struct {
	head []byte
	data []byte
}

func (v peView) size() int { return len(v.data) }

// at returns n bytes at off, or false when they are beyond the end.
func (v peView) at(off, n int) ([]byte, bool) {
	if off < 0 || n < 0 || off > len(v.data) || n > len(v.data)-off {
		return nil, false
	}
	switch {
	case off+n <= len(v.head):
		return v.head[off : off+n], true
	case off >= len(v.head):
		return v.data[off : off+n], true
	}
	b := make([]byte, 0, n)
	b = append(b, v.head[off:]...)
	return append(b, v.data[len(v.head):off+n]...), true
}

// write hashes bytes [start, end), which the caller has bounds-checked.
func (v peView) write(h hash.Hash, start, end int) {
	if start < len(v.head) {
		h.Write(v.head[start:min(end, len(v.head))])
		start = len(v.head)
	}
	if start < end {
		h.Write(v.data[start:end])
	}
}

// peLayout is what Authenticode needs from the PE headers.
type peLayout struct {
	pe32Plus      bool
	checksumOff   int
	certDirOff    int
	sizeOfHeaders int
	sections      []peSection
	certAddr      uint32
	certSize      uint32
}

type peSection struct{ ptr, size uint32 }

// PE constants.
const (
	peMagic32      = 0x10b
	peMagic32Plus  = 0x20b
	secEntrySize   = 40
	certDirIndex   = 4 // IMAGE_DIRECTORY_ENTRY_SECURITY
	maxPESections  = 96
	dosLfanewOff   = 0x3c
	coffHeaderSize = 20
)

func parsePE(v peView) (*peLayout, error) {
	fail := func(format string, args ...any) (*peLayout, error) {
		return nil, fmt.Errorf("measure: pe: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	u16 := func(off int) (uint16, bool) {
		b, ok := v.at(off, 2)
		if !ok {
			return 0, false
		}
		return binary.LittleEndian.Uint16(b), true
	}
	u32 := func(off int) (uint32, bool) {
		b, ok := v.at(off, 4)
		if !ok {
			return 0, false
		}
		return binary.LittleEndian.Uint32(b), true
	}
	lfanew, ok := u32(dosLfanewOff)
	if !ok {
		return fail("no DOS header")
	}
	sig, ok := v.at(int(lfanew), 4)
	if lfanew > 1<<20 || !ok || string(sig) != "PE\x00\x00" {
		return fail("no PE signature at %#x", lfanew)
	}
	coff := int(lfanew) + 4
	nsec, ok1 := u16(coff + 2)
	optSize, ok2 := u16(coff + 16)
	opt := coff + coffHeaderSize
	magic, ok3 := u16(opt)
	if !ok1 || !ok2 || !ok3 {
		return fail("truncated COFF header")
	}
	l := &peLayout{checksumOff: opt + 64}
	var dirs, numDirsOff int
	switch magic {
	case peMagic32:
		dirs, numDirsOff = opt+96, opt+92
	case peMagic32Plus:
		l.pe32Plus = true
		dirs, numDirsOff = opt+112, opt+108
	default:
		return nil, fmt.Errorf("measure: pe: %w: optional header magic %#x", ErrUnsupported, magic)
	}
	l.certDirOff = dirs + certDirIndex*8
	numDirs, ok := u32(numDirsOff)
	if !ok {
		return fail("truncated optional header")
	}
	if numDirs <= certDirIndex || l.certDirOff+8 > opt+int(optSize) {
		return nil, fmt.Errorf("measure: pe: %w: optional header has no certificate table entry", ErrUnsupported)
	}
	soh, ok := u32(opt + 60)
	if !ok || int64(soh) < int64(l.certDirOff)+8 || int64(soh) > int64(v.size()) {
		return fail("SizeOfHeaders %#x outside [%#x, %#x]", soh, l.certDirOff+8, v.size())
	}
	l.sizeOfHeaders = int(soh)
	l.certAddr, _ = u32(l.certDirOff)
	l.certSize, _ = u32(l.certDirOff + 4)
	if nsec > maxPESections {
		return fail("%d sections", nsec)
	}
	table := opt + int(optSize)
	for i := range int(nsec) {
		e, ok := v.at(table+i*secEntrySize, secEntrySize)
		if !ok {
			return fail("section table entry %d beyond the end of the image", i)
		}
		if s := (peSection{ptr: binary.LittleEndian.Uint32(e[20:]), size: binary.LittleEndian.Uint32(e[16:])}); s.size > 0 {
			l.sections = append(l.sections, s)
		}
	}
	slices.SortStableFunc(l.sections, func(a, b peSection) int { return cmpU64(uint64(a.ptr), uint64(b.ptr)) })
	return l, nil
}

// AuthenticodeSHA384 returns the Authenticode SHA-384 digest of a PE/COFF
// image (PE32 or PE32+) with the rules of dstack-mr (§4.5):
//
//   - the headers up to SizeOfHeaders, without the CheckSum field and the
//     certificate table directory entry;
//   - each section with SizeOfRawData > 0 in PointerToRawData order,
//     truncated at the end of the file (bytes between sections are not
//     hashed);
//   - when the certificate table directory entry is non-zero, the bytes
//     after the headers and sections minus the certificate table's size
//     (without one, bytes after the last section are not hashed);
//   - zero bytes up to a multiple of 8 of the file size.
//
// Errors wrap [ErrMalformed] or [ErrUnsupported] (another optional header
// magic, no certificate table directory entry).
func AuthenticodeSHA384(pe []byte) ([48]byte, error) {
	return authenticode(peView{data: pe})
}

func authenticode(v peView) ([48]byte, error) {
	l, err := parsePE(v)
	if err != nil {
		return [48]byte{}, err
	}
	h := sha512.New384()
	v.write(h, 0, l.checksumOff)
	v.write(h, l.checksumOff+4, l.certDirOff)
	v.write(h, l.certDirOff+8, l.sizeOfHeaders)
	size := uint64(v.size())
	sum := uint64(l.sizeOfHeaders)
	for _, s := range l.sections {
		start, end := uint64(s.ptr), uint64(s.ptr)+uint64(s.size)
		if start < size {
			v.write(h, int(start), int(min(end, size)))
		}
		sum += uint64(s.size)
	}
	if l.certAddr != 0 && l.certSize != 0 && size > sum {
		if trailing := size - sum; trailing > uint64(l.certSize) {
			v.write(h, int(sum), int(sum+trailing-uint64(l.certSize)))
		}
	}
	if r := size % 8; r != 0 {
		var pad [8]byte
		h.Write(pad[:8-r])
	}
	var out [48]byte
	h.Sum(out[:0])
	return out, nil
}
