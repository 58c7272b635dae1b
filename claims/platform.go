package claims

import (
	"strings"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitro"
)

// Platforms a claim set describes ([Set.Platform]): the tee claim, refined
// for the dstack variants that share a tee.
const (
	PlatformTDX          = "tdx"
	PlatformSGX          = "sgx"
	PlatformSNP          = "snp"
	PlatformGCPTDX       = "gcp-tdx"
	PlatformNitroEnclave = "nitro-enclave"
	PlatformNitroTPM     = "aws-nitro-tpm"
)

// Platform returns the platform the claim set describes: PlatformGCPTDX
// for a TDX quote with a GCP vTPM quote (dstack.tee_variant
// dstack-gcp-tdx), PlatformNitroEnclave or PlatformNitroTPM for tee nitro
// (by nitro.kind), else the tee claim ("" when absent).
func (s Set) Platform() string {
	tee := s.TEE()
	switch tee {
	case TEETDX:
		if v, _ := s.String("dstack.tee_variant"); v == dstack.TEEVariantGCPTDX {
			return PlatformGCPTDX
		}
	case TEENitro:
		switch k, _ := s.String("nitro.kind"); nitro.Kind(k) {
		case nitro.KindEnclave:
			return PlatformNitroEnclave
		case nitro.KindNitroTPM:
			return PlatformNitroTPM
		}
		return ""
	}
	return tee
}

// platformMeasurements lists, per platform, the well-known measurements
// that describe it: a namespace ("tdx.") or a name ("tpm.pcr0"). The TPM
// PCRs are per platform because GCP's vTPM (SHA-256 PCR0, PCR2) and
// NitroTPM (SHA-384 PCR4, PCR7, PCR12) share the tpm namespace.
var platformMeasurements = map[string][]string{
	PlatformTDX:          {"tdx.", "dstack."},
	PlatformGCPTDX:       {"tdx.", "dstack.", "tpm.pcr0", "tpm.pcr2"},
	PlatformSGX:          {"sgx."},
	PlatformSNP:          {"snp.", "dstack."},
	PlatformNitroEnclave: {"nitro.", "dstack."},
	PlatformNitroTPM:     {"tpm.pcr4", "tpm.pcr7", "tpm.pcr12", "dstack."},
}

// MeasurementApplies reports whether the well-known measurement name
// describes the platform of s ([Set.Platform]): the default policy
// compares exactly those with their reference values, so that a
// reference value of one platform never judges evidence of another.
func MeasurementApplies(name string, s Set) bool { return MeasurementsFor(s)(name) }

// MeasurementsFor returns MeasurementApplies for the platform of s,
// working it out once: the default policy asks it for every well-known
// measurement.
func MeasurementsFor(s Set) func(name string) bool {
	ms := platformMeasurements[s.Platform()]
	return func(name string) bool {
		for _, m := range ms {
			if name == m || strings.HasSuffix(m, ".") && strings.HasPrefix(name, m) {
				return true
			}
		}
		return false
	}
}
