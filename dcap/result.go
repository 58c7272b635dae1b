package dcap

import (
	"crypto/x509"
	"time"

	"github.com/tdproof/tdproof/collateral"
)

// Status is a TCB status in Intel's spelling (see collateral.TCBStatus).
type Status = collateral.TCBStatus

// MediaType identifies the JSON schema of Result.
const MediaType = "application/vnd.tdproof.dcap-result.v1+json"

// Options configure one verification. The zero value verifies against the
// pinned Intel root at the current time with Intel's expiry semantics.
type Options struct {
	// TrustedRoot replaces the pinned Intel SGX Root CA (for private or
	// test PKIs such as dcaptest's). If nil, the Intel root is used.
	TrustedRoot *x509.Certificate
	// Now is the verification time. If zero, time.Now() is used.
	Now time.Time
	// Strict makes expired collateral or certificates (ErrExpired) and
	// not-yet-valid ones (ErrNotYetValid: issue dates, CRL thisUpdate,
	// certificate notBefore in the future) errors, as dcap-qvl and
	// go-tdx-guest do. If false, Intel's semantics apply: expiry is
	// reported in Result.CollateralExpired and verification continues;
	// collateral issued after the verification time is reported the same
	// way (Result.CollateralNotYetValid).
	Strict bool
}

// Result is the outcome of a successful verification: the quote is
// authentic and these are its facts. It is plain data.
type Result struct {
	MediaType string `json:"media_type"`
	TEEType   string `json:"tee_type"`
	Version   uint16 `json:"quote_version"`
	BodyType  string `json:"body_type"`

	// Status is the converged TCB status (platform, TDX module, QE and TD
	// relaunch), Intel's semantics (dcap.md §2.5).
	Status Status `json:"status"`
	// Platform, Module and QE are the component results; Module is nil
	// for SGX quotes and for TDX quotes without a versioned module.
	Platform ComponentStatus  `json:"platform"`
	Module   *ComponentStatus `json:"tdx_module,omitempty"`
	QE       ComponentStatus  `json:"qe"`
	// Current is, for TD 1.5 quotes, the platform level matched by
	// TEE_TCB_SVN2 (the TDX module running now); with the current
	// module's level it decides TD relaunch. Intel evaluates it on every
	// TD 1.5 quote: a current TCB that matches no level is an error
	// (ErrTCBNotSupported), never ignored.
	Current *ComponentStatus `json:"current,omitempty"`
	// AdvisoryIDs is Intel's QvE sa_list: the advisory IDs of the matched
	// platform TCB level only, in the TCB info's order (a copy of
	// Platform.AdvisoryIDs), never the module's or the QE's, even when
	// they made the status OutOfDate. Module.AdvisoryIDs and
	// QE.AdvisoryIDs hold those; a caller that rejects advisories must
	// look at all three (dcap-qvl and QVL 2026's own list are the union).
	AdvisoryIDs []string `json:"advisory_ids"`
	// TCBDate is the earliest tcbDate of the matched levels.
	TCBDate time.Time `json:"tcb_date"`
	// OutOfDateSince is, when a component is OutOfDate, the earliest
	// SupersededAt of the OutOfDate components: when the TCB recovery
	// that left the platform behind was published. Policies grant grace
	// periods from it. Zero when no component is OutOfDate.
	OutOfDateSince time.Time `json:"out_of_date_since,omitzero"`
	// TDXModuleIdentity is the module identity id ("TDX_01") used, if any.
	TDXModuleIdentity string `json:"tdx_module_identity,omitempty"`

	FMSPC     string `json:"fmspc"`
	PCEID     string `json:"pce_id"`
	CAType    string `json:"pck_ca"`
	PPID      string `json:"ppid"`
	PCKSerial string `json:"pck_serial"`
	SGXType   string `json:"sgx_type"`

	TD       *TDReport      `json:"td,omitempty"`
	Enclave  *EnclaveReport `json:"enclave,omitempty"`
	QEReport EnclaveReport  `json:"qe_report"`

	Collateral CollateralInfo `json:"collateral"`
	// CollateralExpired is Intel's collateral_expiration_status: true when
	// EarliestExpiration <= the verification time (inclusive, as Intel),
	// or when collateral was issued after it (CollateralNotYetValid).
	CollateralExpired  bool      `json:"collateral_expired"`
	EarliestExpiration time.Time `json:"earliest_expiration"`
	EarliestIssue      time.Time `json:"earliest_issue"`
	LatestIssue        time.Time `json:"latest_issue"`
	// CollateralNotYetValid names the collateral issued after the
	// verification time: "root CA CRL" and "PCK CRL" (thisUpdate; Intel
	// flags these), "TCB info" and "QE identity" (issueDate; Intel does
	// not check it, tdproof flags it the same way). Each sets
	// CollateralExpired. Certificates' notBefore is not checked, as in
	// Intel (Options.Strict checks all of them).
	CollateralNotYetValid []string `json:"collateral_not_yet_valid,omitempty"`
	// CRLNotYetValid flags a CRL whose thisUpdate is after the
	// verification time (also listed in CollateralNotYetValid).
	CRLNotYetValid bool `json:"crl_not_yet_valid,omitempty"`

	VerificationTime time.Time `json:"verification_time"`
	// IntelRoot is false when a non-Intel trusted root was configured.
	IntelRoot         bool   `json:"intel_root"`
	TrustedRootSHA256 string `json:"trusted_root_sha256"`
}

// ComponentStatus is the matched TCB level of one component.
type ComponentStatus struct {
	Status      Status    `json:"status"`
	TCBDate     time.Time `json:"tcb_date"`
	AdvisoryIDs []string  `json:"advisory_ids"`
	// SupersededAt is the tcbDate of the next newer level of the
	// component's TCB info or identity (when the matched level stopped
	// being the newest); zero when the matched level is the newest.
	SupersededAt time.Time `json:"superseded_at,omitzero"`
}

// CollateralInfo identifies the collateral a result was computed from.
type CollateralInfo struct {
	TCBInfo    DocumentInfo `json:"tcb_info"`
	QEIdentity DocumentInfo `json:"qe_identity"`
	PCKCRL     CRLInfo      `json:"pck_crl"`
	RootCACRL  CRLInfo      `json:"root_ca_crl"`
}

// DocumentInfo identifies a TCB info or QE identity.
type DocumentInfo struct {
	ID                      string    `json:"id"`
	Version                 int       `json:"version"`
	IssueDate               time.Time `json:"issue_date"`
	NextUpdate              time.Time `json:"next_update"`
	TCBEvaluationDataNumber int       `json:"tcb_evaluation_data_number"`
}

// CRLInfo identifies a CRL.
type CRLInfo struct {
	Number     string    `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
}

// TDReport is the TD report body in hex, for results.
type TDReport struct {
	TEETCBSVN      string    `json:"tee_tcb_svn"`
	MRSEAM         string    `json:"mr_seam"`
	MRSignerSEAM   string    `json:"mr_signer_seam"`
	SEAMAttributes string    `json:"seam_attributes"`
	TDAttributes   string    `json:"td_attributes"`
	XFAM           string    `json:"xfam"`
	MRTD           string    `json:"mr_td"`
	MRConfigID     string    `json:"mr_config_id"`
	MROwner        string    `json:"mr_owner"`
	MROwnerConfig  string    `json:"mr_owner_config"`
	RTMRs          [4]string `json:"rtmrs"`
	ReportData     string    `json:"report_data"`
	TEETCBSVN2     string    `json:"tee_tcb_svn2,omitempty"`
	MRServiceTD    string    `json:"mr_service_td,omitempty"`
	Debug          bool      `json:"debug"`
	SEPTVEDisable  bool      `json:"sept_ve_disable"`
}

// EnclaveReport is an SGX report in hex, for results.
type EnclaveReport struct {
	CPUSVN     string `json:"cpu_svn"`
	MiscSelect uint32 `json:"misc_select"`
	Attributes string `json:"attributes"`
	MREnclave  string `json:"mr_enclave"`
	MRSigner   string `json:"mr_signer"`
	ISVProdID  uint16 `json:"isv_prod_id"`
	ISVSVN     uint16 `json:"isv_svn"`
	ReportData string `json:"report_data"`
	Debug      bool   `json:"debug"`
}
