package snp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrRejected: a verified result is not acceptable under a Policy. The
// error is a *PolicyError listing every violated rule.
var ErrRejected = errors.New("snp: rejected by policy")

// Policy appraises a verified Result, a separate step from Verify. The
// zero value is the secure default: VMPL 0, no DEBUG, no MIGRATE_MA, no
// MASK_CHIP_KEY, POLICY consistent with PLATFORM_INFO (SMT, RAPL,
// ciphertext hiding), VCEK only, report versions 2, 3 and 5, any TCB
// status.
type Policy struct {
	// DstackCompat reproduces dstack's acceptance
	// (sev-snp-qvl validate_amd_snp_report_policy): report versions 2
	// and 3 only, VCEK only. AllowVLEK is ignored.
	DstackCompat bool
	// AllowVLEK accepts VLEK-signed reports.
	AllowVLEK bool
	// MinTCB, when set, is the lowest acceptable REPORTED_TCB per SPL
	// (FMC applies to Turin only).
	MinTCB *TCBParts
	// RequireUpToDate accepts only TCBStatus UpToDate.
	RequireUpToDate bool
	// MinGuestSVN is the lowest acceptable GUEST_SVN.
	MinGuestSVN uint32
	// Measurement, HostData and ReportData, when non-nil, must equal the
	// report's field exactly.
	Measurement, HostData, ReportData []byte
	// AllowDebugUnsafe accepts POLICY.DEBUG (the host can read guest
	// memory). Never set it in production.
	AllowDebugUnsafe bool
	// AllowMigrateMAUnsafe accepts POLICY.MIGRATE_MA.
	AllowMigrateMAUnsafe bool
	// AllowVMPL lists acceptable VMPLs besides 0.
	AllowVMPL []uint32
}

// Violation is one failed policy rule.
type Violation struct {
	Rule string `json:"rule"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

// PolicyError lists every violated rule. It wraps ErrRejected.
type PolicyError struct {
	Violations []Violation
}

func (e *PolicyError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = fmt.Sprintf("%s (want %s, got %s)", v.Rule, v.Want, v.Got)
	}
	return "snp: rejected by policy: " + strings.Join(parts, "; ")
}

func (e *PolicyError) Unwrap() error { return ErrRejected }

// Has reports whether rule is among the violations.
func (e *PolicyError) Has(rule string) bool {
	for _, v := range e.Violations {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

// Policy rule names (Violation.Rule).
const (
	RuleVersion          = "report_version"
	RuleVMPL             = "vmpl"
	RuleDebug            = "policy_debug"
	RuleMigrateMA        = "policy_migrate_ma"
	RuleMaskChipKey      = "mask_chip_key"
	RuleSigningKey       = "signing_key"
	RuleSMT              = "smt_consistency"
	RuleRAPL             = "rapl_consistency"
	RuleCiphertextHiding = "ciphertext_hiding_consistency"
	RuleMinTCB           = "min_tcb"
	RuleUpToDate         = "tcb_status"
	RuleGuestSVN         = "guest_svn"
	RuleMeasurement      = "measurement"
	RuleHostData         = "host_data"
	RuleReportData       = "report_data"
)

// Check returns nil if res is acceptable, otherwise a *PolicyError.
func (p Policy) Check(res *Result) error {
	if res == nil || res.Report == nil {
		return &PolicyError{Violations: []Violation{{Rule: "result", Want: "a verified result", Got: "none"}}}
	}
	r := res.Report
	var vs []Violation
	add := func(rule, want, got string) { vs = append(vs, Violation{Rule: rule, Want: want, Got: got}) }
	if p.DstackCompat && r.Version != 2 && r.Version != 3 {
		add(RuleVersion, "2 or 3 (dstack-compat)", fmt.Sprint(r.Version))
	}
	if r.VMPL != 0 && !containsU32(p.AllowVMPL, r.VMPL) {
		add(RuleVMPL, "0", fmt.Sprint(r.VMPL))
	}
	if r.Policy&PolicyDebug != 0 && (!p.AllowDebugUnsafe || p.DstackCompat) {
		add(RuleDebug, "0", "1")
	}
	if r.Policy&PolicyMigrateMA != 0 && (!p.AllowMigrateMAUnsafe || p.DstackCompat) {
		add(RuleMigrateMA, "0", "1")
	}
	if r.MaskChipKey() {
		add(RuleMaskChipKey, "0", "1")
	}
	switch k := r.SigningKey(); {
	case k == SigningKeyVCEK:
	case k == SigningKeyVLEK && p.AllowVLEK && !p.DstackCompat:
	default:
		add(RuleSigningKey, "VCEK", k.String())
	}
	if r.Policy&PolicySMT == 0 && r.PlatformInfo&PlatformSMTEnabled != 0 {
		add(RuleSMT, "SMT disabled on the platform when the guest policy forbids it", "PLATFORM_INFO.SMT_EN = 1")
	}
	if r.Policy&PolicyRAPLDis != 0 && r.PlatformInfo&PlatformRAPLDisabled == 0 {
		add(RuleRAPL, "RAPL disabled on the platform when the guest policy requires it", "PLATFORM_INFO.RAPL_DIS = 0")
	}
	if r.Policy&PolicyCiphertextHiding != 0 && r.PlatformInfo&PlatformCiphertextHidingEnabled == 0 {
		add(RuleCiphertextHiding, "ciphertext hiding enabled on the platform when the guest policy requires it", "PLATFORM_INFO.CIPHERTEXT_HIDING_EN = 0")
	}
	if p.MinTCB != nil {
		min := *p.MinTCB
		if res.Product != ProductTurin {
			min.FMC = 0
		}
		if !res.TCB.Reported.AtLeast(min) {
			add(RuleMinTCB, fmt.Sprintf("%+v", min), fmt.Sprintf("%+v", res.TCB.Reported))
		}
	}
	if p.RequireUpToDate && res.TCBStatus != TCBUpToDate {
		add(RuleUpToDate, string(TCBUpToDate), string(res.TCBStatus))
	}
	if r.GuestSVN < p.MinGuestSVN {
		add(RuleGuestSVN, fmt.Sprintf(">= %d", p.MinGuestSVN), fmt.Sprint(r.GuestSVN))
	}
	pin := func(rule string, want, got []byte) {
		if want != nil && !bytes.Equal(want, got) {
			add(rule, fmt.Sprintf("%x", want), fmt.Sprintf("%x", got))
		}
	}
	pin(RuleMeasurement, p.Measurement, r.Measurement[:])
	pin(RuleHostData, p.HostData, r.HostData[:])
	pin(RuleReportData, p.ReportData, r.ReportData[:])
	if vs != nil {
		return &PolicyError{Violations: vs}
	}
	return nil
}

func containsU32(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
