package measure_test

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

// madt builds a MADT the way QEMU lays it out: header, local APIC
// address and flags, one enabled Processor Local APIC entry per vCPU, an
// I/O APIC, the interrupt source overrides and a Local APIC NMI entry.
func madt(cpus, overrides int) []byte {
	b := make([]byte, 44)
	copy(b, "APIC")
	binary.LittleEndian.PutUint32(b[36:], 0xfee00000)
	for i := range cpus {
		b = append(b, 0, 8, byte(i), byte(i), 1, 0, 0, 0)
	}
	b = append(b, 1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0)
	for i := range overrides {
		gsi := byte(i)
		if i == 0 {
			gsi = 2
		}
		b = append(b, 2, 10, 0, byte(i), gsi, 0, 0, 0, 0, 0)
	}
	b = append(b, 4, 6, 0xff, 0, 0, 1)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

// layoutBlob lays out a tables blob with QEMU's table set, the given
// DSDT and FADT lengths and a real MADT.
func layoutBlob(dsdt, fadt, cpus, overrides int) []byte {
	m := madt(cpus, overrides)
	blob := synthTables([]acpiTable{{"FACS", 64}, {"DSDT", dsdt}, {"FACP", fadt}, {"APIC", len(m)}, {"MCFG", 60}, {"WAET", 40}, {"RSDT", 52}}, 0)
	copy(blob[64+dsdt+fadt:], m)
	return blob
}

// TestRecoverACPILayoutFixtures: the table-loader and RSDP digests of the
// two dstack fixtures' event logs pin their tables layout, and the MADT
// size it implies is the vCPU count of their vm_config (2 on QEMU 8.2.2,
// whose TDX patches report every ISA IRQ as edge-triggered; 16 on QEMU
// 9.2.1).
func TestRecoverACPILayoutFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    measure.ACPILayout
	}{
		{liteFixture, measure.ACPILayout{RSDTOffset: 8931, DSDTLength: 8285, FADTLength: 244, MADTLength: 238, InterruptOverrides: 16, CPUs: 2}},
		{"quote-report.json", measure.ACPILayout{RSDTOffset: 9746, DSDTLength: 9098, FADTLength: 244, MADTLength: 240, InterruptOverrides: 5, CPUs: 16}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			g := loadGetQuote(t, tc.fixture)
			acpi, err := measure.ACPIFromEventLog(g.events)
			if err != nil {
				t.Fatal(err)
			}
			if g.vm.CPUCount != tc.want.CPUs {
				t.Fatalf("vm_config cpu_count %d, fixture expectation %d", g.vm.CPUCount, tc.want.CPUs)
			}
			for _, hint := range []int{0, tc.want.CPUs, 7} {
				l, err := measure.RecoverACPILayoutUncached(acpi.Loader, acpi.RSDP, hint)
				if err != nil || *l != tc.want {
					t.Errorf("hint %d: layout %+v, %v; want %+v", hint, l, err, tc.want)
				}
			}
			if c := measure.CheckACPICPUs(acpi, g.vm.CPUCount); !c.Bound || c.Contradiction != "" || c.Layout == nil || *c.Layout != tc.want {
				t.Errorf("CheckACPICPUs(%d) = %+v", g.vm.CPUCount, c)
			}
			c := measure.CheckACPICPUs(acpi, g.vm.CPUCount+1)
			want := fmt.Sprintf("describes a MADT for %d vCPUs (%d bytes), not for cpu_count %d", tc.want.CPUs, tc.want.MADTLength, g.vm.CPUCount+1)
			if c.Bound || !strings.Contains(c.Contradiction, want) {
				t.Errorf("CheckACPICPUs(%d) = %+v", g.vm.CPUCount+1, c)
			}
			// The model agrees with a MADT built entry by entry.
			if n := len(madt(tc.want.CPUs, tc.want.InterruptOverrides)); n != tc.want.MADTLength || measure.MADTLength(tc.want.CPUs, tc.want.InterruptOverrides) != n {
				t.Errorf("MADT for %d vCPUs, %d overrides: %d bytes", tc.want.CPUs, tc.want.InterruptOverrides, n)
			}
		})
	}
}

// TestRecoverACPILayoutSynthetic: for tables blobs built here (a real
// MADT, both MADT variants, FADT revisions, small and large DSDTs, 1 to
// 255 vCPUs), the layout recovered from the computed loader and RSDP
// digests is the one built, and its vCPU count is what the MADT parser
// counts.
func TestRecoverACPILayoutSynthetic(t *testing.T) {
	for _, tc := range []struct{ dsdt, fadt, cpus, overrides int }{
		{3000, 244, 1, 5}, {3000, 244, 2, 16}, {8000, 244, 3, 5}, {8000, 276, 8, 16}, {8285, 244, 2, 16},
		{20000, 268, 64, 5}, {50000, 244, 128, 16}, {90000, 268, 255, 5},
	} {
		t.Run(fmt.Sprintf("%d vCPUs, %d overrides, FADT %d, DSDT %d", tc.cpus, tc.overrides, tc.fadt, tc.dsdt), func(t *testing.T) {
			blob := layoutBlob(tc.dsdt, tc.fadt, tc.cpus, tc.overrides)
			if n, err := measure.MADTCPUCount(blob); err != nil || n != tc.cpus {
				t.Fatalf("MADTCPUCount = %d, %v", n, err)
			}
			d, err := measure.ACPITables(blob, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := measure.ACPILayout{RSDTOffset: 64 + tc.dsdt + tc.fadt + measure.MADTLength(tc.cpus, tc.overrides) + 100,
				DSDTLength: tc.dsdt, FADTLength: tc.fadt, MADTLength: measure.MADTLength(tc.cpus, tc.overrides), InterruptOverrides: tc.overrides, CPUs: tc.cpus}
			l, err := measure.RecoverACPILayout(d, tc.cpus)
			if err != nil || *l != want {
				t.Fatalf("layout %+v, %v; want %+v", l, err, want)
			}
			// Cached: the same answer, and a copy.
			l.CPUs = 999
			if l2, err := measure.RecoverACPILayout(d, 0); err != nil || *l2 != want {
				t.Errorf("cached layout %+v, %v", l2, err)
			}
			if c := measure.CheckACPICPUs(d, tc.cpus+1); c.Bound || c.Contradiction == "" {
				t.Errorf("cpu_count %d accepted: %+v", tc.cpus+1, c)
			}
		})
	}
}

// TestRecoverACPILayoutUnrecognised: layouts outside the model are
// ErrUnsupported, never a guess.
func TestRecoverACPILayoutUnrecognised(t *testing.T) {
	digests := func(blob []byte, loader []byte) *measure.ACPIDigests {
		rsdp, err := measure.SynthesizeRSDP(blob)
		if err != nil {
			t.Fatal(err)
		}
		return &measure.ACPIDigests{Loader: sha512.Sum384(loader), RSDP: sha512.Sum384(rsdp), Tables: sha512.Sum384(blob)}
	}
	loaderOf := func(blob []byte) []byte {
		l, err := measure.SynthesizeTableLoader(blob)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	x2apic := layoutBlob(4000, 244, 256, 5)
	// A MADT whose fixed part is neither variant (here: 6 overrides).
	odd := layoutBlob(4000, 244, 4, 6)
	random := &measure.ACPIDigests{Loader: sha512.Sum384([]byte("loader")), RSDP: sha512.Sum384([]byte("rsdp"))}
	for name, d := range map[string]*measure.ACPIDigests{
		"256 vCPUs":              digests(x2apic, loaderOf(x2apic)),
		"unknown MADT variant":   digests(odd, loaderOf(odd)),
		"loader not synthesised": digests(odd, []byte("another loader")),
		"random digests":         random,
	} {
		l, err := measure.RecoverACPILayout(d, 4)
		if !errors.Is(err, measure.ErrUnsupported) || l != nil {
			t.Errorf("%s: %+v, %v", name, l, err)
		}
		if c := measure.CheckACPICPUs(d, 4); c.Bound || c.Contradiction != "" || c.Layout != nil || c.Unrecognised == "" {
			t.Errorf("%s: CheckACPICPUs %+v", name, c)
		}
	}
}

// TestBindCPUsAfterMatch: measured without a vCPU count, the lite fixture
// matches the quote; binding the count afterwards accepts 2 and makes
// RTMR0 unpredictable for 8, naming cpu_count.
func TestBindCPUsAfterMatch(t *testing.T) {
	g := loadGetQuote(t, liteFixture)
	tm := g.vm.TDXMeasurement
	lite, err := measure.ParseLiteMeasurement(tm.Measurement)
	if err != nil {
		t.Fatal(err)
	}
	acpi, err := measure.ACPIFromEventLog(g.events)
	if err != nil {
		t.Fatal(err)
	}
	m := g.vm.machine()
	m.CPUs = 0
	for _, tc := range []struct {
		cpus  int
		bound bool
	}{{2, true}, {8, false}} {
		exp, err := lite.Measure(m, acpi, nil)
		if err != nil {
			t.Fatal(err)
		}
		if exp.ACPILayout != nil || exp.CPUsBound || exp.RTMRs[0].Value != g.quote.TD.RTMRs[0] {
			t.Fatalf("without a vCPU count: layout %+v, bound %v", exp.ACPILayout, exp.CPUsBound)
		}
		exp.BindCPUs(acpi, tc.cpus)
		r0 := exp.RTMRs[0]
		if exp.CPUsBound != tc.bound || (r0.Incomplete == "") != tc.bound || (!tc.bound && r0.IncompleteInput != measure.InputCPUs) {
			t.Errorf("BindCPUs(%d): bound %v, RTMR0 %q (%s)", tc.cpus, exp.CPUsBound, r0.Incomplete, r0.IncompleteInput)
		}
	}
}
