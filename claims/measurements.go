package claims

import (
	"slices"
	"sort"
)

// measurements maps reference-value names to the claims they are compared
// with. Reference values carry the short names (as `tdproof measure` and
// dstack publish them); claims carry Trustee's full names.
var measurements = map[string]string{
	"tdx.mr_td":              "tdx.quote.body.mr_td",
	"tdx.rtmr_0":             "tdx.quote.body.rtmr_0",
	"tdx.rtmr_1":             "tdx.quote.body.rtmr_1",
	"tdx.rtmr_2":             "tdx.quote.body.rtmr_2",
	"tdx.rtmr_3":             "tdx.quote.body.rtmr_3",
	"tdx.mr_config_id":       "tdx.quote.body.mr_config_id",
	"tdx.mr_owner":           "tdx.quote.body.mr_owner",
	"tdx.mr_owner_config":    "tdx.quote.body.mr_owner_config",
	"tdx.mr_seam":            "tdx.quote.body.mr_seam",
	"tdx.xfam":               "tdx.quote.body.xfam",
	"sgx.mr_enclave":         "sgx.quote.body.mr_enclave",
	"sgx.mr_signer":          "sgx.quote.body.mr_signer",
	"snp.measurement":        "snp.report.measurement",
	"snp.host_data":          "snp.report.host_data",
	"snp.id_key_digest":      "snp.report.id_key_digest",
	"snp.author_key_digest":  "snp.report.author_key_digest",
	"snp.family_id":          "snp.report.family_id",
	"snp.image_id":           "snp.report.image_id",
	"dstack.app_id":          "dstack.app_id",
	"dstack.compose_hash":    "dstack.compose_hash",
	"dstack.os_image_hash":   "dstack.os_image_hash",
	"dstack.mr_system":       "dstack.mr_system",
	"dstack.mr_aggregated":   "dstack.mr_aggregated",
	"dstack.key_provider_id": "dstack.key_provider_id",
	// Nitro Enclave (SHA-384): the image, kernel and bootstrap, the
	// application, the IAM role, the instance and the EIF signer.
	"nitro.pcr0": "nitro.pcr0",
	"nitro.pcr1": "nitro.pcr1",
	"nitro.pcr2": "nitro.pcr2",
	"nitro.pcr3": "nitro.pcr3",
	"nitro.pcr4": "nitro.pcr4",
	"nitro.pcr8": "nitro.pcr8",
	// GCP vTPM (SHA-256): firmware and boot path (GPT, UKI, kernel).
	"tpm.pcr0": "tpm.pcr0",
	"tpm.pcr2": "tpm.pcr2",
	// NitroTPM (SHA-384): the UEFI/UKI boot path.
	"tpm.pcr4":  "tpm.pcr4",
	"tpm.pcr7":  "tpm.pcr7",
	"tpm.pcr12": "tpm.pcr12",
}

// MeasurementClaim returns the claim a reference value named name is
// compared with: the claim of that name for the well-known measurement
// names (tdx.mr_td → tdx.quote.body.mr_td, tdx.rtmr_0 … tdx.rtmr_3,
// sgx.mr_enclave, dstack.compose_hash, …, see the package documentation),
// else ok is false.
func MeasurementClaim(name string) (claim string, ok bool) {
	claim, ok = measurements[name]
	return claim, ok
}

// MeasurementNames returns the well-known measurement reference-value
// names, sorted. The default policy compares each one for which a
// reference value exists.
func MeasurementNames() []string {
	out := make([]string, len(measurementList))
	for i, m := range measurementList {
		out[i] = m.Name
	}
	return out
}

// Measurement is a well-known measurement: the reference-value name and
// the claim it is compared with.
type Measurement struct{ Name, Claim string }

// Measurements returns the well-known measurements sorted by name (the
// order of MeasurementNames). The caller may modify the slice.
func Measurements() []Measurement { return slices.Clone(measurementList) }

// measurementList is measurements sorted by name, built once: the
// default policy walks it on every appraisal.
var measurementList = func() []Measurement {
	out := make([]Measurement, 0, len(measurements))
	for k, v := range measurements {
		out = append(out, Measurement{Name: k, Claim: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}()

// NumMeasurements returns how many well-known measurements there are.
func NumMeasurements() int { return len(measurementList) }
