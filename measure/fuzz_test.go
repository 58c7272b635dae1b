package measure_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
)

// smallTDVFSections fit a 16 KiB synthetic firmware, so fuzzing stays
// fast.
func smallTDVFSections() []measure.Section {
	return []measure.Section{
		{DataOffset: 0x0000, RawDataSize: 0x1000, MemoryAddress: 0xFFFF0000, MemoryDataSize: 0x1000, Type: measure.SectionCFV},
		{DataOffset: 0x1000, RawDataSize: 0x1000, MemoryAddress: 0xFFFF1000, MemoryDataSize: 0x1000, Type: measure.SectionBFV, Attributes: measure.AttrMRExtend},
		{MemoryAddress: 0x809000, MemoryDataSize: 0x2000, Type: measure.SectionTDHOB},
		{MemoryAddress: 0x800000, MemoryDataSize: 0x6000, Type: measure.SectionTempMem, Attributes: measure.AttrPageAug},
	}
}

// FuzzParseTDVF: a firmware either fails to parse with a nil result, or
// yields sections that satisfy the documented checks, an MRTD for both
// orders and, when it has a TD HOB, a witness that round-trips.
func FuzzParseTDVF(f *testing.F) {
	f.Add(synthTDVF(0x4000, smallTDVFSections(), 1))
	f.Add(synthTDVF(0x4000, smallTDVFSections()[:1], 2))
	f.Add(synthTDVF(0x4000, nil, 3))
	f.Add(make([]byte, 0x100))
	f.Fuzz(func(t *testing.T, fw []byte) {
		tdvf, err := measure.ParseTDVF(fw)
		if err != nil {
			if tdvf != nil {
				t.Fatal("result with error")
			}
			return
		}
		for _, s := range tdvf.Sections {
			if s.MemoryAddress%4096 != 0 || s.MemoryDataSize%4096 != 0 || s.MemoryDataSize < uint64(s.RawDataSize) ||
				uint64(s.DataOffset)+uint64(s.RawDataSize) > uint64(len(fw)) {
				t.Fatalf("invalid section accepted: %+v", s)
			}
		}
		var mem uint64
		for _, s := range tdvf.Sections {
			mem += s.MemoryDataSize
		}
		if mem <= 4<<20 && tdvf.MRTD(measure.SinglePass) != tdvf.MRTDs()[measure.SinglePass] {
			t.Fatal("MRTD not deterministic") // (large ADD-only sections are slow under coverage)
		}
		l, err := tdvf.TDHOBLayout()
		if err != nil {
			return
		}
		w, err := l.Witness()
		if err != nil {
			t.Fatalf("layout without witness: %v", err)
		}
		back, err := measure.ParseTDHOBWitness(w)
		if err != nil || !reflect.DeepEqual(back, l) {
			t.Fatalf("witness round trip: %+v vs %+v (%v)", back, l, err)
		}
		l.Build(2 << 30)
	})
}

// FuzzParseTDHOBWitness: an accepted witness re-encodes to a witness that
// parses to the same layout.
func FuzzParseTDHOBWitness(f *testing.F) {
	f.Add(mustHex(f, dstackWitness))
	f.Add([]byte{0x80, 0x10, 0x00, 0x01, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, w []byte) {
		l, err := measure.ParseTDHOBWitness(w)
		if err != nil {
			if l != nil {
				t.Fatal("result with error")
			}
			return
		}
		w2, err := l.Witness()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := measure.ParseTDHOBWitness(w2)
		if err != nil || !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip: %v", err)
		}
		for _, mem := range []uint64{2 << 30, 0xB000_0000} {
			l.Digest(mem)
		}
	})
}

// FuzzAuthenticode: PE parsing never panics, and hashing through the
// patched-header view equals hashing an explicitly patched copy. (The
// CheckSum field may matter here: a section may cover the headers.)
func FuzzAuthenticode(f *testing.F) {
	for _, tc := range peCases {
		b, _ := buildPE(tc.spec)
		f.Add(b)
	}
	f.Add(synthKernel(0x2000))
	f.Fuzz(func(t *testing.T, pe []byte) {
		d, err := measure.AuthenticodeSHA384(pe)
		if err != nil {
			return
		}
		if d2, _ := measure.AuthenticodeSHA384(slices.Clone(pe)); d2 != d {
			t.Fatal("digest not deterministic")
		}
		head, err := measure.PatchKernelHeader(pe, 0x1000, 2<<30)
		if err != nil {
			return
		}
		viaView, err1 := measure.KernelAuthenticode(pe, 0x1000, 2<<30)
		viaCopy, err2 := measure.AuthenticodeSHA384(append(head, pe[len(head):]...))
		if (err1 == nil) != (err2 == nil) || viaView != viaCopy {
			t.Fatalf("view %x (%v) vs copy %x (%v)", viaView, err1, viaCopy, err2)
		}
	})
}

// FuzzParseLiteMeasurement: a document either fails with a nil result or
// re-encodes to a document that parses to the same value, and encoding is
// stable.
func FuzzParseLiteMeasurement(f *testing.F) {
	lite, err := measure.NewLiteMeasurement(synthImage(0x40000, 0x2000, 0x100))
	if err != nil {
		f.Fatal(err)
	}
	doc, err := lite.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add(doc[:len(doc)-1])
	// dstack's own document, when the shared fixtures are present.
	if b, err := os.ReadFile(filepath.Join(testvectors.Location(), "dstack", liteFixture)); err == nil {
		var raw struct {
			VMConfig string `json:"vm_config"`
		}
		var vm vmConfig
		if json.Unmarshal(b, &raw) == nil && json.Unmarshal([]byte(raw.VMConfig), &vm) == nil && vm.TDXMeasurement != nil {
			f.Add(vm.TDXMeasurement.Measurement)
		}
	}
	f.Add([]byte{0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := measure.ParseLiteMeasurement(b)
		if err != nil {
			if l != nil {
				t.Fatal("result with error")
			}
			return
		}
		enc, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := measure.ParseLiteMeasurement(enc)
		if err != nil || !reflect.DeepEqual(l, l2) {
			t.Fatalf("round trip: %v", err)
		}
		enc2, _ := l2.Marshal()
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding not stable")
		}
	})
}

// FuzzACPITables: a tables blob either fails to parse, or its tables lie
// inside the blob end to end; when the loader and RSDP can be
// synthesised, the layout recovered from their digests has the blob's
// MADT length and DSDT length.
func FuzzACPITables(f *testing.F) {
	f.Add(layoutBlob(300, 244, 2, 16)[:1024])
	f.Add(layoutBlob(100, 244, 1, 5)[:600])
	f.Add(synthTables([]acpiTable{{"FACS", 64}, {"DSDT", 100}, {"SSDT", 50}}, 0)[:256])
	f.Fuzz(func(t *testing.T, blob []byte) {
		tables, err := measure.ParseACPITables(blob)
		if err != nil {
			if tables != nil {
				t.Fatal("result with error")
			}
			return
		}
		end := 0
		for _, tb := range tables {
			if tb.Offset != end || tb.Length < 8 || tb.Offset+tb.Length > len(blob) {
				t.Fatalf("table %+v after %d in a %d-byte blob", tb, end, len(blob))
			}
			end += tb.Length
		}
		_, _ = measure.MADTCPUCount(blob)
		d, err := measure.ACPITables(blob, nil, nil)
		if err != nil {
			return
		}
		l, err := measure.RecoverACPILayout(d, 0)
		if err != nil {
			return // a MADT outside the model
		}
		var dsdt, madt int
		for _, tb := range tables {
			switch tb.Signature {
			case "DSDT":
				dsdt = tb.Length
			case "APIC":
				madt = tb.Length
			}
		}
		if l.DSDTLength != dsdt || l.MADTLength != madt {
			t.Fatalf("recovered %+v from tables %+v", l, tables)
		}
	})
}
