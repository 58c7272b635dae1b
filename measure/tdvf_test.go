package measure_test

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

// synthTDVF builds a TDVF image of size bytes: pseudo-random content, the
// metadata descriptor 4 KiB before the end, and an OVMF table (TDX
// metadata entry, footer) ending 32 bytes before the end.
func synthTDVF(size int, secs []measure.Section, seed uint64) []byte {
	fw := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 0x7464))
	for i := 0; i+8 <= size; i += 8 {
		binary.LittleEndian.PutUint64(fw[i:], r.Uint64())
	}
	desc := size - 0x1000
	d := fw[desc:]
	copy(d, "TDVF")
	binary.LittleEndian.PutUint32(d[4:], uint32(16+32*len(secs)))
	binary.LittleEndian.PutUint32(d[8:], 1)
	binary.LittleEndian.PutUint32(d[12:], uint32(len(secs)))
	for i, s := range secs {
		e := d[16+32*i:]
		binary.LittleEndian.PutUint32(e[0:], s.DataOffset)
		binary.LittleEndian.PutUint32(e[4:], s.RawDataSize)
		binary.LittleEndian.PutUint64(e[8:], s.MemoryAddress)
		binary.LittleEndian.PutUint64(e[16:], s.MemoryDataSize)
		binary.LittleEndian.PutUint32(e[24:], uint32(s.Type))
		binary.LittleEndian.PutUint32(e[28:], s.Attributes)
	}
	footer := size - 32 - 18
	binary.LittleEndian.PutUint16(fw[footer:], 22+18)
	copy(fw[footer+2:], measure.OVMFTableFooterGUID[:])
	meta := footer - 22
	binary.LittleEndian.PutUint32(fw[meta:], uint32(size-desc))
	binary.LittleEndian.PutUint16(fw[meta+4:], 22)
	copy(fw[meta+6:], measure.TDXMetadataGUID[:])
	return fw
}

// naiveMRTD is the straightforward MRTD: build the whole measured stream,
// then hash it once.
func naiveMRTD(fw []byte, secs []measure.Section, twoPass bool) [48]byte {
	var stream []byte
	add := func(gpa uint64) {
		rec := make([]byte, 128)
		copy(rec, "MEM.PAGE.ADD")
		binary.LittleEndian.PutUint64(rec[16:], gpa)
		stream = append(stream, rec...)
	}
	extend := func(gpa uint64, data []byte) {
		for i := 0; i < 4096; i += 256 {
			rec := make([]byte, 128)
			copy(rec, "MR.EXTEND")
			binary.LittleEndian.PutUint64(rec[16:], gpa+uint64(i))
			stream = append(stream, rec...)
			stream = append(stream, data[i:i+256]...)
		}
	}
	for _, s := range secs {
		doAdd, doExtend := s.Attributes&2 == 0, s.Attributes&1 != 0
		pages := int(s.MemoryDataSize / 4096)
		page := func(p int) (uint64, []byte) {
			off := int(s.DataOffset) + 4096*p
			return s.MemoryAddress + uint64(4096*p), fw[off : off+4096]
		}
		if twoPass {
			for p := 0; doAdd && p < pages; p++ {
				gpa, _ := page(p)
				add(gpa)
			}
			for p := 0; doExtend && p < pages; p++ {
				extend(page(p))
			}
			continue
		}
		for p := range pages {
			gpa, data := page(p)
			if doAdd {
				add(gpa)
			}
			if doExtend {
				extend(gpa, data)
			}
		}
	}
	return sha512.Sum384(stream)
}

// synthSections has every section type in use and every attribute
// combination, including a section with more pages than addBatch and one
// whose memory is larger than its raw data.
func synthSections() []measure.Section {
	return []measure.Section{
		{DataOffset: 0x00000, RawDataSize: 0x20000, MemoryAddress: 0xFFE00000, MemoryDataSize: 0x20000, Type: measure.SectionCFV, Attributes: 0},
		{DataOffset: 0x20000, RawDataSize: 0x50000, MemoryAddress: 0xFFE20000, MemoryDataSize: 0x50000, Type: measure.SectionBFV, Attributes: measure.AttrMRExtend},
		{DataOffset: 0x70000, RawDataSize: 0x2000, MemoryAddress: 0x00900000, MemoryDataSize: 0x3000, Type: measure.SectionPayload, Attributes: measure.AttrMRExtend | measure.AttrPageAug},
		{DataOffset: 0, RawDataSize: 0, MemoryAddress: 0x00810000, MemoryDataSize: 0x10000, Type: measure.SectionTempMem, Attributes: 0},
		{DataOffset: 0, RawDataSize: 0, MemoryAddress: 0x0080B000, MemoryDataSize: 0x2000, Type: measure.SectionTempMem, Attributes: measure.AttrPageAug},
		{DataOffset: 0, RawDataSize: 0, MemoryAddress: 0x00809000, MemoryDataSize: 0x2000, Type: measure.SectionTDHOB, Attributes: 0},
		{DataOffset: 0, RawDataSize: 0, MemoryAddress: 0x00800000, MemoryDataSize: 0x6000, Type: measure.SectionTempMem, Attributes: 0},
	}
}

func TestSyntheticTDVFMRTD(t *testing.T) {
	secs := synthSections()
	fw := synthTDVF(0x80000, secs, 1)
	tdvf, err := measure.ParseTDVF(fw)
	if err != nil {
		t.Fatalf("ParseTDVF: %v", err)
	}
	if len(tdvf.Sections) != len(secs) {
		t.Fatalf("%d sections", len(tdvf.Sections))
	}
	for i, s := range tdvf.Sections {
		if s != secs[i] {
			t.Errorf("section %d = %+v, want %+v", i, s, secs[i])
		}
	}
	for _, order := range []measure.PageOrder{measure.SinglePass, measure.TwoPass} {
		want := naiveMRTD(fw, secs, order == measure.TwoPass)
		if got := tdvf.MRTD(order); got != want {
			t.Errorf("MRTD(%v) = %x, naive %x", order, got, want)
		}
		if got := tdvf.MRTDs()[order]; got != want {
			t.Errorf("MRTDs()[%v] differs", order)
		}
	}
	if tdvf.MRTD(measure.SinglePass) == tdvf.MRTD(measure.TwoPass) {
		t.Error("single and two pass agree")
	}
	// One section at a time, each attribute combination on a measured
	// type: the orders differ exactly when pages are both added and
	// extended.
	for attr := range uint32(4) {
		s := []measure.Section{{DataOffset: 0x1000, RawDataSize: 0x3000, MemoryAddress: 0x100000, MemoryDataSize: 0x3000, Type: measure.SectionBFV, Attributes: attr}}
		fw := synthTDVF(0x10000, s, uint64(attr))
		tdvf, err := measure.ParseTDVF(fw)
		if err != nil {
			t.Fatal(err)
		}
		one, two := tdvf.MRTD(measure.SinglePass), tdvf.MRTD(measure.TwoPass)
		if one != naiveMRTD(fw, s, false) || two != naiveMRTD(fw, s, true) {
			t.Errorf("attributes %#x: MRTD differs from the naive implementation", attr)
		}
		if (one != two) != (attr == measure.AttrMRExtend) {
			t.Errorf("attributes %#x: single==two is %v", attr, one == two)
		}
	}
}

func TestParseTDVFErrors(t *testing.T) {
	good := synthSections()
	mutate := func(f func(s []measure.Section)) []measure.Section {
		s := append([]measure.Section(nil), good...)
		f(s)
		return s
	}
	cases := []struct {
		name string
		fw   []byte
		want error
	}{
		{"no footer", make([]byte, 0x10000), measure.ErrNoOVMFTable},
		{"tiny", []byte{1, 2, 3}, measure.ErrNoOVMFTable},
		{"unaligned address", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[3].MemoryAddress += 8 }), 1), measure.ErrMalformed},
		{"unaligned size", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[3].MemoryDataSize = 0x1800 }), 1), measure.ErrMalformed},
		{"memory below raw", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[1].MemoryDataSize = 0x10000 }), 1), measure.ErrMalformed},
		{"raw beyond image", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[0].DataOffset = 0x7F000 }), 1), measure.ErrMalformed},
		{"measured beyond image", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[2].MemoryDataSize = 0x100000 }), 1), measure.ErrMalformed},
		{"unknown type", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[3].Type = 9 }), 1), measure.ErrUnsupported},
		{"unknown attribute", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[3].Attributes = 4 }), 1), measure.ErrUnsupported},
		{"too much memory", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[3].MemoryDataSize = 512 << 20 }), 1), measure.ErrUnsupported},
		{"no sections", synthTDVF(0x80000, nil, 1), measure.ErrMalformed},
		{"memory size wraps the total", synthTDVF(0x80000, mutate(func(s []measure.Section) { s[3].MemoryAddress, s[3].MemoryDataSize = 0, 1<<64-0x10000 }), 1), measure.ErrUnsupported},
	}
	noMeta := synthTDVF(0x10000, good[:1], 1)
	copy(noMeta[len(noMeta)-32-18-16:], make([]byte, 16)) // erase the TDX GUID
	cases = append(cases, struct {
		name string
		fw   []byte
		want error
	}{"no tdx metadata", noMeta, measure.ErrNoTDXMetadata})
	badSig := synthTDVF(0x10000, good[:1], 1)
	copy(badSig[0x10000-0x1000:], "XDVF")
	cases = append(cases, struct {
		name string
		fw   []byte
		want error
	}{"descriptor signature", badSig, measure.ErrMalformed})
	for _, tc := range cases {
		if tdvf, err := measure.ParseTDVF(tc.fw); !errors.Is(err, tc.want) || tdvf != nil {
			t.Errorf("%s: ParseTDVF = %v, %v; want %v", tc.name, tdvf, err, tc.want)
		}
	}
}

// TestTDHOBWitness round-trips the layout of the synthetic firmware (the
// dstack OVMF's) through the witness.
func TestTDHOBWitness(t *testing.T) {
	tdvf, err := measure.ParseTDVF(synthTDVF(0x80000, synthSections(), 1))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tdvf.TDHOBLayout()
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Witness()
	if err != nil || hex.EncodeToString(w) != dstackWitness {
		t.Fatalf("Witness = %x, %v; want %s", w, err, dstackWitness)
	}
	back, err := measure.ParseTDHOBWitness(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range []uint64{1 << 30, 2 << 30, 0xA000_0000, 0xB000_0000, 64 << 30} {
		a, err1 := l.Digest(mem)
		b, err2 := back.Digest(mem)
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("Digest(%#x): %x %v / %x %v", mem, a, err1, b, err2)
		}
	}
	// 2 GiB and 3 GiB produce different HOBs; an accepted range beyond
	// RAM is an error.
	a, _ := l.Digest(2 << 30)
	b, _ := l.Digest(3 << 30)
	if a == b {
		t.Error("TD HOB does not depend on RAM")
	}
	if _, err := l.Build(0x810000); !errors.Is(err, measure.ErrMalformed) {
		t.Errorf("RAM below the accepted ranges: %v", err)
	}
	for name, w := range map[string]string{
		"truncated":   "801009",
		"trailing":    dstackWitness + "00",
		"non-minimal": "8010098000",
		"zero pages":  "80100901" + "0000",
		"overlap":     "801009020004" + "0204",
		"hob outside": "80103001" + "0006",
		"overflow":    "ffffffffffffffffff01",
	} {
		if _, err := measure.ParseTDHOBWitness(mustHex(t, w)); !errors.Is(err, measure.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTDHOBLayout checks the HOB bytes for 2 GiB against a hand-written
// expectation of the resource HOBs.
func TestTDHOBLayout(t *testing.T) {
	l, err := measure.ParseTDHOBWitness(mustHex(t, dstackWitness))
	if err != nil {
		t.Fatal(err)
	}
	check := func(mem uint64, ranges [][3]uint64) {
		hob, err := l.Build(mem)
		if err != nil {
			t.Fatal(err)
		}
		if len(hob) != 56+48*len(ranges) {
			t.Fatalf("mem %#x: %d bytes, want %d resource HOBs", mem, len(hob), len(ranges))
		}
		if end := binary.LittleEndian.Uint64(hob[48:]); end != 0x809000+uint64(len(hob))+8 {
			t.Errorf("EfiEndOfHobList = %#x", end)
		}
		for i, r := range ranges {
			e := hob[56+48*i:]
			if typ, start, n := uint64(e[24]), binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:]); typ != r[0] || start != r[1] || n != r[2] {
				t.Errorf("mem %#x: resource %d = (%d, %#x, %#x), want (%d, %#x, %#x)", mem, i, typ, start, n, r[0], r[1], r[2])
			}
		}
	}
	check(2<<30, [][3]uint64{{7, 0, 0x800000}, {0, 0x800000, 0x6000}, {7, 0x806000, 0x3000}, {0, 0x809000, 0x2000},
		{0, 0x80B000, 0x2000}, {7, 0x80D000, 0x3000}, {0, 0x810000, 0x10000}, {7, 0x820000, 0x80000000 - 0x820000}})
	check(4<<30, [][3]uint64{{7, 0, 0x800000}, {0, 0x800000, 0x6000}, {7, 0x806000, 0x3000}, {0, 0x809000, 0x2000},
		{0, 0x80B000, 0x2000}, {7, 0x80D000, 0x3000}, {0, 0x810000, 0x10000}, {7, 0x820000, 0x80000000 - 0x820000}, {7, 1 << 32, 2 << 30}})
}
