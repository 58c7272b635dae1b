package measure_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

// peSpec describes a synthetic PE image.
type peSpec struct {
	plus          bool
	sizeOfHeaders uint32
	sections      []peSec
	trailing      int // bytes after the last section (before a certificate table)
	cert          int // certificate table size; 0 for none
	numDirs       uint32
	magic         uint16 // overrides the optional header magic when set
}

type peSec struct{ ptr, size uint32 }

// peOffsets are the builder's own record of where things are.
type peOffsets struct{ checksum, certDir, sizeOfHeaders int }

const peLfanew = 0x80

// buildPE lays out a PE image: DOS stub with e_lfanew, PE signature,
// COFF header, optional header with 16 data directories, section table,
// then section data (deterministic bytes), trailing data and the
// certificate table.
func buildPE(s peSpec) ([]byte, peOffsets) {
	optSize := 224
	if s.plus {
		optSize = 240
	}
	if s.sizeOfHeaders == 0 {
		s.sizeOfHeaders = 0x400
	}
	if s.numDirs == 0 {
		s.numDirs = 16
	}
	end := int(s.sizeOfHeaders)
	for _, sec := range s.sections {
		end = max(end, int(sec.ptr+sec.size))
	}
	f := make([]byte, end+s.trailing+s.cert)
	for i := range f {
		f[i] = byte(i*7 + i>>8)
	}
	copy(f, "MZ")
	binary.LittleEndian.PutUint32(f[0x3c:], peLfanew)
	copy(f[peLfanew:], "PE\x00\x00")
	coff := peLfanew + 4
	machine := uint16(0x14c)
	if s.plus {
		machine = 0x8664
	}
	binary.LittleEndian.PutUint16(f[coff:], machine)
	binary.LittleEndian.PutUint16(f[coff+2:], uint16(len(s.sections)))
	binary.LittleEndian.PutUint16(f[coff+16:], uint16(optSize))
	binary.LittleEndian.PutUint16(f[coff+18:], 0x0002|0x0020) // executable, large address aware
	opt := coff + 20
	clear(f[opt : opt+optSize])
	magic, dirs, numDirsOff := uint16(0x10b), opt+96, opt+92
	if s.plus {
		magic, dirs, numDirsOff = 0x20b, opt+112, opt+108
	}
	if s.magic != 0 {
		magic = s.magic
	}
	binary.LittleEndian.PutUint16(f[opt:], magic)
	binary.LittleEndian.PutUint32(f[opt+32:], 0x1000) // SectionAlignment
	binary.LittleEndian.PutUint32(f[opt+36:], 0x200)  // FileAlignment
	binary.LittleEndian.PutUint32(f[opt+56:], 0x100000)
	binary.LittleEndian.PutUint32(f[opt+60:], s.sizeOfHeaders)
	binary.LittleEndian.PutUint32(f[opt+64:], 0xC0FFEE) // CheckSum
	binary.LittleEndian.PutUint16(f[opt+68:], 10)       // EFI application
	binary.LittleEndian.PutUint32(f[numDirsOff:], s.numDirs)
	certDir := dirs + 4*8
	if s.cert > 0 {
		binary.LittleEndian.PutUint32(f[certDir:], uint32(end+s.trailing))
		binary.LittleEndian.PutUint32(f[certDir+4:], uint32(s.cert))
	}
	table := opt + optSize
	for i, sec := range s.sections {
		e := f[table+40*i : table+40*i+40]
		clear(e)
		copy(e, ".sec")
		binary.LittleEndian.PutUint32(e[8:], sec.size)
		binary.LittleEndian.PutUint32(e[12:], 0x1000*uint32(i+1))
		binary.LittleEndian.PutUint32(e[16:], sec.size)
		binary.LittleEndian.PutUint32(e[20:], sec.ptr)
		binary.LittleEndian.PutUint32(e[36:], 0x60000020)
	}
	clear(f[table+40*len(s.sections) : s.sizeOfHeaders])
	return f, peOffsets{checksum: opt + 64, certDir: certDir, sizeOfHeaders: int(s.sizeOfHeaders)}
}

// naiveAuthenticode concatenates the hashed ranges from the builder's
// offsets and the spec (not from parsing) and hashes them once.
func naiveAuthenticode(f []byte, o peOffsets, s peSpec) [48]byte {
	var b []byte
	b = append(b, f[:o.checksum]...)
	b = append(b, f[o.checksum+4:o.certDir]...)
	b = append(b, f[o.certDir+8:o.sizeOfHeaders]...)
	secs := slices.Clone(s.sections)
	slices.SortStableFunc(secs, func(a, b peSec) int { return int(a.ptr) - int(b.ptr) })
	sum := o.sizeOfHeaders
	for _, sec := range secs {
		if int(sec.ptr) < len(f) {
			b = append(b, f[sec.ptr:min(len(f), int(sec.ptr+sec.size))]...)
		}
		sum += int(sec.size)
	}
	if s.cert > 0 && len(f)-sum > s.cert {
		b = append(b, f[sum:len(f)-s.cert]...)
	}
	if r := len(f) % 8; r != 0 {
		b = append(b, make([]byte, 8-r)...)
	}
	return sha512.Sum384(b)
}

var peCases = []struct {
	name string
	spec peSpec
}{
	{"pe32", peSpec{sections: []peSec{{0x400, 0x800}, {0xC00, 0x400}}}},
	{"pe32+", peSpec{plus: true, sections: []peSec{{0x400, 0x800}, {0xC00, 0x400}}}},
	{"pe32+ cert table", peSpec{plus: true, sections: []peSec{{0x400, 0x800}, {0xC00, 0x400}}, cert: 0x238}},
	{"pe32 cert table", peSpec{sections: []peSec{{0x400, 0x1000}}, cert: 0x100}},
	{"pe32+ cert table and trailing data", peSpec{plus: true, sections: []peSec{{0x400, 0x800}}, trailing: 0x33, cert: 0x200}},
	{"pe32+ cert table after aligned trailing data", peSpec{plus: true, sections: []peSec{{0x400, 0x800}}, trailing: 0x38, cert: 0x200}},
	{"pe32+ trailing data without cert table", peSpec{plus: true, sections: []peSec{{0x400, 0x800}}, trailing: 0x35}},
	{"pe32+ section gap", peSpec{plus: true, sections: []peSec{{0x400, 0x200}, {0x800, 0x200}}}},
	{"pe32+ sections out of order", peSpec{plus: true, sections: []peSec{{0x800, 0x200}, {0x400, 0x400}}}},
	{"pe32+ empty section", peSpec{plus: true, sections: []peSec{{0x400, 0x400}, {0, 0}, {0x800, 0x200}}}},
	{"pe32+ unaligned size", peSpec{plus: true, sections: []peSec{{0x400, 0x3FD}}}},
	{"pe32 unaligned size", peSpec{sections: []peSec{{0x400, 0x401}}}},
	{"pe32+ unaligned with cert", peSpec{plus: true, sections: []peSec{{0x400, 0x3FB}}, cert: 0x105}},
	{"pe32+ no sections", peSpec{plus: true}},
}

func TestAuthenticodeSynthetic(t *testing.T) {
	for _, tc := range peCases {
		t.Run(tc.name, func(t *testing.T) {
			f, o := buildPE(tc.spec)
			got, err := measure.AuthenticodeSHA384(f)
			if err != nil {
				t.Fatalf("AuthenticodeSHA384: %v", err)
			}
			if want := naiveAuthenticode(f, o, tc.spec); got != want {
				t.Errorf("digest %x, naive %x", got, want)
			}
			// Excluded fields do not matter.
			g := slices.Clone(f)
			g[o.checksum] ^= 0xff
			if tc.spec.cert == 0 {
				g[o.certDir+2] ^= 0xff // only safe to change an unused entry's address
			}
			if d, _ := measure.AuthenticodeSHA384(g); d != got {
				t.Error("CheckSum or certificate table entry changed the digest")
			}
			if tc.spec.cert > 0 {
				g := slices.Clone(f)
				g[len(g)-1] ^= 0xff
				if d, _ := measure.AuthenticodeSHA384(g); d != got {
					t.Error("certificate table content changed the digest")
				}
			}
			// Section content matters.
			if len(tc.spec.sections) > 0 {
				g := slices.Clone(f)
				g[tc.spec.sections[0].ptr]++
				if d, _ := measure.AuthenticodeSHA384(g); d == got && tc.spec.sections[0].size > 0 {
					t.Error("section content did not change the digest")
				}
			}
		})
	}
}

// TestAuthenticodeRules pins the dstack-specific rules one by one.
func TestAuthenticodeRules(t *testing.T) {
	digest := func(s peSpec, edit func(f []byte)) [48]byte {
		f, _ := buildPE(s)
		if edit != nil {
			edit(f)
		}
		d, err := measure.AuthenticodeSHA384(f)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	gap := peSpec{plus: true, sections: []peSec{{0x400, 0x200}, {0x800, 0x200}}}
	if digest(gap, nil) != digest(gap, func(f []byte) { f[0x700]++ }) {
		t.Error("a byte between sections is hashed")
	}
	noCert := peSpec{plus: true, sections: []peSec{{0x400, 0x800}}, trailing: 0x40}
	if digest(noCert, nil) != digest(noCert, func(f []byte) { f[len(f)-1]++ }) {
		t.Error("trailing data without a certificate table is hashed (dstack does not)")
	}
	withCert := peSpec{plus: true, sections: []peSec{{0x400, 0x800}}, trailing: 0x40, cert: 0x80}
	if digest(withCert, nil) == digest(withCert, func(f []byte) { f[0xC00]++ }) {
		t.Error("trailing data before the certificate table is not hashed")
	}
	// A section running past the end is hashed up to the end.
	f, o := buildPE(peSpec{plus: true, sections: []peSec{{0x400, 0x400}}})
	f = f[:0x600]
	got, err := measure.AuthenticodeSHA384(f)
	if want := naiveAuthenticode(f, o, peSpec{plus: true, sections: []peSec{{0x400, 0x400}}}); err != nil || got != want {
		t.Errorf("truncated section: %x, %v; want %x", got, err, want)
	}
	// Unaligned sizes are padded with zeros to a multiple of 8.
	spec := peSpec{plus: true, sections: []peSec{{0x400, 0x3FD}}}
	f, o = buildPE(spec)
	if len(f)%8 == 0 {
		t.Fatal("test image is aligned")
	}
	var b []byte
	b = append(b, f[:o.checksum]...)
	b = append(b, f[o.checksum+4:o.certDir]...)
	b = append(b, f[o.certDir+8:]...)
	got, _ = measure.AuthenticodeSHA384(f)
	if got != sha512.Sum384(append(b, make([]byte, 8-len(f)%8)...)) || got == sha512.Sum384(b) {
		t.Error("unaligned image is not zero-padded to a multiple of 8")
	}
}

func TestAuthenticodeErrors(t *testing.T) {
	good, _ := buildPE(peSpec{plus: true, sections: []peSec{{0x400, 0x400}}})
	for _, tc := range []struct {
		name string
		f    []byte
		want error
	}{
		{"empty", nil, measure.ErrMalformed},
		{"no PE signature", append([]byte("MZ"), make([]byte, 0x200)...), measure.ErrMalformed},
		{"truncated headers", good[:0x100], measure.ErrMalformed},
		{"bad magic", func() []byte { f, _ := buildPE(peSpec{magic: 0x107}); return f }(), measure.ErrUnsupported},
		{"few data directories", func() []byte { f, _ := buildPE(peSpec{plus: true, numDirs: 4}); return f }(), measure.ErrUnsupported},
		{"SizeOfHeaders beyond end", func() []byte { f, _ := buildPE(peSpec{plus: true, sizeOfHeaders: 0x400}); return f[:0x300] }(), measure.ErrMalformed},
		{"section table beyond end", func() []byte {
			f := slices.Clone(good)
			binary.LittleEndian.PutUint16(f[peLfanew+6:], 90)
			binary.LittleEndian.PutUint32(f[peLfanew+24+60:], uint32(len(f)))
			return f
		}(), measure.ErrMalformed},
	} {
		if _, err := measure.AuthenticodeSHA384(tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// synthKernel builds a bzImage-like PE32+ image of size bytes with a boot
// protocol 2.15 setup header (loaded high, XLF_KERNEL_64 and
// XLF_CAN_BE_LOADED_ABOVE_4G, initrd_addr_max 0x7fffffff).
func synthKernel(size int) []byte {
	spec := peSpec{plus: true, sizeOfHeaders: 0x1000, sections: []peSec{{0x1000, uint32(size - 0x1000)}}}
	f, _ := buildPE(spec)
	binary.LittleEndian.PutUint16(f[0x206:], 0x020f) // boot protocol
	copy(f[0x202:], "HdrS")
	f[0x211] = 0x01 // LOADED_HIGH
	binary.LittleEndian.PutUint32(f[0x22c:], 0x7fffffff)
	binary.LittleEndian.PutUint16(f[0x236:], 0x03)
	return f
}

func TestPatchKernelHeader(t *testing.T) {
	k := synthKernel(0x10000)
	le := binary.LittleEndian
	for _, tc := range []struct {
		mem, initrd uint64
		addr        uint32
	}{
		{2 << 30, 0x300000, uint32((0x80000000 - 0x28000 - 1 - 0x300000) &^ 0xfff)},
		{0xB000_0000, 0x300000, uint32((0x80000000 - 0x28000 - 1 - 0x300000) &^ 0xfff)},
		{0xA000_0000, 0x300000, uint32((0xA0000000 - 0x28000 - 1 - 0x300000) &^ 0xfff)},
		{1 << 30, 0x1000, uint32((0x40000000 - 0x28000 - 1 - 0x1000) &^ 0xfff)},
	} {
		h, err := measure.PatchKernelHeader(k, tc.initrd, tc.mem)
		if err != nil {
			t.Fatal(err)
		}
		if h[0x210] != 0xb0 || h[0x211] != 0x81 || le.Uint32(h[0x224:]) != 0x20000-0x10000-0x200 || le.Uint32(h[0x228:]) != 0x20000 {
			t.Errorf("mem %#x: loader fields % x", tc.mem, h[0x210:0x22c])
		}
		if le.Uint32(h[0x218:]) != tc.addr || le.Uint32(h[0x21c:]) != uint32(tc.initrd) {
			t.Errorf("mem %#x: ramdisk %#x+%#x, want %#x", tc.mem, le.Uint32(h[0x218:]), le.Uint32(h[0x21c:]), tc.addr)
		}
		if !bytes.Equal(h[0x300:], k[0x300:0x1000]) {
			t.Error("bytes beyond the setup header changed")
		}
	}
	// The kernel digest is the same for 2 GiB and ≥ 2.75 GiB, and
	// differs in between.
	d := func(mem uint64) [48]byte {
		x, err := measure.KernelAuthenticode(k, 0x300000, mem)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	if d(2<<30) != d(0xB000_0000) || d(2<<30) != d(64<<30) || d(2<<30) == d(0xA000_0000) {
		t.Error("kernel digest RAM dependence is wrong")
	}
	// KernelAuthenticode equals Authenticode over an explicitly patched
	// copy.
	h, _ := measure.PatchKernelHeader(k, 0x300000, 2<<30)
	full := append(slices.Clone(h), k[len(h):]...)
	if want, _ := measure.AuthenticodeSHA384(full); d(2<<30) != want {
		t.Error("KernelAuthenticode differs from Authenticode of the patched copy")
	}
	if _, err := measure.PatchKernelHeader(k[:0x800], 0, 2<<30); !errors.Is(err, measure.ErrMalformed) {
		t.Errorf("short kernel: %v", err)
	}
	if _, err := measure.PatchKernelHeader(k, 0x7fff0000, 2<<30); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("huge initrd: %v", err)
	}
	// Without XLF_CAN_BE_LOADED_ABOVE_4G, initrd_addr_max bounds the
	// initrd; an older protocol uses 0x37ffffff.
	for _, tc := range []struct {
		protocol, xlf uint16
		addr          uint32
	}{{0x20f, 0, (0x3fffffff - 0x300000) &^ 0xfff}, {0x20b, 0x2, (0x3fffffff - 0x300000) &^ 0xfff}, {0x202, 0x2, (0x37ffffff - 0x300000) &^ 0xfff}} {
		k2 := slices.Clone(k)
		le.PutUint16(k2[0x206:], tc.protocol)
		le.PutUint16(k2[0x236:], tc.xlf)
		binary.LittleEndian.PutUint32(k2[0x22c:], 0x3fffffff)
		h, err := measure.PatchKernelHeader(k2, 0x300000, 4<<30)
		if err != nil || le.Uint32(h[0x218:]) != tc.addr {
			t.Errorf("protocol %#x xlf %#x: ramdisk at %#x, %v; want %#x", tc.protocol, tc.xlf, le.Uint32(h[0x218:]), err, tc.addr)
		}
	}
	old := slices.Clone(k)
	le.PutUint16(old[0x206:], 0x0100)
	if _, err := measure.PatchKernelHeader(old, 1, 2<<30); !errors.Is(err, measure.ErrMalformed) {
		t.Errorf("protocol 1.00 with initrd: %v", err)
	}
}
