package measure_test

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

type acpiTable struct {
	sig string
	n   int
}

// synthTables lays out an etc/acpi/tables blob of 128 KiB with tables of
// the given signatures and lengths. The APIC table gets cpus enabled
// Local APIC entries and one disabled one.
func synthTables(tables []acpiTable, cpus int) []byte {
	blob := make([]byte, 128<<10)
	off := 0
	for _, tb := range tables {
		t := blob[off : off+tb.n]
		copy(t, tb.sig)
		binary.LittleEndian.PutUint32(t[4:], uint32(tb.n))
		for i := 8; i < tb.n; i++ {
			t[i] = byte(off + i)
		}
		if tb.sig == "APIC" {
			e := t[44:]
			clear(e)
			for i := range cpus + 1 {
				e[8*i], e[8*i+1], e[8*i+3] = 0, 8, byte(i)
				if i < cpus {
					e[8*i+4] = 1
				}
			}
			rest := e[8*(cpus+1):]
			if len(rest) >= 2 {
				rest[0], rest[1] = 0x7f, byte(len(rest)) // one filler entry
			}
		}
		off += tb.n
	}
	return blob
}

// dstackTables returns the table layout of the lite fixture's QEMU: the
// lengths were found by matching the synthesised RSDP and loader against
// the fixture's acpi-rsdp and acpi-loader digests.
func dstackTables(dsdt, apic int) []acpiTable {
	return []acpiTable{{"FACS", 64}, {"DSDT", dsdt}, {"FACP", 244}, {"APIC", apic}, {"MCFG", 60}, {"WAET", 40}, {"RSDT", 52}}
}

// TestSynthesizedLoaderMatchesFixtures: for tables laid out as in the two
// dstack fixtures, the synthesised RSDP and table-loader hash to the
// digests OVMF measured. (The loader and RSDP depend only on where the
// tables are, not on their contents.)
func TestSynthesizedLoaderMatchesFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture    string
		dsdt, apic int
	}{{liteFixture, 8285, 238}, {"quote-report.json", 9098, 240}} {
		g := loadGetQuote(t, tc.fixture)
		acpi, err := measure.ACPIFromEventLog(g.events)
		if err != nil {
			t.Fatal(err)
		}
		blob := synthTables(dstackTables(tc.dsdt, tc.apic), 0)
		rsdp, err := measure.SynthesizeRSDP(blob)
		if err != nil {
			t.Fatal(err)
		}
		loader, err := measure.SynthesizeTableLoader(blob)
		if err != nil {
			t.Fatal(err)
		}
		if len(rsdp) != 20 || len(loader) != 4096 {
			t.Errorf("rsdp %d bytes, loader %d bytes", len(rsdp), len(loader))
		}
		if sha512.Sum384(rsdp) != acpi.RSDP {
			t.Errorf("%s: synthesised RSDP does not match the log", tc.fixture)
		}
		if sha512.Sum384(loader) != acpi.Loader {
			t.Errorf("%s: synthesised table-loader does not match the log", tc.fixture)
		}
		d, err := measure.ACPITables(blob, nil, nil)
		if err != nil || d.RSDP != acpi.RSDP || d.Loader != acpi.Loader || d.Tables != sha512.Sum384(blob) || d.Source != measure.SourceComputed {
			t.Errorf("ACPITables: %+v, %v", d, err)
		}
	}
}

func TestACPITables(t *testing.T) {
	blob := synthTables(dstackTables(1000, 44+8*5+2), 4)
	tables, err := measure.ParseACPITables(blob)
	if err != nil || len(tables) != 7 || tables[1].Signature != "DSDT" || tables[1].Offset != 64 {
		t.Fatalf("ParseACPITables: %+v, %v", tables, err)
	}
	if n, err := measure.MADTCPUCount(blob); err != nil || n != 4 {
		t.Errorf("MADTCPUCount = %d, %v; want 4", n, err)
	}
	d, err := measure.ACPITables(blob, nil, nil)
	if err != nil || d.MADTCPUs != 4 {
		t.Errorf("ACPITables: MADTCPUs %d, %v", d.MADTCPUs, err)
	}
	// Given blobs are hashed as they are, and then any table set works.
	odd := synthTables([]acpiTable{{"FACS", 64}, {"DSDT", 100}, {"SSDT", 50}}, 0)
	if _, err := measure.ACPITables(odd, nil, nil); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("synthesis for another table set: %v", err)
	}
	d, err = measure.ACPITables(odd, []byte("rsdp"), []byte("loader"))
	if err != nil || d.RSDP != sha512.Sum384([]byte("rsdp")) || d.Loader != sha512.Sum384([]byte("loader")) {
		t.Errorf("given blobs: %+v, %v", d, err)
	}
	for name, blob := range map[string][]byte{
		"empty": make([]byte, 64),
		"too long": func() []byte {
			b := synthTables(dstackTables(100, 60), 0)
			binary.LittleEndian.PutUint32(b[64+4:], 1<<20)
			return b
		}(),
		"too short": func() []byte {
			b := synthTables(dstackTables(100, 60), 0)
			binary.LittleEndian.PutUint32(b[64+4:], 4)
			return b
		}(),
	} {
		if _, err := measure.ParseACPITables(blob); !errors.Is(err, measure.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	dup := synthTables(append(dstackTables(100, 60), acpiTable{"MCFG", 60}), 0)
	if _, err := measure.SynthesizeTableLoader(dup); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("duplicate table: %v", err)
	}
}
