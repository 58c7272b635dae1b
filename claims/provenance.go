package claims

import "strings"

// Provenance says what vouches for a claim's value. Policies match only
// claims whose provenance is Signed, Replayed or Bound; an Unverified
// claim is reported (under the "unverified." prefix) but never satisfies a
// rule, so evidence cannot pass a check with a value it only asserts.
type Provenance string

// Provenances, from the strongest to the weakest.
const (
	// Signed: read from bytes the quote signs (the report body, the
	// header) or from Intel-signed collateral and the PCK certificate.
	Signed Provenance = "signed"
	// Replayed: recomputed by replaying an event log into registers that
	// equal the quoted ones (tdx.eventlog.*, the dstack app identity read
	// from the RTMR3 runtime events).
	Replayed Provenance = "replayed"
	// Bound: not itself in the quote, but checked against signed values
	// (dstack.os_image_hash once MRTD and RTMR0–2 recomputed from the
	// image it names matched the quote; mr_system and mr_aggregated,
	// computed from quoted registers).
	Bound Provenance = "bound"
	// Unverified: taken from input nothing signs and nothing bound (a
	// vm_config field whose binding failed or was not checked). Such
	// claims are named UnverifiedPrefix + their usual name.
	Unverified Provenance = "unverified"
)

// UnverifiedPrefix starts the name of every Unverified claim:
// "unverified.dstack.os_image_hash" is the vm_config's os_image_hash when
// MRTD and RTMR0–2 were not recomputed from the image it names. The
// claim a policy or reference value would compare (dstack.os_image_hash)
// is then absent, so every rule naming it fails ("claim missing").
const UnverifiedPrefix = "unverified."

// replayed are the claims read from a replayed event log.
var replayed = map[string]bool{
	"dstack.app_id":                    true,
	"dstack.compose_hash":              true,
	"dstack.instance_id":               true,
	"dstack.key_provider":              true,
	"dstack.key_provider_id":           true,
	"dstack.events_after_system_ready": true,
	"dstack.event_log_verified":        true,
}

// bound are the claims checked against signed values.
var bound = map[string]bool{
	"dstack.os_image_hash":          true,
	"dstack.os_image_hash_verified": true,
	"dstack.cpu_count_verified":     true,
	"dstack.mr_system":              true,
	"dstack.mr_aggregated":          true,
	// The UKI hash comes from the vm_config's measurement document, bound
	// to os_image_hash and found among the quoted PCR2 events.
	"tpm.uki_auth": true,
	// SHA-256(PCR4||PCR7||PCR12) of a verified NitroTPM document.
	"tpm.boot_pcr_digest": true,
}

// ProvenanceOf returns the provenance of the claim named name as New
// makes it: Unverified for names under UnverifiedPrefix, Replayed for
// tdx.eventlog.* and the dstack identity read from runtime events, Bound
// for values checked against the quote, Signed for everything else (the
// quote's fields, the DCAP verification facts, dstack.device_id from the
// verified PCK certificate). It goes by the name alone, as TDX evidence
// makes the claim; ProvenanceIn and Set.Provenance also know SEV-SNP's.
// docs/claims.md lists each claim's provenance.
func ProvenanceOf(name string) Provenance {
	switch {
	case strings.HasPrefix(name, UnverifiedPrefix):
		return Unverified
	case strings.HasPrefix(name, "tdx.eventlog."), replayed[name]:
		return Replayed
	case bound[name]:
		return Bound
	}
	return Signed
}

// boundSNP are the dstack claims of SEV-SNP evidence that TDX evidence
// replays from RTMR3 (or, for device_id, reads from the PCK
// certificate): for SEV-SNP they are read from the MrConfigV3 document
// whose exact bytes HOST_DATA, a signed report field, binds, or computed
// from signed report fields (device_id = SHA-256(CHIP_ID)). No event log
// is replayed for SEV-SNP.
var boundSNP = map[string]bool{
	"dstack.app_id":             true,
	"dstack.compose_hash":       true,
	"dstack.instance_id":        true,
	"dstack.key_provider":       true,
	"dstack.key_provider_id":    true,
	"dstack.event_log_verified": true,
	"dstack.device_id":          true,
}

// ProvenanceIn returns the provenance of the claim named name in a claim
// set whose tee claim is tee. It is ProvenanceOf, except for SEV-SNP
// (tee "snp"), whose dstack identity claims are Bound: read from the
// MrConfigV3 document that HOST_DATA binds, or (dstack.device_id)
// computed from CHIP_ID, not replayed.
func ProvenanceIn(tee, name string) Provenance {
	if tee == TEESNP && boundSNP[name] {
		return Bound
	}
	return ProvenanceOf(name)
}

// Provenance returns the provenance of the claim named name in s
// (ProvenanceIn with s's tee claim).
func (s Set) Provenance(name string) Provenance { return ProvenanceIn(s.TEE(), name) }

// Matchable reports whether a policy may match the claim named name: its
// provenance is Signed, Replayed or Bound.
func Matchable(name string) bool { return !strings.HasPrefix(name, UnverifiedPrefix) }
