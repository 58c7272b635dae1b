package measure

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tdproof/tdproof/eventlog"
)

// Evidence is what a TD reported: the registers of its quote (verify the
// quote first; this package does not) and, optionally, its event log.
type Evidence struct {
	MRTD  [48]byte
	RTMRs [4][48]byte
	// Events is the event log; nil when there is none.
	Events []eventlog.Event
}

// Status is the outcome of comparing one event or register.
type Status string

// Statuses.
const (
	StatusMatch    Status = "match"
	StatusMismatch Status = "mismatch"
	// StatusMissing: an expected event the log does not have.
	StatusMissing Status = "missing"
	// StatusExtra: a log event the expected layout does not have.
	StatusExtra Status = "extra"
	// StatusUnknown: the expected digest is unknown (no ACPI digests).
	StatusUnknown Status = "unknown"
)

// More inputs, for causes found before registers are compared.
const (
	// InputChecksumFile: the checksum file (sha256sum.txt) does not hash
	// to os_image_hash.
	InputChecksumFile Input = "checksum_file"
	// InputLiteDocument: measurement.tdx.cbor is not the document the
	// checksum file lists, or does not parse.
	InputLiteDocument Input = "measurement_document"
	// InputEventLog: the event log does not replay to the quote.
	InputEventLog Input = "event_log"
)

// Cause names an input that likely explains a mismatch.
type Cause struct {
	Input  Input  `json:"input"`
	Detail string `json:"detail"`
}

// EventDiff is one row of a register comparison: the expected event
// beside the event log's event at the same position.
type EventDiff struct {
	Index    int
	Status   Status
	Expected *Event          // nil for StatusExtra
	Actual   *eventlog.Event // nil for StatusMissing or without a log
}

// RegisterDiff compares one register.
type RegisterDiff struct {
	// Name is "MRTD", "RTMR0", "RTMR1" or "RTMR2".
	Name     string
	Expected [48]byte
	Actual   [48]byte // from the quote
	Match    bool
	// Incomplete is why Expected is unknown (Match is then false).
	Incomplete string
	// LogReplay is the replay of the log's events for this register and
	// LogMatchesQuote whether it equals Actual; nil without a log (and
	// for MRTD).
	LogReplay       *[48]byte
	LogMatchesQuote bool
	Events          []EventDiff
	Causes          []Cause
}

// Diagnosis is the result of comparing expected measurements with
// evidence.
type Diagnosis struct {
	// Match is true when MRTD and RTMR0–2 all equal the quote and the
	// inputs are bound.
	Match     bool
	Registers []RegisterDiff
	// Causes summarises the likely changed inputs, first cause first.
	Causes []Cause
	Notes  []string
}

// DiagnoseOptions are the optional inputs of [Diagnose].
type DiagnoseOptions struct {
	// Machine is the configuration the expectation was computed for; it
	// is quoted in causes.
	Machine Machine
	// HOBLayout lets Diagnose name the RAM size an unexpected TD HOB was
	// built for; nil skips that probe.
	HOBLayout *TDHOBLayout
}

// Diagnose compares an expected measurement with evidence, register by
// register and event by event, and names the inputs that likely changed:
// RAM, vCPUs, QEMU version (MRTD page order), firmware, kernel, command
// line, initrd or ACPI tables. It does not verify the quote.
func Diagnose(exp *Measurement, ev Evidence, opts DiagnoseOptions) *Diagnosis {
	d := &Diagnosis{Notes: slices.Clone(exp.Notes)}
	d.Registers = append(d.Registers, diagnoseMRTD(exp, ev, opts))
	for r := range 3 {
		d.Registers = append(d.Registers, diagnoseRTMR(exp.RTMRs[r], ev, opts))
	}
	d.Match = true
	for _, r := range d.Registers {
		d.Match = d.Match && r.Match
		d.addCauses(r.Causes...)
	}
	return d
}

func (d *Diagnosis) addCauses(cs ...Cause) {
	for _, c := range cs {
		if !slices.Contains(d.Causes, c) {
			d.Causes = append(d.Causes, c)
		}
	}
}

func diagnoseMRTD(exp *Measurement, ev Evidence, opts DiagnoseOptions) RegisterDiff {
	r := RegisterDiff{Name: "MRTD", Expected: exp.MRTD, Actual: ev.MRTD, Match: exp.MRTD == ev.MRTD}
	if r.Match {
		return r
	}
	m := opts.Machine
	sel := fmt.Sprintf("qemu_version %s", orDefault(m.QEMUVersion, DefaultQEMUVersion+" (default)"))
	if m.QEMUSinglePassAddPages != nil {
		sel += fmt.Sprintf(", qemu_single_pass_add_pages %v", *m.QEMUSinglePassAddPages)
	}
	other := 1 - exp.PageOrder
	switch c := exp.MRTDCandidates; {
	case c != nil && c[other] == ev.MRTD:
		r.Causes = []Cause{{InputQEMUVersion, fmt.Sprintf("the quote's MRTD is the %s candidate; %s selects %s", other, sel, exp.PageOrder)}}
	case c != nil:
		r.Causes = []Cause{{InputFirmware, "MRTD matches neither page order: the firmware differs"}}
	default:
		r.Causes = []Cause{{InputFirmware, "MRTD differs: the firmware, or the page order (" + sel + ")"}}
	}
	return r
}

func diagnoseRTMR(reg Register, ev Evidence, opts DiagnoseOptions) RegisterDiff {
	name := fmt.Sprintf("RTMR%d", reg.Index)
	r := RegisterDiff{Name: name, Expected: reg.Value, Actual: ev.RTMRs[reg.Index], Incomplete: reg.Incomplete}
	r.Match = reg.Incomplete == "" && reg.Value == r.Actual
	var logEvents []eventlog.Event
	if ev.Events != nil {
		logEvents = logRegister(ev.Events, uint32(reg.Index))
		digests := make([][48]byte, 0, len(logEvents))
		for _, e := range logEvents {
			d, _ := digest48(e.Digest)
			digests = append(digests, d)
		}
		replay := eventlog.ReplayDigests(digests...)
		r.LogReplay, r.LogMatchesQuote = &replay, replay == r.Actual
	}
	for i := range max(len(reg.Events), len(logEvents)) {
		row := EventDiff{Index: i}
		if i < len(reg.Events) {
			row.Expected = &reg.Events[i]
		}
		if i < len(logEvents) {
			row.Actual = &logEvents[i]
		}
		switch {
		case row.Actual == nil && ev.Events == nil:
			row.Status = StatusUnknown
		case row.Expected == nil:
			row.Status = StatusExtra
		case row.Actual == nil:
			row.Status = StatusMissing
		case row.Expected.Source == SourceUnknown:
			row.Status = StatusUnknown
		case string(row.Actual.Digest) == string(row.Expected.Digest[:]):
			row.Status = StatusMatch
		default:
			row.Status = StatusMismatch
		}
		r.Events = append(r.Events, row)
	}
	if r.Match {
		return r
	}
	r.Causes = rtmrCauses(&r, reg, ev.Events != nil, opts)
	return r
}

func rtmrCauses(r *RegisterDiff, reg Register, haveLog bool, opts DiagnoseOptions) []Cause {
	if r.Incomplete != "" {
		return []Cause{{reg.IncompleteInput, r.Name + " cannot be checked: " + r.Incomplete}}
	}
	if !haveLog {
		return []Cause{{dependsOn(reg.Events)[0], fmt.Sprintf("%s differs; without an event log the cause is one of %v", r.Name, dependsOn(reg.Events))}}
	}
	var out []Cause
	if !r.LogMatchesQuote {
		out = append(out, Cause{InputEventLog, fmt.Sprintf("the event log's %s events do not replay to the quote's %s: the log is not the TD's", r.Name, r.Name)})
	}
	exp, got := 0, 0
	for _, row := range r.Events {
		if row.Expected != nil {
			exp++
		}
		if row.Actual != nil {
			got++
		}
	}
	if exp != got {
		out = append(out, Cause{InputFirmware, fmt.Sprintf("%s has %d events in the log, the pre202505 layout has %d: a different OVMF build or boot path", r.Name, got, exp)})
	}
	for _, row := range r.Events {
		if row.Status != StatusMismatch {
			continue
		}
		out = append(out, eventCause(row, opts))
	}
	return out
}

// eventCause names the input behind one mismatched event.
func eventCause(row EventDiff, opts DiagnoseOptions) Cause {
	e := row.Expected
	switch {
	case e.Description == "TD HOB":
		if mem, ok := findHOBMemory(opts.HOBLayout, row.Actual.Digest); ok {
			return Cause{InputMemory, fmt.Sprintf("the event log's TD HOB is the one for %s of RAM; the expectation is for %s", sizeString(mem), sizeString(opts.Machine.MemorySize))}
		}
		return Cause{InputMemory, "the TD HOB differs: the RAM size, or the firmware's TD_HOB/TEMP_MEM layout"}
	case slices.Contains(e.DependsOn, InputACPI):
		return Cause{InputACPI, e.Description + " differs: the ACPI tables depend on vCPUs, RAM, devices and the QEMU version"}
	case slices.Contains(e.DependsOn, InputKernel):
		return Cause{InputKernel, "the kernel digest differs: the kernel image (or the RAM size below 2.75 GiB other than 2 GiB, or the initrd size, through QEMU's setup header patch)"}
	case len(e.DependsOn) > 0:
		return Cause{e.DependsOn[0], e.Description + " differs"}
	}
	return Cause{InputFirmware, e.Description + " differs: a different OVMF build"}
}

func dependsOn(events []Event) []Input {
	var out []Input
	for _, e := range events {
		for _, in := range e.DependsOn {
			if !slices.Contains(out, in) {
				out = append(out, in)
			}
		}
	}
	if len(out) == 0 {
		out = []Input{InputFirmware}
	}
	return out
}

// findHOBMemory searches the RAM sizes a VMM plausibly uses (every MiB
// up to 16 GiB, every 256 MiB up to 4 TiB) for one whose TD HOB digest
// is want.
func findHOBMemory(l *TDHOBLayout, want []byte) (uint64, bool) {
	if l == nil || len(want) != 48 {
		return 0, false
	}
	const mib = 1 << 20
	try := func(mem uint64) bool {
		d, err := l.Digest(mem)
		return err == nil && string(d[:]) == string(want)
	}
	for mem := uint64(16 * mib); mem <= 16<<30; mem += mib {
		if try(mem) {
			return mem, true
		}
	}
	for mem := uint64(16<<30 + 256*mib); mem <= 4<<40; mem += 256 * mib {
		if try(mem) {
			return mem, true
		}
	}
	return 0, false
}

func sizeString(b uint64) string {
	switch {
	case b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d bytes", b)
}

// DiagnoseLite checks a vm_config.tdx_measurement (os_image_hash, the
// checksum file and measurement.tdx.cbor) and compares what the document
// predicts for m with the evidence, taking the ACPI digests from the
// evidence's event log as dstack's lite verifier does. A checksum file
// that does not hash to os_image_hash, or a document its checksum file
// does not list, is reported as a cause (and the registers are still
// compared when the document parses). The error is non-nil only when no
// comparison is possible (unsupported RAM size, malformed QEMU version,
// no ACPI events).
func DiagnoseLite(osImageHash, checksumFile, document []byte, m Machine, ev Evidence) (*Diagnosis, error) {
	var pre []Cause
	lite, err := VerifyLiteMaterial(osImageHash, checksumFile, document)
	switch {
	case errors.Is(err, ErrOSImageHash):
		pre = append(pre, Cause{InputChecksumFile, "SHA-256 of the checksum file is not os_image_hash: the checksum file or os_image_hash was changed"})
	case errors.Is(err, ErrMeasurementBinding):
		pre = append(pre, Cause{InputLiteDocument, "measurement.tdx.cbor is not the document the checksum file lists"})
	case err != nil:
		return &Diagnosis{Causes: []Cause{{InputLiteDocument, "measurement.tdx.cbor does not parse: " + err.Error()}}}, nil
	}
	if lite == nil {
		if lite, err = ParseLiteMeasurement(document); err != nil {
			return &Diagnosis{Causes: append(pre, Cause{InputLiteDocument, "measurement.tdx.cbor does not parse: " + err.Error()})}, nil
		}
	}
	acpi, err := ACPIFromEventLog(ev.Events)
	if err != nil {
		return nil, err
	}
	exp, err := lite.Measure(m, acpi, nil)
	if err != nil {
		return nil, err
	}
	layout, err := ParseTDHOBWitness(lite.TDHOBWitness)
	if err != nil {
		return nil, err
	}
	d := Diagnose(exp, ev, DiagnoseOptions{Machine: m, HOBLayout: layout})
	if len(pre) > 0 {
		d.Match = false
		d.Causes = append(pre, d.Causes...)
	}
	return d, nil
}

// DiagnoseImage compares what img predicts on m with the evidence. The
// ACPI digests come from opts.ACPI or, when nil, from the evidence's
// event log; both MRTD page orders are computed so that a QEMU version
// change is recognised. Errors are those of [MeasureImage] and
// [ACPIFromEventLog].
func DiagnoseImage(img *Image, m Machine, ev Evidence, opts Options) (*Diagnosis, error) {
	if opts.ACPI == nil {
		acpi, err := ACPIFromEventLog(ev.Events)
		if err != nil {
			return nil, err
		}
		opts.ACPI = acpi
	}
	opts.AllPageOrders = true
	exp, err := MeasureImage(img, m, opts)
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
	return Diagnose(exp, ev, DiagnoseOptions{Machine: m, HOBLayout: layout}), nil
}
