package dstack

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
)

// Measurement modes of MeasurementCheck.Mode.
const (
	// MeasurementLite: MRTD and RTMR0–2 were recomputed from the VM
	// configuration's tdx_measurement (measurement.tdx.cbor bound to
	// os_image_hash by sha256sum.txt).
	MeasurementLite = "lite"
	// MeasurementImage: MRTD and RTMR0–2 were recomputed from the OS
	// image in Options.Image (the legacy path).
	MeasurementImage = "image"
)

// ACPI digest sources of MeasurementCheck.ACPISource.
const (
	// ACPIFromEventLog: the three ACPI digests of RTMR0 were taken from
	// the TD's own event log. The ACPI tables' contents, and with them
	// the device topology, are not verified; cpu_count is checked against
	// the MADT size the table loader describes when that layout is
	// recognised (MeasurementCheck.CPUCountVerified).
	ACPIFromEventLog = "event_log"
	// ACPIFromTables: the ACPI digests were computed from the fw_cfg
	// tables given in Options.ACPI, so RTMR0 binds them.
	ACPIFromTables = "tables"
)

// MeasurementCheck reports the recomputation of MRTD and RTMR0–2 from the
// OS image (or its lite measurement document) and the VM configuration.
type MeasurementCheck struct {
	// Mode is MeasurementLite or MeasurementImage.
	Mode string `json:"mode"`
	// ACPISource is ACPIFromEventLog or ACPIFromTables.
	ACPISource string `json:"acpi_source"`
	// OSImageHash is the os_image_hash that was bound to what was
	// measured; empty when the image's os_image_hash is unknown (an image
	// without sha256sum.txt).
	OSImageHash HexBytes `json:"os_image_hash"`
	// CPUCount, MemorySize and QEMUVersion are the VM configuration's
	// values the registers were computed for; QEMUVersion is the
	// effective one (measure.DefaultQEMUVersion when absent). PageOrder is
	// the MRTD page order they select.
	CPUCount    uint32 `json:"cpu_count"`
	MemorySize  uint64 `json:"memory_size"`
	QEMUVersion string `json:"qemu_version"`
	PageOrder   string `json:"page_order"`
	// Registers are MRTD, RTMR0, RTMR1 and RTMR2, in that order.
	Registers []MeasuredRegister `json:"registers"`
	// Match is true when every register equals the quote (always true in
	// a result Verify returns: a mismatch is an error).
	Match bool `json:"match"`
	// CPUCountVerified is true when cpu_count is bound to RTMR0: the
	// MADT of the given tables (ACPIFromTables), or the MADT size the
	// event log's table loader describes (ACPIFromEventLog, see
	// measure.RecoverACPILayout), lists exactly cpu_count vCPUs.
	CPUCountVerified bool `json:"cpu_count_verified"`
	// ACPILayout is the tables layout the event log's ACPI digests
	// describe; absent when the digests come from tables or the layout
	// is not recognised.
	ACPILayout *measure.ACPILayout `json:"acpi_layout,omitempty"`
	// Notes are facts worth showing, e.g. that the ACPI tables' contents
	// are not verified when their digests come from the event log.
	Notes []string `json:"notes"`
}

// MeasuredRegister is one recomputed register beside the quote's.
type MeasuredRegister struct {
	Name     string   `json:"name"`
	Expected HexBytes `json:"expected"`
	Quoted   HexBytes `json:"quoted"`
	Match    bool     `json:"match"`
}

// MeasurementMismatchError reports a register recomputed from the image
// or lite document that differs from the quote: the TD did not boot the
// claimed image with the claimed configuration. It wraps ErrMeasurement.
type MeasurementMismatchError struct {
	// Mode is MeasurementLite or MeasurementImage.
	Mode string
	// Register is "MRTD", "RTMR0", "RTMR1" or "RTMR2" (the first that
	// differs).
	Register string
	// Expected is the recomputed value, Quoted the quote's.
	Expected, Quoted [48]byte
	// Cause names the input that likely changed (from measure.Diagnose,
	// e.g. "memory_size: …"); empty when none was found.
	Cause string
}

// Error implements error.
func (e *MeasurementMismatchError) Error() string {
	s := fmt.Sprintf("dstack: %s mismatch (%s mode): quoted %x, expected %x", e.Register, e.Mode, e.Quoted, e.Expected)
	if e.Cause != "" {
		s += "; likely cause: " + e.Cause
	}
	return s
}

// Unwrap returns ErrMeasurement.
func (e *MeasurementMismatchError) Unwrap() error { return ErrMeasurement }

// checkMeasurement recomputes MRTD and RTMR0–2 when an image is given or
// the VM configuration carries lite material, and compares them with the
// quote. It returns nil, nil when there is nothing to measure.
func checkMeasurement(ev *Evidence, td *quote.TDReport, opts Options) (*MeasurementCheck, bool, error) {
	vm := ev.VMConfig
	lite := vm != nil && vm.TDXMeasurement != nil
	if opts.Image == nil && !lite {
		return nil, false, nil
	}
	if vm == nil {
		return nil, false, fmt.Errorf("%w: an OS image was given but the evidence carries no vm_config (memory size and QEMU version unknown)", ErrUnsupported)
	}
	if vm.OVMFVariant != "" && vm.OVMFVariant != measure.OVMFVariantPre202505 {
		return nil, false, fmt.Errorf("%w: vm_config ovmf_variant %q (only %q is modelled)", ErrUnsupported, vm.OVMFVariant, measure.OVMFVariantPre202505)
	}
	// The vCPU count is bound after the registers match the quote
	// (Measurement.BindCPUs): the ACPI layout search then only runs on
	// digests the TD measured, never on whatever a forged log carries.
	m := measure.Machine{MemorySize: vm.MemorySize, QEMUVersion: vm.QemuVersion, QEMUSinglePassAddPages: vm.QemuSinglePassAddPages}
	chk := &MeasurementCheck{CPUCount: vm.CPUCount, MemorySize: vm.MemorySize, QEMUVersion: vm.QemuVersion, Notes: []string{}}
	if chk.QEMUVersion == "" {
		chk.QEMUVersion = measure.DefaultQEMUVersion
	}
	acpi := opts.ACPI
	chk.ACPISource = ACPIFromTables
	if acpi == nil || acpi.Source == measure.SourceEventLog {
		chk.ACPISource = ACPIFromEventLog
	}
	if acpi == nil {
		a, err := measure.ACPIFromEventLog(ev.Events)
		if err != nil {
			return nil, false, fmt.Errorf("%w: the event log has no usable ACPI DATA events: %w", ErrEventLog, err)
		}
		acpi = a
	}
	if chk.ACPISource == ACPIFromTables && acpi.MADTCPUs > 0 && vm.CPUCount != 0 && acpi.MADTCPUs != int(vm.CPUCount) {
		return nil, false, fmt.Errorf("%w: vm_config cpu_count %d, but the ACPI tables the quote binds list %d CPUs", ErrMeasurement, vm.CPUCount, acpi.MADTCPUs)
	}

	var exp *measure.Measurement
	var layout *measure.TDHOBLayout
	osHashVerified := false
	var err error
	if opts.Image != nil {
		chk.Mode = MeasurementImage
		if exp, err = measure.MeasureImage(opts.Image, m, measure.Options{ACPI: acpi, OVMFVariant: vm.OVMFVariant, AllPageOrders: true}); err != nil {
			return nil, false, measureErr(err)
		}
		if tdvf, err := measure.ParseTDVF(opts.Image.Firmware); err == nil {
			layout, _ = tdvf.TDHOBLayout()
		}
		if len(opts.ImageOSHash) != 0 {
			if !bytes.Equal(opts.ImageOSHash, vm.OSImageHash) {
				return nil, false, fmt.Errorf("%w: the image's os_image_hash is %x, vm_config claims %x", ErrOSImageHash, opts.ImageOSHash, []byte(vm.OSImageHash))
			}
			chk.OSImageHash = HexBytes(bytes.Clone(opts.ImageOSHash))
			osHashVerified = true
		} else {
			chk.Notes = append(chk.Notes, "the image has no sha256sum.txt: os_image_hash is not verified")
		}
	} else {
		chk.Mode = MeasurementLite
		tm := vm.TDXMeasurement
		l, err := measure.VerifyLiteMaterial(vm.OSImageHash, tm.ChecksumFile, tm.Measurement)
		switch {
		case errors.Is(err, measure.ErrOSImageHash), errors.Is(err, measure.ErrMeasurementBinding):
			return nil, false, fmt.Errorf("%w: vm_config.tdx_measurement: %w", ErrOSImageHash, err)
		case err != nil:
			return nil, false, measureErr(err)
		}
		if exp, err = l.Measure(m, acpi, nil); err != nil {
			return nil, false, measureErr(err)
		}
		layout, _ = measure.ParseTDHOBWitness(l.TDHOBWitness)
		chk.OSImageHash = HexBytes(bytes.Clone(vm.OSImageHash))
		osHashVerified = true
	}
	chk.PageOrder = exp.PageOrder.String()

	regs := []struct {
		name       string
		exp, quote [48]byte
		incomplete string
	}{
		{"MRTD", exp.MRTD, td.MRTD, ""},
		{"RTMR0", exp.RTMRs[0].Value, td.RTMRs[0], exp.RTMRs[0].Incomplete},
		{"RTMR1", exp.RTMRs[1].Value, td.RTMRs[1], exp.RTMRs[1].Incomplete},
		{"RTMR2", exp.RTMRs[2].Value, td.RTMRs[2], exp.RTMRs[2].Incomplete},
	}
	chk.Match = true
	var mismatch *MeasurementMismatchError
	for _, r := range regs {
		if r.incomplete != "" {
			return nil, false, fmt.Errorf("%w: %s: %s", ErrMalformed, r.name, r.incomplete)
		}
		ok := r.exp == r.quote
		chk.Registers = append(chk.Registers, MeasuredRegister{Name: r.name, Expected: clone48(r.exp), Quoted: clone48(r.quote), Match: ok})
		if !ok && mismatch == nil {
			mismatch = &MeasurementMismatchError{Mode: chk.Mode, Register: r.name, Expected: r.exp, Quoted: r.quote}
		}
		chk.Match = chk.Match && ok
	}
	if mismatch != nil {
		d := measure.Diagnose(exp, measure.Evidence{MRTD: td.MRTD, RTMRs: td.RTMRs, Events: bootEvents(ev.Events)}, measure.DiagnoseOptions{Machine: m, HOBLayout: layout})
		if len(d.Causes) > 0 {
			mismatch.Cause = string(d.Causes[0].Input) + ": " + d.Causes[0].Detail
		}
		return nil, false, mismatch
	}
	exp.BindCPUs(acpi, int(vm.CPUCount))
	if r0 := exp.RTMRs[0]; r0.IncompleteInput == measure.InputCPUs {
		return nil, false, fmt.Errorf("%w: cpu_count: %s", ErrMeasurement, r0.Incomplete)
	}
	chk.Notes = append(chk.Notes, exp.Notes...)
	chk.CPUCountVerified, chk.ACPILayout = exp.CPUsBound, exp.ACPILayout
	return chk, osHashVerified, nil
}

// bootEvents returns the events of RTMR0–2, or nil when the log carries
// only the ACPI DATA markers (a stripped log says nothing per event).
func bootEvents(events []eventlog.Event) []eventlog.Event {
	for i := range events {
		e := &events[i]
		if e.IMR <= 2 && e.Type != eventlog.EvNoAction && !isACPIData(e) {
			return events
		}
	}
	return nil
}

// measureErr wraps an error of package measure in this package's
// sentinel of the same meaning.
func measureErr(err error) error {
	switch {
	case errors.Is(err, measure.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	case errors.Is(err, measure.ErrMalformed), errors.Is(err, measure.ErrNoOVMFTable), errors.Is(err, measure.ErrNoTDXMetadata):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return fmt.Errorf("%w: %w", ErrMeasurement, err)
}
