package measure

import (
	"fmt"
	"slices"

	"github.com/tdproof/tdproof/eventlog"
)

// Image is an OS image as bytes. The slices are only read.
type Image struct {
	Firmware []byte // TDVF (ovmf.fd)
	Kernel   []byte // bzImage
	// Initrd is the initramfs. It may be nil when InitrdDigests is set:
	// the measurements need only its size and SHA-384, so a large initrd
	// is hashed while it is read ([HashFile], [LoadImage]) and not kept.
	Initrd        []byte
	InitrdDigests *FileDigests
	// Cmdline is the kernel command line as metadata.json has it, without
	// the " initrd=initrd" that OVMF appends (see [KernelCmdline]).
	Cmdline string
}

// Machine describes the TD the image boots in.
type Machine struct {
	// CPUs is the vCPU count. It enters the measurements only through the
	// ACPI tables; a MADT that disagrees is reported in
	// Measurement.Notes. Zero means unknown.
	CPUs int
	// MemorySize is the RAM size in bytes.
	MemorySize uint64
	// QEMUVersion is "MAJOR.MINOR.PATCH"; empty means
	// [DefaultQEMUVersion]. It selects the MRTD page order.
	QEMUVersion string
	// QEMUSinglePassAddPages is vm_config's qemu_single_pass_add_pages;
	// nil when absent. dstack passes it as its two_pass_add_pages option,
	// so true selects [TwoPass] and false [SinglePass]; this package
	// replicates that quirk exactly (§4.1).
	QEMUSinglePassAddPages *bool
}

// Input names an input of the measurements. Events list the inputs their
// digest depends on, which is how [Diagnose] names the likely cause of a
// mismatch.
type Input string

// Inputs.
const (
	InputFirmware    Input = "firmware"
	InputMemory      Input = "memory_size"
	InputCPUs        Input = "cpu_count"
	InputQEMUVersion Input = "qemu_version"
	InputACPI        Input = "acpi"
	InputKernel      Input = "kernel"
	InputInitrd      Input = "initrd"
	InputCmdline     Input = "cmdline"
)

// Event is one expected measurement event.
type Event struct {
	Type   eventlog.EventType
	Digest [48]byte
	// Description says what is measured, e.g. "TD HOB" or
	// "EFI variable SecureBoot".
	Description string
	// DependsOn lists the inputs the digest depends on, the most likely
	// cause of a mismatch first. Empty for fixed digests.
	DependsOn []Input
	// Source says where the digest comes from: [SourceComputed],
	// [SourceConstant], [SourceEventLog], [SourceLite] or, when it is not
	// known, [SourceUnknown].
	Source string
}

// Event sources.
const (
	SourceComputed = "computed"
	SourceConstant = "constant"
	SourceEventLog = "event log"
	SourceLite     = "lite document"
	SourceUnknown  = "unknown"
)

// Register is an expected RTMR with the events that produce it.
type Register struct {
	// Index is 0, 1 or 2.
	Index int
	// Value is the replay of Events; zero when Incomplete.
	Value [48]byte
	// Events are in extend order.
	Events []Event
	// Incomplete, when not empty, says why Value could not be computed
	// (an event digest is unknown).
	Incomplete string
	// IncompleteInput is the input that made the register incomplete:
	// [InputACPI] (no ACPI digests) or [InputCPUs] (the event log's ACPI
	// layout is for another vCPU count); empty when complete.
	IncompleteInput Input
}

func newRegister(index int, events []Event) Register {
	r := Register{Index: index, Events: events}
	digests := make([][48]byte, len(events))
	for i, e := range events {
		if e.Source == SourceUnknown {
			r.Incomplete = e.Description + " digest is unknown"
			r.IncompleteInput = InputACPI
			return r
		}
		digests[i] = e.Digest
	}
	r.Value = eventlog.ReplayDigests(digests...)
	return r
}

// Measurement is the expected MRTD and RTMR0–2 of an image on a machine.
type Measurement struct {
	// MRTD is the candidate for PageOrder.
	MRTD      [48]byte
	PageOrder PageOrder
	// MRTDCandidates are both candidates, indexed by PageOrder, when
	// known (lite mode; Options.AllPageOrders); nil otherwise.
	MRTDCandidates *[2][48]byte
	// RTMRs are RTMR0, RTMR1 and RTMR2.
	RTMRs [3]Register
	// KernelCmdline is the measured command line (with " initrd=initrd");
	// empty in lite mode, where only its digest is known.
	KernelCmdline string
	// Notes are facts about the inputs worth showing (e.g. that ACPI
	// digests came from an event log and are therefore not verified).
	Notes []string
	// ACPILayout is the tables layout the event log's ACPI digests
	// describe (see [RecoverACPILayout]); nil when the digests were
	// computed from the blobs, the vCPU count is unknown, or the layout
	// is not recognised.
	ACPILayout *ACPILayout
	// CPUsBound is true when the vCPU count is bound to RTMR0: the MADT
	// of the ACPI tables (computed from the blobs) or the MADT size the
	// event log's table loader describes lists exactly Machine.CPUs.
	CPUsBound bool
}

// Options are the inputs of [MeasureImage] besides the image and the
// machine. The zero value measures with the dstack OVMF constants and
// leaves RTMR0 incomplete (no ACPI digests).
type Options struct {
	// ACPI gives the three ACPI digests of RTMR0 (see [ACPITables],
	// [ACPIFromEventLog]); nil leaves RTMR0 incomplete.
	ACPI *ACPIDigests
	// Firmware gives the CFV and Boot0000 digests; nil means
	// [DstackOVMF].
	Firmware *FirmwareDigests
	// OVMFVariant is the RTMR0 layout, "" or [OVMFVariantPre202505]; any
	// other is [ErrUnsupported].
	OVMFVariant string
	// AllPageOrders also computes the MRTD for the page order not
	// selected, into Measurement.MRTDCandidates.
	AllPageOrders bool
}

// MeasureImage computes the expected MRTD and RTMR0–2 of img booted by
// QEMU on m: MRTD from the firmware (§4.2), RTMR0 from the TD HOB for
// m.MemorySize, the firmware digests and the ACPI digests (§4.3), RTMR1
// from the kernel patched for m.MemorySize and the initrd size (§4.5),
// RTMR2 from the command line and the initrd (§4.6). It does no I/O and
// is safe for concurrent use.
func MeasureImage(img *Image, m Machine, opts Options) (*Measurement, error) {
	if err := checkVariant(opts.OVMFVariant); err != nil {
		return nil, err
	}
	order, err := m.PageOrder()
	if err != nil {
		return nil, err
	}
	tdvf, err := ParseTDVF(img.Firmware)
	if err != nil {
		return nil, err
	}
	layout, err := tdvf.TDHOBLayout()
	if err != nil {
		return nil, err
	}
	hob, err := layout.Digest(m.MemorySize)
	if err != nil {
		return nil, err
	}
	kernel, err := KernelAuthenticode(img.Kernel, img.initrdSize(), m.MemorySize)
	if err != nil {
		return nil, err
	}
	cmdline := KernelCmdline(img.Cmdline)
	cmdDigest, err := CmdlineDigest(cmdline)
	if err != nil {
		return nil, err
	}
	out := &Measurement{PageOrder: order, KernelCmdline: cmdline}
	if opts.AllPageOrders {
		c := tdvf.MRTDs()
		out.MRTDCandidates, out.MRTD = &c, c[order]
	} else {
		out.MRTD = tdvf.MRTD(order)
	}
	out.RTMRs[0] = newRegister(0, rtmr0Events(hob, SourceComputed, opts.Firmware, opts.ACPI))
	out.RTMRs[1] = newRegister(1, rtmr1Events(kernel, SourceComputed))
	out.RTMRs[2] = newRegister(2, rtmr2Events(cmdDigest, img.initrdSHA384(), SourceComputed))
	out.bindACPI(opts.ACPI, m.CPUs)
	return out, nil
}

// bindACPI notes where the ACPI digests came from and, when the vCPU
// count is known, binds it ([Measurement.BindCPUs]).
func (out *Measurement) bindACPI(a *ACPIDigests, cpus int) {
	switch {
	case a == nil:
		out.Notes = append(out.Notes, "RTMR0 is incomplete: no ACPI tables or reference event log given")
		return
	case a.Source == SourceEventLog:
		out.Notes = append(out.Notes, "ACPI digests were taken from the event log: the tables' contents (and with them the device topology) are not verified")
	}
	if cpus > 0 {
		out.BindCPUs(a, cpus)
	}
}

// BindCPUs checks a vCPU count against the ACPI digests out was computed
// with (a must be those digests). Computed from the blobs, their MADT
// must list cpus enabled processors. Taken from an event log, the tables
// are unknown, but the table loader's digest pins the MADT size
// ([CheckACPICPUs]); when that size is for another vCPU count, the ACPI
// digests for cpus are unknown and RTMR0 becomes incomplete with
// [InputCPUs] as its IncompleteInput. CPUsBound, ACPILayout and Notes
// say what was found.
//
// [MeasureImage] and [LiteMeasurement.Measure] call it for Machine.CPUs.
// A verifier facing untrusted event logs can measure with CPUs 0, compare
// the registers with the quote first, and call BindCPUs only when they
// match: the layout search then runs only on digests the TD measured.
func (out *Measurement) BindCPUs(a *ACPIDigests, cpus int) {
	switch {
	case a == nil || cpus <= 0:
	case a.Source == SourceEventLog:
		chk := CheckACPICPUs(a, cpus)
		out.ACPILayout, out.CPUsBound = chk.Layout, chk.Bound
		switch {
		case chk.Bound:
			out.Notes = append(out.Notes, fmt.Sprintf("cpu_count %d is bound by the MADT size the ACPI table loader describes", cpus))
		case chk.Contradiction != "":
			out.RTMRs[0] = withUnknownACPI(out.RTMRs[0], chk.Contradiction)
		default:
			out.Notes = append(out.Notes, fmt.Sprintf("cpu_count %d is not bound: %s", cpus, chk.Unrecognised))
		}
	case a.MADTCPUs > 0 && a.MADTCPUs != cpus:
		out.Notes = append(out.Notes, fmt.Sprintf("the ACPI tables' MADT lists %d enabled CPUs but cpu_count is %d", a.MADTCPUs, cpus))
	case a.MADTCPUs == cpus:
		out.CPUsBound = true
	}
}

// withUnknownACPI returns reg with its ACPI digests unknown: they were
// taken from an event log whose tables are for another machine.
func withUnknownACPI(reg Register, why string) Register {
	ev := make([]Event, len(reg.Events))
	for i, e := range reg.Events {
		if e.Type == eventlog.EvPlatformConfigFlags && slices.Contains(e.DependsOn, InputACPI) {
			e.Digest, e.Source = [48]byte{}, SourceUnknown
		}
		ev[i] = e
	}
	return Register{Index: reg.Index, Events: ev, Incomplete: why, IncompleteInput: InputCPUs}
}

// OVMFVariantPre202505 names the supported RTMR0 layout: OVMF before
// edk2-stable202505, 13 RTMR0 events (§2.3).
const OVMFVariantPre202505 = "pre202505"

func checkVariant(v string) error {
	if v != "" && v != OVMFVariantPre202505 {
		return fmt.Errorf("measure: %w: ovmf variant %q (only %q is modelled)", ErrUnsupported, v, OVMFVariantPre202505)
	}
	return nil
}
