package measure_test

import (
	"crypto/sha512"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
)

// dstackCmdline is the dstack kernel command line template (§4.6).
const dstackCmdline = "console=ttyS0 init=/init panic=1 net.ifnames=0 biosdevname=0 mce=off oops=panic pci=noearly pci=nommconf " +
	"random.trust_cpu=y random.trust_bootloader=n tsc=reliable no-kvmclock dstack.rootfs_hash=0123abcd dstack.rootfs_size=1048576"

// synthImage builds an image: a TDVF of fwSize bytes with the dstack
// OVMF section layout, a bzImage-like kernel and an initrd.
func synthImage(fwSize, kernelSize, initrdSize int) *measure.Image {
	secs := synthSections()
	secs[1].RawDataSize = uint32(fwSize - 0x30000)
	secs[1].MemoryDataSize = uint64(fwSize - 0x30000)
	secs[2].DataOffset = uint32(fwSize - 0x10000)
	initrd := make([]byte, initrdSize)
	for i := range initrd {
		initrd[i] = byte(i * 13)
	}
	return &measure.Image{Firmware: synthTDVF(fwSize, secs, 2), Kernel: synthKernel(kernelSize), Initrd: initrd, Cmdline: dstackCmdline}
}

var testACPI = &measure.ACPIDigests{Loader: sha512.Sum384([]byte("l")), RSDP: sha512.Sum384([]byte("r")), Tables: sha512.Sum384([]byte("t")), Source: measure.SourceComputed}

// logOf turns an expected measurement into the event log a TD with it
// would produce (register by register; interleaving does not matter).
func logOf(m *measure.Measurement) []eventlog.Event {
	var out []eventlog.Event
	for _, r := range m.RTMRs {
		for _, e := range r.Events {
			out = append(out, eventlog.Event{IMR: uint32(r.Index), Type: e.Type, Digest: slices.Clone(e.Digest[:])})
		}
	}
	return out
}

func evidenceOf(m *measure.Measurement) measure.Evidence {
	return measure.Evidence{MRTD: m.MRTD, RTMRs: [4][48]byte{m.RTMRs[0].Value, m.RTMRs[1].Value, m.RTMRs[2].Value}, Events: logOf(m)}
}

// TestMeasureImageMatchesLite: the full path and the lite document agree
// for the RAM sizes lite mode supports.
func TestMeasureImageMatchesLite(t *testing.T) {
	img := synthImage(0x100000, 0x40000, 0x3000)
	lite, err := measure.NewLiteMeasurement(img)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := lite.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := measure.ParseLiteMeasurement(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range []uint64{2 << 30, 0xB000_0000, 16 << 30} {
		for _, qv := range []string{"8.2.2", "9.2.1"} {
			m := measure.Machine{CPUs: 2, MemorySize: mem, QEMUVersion: qv}
			full, err := measure.MeasureImage(img, m, measure.Options{ACPI: testACPI, AllPageOrders: true})
			if err != nil {
				t.Fatal(err)
			}
			fromLite, err := back.Measure(m, testACPI, nil)
			if err != nil {
				t.Fatal(err)
			}
			if full.MRTD != fromLite.MRTD || *full.MRTDCandidates != *fromLite.MRTDCandidates {
				t.Errorf("mem %#x qemu %s: MRTD differs", mem, qv)
			}
			for i := range 3 {
				if full.RTMRs[i].Value != fromLite.RTMRs[i].Value || full.RTMRs[i].Incomplete != "" {
					t.Errorf("mem %#x qemu %s: RTMR%d differs", mem, qv, i)
				}
			}
		}
	}
	// Between 2 and 2.75 GiB only the full path works, and the kernel
	// digest changes.
	m := measure.Machine{MemorySize: 0xA000_0000}
	if _, err := back.Measure(m, testACPI, nil); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("lite at 2.5 GiB: %v", err)
	}
	full, err := measure.MeasureImage(img, m, measure.Options{ACPI: testACPI})
	if err != nil || full.RTMRs[1].Events[0].Digest == lite.KernelAuthenticode {
		t.Errorf("full at 2.5 GiB: %v", err)
	}
}

func TestMeasureImage(t *testing.T) {
	img := synthImage(0x100000, 0x40000, 0x3000)
	m := measure.Machine{CPUs: 2, MemorySize: 4 << 30}
	got, err := measure.MeasureImage(img, m, measure.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.RTMRs[0].Incomplete == "" || got.RTMRs[0].Value != [48]byte{} || len(got.RTMRs[0].Events) != 13 {
		t.Errorf("RTMR0 without ACPI: %+v", got.RTMRs[0])
	}
	if len(got.Notes) == 0 || !strings.Contains(got.Notes[0], "RTMR0 is incomplete") {
		t.Errorf("notes %q", got.Notes)
	}
	if got.KernelCmdline != dstackCmdline+" initrd=initrd" || got.PageOrder != measure.SinglePass || got.MRTDCandidates != nil {
		t.Errorf("cmdline %q, order %v", got.KernelCmdline, got.PageOrder)
	}
	if n := []int{len(got.RTMRs[1].Events), len(got.RTMRs[2].Events)}; n[0] != 5 || n[1] != 2 {
		t.Errorf("RTMR1/2 events %v", n)
	}
	if got.RTMRs[2].Events[1].Digest != sha512.Sum384(img.Initrd) {
		t.Error("initrd digest")
	}
	// A variant other than pre202505 is refused, never guessed.
	if _, err := measure.MeasureImage(img, m, measure.Options{OVMFVariant: "202505"}); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("variant: %v", err)
	}
	// The MADT check is a note.
	a := *testACPI
	a.MADTCPUs = 4
	got, err = measure.MeasureImage(img, m, measure.Options{ACPI: &a})
	if err != nil || len(got.Notes) != 1 || !strings.Contains(got.Notes[0], "MADT lists 4") {
		t.Errorf("MADT note: %q, %v", got.Notes, err)
	}
}

// TestDiagnoseImage changes one input at a time and checks the named
// cause.
func TestDiagnoseImage(t *testing.T) {
	img := synthImage(0x100000, 0x40000, 0x3000)
	base := measure.Machine{CPUs: 2, MemorySize: 2 << 30, QEMUVersion: "9.2.1"}
	ref, err := measure.MeasureImage(img, base, measure.Options{ACPI: testACPI})
	if err != nil {
		t.Fatal(err)
	}
	ev := evidenceOf(ref)
	for _, tc := range []struct {
		name   string
		edit   func(img *measure.Image, m *measure.Machine)
		wrong  []string
		cause  measure.Input
		detail string
	}{
		{"unchanged", nil, nil, "", ""},
		{"kernel", func(img *measure.Image, _ *measure.Machine) { img.Kernel[0x5000]++ }, []string{"RTMR1"}, measure.InputKernel, ""},
		{"cmdline", func(img *measure.Image, _ *measure.Machine) { img.Cmdline += " debug" }, []string{"RTMR2"}, measure.InputCmdline, ""},
		{"initrd content", func(img *measure.Image, _ *measure.Machine) { img.Initrd[7]++ }, []string{"RTMR2"}, measure.InputInitrd, ""},
		{"initrd size", func(img *measure.Image, _ *measure.Machine) { img.Initrd = append(img.Initrd, make([]byte, 0x2000)...) },
			[]string{"RTMR1", "RTMR2"}, measure.InputKernel, "initrd size"},
		{"firmware", func(img *measure.Image, _ *measure.Machine) { img.Firmware[0x30000]++ }, []string{"MRTD"}, measure.InputFirmware, "neither page order"},
		{"qemu version", func(_ *measure.Image, m *measure.Machine) { m.QEMUVersion = "8.2.2" }, []string{"MRTD"}, measure.InputQEMUVersion, "single_pass candidate"},
		{"memory", func(_ *measure.Image, m *measure.Machine) { m.MemorySize = 6 << 30 }, []string{"RTMR0"}, measure.InputMemory, "is the one for 2 GiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := &measure.Image{Firmware: slices.Clone(img.Firmware), Kernel: slices.Clone(img.Kernel), Initrd: slices.Clone(img.Initrd), Cmdline: img.Cmdline}
			m := base
			if tc.edit != nil {
				tc.edit(img, &m)
			}
			d, err := measure.DiagnoseImage(img, m, ev, measure.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var wrong []string
			for _, r := range d.Registers {
				if !r.Match {
					wrong = append(wrong, r.Name)
				}
			}
			if !slices.Equal(wrong, tc.wrong) {
				t.Errorf("mismatched %v, want %v", wrong, tc.wrong)
			}
			if tc.cause == "" {
				if !d.Match || len(d.Causes) != 0 {
					t.Errorf("match %v causes %v", d.Match, d.Causes)
				}
				return
			}
			if d.Match || d.Causes[0].Input != tc.cause || !strings.Contains(d.Causes[0].Detail, tc.detail) {
				t.Errorf("causes %+v, want %s %q", d.Causes, tc.cause, tc.detail)
			}
		})
	}
}

// TestDiagnoseLogShape covers missing and extra events, a log that does
// not replay to the quote, and no log at all.
func TestDiagnoseLogShape(t *testing.T) {
	img := synthImage(0x100000, 0x40000, 0x3000)
	m := measure.Machine{MemorySize: 2 << 30}
	ref, err := measure.MeasureImage(img, m, measure.Options{ACPI: testACPI})
	if err != nil {
		t.Fatal(err)
	}
	ev := evidenceOf(ref)
	// A 14th RTMR0 event (a later OVMF) in the log and the quote.
	extra := eventlog.Event{IMR: 0, Type: eventlog.EvEFIVariableBoot, Digest: make([]byte, 48)}
	ev2 := ev
	ev2.Events = append(slices.Clone(ev.Events[:13]), append([]eventlog.Event{extra}, ev.Events[13:]...)...)
	ev2.RTMRs[0] = eventlog.Extend(ev.RTMRs[0], [48]byte{})
	d := measure.Diagnose(ref, ev2, measure.DiagnoseOptions{Machine: m})
	r0 := d.Registers[1]
	if r0.Match || len(r0.Events) != 14 || r0.Events[13].Status != measure.StatusExtra || !r0.LogMatchesQuote || d.Causes[0].Input != measure.InputFirmware {
		t.Errorf("extra event: %+v causes %+v", r0.Events[13], d.Causes)
	}
	// A missing RTMR2 event.
	ev3 := ev
	ev3.Events = ev.Events[:len(ev.Events)-1]
	ev3.RTMRs[2] = eventlog.ReplayDigests(ref.RTMRs[2].Events[0].Digest)
	d = measure.Diagnose(ref, ev3, measure.DiagnoseOptions{Machine: m})
	if r2 := d.Registers[3]; r2.Match || r2.Events[1].Status != measure.StatusMissing {
		t.Errorf("missing event: %+v", r2.Events)
	}
	// The quote disagrees with a log that matches the expectation.
	ev4 := ev
	ev4.RTMRs[1][0] ^= 1
	d = measure.Diagnose(ref, ev4, measure.DiagnoseOptions{Machine: m})
	if d.Match || d.Causes[0].Input != measure.InputEventLog {
		t.Errorf("log not the TD's: %+v", d.Causes)
	}
	// No log: statuses are unknown, the cause lists the inputs.
	ev5 := ev
	ev5.Events = nil
	ev5.RTMRs[2][0] ^= 1
	d = measure.Diagnose(ref, ev5, measure.DiagnoseOptions{Machine: m})
	if d.Match || d.Registers[3].Events[0].Status != measure.StatusUnknown || d.Causes[0].Input != measure.InputCmdline {
		t.Errorf("no log: %+v", d.Causes)
	}
}
