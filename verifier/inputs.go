package verifier

import (
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/measure"
)

// DstackInputs are what a caller knows about a dstack TD beyond its
// evidence: the OS image it must have booted and the VM's ACPI tables
// (tdproof dstack verify --image, --acpi-dir). They only add checks, with
// one explicit exception (AllowMRSignerSEAMUnsafe).
type DstackInputs struct {
	// Image, ImageOSHash and ACPI are dstack.Options' fields of the same
	// names: MRTD and RTMR0–2 are recomputed from Image for the
	// vm_config's machine and compared with the quote, and its
	// os_image_hash must equal vm_config's.
	Image       *measure.Image
	ImageOSHash []byte
	ACPI        *measure.ACPIDigests
	// AllowMRSignerSEAMUnsafe accepts a TDX module not signed by Intel
	// (dstack.Options.AllowMRSignerSEAMUnsafe). The service never sets it.
	AllowMRSignerSEAMUnsafe bool
}

// apply copies the inputs into o.
func (d *DstackInputs) apply(o *dstack.Options) {
	if d == nil {
		return
	}
	o.Image, o.ImageOSHash, o.ACPI = d.Image, d.ImageOSHash, d.ACPI
	o.AllowMRSignerSEAMUnsafe = d.AllowMRSignerSEAMUnsafe
}
