package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"sync"
)

// ACPILayout is the layout of an etc/acpi/tables blob as its table-loader
// and RSDP blobs describe it. The loader holds the offset and length of
// every table it checksums and the RSDP the RSDT's offset, so the two
// digests an event log carries pin these numbers even though the tables
// themselves are not in the log: [RecoverACPILayout] finds them by
// synthesising candidate blobs and comparing digests.
//
// The layout binds the vCPU count: QEMU's MADT holds one 8-byte Processor
// Local APIC entry per vCPU besides a fixed part. It does not bind the
// tables' contents, which only the tables digest covers.
type ACPILayout struct {
	// RSDTOffset is where the RSDT starts in the tables blob.
	RSDTOffset int `json:"rsdt_offset"`
	// DSDTLength, FADTLength and MADTLength are the table lengths in
	// bytes. The FACS (64 bytes) comes first, then DSDT, FADT, MADT,
	// MCFG (60), WAET (40) and the four-entry RSDT (52).
	DSDTLength int `json:"dsdt_length"`
	FADTLength int `json:"fadt_length"`
	MADTLength int `json:"madt_length"`
	// InterruptOverrides is the number of MADT interrupt source override
	// entries: 5 (IRQ 0 and the level-triggered PCI IRQs 5, 9, 10 and 11,
	// as upstream QEMU builds them) or 16 (IRQ 0 to 15, as QEMU builds
	// patched for TDX's lack of EOI interception report every ISA IRQ as
	// edge-triggered).
	InterruptOverrides int `json:"interrupt_overrides"`
	// CPUs is the number of Processor Local APIC entries the MADT length
	// implies.
	CPUs int `json:"cpus"`
}

// Sizes of the fixed tables of the layout (QEMU q35, §4.4).
const (
	facsLength = 64
	mcfgLength = 60
	waetLength = 40
	rsdtLength = 36 + 4*4
)

// MADT entry sizes (ACPI 6.5 §5.2.12).
const (
	madtHeaderLength   = 44 // table header, local APIC address, flags
	madtLocalAPIC      = 8
	madtIOAPIC         = 12
	madtSourceOverride = 10
	madtLocalAPICNMI   = 6
	// MaxLayoutCPUs is the largest vCPU count [RecoverACPILayout]
	// recognises: above it QEMU lists x2APIC entries, whose layout is
	// not modelled.
	MaxLayoutCPUs = 255
	// maxRSDTOffset bounds the RSDP search (and so the work a forged
	// digest can cause) to QEMU's initial 128 KiB tables blob; an RSDT
	// beyond it is a layout this package does not recognise.
	maxRSDTOffset = 128 << 10
)

// madtInterruptOverrides are the override counts the two MADT variants
// have, the upstream one first.
var madtInterruptOverrides = [...]int{5, 16}

// fadtLengths are the FADT revision 3 (QEMU's q35), 6 and 5 lengths, most
// likely first: the loader QEMU builds patches X_DSDT, which revision 1
// lacks.
var fadtLengths = [...]int{244, 276, 268}

// MADTLength is the length of the MADT QEMU builds for cpus vCPUs (at most
// [MaxLayoutCPUs]) with the given number of interrupt source overrides:
// the header, one Processor Local APIC entry per vCPU, one I/O APIC, the
// overrides and one Local APIC NMI entry.
func MADTLength(cpus, overrides int) int {
	return madtHeaderLength + madtLocalAPIC*cpus + madtIOAPIC + madtSourceOverride*overrides + madtLocalAPICNMI
}

// layoutTables returns the table index of a layout, for tableLoader.
func layoutTables(dsdt, fadt, madt int) map[string]ACPITable {
	idx := make(map[string]ACPITable, len(loaderTables))
	off := 0
	for _, t := range []struct {
		sig string
		n   int
	}{{"FACS", facsLength}, {"DSDT", dsdt}, {"FACP", fadt}, {"APIC", madt}, {"MCFG", mcfgLength}, {"WAET", waetLength}, {"RSDT", rsdtLength}} {
		idx[t.sig] = ACPITable{Signature: t.sig, Offset: off, Length: t.n}
		off += t.n
	}
	return idx
}

// layoutCache remembers recovered layouts by digest pair: a verifier sees
// the same few VM shapes over and over.
var layoutCache = struct {
	sync.Mutex
	m map[[96]byte]layoutResult
}{m: map[[96]byte]layoutResult{}}

type layoutResult struct {
	layout ACPILayout
	err    error
}

const layoutCacheSize = 1024

// RecoverACPILayout finds the tables layout whose synthesised RSDP and
// table-loader blobs have the digests in a (typically taken from an event
// log with [ACPIFromEventLog]). It recognises the table set of QEMU's q35
// TDX machine in the configuration dstack uses (FACS, DSDT, FADT, MADT,
// MCFG, WAET, RSDT) with 1 to [MaxLayoutCPUs] vCPUs and either MADT
// variant; cpusHint, when positive, is tried first. Any other layout (an
// SRAT for NUMA, x2APIC entries, another QEMU, or tables that are not
// QEMU's) is [ErrUnsupported]: nothing is guessed. A digest match is
// exact, so a recovered layout is the one the loader describes.
//
// Results are cached by digest pair; the first call for a pair hashes up
// to a few thousand candidates (see BenchmarkRecoverACPILayout).
func RecoverACPILayout(a *ACPIDigests, cpusHint int) (*ACPILayout, error) {
	var key [96]byte
	copy(key[:48], a.Loader[:])
	copy(key[48:], a.RSDP[:])
	layoutCache.Lock()
	r, ok := layoutCache.m[key]
	layoutCache.Unlock()
	if !ok {
		l, err := recoverACPILayout(a.Loader, a.RSDP, cpusHint)
		if l != nil {
			r.layout = *l
		}
		r.err = err
		layoutCache.Lock()
		if len(layoutCache.m) >= layoutCacheSize {
			clear(layoutCache.m)
		}
		layoutCache.m[key] = r
		layoutCache.Unlock()
	}
	if r.err != nil {
		return nil, r.err
	}
	l := r.layout
	return &l, nil
}

func recoverACPILayout(loader, rsdpDigest [48]byte, cpusHint int) (*ACPILayout, error) {
	rsdt, ok := recoverRSDTOffset(rsdpDigest)
	if !ok {
		return nil, fmt.Errorf("measure: acpi: %w: the RSDP digest is not that of a QEMU RSDP with the RSDT below %d KiB", ErrUnsupported, maxRSDTOffset>>10)
	}
	cpus := make([]int, 0, MaxLayoutCPUs+1)
	if cpusHint > 0 && cpusHint <= MaxLayoutCPUs {
		cpus = append(cpus, cpusHint)
	}
	for n := 1; n <= MaxLayoutCPUs; n++ {
		if n != cpusHint {
			cpus = append(cpus, n)
		}
	}
	fixed := facsLength + mcfgLength + waetLength
	for _, n := range cpus {
		for _, fadt := range fadtLengths {
			for _, overrides := range madtInterruptOverrides {
				madt := MADTLength(n, overrides)
				dsdt := rsdt - fixed - fadt - madt
				if dsdt < 36 {
					continue
				}
				if sha512.Sum384(tableLoader(layoutTables(dsdt, fadt, madt))) == loader {
					return &ACPILayout{RSDTOffset: rsdt, DSDTLength: dsdt, FADTLength: fadt, MADTLength: madt, InterruptOverrides: overrides, CPUs: n}, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("measure: acpi: %w: the table-loader digest matches no recognised layout (FACS, DSDT, FADT, MADT, MCFG, WAET, RSDT with 1 to %d vCPUs)", ErrUnsupported, MaxLayoutCPUs)
}

// recoverRSDTOffset finds the RSDT offset whose QEMU RSDP has digest d.
func recoverRSDTOffset(d [48]byte) (int, bool) {
	var b [20]byte
	copy(b[:], rsdp(0))
	for off := range maxRSDTOffset {
		binary.LittleEndian.PutUint32(b[16:], uint32(off))
		if sha512.Sum384(b[:]) == d {
			return off, true
		}
	}
	return 0, false
}

// ACPICPUCheck is what [CheckACPICPUs] found.
type ACPICPUCheck struct {
	// Layout is the recovered layout; nil when not recognised.
	Layout *ACPILayout
	// Bound is true when the layout was recognised and lists exactly the
	// declared vCPUs.
	Bound bool
	// Contradiction, when not empty, says how the layout contradicts the
	// declared vCPU count.
	Contradiction string
	// Unrecognised is why the layout could not be recovered.
	Unrecognised string
}

// CheckACPICPUs compares a declared vCPU count with the MADT size the
// table-loader and RSDP digests describe ([RecoverACPILayout]).
func CheckACPICPUs(a *ACPIDigests, cpus int) ACPICPUCheck {
	l, err := RecoverACPILayout(a, cpus)
	if err != nil {
		return ACPICPUCheck{Unrecognised: err.Error()}
	}
	c := ACPICPUCheck{Layout: l, Bound: l.CPUs == cpus}
	if !c.Bound {
		c.Contradiction = fmt.Sprintf("the ACPI table loader in the event log describes a MADT for %d vCPUs (%d bytes), not for cpu_count %d", l.CPUs, l.MADTLength, cpus)
	}
	return c
}
