package dcap

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tdproof/tdproof/collateral"
)

// ErrRejected: a verified result is not acceptable under a Policy. The
// error is a *PolicyError listing every violated rule.
var ErrRejected = errors.New("dcap: rejected by policy")

// Policy is the minimum appraisal of a verified Result, a separate step
// from verification (the full policy engine lives in package policy).
// The zero value is the secure default: UpToDate only, no debug, TDs need
// SEPT_VE_DISABLE and a zero MRSERVICETD.
type Policy struct {
	// AcceptedStatuses lists acceptable converged statuses. If empty,
	// only UpToDate. Revoked is never acceptable.
	AcceptedStatuses []Status
	// MaxCollateralAge rejects collateral (TCB info, QE identity) issued
	// longer ago than this at verification time. If zero, no limit.
	MaxCollateralAge time.Duration
	// RejectExpiredCollateral rejects results whose collateral expired
	// or was issued after the verification time (Result.CollateralExpired).
	RejectExpiredCollateral bool
	// AllowDebugUnsafe accepts DEBUG TDs and enclaves, whose memory the
	// host can read. Never set it in production.
	AllowDebugUnsafe bool
	// AllowMissingSEPTVEDisableUnsafe accepts TDs without SEPT_VE_DISABLE.
	AllowMissingSEPTVEDisableUnsafe bool
	// AllowServiceTDUnsafe accepts a non-zero MRSERVICETD (TD 1.5).
	AllowServiceTDUnsafe bool
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
	return "dcap: rejected by policy: " + strings.Join(parts, "; ")
}

func (e *PolicyError) Unwrap() error { return ErrRejected }

// Appraise applies p to a verified result. It returns nil when the result
// is acceptable and a *PolicyError otherwise. A nil result is rejected.
func (p Policy) Appraise(r *Result) error {
	if r == nil {
		return &PolicyError{Violations: []Violation{{Rule: "verified", Want: "a verified result", Got: "none"}}}
	}
	var vs []Violation
	add := func(rule, want, got string) { vs = append(vs, Violation{Rule: rule, Want: want, Got: got}) }
	accepted := p.AcceptedStatuses
	if len(accepted) == 0 {
		accepted = []Status{collateral.UpToDate}
	}
	if r.Status == collateral.Revoked || !slices.Contains(accepted, r.Status) {
		names := make([]string, 0, len(accepted))
		for _, s := range accepted {
			if s != collateral.Revoked {
				names = append(names, s.String())
			}
		}
		add("tcb_status", strings.Join(names, "|"), r.Status.String())
	}
	if p.RejectExpiredCollateral && r.CollateralExpired {
		why := "earliest expiration " + r.EarliestExpiration.UTC().Format(time.RFC3339)
		if len(r.CollateralNotYetValid) > 0 {
			why += "; issued after the verification time: " + strings.Join(r.CollateralNotYetValid, ", ")
		}
		add("collateral_expired", "false", "true ("+why+")")
	}
	if p.MaxCollateralAge > 0 {
		for _, d := range []DocumentInfo{r.Collateral.TCBInfo, r.Collateral.QEIdentity} {
			if age := r.VerificationTime.Sub(d.IssueDate); age > p.MaxCollateralAge {
				add("max_collateral_age", "<= "+p.MaxCollateralAge.String(), d.ID+" issued "+age.Round(time.Second).String()+" ago")
			}
		}
	}
	if r.TD != nil {
		if r.TD.Debug && !p.AllowDebugUnsafe {
			add("td_debug", "false", "true")
		}
		if !r.TD.SEPTVEDisable && !p.AllowMissingSEPTVEDisableUnsafe {
			add("sept_ve_disable", "true", "false")
		}
		if r.TD.MRServiceTD != "" && strings.Trim(r.TD.MRServiceTD, "0") != "" && !p.AllowServiceTDUnsafe {
			add("mr_service_td", "zero", r.TD.MRServiceTD)
		}
	}
	if r.Enclave != nil && r.Enclave.Debug && !p.AllowDebugUnsafe {
		add("enclave_debug", "false", "true")
	}
	if len(vs) > 0 {
		return &PolicyError{Violations: vs}
	}
	return nil
}
