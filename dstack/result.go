package dstack

import (
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/snp"
)

// MediaType identifies the JSON schema of Result.
const MediaType = "application/vnd.tdproof.dstack-result.v1+json"

// TEEVariant is the tee_variant dstack reports for TDX evidence.
const TEEVariant = "dstack-tdx"

// Result is the outcome of a successful verification: the facts of
// dstack-verifier's "details" object (dstack.md §1.5) plus the DCAP result
// and what was replayed. It is plain data; byte fields encode as lowercase
// hex.
type Result struct {
	MediaType      string `json:"media_type"`
	TEEVariant     string `json:"tee_variant"`
	EvidenceFormat Format `json:"evidence_format"`

	// QuoteVerified is true when the quote was verified with DCAP (Verify;
	// false for VerifyEventLog).
	QuoteVerified bool `json:"quote_verified"`
	// EventLogVerified is true when every event log check passed.
	EventLogVerified bool `json:"event_log_verified"`
	// OSImageHashVerified is true when MRTD and RTMR0–2 were recomputed
	// from material bound to the vm_config's os_image_hash (the lite
	// document, or Options.Image with Options.ImageOSHash) and matched
	// the quote. It proves the TD booted the image os_image_hash names,
	// not that the image is trustworthy: allowlist os_image_hash.
	OSImageHashVerified bool `json:"os_image_hash_verified"`
	// ACPITablesVerified is true only when RTMR0 was recomputed from the
	// ACPI tables' contents (Options.ACPI with tables, ACPIFromTables)
	// and matched the quote. With the ACPI digests taken from the event
	// log (every lite verification without tables, and
	// --acpi-from-eventlog) the contents are not verified and it is false.
	ACPITablesVerified bool `json:"acpi_tables_verified"`
	// Measurement reports that recomputation; nil when neither an image
	// was given nor the vm_config carries tdx_measurement.
	Measurement *MeasurementCheck `json:"measurement"`

	// ReportData is the quote's REPORTDATA; ReportDataChecks lists the
	// bindings that were checked (SourceEvidence, SourceCertificate,
	// SourcePodPayload, SourceCaller).
	ReportData       HexBytes `json:"report_data"`
	ReportDataChecks []string `json:"report_data_checks"`

	// TCBStatus and AdvisoryIDs come from the DCAP result; empty without
	// DCAP verification.
	TCBStatus   string   `json:"tcb_status"`
	AdvisoryIDs []string `json:"advisory_ids"`

	// KeyProvider is the decoded key-provider event, nil when absent or
	// not valid JSON.
	KeyProvider *KeyProvider `json:"key_provider"`
	AppInfo     AppInfo      `json:"app_info"`
	BootInfo    BootInfo     `json:"boot_info"`
	// Identity is everything read from the runtime events before
	// "system-ready", and the names of the events after it.
	Identity *Identity `json:"identity"`
	// MRConfigID is the decoded MR_CONFIG_ID and whether it was matched
	// against the identity.
	MRConfigID *MRConfigID `json:"mr_config_id"`
	// RTMRs reports the replay of each register.
	RTMRs [4]RTMRReplay `json:"rtmrs"`
	// RuntimeEvents are the events replayed into RTMR3, in order.
	RuntimeEvents []RuntimeEventInfo `json:"runtime_events"`
	// VMConfig is the VM configuration the evidence carries (unverified),
	// nil when absent.
	VMConfig *VMConfig `json:"vm_config,omitempty"`

	// DCAP is the quote verification result; nil for VerifyEventLog.
	DCAP *dcap.Result `json:"dcap,omitempty"`
	// SNP is the SEV-SNP report verification result (VerifySNP only) and
	// SNPLaunch the launch digest recomputation, nil when the vm_config
	// carries no sev_snp_measurement.
	SNP       *snp.Result     `json:"snp,omitempty"`
	SNPLaunch *SNPLaunchCheck `json:"snp_launch,omitempty"`
	// Nitro is the verified Nitro document (VerifyNitro), nil otherwise.
	Nitro *NitroFacts `json:"nitro,omitempty"`
	// GCP is the verified vTPM quote of dstack-gcp-tdx, nil otherwise.
	GCP *GCPFacts `json:"gcp,omitempty"`
}

// AppInfo is dstack's AppInfo (dstack.md §1.4) with the quote's
// measurements, as in dstack-verifier's response.
type AppInfo struct {
	AppID       HexBytes `json:"app_id"`
	ComposeHash HexBytes `json:"compose_hash"`
	InstanceID  HexBytes `json:"instance_id"`
	// DeviceID is SHA-256 of the PPID from the verified PCK certificate;
	// empty without DCAP verification.
	DeviceID     HexBytes `json:"device_id"`
	MRSystem     HexBytes `json:"mr_system"`
	MRAggregated HexBytes `json:"mr_aggregated"`
	// OSImageHash is the VM configuration's os_image_hash (not the
	// "os-image-hash" event); unverified.
	OSImageHash      HexBytes   `json:"os_image_hash"`
	KeyProviderInfo  HexBytes   `json:"key_provider_info"`
	InitScriptHashes []HexBytes `json:"init_script_hashes"`
	MRTD             HexBytes   `json:"mrtd"`
	RTMR0            HexBytes   `json:"rtmr0"`
	RTMR1            HexBytes   `json:"rtmr1"`
	RTMR2            HexBytes   `json:"rtmr2"`
	RTMR3            HexBytes   `json:"rtmr3"`
}

// BootInfo is the boot information dstack's KMS posts to its
// authorization webhook (PolicyBootInfo). Its JSON members are camelCase,
// exactly as the webhook expects, so that it can be posted as is.
type BootInfo struct {
	TEEVariant      string   `json:"teeVariant"`
	MRAggregated    HexBytes `json:"mrAggregated"`
	OSImageHash     HexBytes `json:"osImageHash"`
	MRSystem        HexBytes `json:"mrSystem"`
	AppID           HexBytes `json:"appId"`
	ComposeHash     HexBytes `json:"composeHash"`
	InstanceID      HexBytes `json:"instanceId"`
	DeviceID        HexBytes `json:"deviceId"`
	KeyProviderInfo HexBytes `json:"keyProviderInfo"`
	TCBStatus       string   `json:"tcbStatus"`
	AdvisoryIDs     []string `json:"advisoryIds"`
}

// RTMRReplay reports one register.
type RTMRReplay struct {
	// Quoted is the register in the quote.
	Quoted HexBytes `json:"quoted"`
	// Replayed is the value the event log gives; empty when the register
	// was not replayed.
	Replayed HexBytes `json:"replayed,omitempty"`
	// Events is the number of events replayed.
	Events int `json:"events"`
	// Verified is true when Replayed equals Quoted. RTMR3 is always
	// replayed; RTMR0–2 only when the log carries the boot events (not a
	// stripped RA-TLS log).
	Verified bool `json:"verified"`
}

// RuntimeEventInfo describes one runtime event replayed into RTMR3.
type RuntimeEventInfo struct {
	Name    string   `json:"event"`
	Payload HexBytes `json:"event_payload"`
	// Version is the digest version (1 or 2).
	Version uint32 `json:"version"`
	// Digest is the digest recomputed from name and payload (the one
	// replayed).
	Digest HexBytes `json:"digest"`
	// SuppliedDigestMismatch is true when the log supplied a digest that
	// differs from Digest. The supplied digest is ignored.
	SuppliedDigestMismatch bool `json:"supplied_digest_mismatch,omitempty"`
	// IgnoredForIdentity is true for events after the first
	// "system-ready".
	IgnoredForIdentity bool `json:"ignored_for_identity,omitempty"`
}
