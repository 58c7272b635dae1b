package dstack

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tdproof/tdproof/jcs"
)

// Attestation variants of VMConfig.TDXAttestationVariant.
const (
	VariantLegacy = "legacy"
	VariantLite   = "lite"
)

// VMConfig is dstack's VmConfig (dstack.md §5): the host's description of
// the VM, which the verifier needs to recompute MRTD and RTMR0–2. Nothing
// in it is measured by itself; see the package documentation. Unknown
// members are ignored; optional members are nil when absent.
type VMConfig struct {
	// OSImageHash is SHA-256 of the image's sha256sum.txt.
	OSImageHash HexBytes `json:"os_image_hash"`
	CPUCount    uint32   `json:"cpu_count"`
	// MemorySize is in bytes.
	MemorySize uint64 `json:"memory_size"`
	// QemuSinglePassAddPages is passed by dstack as "two-pass add pages"
	// (sic, dstack.md §4.1).
	QemuSinglePassAddPages *bool   `json:"qemu_single_pass_add_pages,omitempty"`
	PIC                    *bool   `json:"pic,omitempty"`
	QemuVersion            string  `json:"qemu_version,omitempty"`
	PCIHole64Size          uint64  `json:"pci_hole64_size"`
	Hugepages              bool    `json:"hugepages"`
	NumGPUs                uint32  `json:"num_gpus"`
	NumNVSwitches          uint32  `json:"num_nvswitches"`
	NumNICs                *uint32 `json:"num_nics,omitempty"`
	NumVerityVolumes       uint32  `json:"num_verity_volumes,omitempty"`
	Swtpm                  bool    `json:"swtpm,omitempty"`
	HotplugOff             bool    `json:"hotplug_off"`
	Image                  string  `json:"image,omitempty"`
	HostShareMode          string  `json:"host_share_mode,omitempty"`
	OVMFVariant            string  `json:"ovmf_variant,omitempty"`
	// TDXAttestationVariant is VariantLite or VariantLegacy; empty means
	// legacy.
	TDXAttestationVariant string `json:"tdx_attestation_variant,omitempty"`
	// TDXMeasurement carries the lite variant's measurement material.
	TDXMeasurement *TDXMeasurement `json:"tdx_measurement,omitempty"`
	// MRConfig is the MR_CONFIG_ID version 3 document, from the
	// configuration's "mr_config" member or, for the nested form, from the
	// sys-config's.
	MRConfig string `json:"mr_config,omitempty"`

	// Raw is the VM configuration JSON as carried (for the nested form,
	// the inner vm_config string). Nested reports that it came wrapped in
	// a sys-config.
	Raw    []byte `json:"-"`
	Nested bool   `json:"-"`
}

// TDXMeasurement is the lite variant's measurement material: the image's
// sha256sum.txt and its measurement.tdx.cbor (standard base64 in JSON).
type TDXMeasurement struct {
	ChecksumFile []byte `json:"checksum_file"`
	Measurement  []byte `json:"measurement"`
}

// Variant returns the TDX attestation variant, VariantLegacy when absent.
func (c *VMConfig) Variant() string {
	if c.TDXAttestationVariant == "" {
		return VariantLegacy
	}
	return c.TDXAttestationVariant
}

// ParseVMConfig parses a VM configuration in either form dstack emits
// (dstack.md §1.7): a flat VmConfig object, or a sys-config object whose
// "vm_config" member is a string holding the VmConfig JSON. The JSON must
// be I-JSON (no duplicate members).
func ParseVMConfig(data []byte) (*VMConfig, error) {
	if err := jcs.Validate(data); err != nil {
		return nil, &ParseError{Field: "vm_config", Offset: -1, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	var probe struct {
		VMConfig *string `json:"vm_config"`
		MRConfig string  `json:"mr_config"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, malformed("vm_config", -1, "%v", err)
	}
	if probe.VMConfig == nil {
		return decodeVMConfig(data)
	}
	inner := []byte(*probe.VMConfig)
	if err := jcs.Validate(inner); err != nil {
		return nil, &ParseError{Field: "vm_config.vm_config", Offset: -1, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	c, err := decodeVMConfig(inner)
	if err != nil {
		return nil, err
	}
	c.Nested = true
	if c.MRConfig == "" {
		c.MRConfig = probe.MRConfig
	}
	return c, nil
}

func decodeVMConfig(data []byte) (*VMConfig, error) {
	c := new(VMConfig)
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(c); err != nil {
		return nil, malformed("vm_config", -1, "%v", err)
	}
	if len(c.OSImageHash) == 0 {
		c.OSImageHash = nil
	}
	c.Raw = data
	return c, nil
}
