package measure_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

const liteFixture = "tdx-lite-getquote.json"

// TestLiteFixture recomputes MRTD and RTMR0–2 of dstack's lite fixture
// from its vm_config.tdx_measurement, vm_config and the event log's
// three ACPI digests, and checks them against the quote.
func TestLiteFixture(t *testing.T) {
	g := loadGetQuote(t, liteFixture)
	want := loadExpected(t, "tdx-lite-getquote.expected.json")
	tm := g.vm.TDXMeasurement
	if tm == nil {
		t.Fatal("vm_config has no tdx_measurement")
	}
	lite, err := measure.VerifyLiteMaterial(g.vm.osImageHash(t), tm.ChecksumFile, tm.Measurement)
	if err != nil {
		t.Fatalf("VerifyLiteMaterial: %v", err)
	}
	acpi, err := measure.ACPIFromEventLog(g.events)
	if err != nil {
		t.Fatalf("ACPIFromEventLog: %v", err)
	}
	m, err := lite.Measure(g.vm.machine(), acpi, nil)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	td := g.quote.TD
	if m.MRTD != td.MRTD || m.MRTD != mustDigest(t, want.MRTD) {
		t.Errorf("MRTD = %x, quote %x", m.MRTD, td.MRTD)
	}
	if m.PageOrder != measure.TwoPass {
		t.Errorf("page order %v, want two_pass (qemu 8.2.2)", m.PageOrder)
	}
	for i, w := range []string{want.RTMR0, want.RTMR1, want.RTMR2} {
		if r := m.RTMRs[i]; r.Incomplete != "" || r.Value != td.RTMRs[i] || r.Value != mustDigest(t, w) {
			t.Errorf("RTMR%d = %x (%s), quote %x", i, r.Value, r.Incomplete, td.RTMRs[i])
		}
	}
	if n := len(m.RTMRs[0].Events); n != 13 || n != want.Lite.RTMR0Events {
		t.Errorf("RTMR0 has %d events", n)
	}
	if !m.CPUsBound || m.ACPILayout == nil || m.ACPILayout.CPUs != 2 {
		t.Errorf("cpu_count not bound: layout %+v, notes %q", m.ACPILayout, m.Notes)
	}
	if m.RTMRs[0].Events[0].Digest != mustDigest(t, want.Lite.TDHOBDigest2GiB) {
		t.Errorf("TD HOB digest %x, want %s", m.RTMRs[0].Events[0].Digest, want.Lite.TDHOBDigest2GiB)
	}
	layout, err := measure.ParseTDHOBWitness(lite.TDHOBWitness)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := layout.Digest(2 << 30); err != nil || d != mustDigest(t, want.Lite.TDHOBDigest2GiB) {
		t.Errorf("TD HOB for 2 GiB = %x, %v", d, err)
	}
	// Every expected event equals the log's, in order, per register.
	d := measure.Diagnose(m, g.evidence(), measure.DiagnoseOptions{Machine: g.vm.machine(), HOBLayout: layout})
	if !d.Match || len(d.Causes) != 0 {
		t.Errorf("Diagnose: match %v, causes %v", d.Match, d.Causes)
	}
	for _, r := range d.Registers[1:] {
		for _, e := range r.Events {
			if e.Status != measure.StatusMatch {
				t.Errorf("%s event %d: %s", r.Name, e.Index, e.Status)
			}
		}
	}
	// The document re-encodes to dstack's bytes.
	enc, err := lite.Marshal()
	if err != nil || !bytes.Equal(enc, tm.Measurement) {
		t.Errorf("Marshal did not reproduce the document (%v):\n%x\n%x", err, enc, tm.Measurement)
	}
}

// TestLiteFixtureMutations changes one input at a time and checks that
// the right thing breaks and that DiagnoseLite names the input.
func TestLiteFixtureMutations(t *testing.T) {
	g := loadGetQuote(t, liteFixture)
	tm := g.vm.TDXMeasurement
	if tm == nil {
		t.Fatal("vm_config has no tdx_measurement")
	}
	ptr := func(b bool) *bool { return &b }
	flip := func(b []byte, i int) []byte { c := slices.Clone(b); c[i] ^= 0x01; return c }
	cases := []struct {
		name      string
		mutate    func(m *measure.Machine, hash, sums, doc *[]byte)
		verifyErr error         // from VerifyLiteMaterial
		wrong     []string      // registers that must mismatch
		cause     measure.Input // first cause
		detail    string        // substring of the first cause's detail
		note      string        // substring of a note, when the input is not bound
	}{
		{name: "unchanged"},
		{name: "checksum file byte", mutate: func(_ *measure.Machine, _, sums, _ *[]byte) { *sums = flip(*sums, 3) },
			verifyErr: measure.ErrOSImageHash, cause: measure.InputChecksumFile},
		{name: "cbor byte", mutate: func(_ *measure.Machine, _, _, doc *[]byte) { *doc = flip(*doc, len(*doc)-60) },
			verifyErr: measure.ErrMeasurementBinding, wrong: []string{"MRTD"}, cause: measure.InputLiteDocument},
		{name: "cbor kernel digest, rebound", mutate: func(_ *measure.Machine, hash, sums, doc *[]byte) {
			i := bytes.Index(*doc, []byte("kernel_authenticode")) + len("kernel_authenticode") + 2
			*doc = flip(*doc, i)
			*sums = []byte(fmt.Sprintf("%x  measurement.tdx.cbor\n", sha256.Sum256(*doc)))
			h := sha256.Sum256(*sums)
			*hash = h[:]
		}, wrong: []string{"RTMR1"}, cause: measure.InputKernel},
		{name: "memory_size 4 GiB", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.MemorySize = 4 << 30 },
			wrong: []string{"RTMR0"}, cause: measure.InputMemory, detail: "is the one for 2 GiB of RAM; the expectation is for 4 GiB"},
		{name: "memory_size 3 GiB", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.MemorySize = 3 << 30 },
			wrong: []string{"RTMR0"}, cause: measure.InputMemory, detail: "2 GiB of RAM"},
		{name: "qemu_version 9.2.1", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.QEMUVersion = "9.2.1" },
			wrong: []string{"MRTD"}, cause: measure.InputQEMUVersion, detail: "two_pass candidate; qemu_version 9.2.1 selects single_pass"},
		{name: "qemu_single_pass_add_pages false", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.QEMUSinglePassAddPages = ptr(false) },
			wrong: []string{"MRTD"}, cause: measure.InputQEMUVersion, detail: "qemu_single_pass_add_pages false"},
		{name: "cpu_count 8", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.CPUs = 8 },
			wrong: []string{"RTMR0"}, cause: measure.InputCPUs, detail: "describes a MADT for 2 vCPUs (238 bytes), not for cpu_count 8"},
		{name: "cpu_count 1", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.CPUs = 1 },
			wrong: []string{"RTMR0"}, cause: measure.InputCPUs, detail: "not for cpu_count 1"},
		{name: "cpu_count unknown", mutate: func(m *measure.Machine, _, _, _ *[]byte) { m.CPUs = 0 },
			note: "ACPI digests were taken from the event log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := g.vm.machine()
			hash, sums, doc := g.vm.osImageHash(t), slices.Clone(tm.ChecksumFile), slices.Clone(tm.Measurement)
			if tc.mutate != nil {
				tc.mutate(&m, &hash, &sums, &doc)
			}
			_, err := measure.VerifyLiteMaterial(hash, sums, doc)
			if (tc.verifyErr == nil && err != nil) || !errors.Is(err, tc.verifyErr) {
				t.Errorf("VerifyLiteMaterial: %v, want %v", err, tc.verifyErr)
			}
			d, err := measure.DiagnoseLite(hash, sums, doc, m, g.evidence())
			if err != nil {
				t.Fatalf("DiagnoseLite: %v", err)
			}
			var wrong []string
			for _, r := range d.Registers {
				if !r.Match {
					wrong = append(wrong, r.Name)
				}
			}
			if !slices.Equal(wrong, tc.wrong) {
				t.Errorf("mismatched registers %v, want %v", wrong, tc.wrong)
			}
			if tc.cause == "" {
				if !d.Match || len(d.Causes) != 0 {
					t.Errorf("match %v, causes %v", d.Match, d.Causes)
				}
			} else if d.Match || len(d.Causes) == 0 || d.Causes[0].Input != tc.cause || !strings.Contains(d.Causes[0].Detail, tc.detail) {
				t.Errorf("match %v, causes %+v; want first cause %s containing %q", d.Match, d.Causes, tc.cause, tc.detail)
			}
			if tc.note != "" && !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q lack %q", d.Notes, tc.note)
			}
		})
	}
}

// TestLiteMemorySizes: lite mode refuses RAM sizes it cannot express.
func TestLiteMemorySizes(t *testing.T) {
	for _, tc := range []struct {
		mem uint64
		ok  bool
	}{{2 << 30, true}, {0xB000_0000, true}, {64 << 30, true}, {1 << 30, false}, {0x9000_0000, false}, {0xAFFF_F000, false}} {
		err := measure.CheckLiteMemory(tc.mem)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, measure.ErrUnsupported)) {
			t.Errorf("CheckLiteMemory(%#x) = %v, want ok %v", tc.mem, err, tc.ok)
		}
	}
}
