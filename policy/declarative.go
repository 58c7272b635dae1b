package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/refvalue"
)

// Rule names, the Rule of a Violation. Rego policies should use the same
// names for the same checks so results compare.
const (
	RuleAuthentic         = "authentic"
	RuleTEE               = "tee"
	RuleTCBStatus         = "tcb_status"
	RuleCollateralExpired = "collateral_expired"
	RuleCollateralAge     = "collateral_age"
	RuleTCBDateAge        = "tcb_date_age"
	RuleAdvisoryIDs       = "advisory_ids"
	RuleTCBEvalNum        = "tcb_eval_num"
	RuleDebug             = "debug"
	RuleSEPTVEDisable     = "sept_ve_disable"
	RuleMRServiceTD       = "mr_servicetd"
	RuleReferenceValue    = "reference_value"
	RuleAppID             = "app_id"
	RuleComposeHash       = "compose_hash"
	RuleReportData        = "report_data"
	// RuleEventsAfterSystemReady rejects dstack evidence whose RTMR3 was
	// extended after "system-ready" (claim
	// dstack.events_after_system_ready).
	RuleEventsAfterSystemReady = "events_after_system_ready"
	// RuleCRLChecked rejects SEV-SNP evidence whose VCEK chain no current
	// ARK-signed AMD CRL was applied to (claim snp.crl_checked): whether
	// AMD revoked its ASK or VCEK is not known. A revoked certificate
	// makes the evidence not authentic whatever the policy.
	RuleCRLChecked = "crl_checked"
	// RuleUnpinned is a warning, not a failure: no reference value
	// vouched for the TD's code (MRTD and RTMR0–2; an enclave's MRENCLAVE
	// or MRSIGNER), so the result is at most "warning" and the key
	// broker's default resource policy releases nothing. Rules
	// AllowUnpinnedUnsafe turns it off.
	RuleUnpinned = "unpinned"
)

// pinnedTDX are the reference values that pin a TD's code: all of them
// must match for an affirming result.
var pinnedTDX = []string{"tdx.mr_td", "tdx.rtmr_0", "tdx.rtmr_1", "tdx.rtmr_2"}

// pinnedSGX pin an enclave's code: one of them must match.
var pinnedSGX = []string{"sgx.mr_enclave", "sgx.mr_signer"}

// pinnedSNP pin an SEV-SNP guest's code: its launch digest.
var pinnedSNP = []string{"snp.measurement"}

// pinnedNitroEnclave pin a Nitro Enclave's code: its image file, kernel
// and bootstrap, and application (PCR0–2, all SHA-384).
var pinnedNitroEnclave = []string{"nitro.pcr0", "nitro.pcr1", "nitro.pcr2"}

// pinnedNitroTPM pin an EC2 NitroTPM instance's boot path: PCR4, PCR7 and
// PCR12 of the SHA-384 bank (dstack's boot_pcr_digest).
var pinnedNitroTPM = []string{"tpm.pcr4", "tpm.pcr7", "tpm.pcr12"}

// pinnedGCPTDX pin a GCP TDX VM's code: the TD firmware (MRTD) and the
// vTPM's firmware and boot path (SHA-256 PCR0 and PCR2: GPT, UKI,
// kernel). GCP's RTMR0–2 are not used by dstack; pin them with
// reference_values when wanted.
var pinnedGCPTDX = []string{"tdx.mr_td", "tpm.pcr0", "tpm.pcr2"}

// knownTEE reports whether the policy can appraise evidence of tee.
func knownTEE(tee string) bool {
	return tee == claims.TEETDX || tee == claims.TEESGX || tee == claims.TEESNP || tee == claims.TEENitro
}

// MaxPolicySize bounds a policy document.
const MaxPolicySize = 1 << 20

// Rules is a declarative policy. The zero value is the secure default
// (see Default): UpToDate only, collateral not expired, no debug,
// SEPT_VE_DISABLE set, MRSERVICETD zero, every well-known measurement
// for which a reference value exists matches (a claim the evidence lacks
// fails: "claim missing"), and a TD whose MRTD and RTMR0–2 are not all
// pinned by reference values is at most "warning". Switches that weaken
// a check end in Unsafe.
//
// The YAML keys are the snake_case names given in the field tags; unknown
// keys are errors. Durations are Go durations ("720h").
type Rules struct {
	// TEEs restricts the TEE ("tdx", "sgx"). If empty, both.
	TEEs []string `yaml:"tees,omitempty"`
	// AcceptedTCBStatuses lists acceptable converged TCB statuses in
	// Intel's spelling. If empty, only UpToDate. Revoked is rejected
	// when listed.
	AcceptedTCBStatuses []string `yaml:"accepted_tcb_statuses,omitempty"`
	// AllowExpiredCollateralUnsafe accepts results whose collateral had
	// expired at verification time.
	AllowExpiredCollateralUnsafe bool `yaml:"allow_expired_collateral_unsafe,omitempty"`
	// MaxCollateralAge rejects collateral issued longer ago than this
	// (the earliest issue date of TCB info and QE identity). If zero, no
	// limit.
	MaxCollateralAge time.Duration `yaml:"max_collateral_age,omitempty"`
	// MaxTCBDateAge rejects a platform whose matched TCB level (its
	// tcb_date) is older than this: after a TCB recovery, a platform that
	// has not been updated is accepted only until its TCB date is this
	// old. If zero, no limit.
	MaxTCBDateAge time.Duration `yaml:"max_tcb_date_age,omitempty"`
	// TCBRecoveryGrace accepts an OutOfDate platform (status OutOfDate,
	// or OutOfDateConfigurationNeeded when ConfigurationNeeded is
	// accepted) for this long after the TCB recovery that left it behind
	// was published (claim <tee>.out_of_date_since), as Intel's appraisal
	// policies' platform grace period. If zero, no grace.
	TCBRecoveryGrace time.Duration `yaml:"tcb_recovery_grace,omitempty"`
	// RejectedAdvisoryIDs rejects a platform affected by any of these
	// advisories ("INTEL-SA-00837"). Matching is case-insensitive.
	RejectedAdvisoryIDs []string `yaml:"rejected_advisory_ids,omitempty"`
	// MinTCBEvalNum rejects collateral whose TCB evaluation data number
	// (the lower of TCB info's and QE identity's) is below this. If zero,
	// no minimum.
	MinTCBEvalNum int `yaml:"min_tcb_eval_num,omitempty"`
	// AllowUncheckedCRLUnsafe accepts SEV-SNP evidence whose chain no
	// current AMD CRL was applied to (no CRL obtainable from AMD KDS or
	// the offline bundle). dstack fetches no CRL: its acceptance needs
	// this.
	AllowUncheckedCRLUnsafe bool `yaml:"allow_unchecked_crl_unsafe,omitempty"`
	// AllowDebugUnsafe accepts debug TDs and enclaves, whose memory the
	// host can read.
	AllowDebugUnsafe bool `yaml:"allow_debug_unsafe,omitempty"`
	// AllowMissingSEPTVEDisableUnsafe accepts TDs without
	// SEPT_VE_DISABLE.
	AllowMissingSEPTVEDisableUnsafe bool `yaml:"allow_missing_sept_ve_disable_unsafe,omitempty"`
	// AllowServiceTDUnsafe accepts a non-zero MRSERVICETD.
	AllowServiceTDUnsafe bool `yaml:"allow_service_td_unsafe,omitempty"`
	// AllowEventsAfterSystemReadyUnsafe accepts dstack evidence whose
	// RTMR3 was extended after "system-ready". Such events are never part
	// of the identity; dstack no longer lets applications emit them, so
	// by default they are a sign that something in the TD extended the
	// register on its own.
	AllowEventsAfterSystemReadyUnsafe bool `yaml:"allow_events_after_system_ready_unsafe,omitempty"`
	// IgnoreKnownReferenceValuesUnsafe skips the comparison of every
	// well-known measurement (claims.MeasurementNames) with its reference
	// values; only ReferenceValues are compared.
	IgnoreKnownReferenceValuesUnsafe bool `yaml:"ignore_known_reference_values_unsafe,omitempty"`
	// AllowUnpinnedUnsafe lets evidence whose code no reference value
	// pins (a TD's MRTD, RTMR0–2; an enclave's MRENCLAVE or MRSIGNER) be
	// affirming. Without it such evidence is at most "warning" (rule
	// "unpinned" among the appraisal's warnings), which the key broker's
	// default resource policy refuses.
	AllowUnpinnedUnsafe bool `yaml:"allow_unpinned_unsafe,omitempty"`
	// ReferenceValues are measurements that must match: a valid
	// reference value of that name must exist and the claim must equal
	// one of its values.
	ReferenceValues []Measurement `yaml:"reference_values,omitempty"`
	// AllowedAppIDs and AllowedComposeHashes are dstack identity
	// allow-lists (hex). If empty, any.
	AllowedAppIDs        []string `yaml:"allowed_app_ids,omitempty"`
	AllowedComposeHashes []string `yaml:"allowed_compose_hashes,omitempty"`
	// ExpectedReportData requires report_data to begin with these hex
	// bytes (all 64 for an exact match). If empty, not checked. See also
	// Policy.WithExpectedReportData.
	ExpectedReportData string `yaml:"expected_report_data,omitempty"`
}

// Measurement names a reference value that a claim must match.
type Measurement struct {
	// Name is the reference value's name.
	Name string `yaml:"name"`
	// Claim is the claim compared. If empty, claims.MeasurementClaim(Name).
	Claim string `yaml:"claim,omitempty"`
}

// UnmarshalYAML accepts a bare name as well as {name, claim}.
func (m *Measurement) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&m.Name)
	}
	type plain Measurement
	var p plain
	if err := decodeStrict(n, &p); err != nil {
		return err
	}
	*m = Measurement(p)
	return nil
}

// decodeStrict decodes a node rejecting unknown keys (Node.Decode does not
// inherit the decoder's KnownFields).
func decodeStrict(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	return d.Decode(out)
}

type document struct {
	ID      string `yaml:"id,omitempty"`
	Version string `yaml:"version,omitempty"`
	Rules   `yaml:",inline"`
}

// DefaultID and DefaultVersion identify the built-in default policy.
const (
	DefaultID      = "default"
	DefaultVersion = "1"
)

// Default returns the built-in policy: the zero Rules. It denies unless
// the evidence is authentic, UpToDate with unexpired collateral, not
// debug, a TD with SEPT_VE_DISABLE and a zero MRSERVICETD, and every
// well-known measurement for which a valid reference value exists
// matches one.
//
// The policy is compiled once; each call returns a new *Policy sharing
// that compiled, read-only state (a Policy is immutable: its accessors
// return copies).
func Default() *Policy {
	p := *defaultPolicy()
	return &p
}

var defaultPolicy = sync.OnceValue(func() *Policy {
	p, err := FromRules(DefaultID, DefaultVersion, Rules{})
	if err != nil {
		panic(err) // the zero Rules are valid
	}
	return p
})

// FromRules makes a policy from rules built in Go.
func FromRules(id, version string, r Rules) (*Policy, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	src, err := yaml.Marshal(document{ID: id, Version: version, Rules: r})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &Policy{id: id, version: version, format: FormatYAML, source: src, rules: &r}, nil
}

// ParseYAML compiles a declarative policy. Unknown keys, duplicate keys,
// several documents, unknown TCB statuses and malformed hex are errors
// (wrapping ErrInvalid). An empty id or version is taken from the
// document's id and version keys.
func ParseYAML(id, version string, src []byte) (*Policy, error) {
	if len(src) > MaxPolicySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxPolicySize)
	}
	var doc document
	d := yaml.NewDecoder(bytes.NewReader(src))
	d.KnownFields(true)
	if err := d.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var extra any
	if err := d.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalid)
	}
	if id == "" {
		id = doc.ID
	} else if doc.ID != "" && doc.ID != id {
		return nil, fmt.Errorf("%w: document id %q, want %q", ErrInvalid, doc.ID, id)
	}
	if version == "" {
		version = doc.Version
	} else if doc.Version != "" && doc.Version != version {
		return nil, fmt.Errorf("%w: document version %q, want %q", ErrInvalid, doc.Version, version)
	}
	r := doc.Rules
	if err := r.check(); err != nil {
		return nil, err
	}
	return &Policy{id: id, version: version, format: FormatYAML, source: append([]byte(nil), src...), rules: &r}, nil
}

func (r *Rules) check() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(f, a...)) }
	for _, t := range r.TEEs {
		if !knownTEE(t) {
			return bad("tees: unknown TEE %q", t)
		}
	}
	for _, s := range r.AcceptedTCBStatuses {
		st, err := collateral.ParseTCBStatus(s)
		if err != nil || st == collateral.StatusUnknown {
			return bad("accepted_tcb_statuses: unknown status %q", s)
		}
		if st == collateral.Revoked {
			return bad("accepted_tcb_statuses: Revoked is never acceptable")
		}
	}
	if r.MaxCollateralAge < 0 || r.MaxTCBDateAge < 0 || r.MinTCBEvalNum < 0 || r.TCBRecoveryGrace < 0 {
		return bad("negative limit")
	}
	for _, m := range r.ReferenceValues {
		if m.Name == "" {
			return bad("reference_values: empty name")
		}
		if _, ok := claims.MeasurementClaim(m.Name); !ok && m.Claim == "" {
			return bad("reference_values: %q is not a well-known measurement; give its claim", m.Name)
		}
		if m.Claim != "" && !claims.Matchable(m.Claim) {
			return bad("reference_values: claim %q is unverified and can never match", m.Claim)
		}
	}
	for _, l := range [][]string{r.AllowedAppIDs, r.AllowedComposeHashes} {
		for _, h := range l {
			if !isHex(refvalue.NormalizeValue(h)) || h == "" {
				return bad("allow-list entry %q is not hex", h)
			}
		}
	}
	if e := refvalue.NormalizeValue(r.ExpectedReportData); e != "" && (!isHex(e) || len(e) > 128) {
		return bad("expected_report_data %q is not at most 64 bytes of hex", r.ExpectedReportData)
	}
	return nil
}

const absent = "<absent>"

// missing is the Actual of a rule whose claim the evidence lacks.
const missing = absent + " (claim missing)"

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

type evaluator struct {
	a *Appraisal
	c claims.Set
}

func (e *evaluator) fail(rule, claim, want, got string) {
	e.a.Failed = append(e.a.Failed, Violation{Rule: rule, Claim: claim, Expected: want, Actual: got})
}

func (e *evaluator) warn(rule, claim, want, got string) {
	e.a.Warnings = append(e.a.Warnings, Violation{Rule: rule, Claim: claim, Expected: want, Actual: got})
}

// get returns a claim a rule may match: present, and not Unverified.
func (e *evaluator) get(name string) (any, bool) {
	if !claims.Matchable(name) {
		return nil, false
	}
	return e.c.Get(name)
}

func (e *evaluator) str(name string) string {
	v, ok := e.get(name)
	if !ok {
		return missing
	}
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case []string:
		return "[" + strings.Join(v, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// wantBool fails rule unless claim is the bool want.
func (e *evaluator) wantBool(rule, claim string, want bool) {
	if v, ok := e.get(claim); v != want || !ok {
		e.fail(rule, claim, strconv.FormatBool(want), e.str(claim))
	}
}

// maxAge fails rule unless claim is a time no older than max at at.
func (e *evaluator) maxAge(rule, claim string, max time.Duration, at time.Time) {
	t, ok := e.c.Time(claim)
	if !ok || at.Sub(t) > max {
		e.fail(rule, claim, "not before "+at.Add(-max).UTC().Format(time.RFC3339), e.str(claim))
	}
}

func (e *evaluator) allowList(rule, claim string, list []string) {
	v, ok := e.get(claim)
	if !ok || !isString(v) || !slices.ContainsFunc(list, func(s string) bool { return refvalue.NormalizeValue(s) == v }) {
		e.fail(rule, claim, "one of ["+strings.Join(list, ", ")+"]", e.str(claim))
	}
}

// inRecoveryGrace reports whether an OutOfDate status is accepted because
// the TCB recovery that caused it is younger than TCBRecoveryGrace: the
// status it would have without the recovery (OutOfDate → UpToDate,
// OutOfDateConfigurationNeeded → ConfigurationNeeded) must be accepted.
func (r *Rules) inRecoveryGrace(c claims.Set, p, status string, accepted []string, at time.Time) bool {
	if r.TCBRecoveryGrace <= 0 {
		return false
	}
	var base string
	switch status {
	case collateral.OutOfDate.String():
		base = collateral.UpToDate.String()
	case collateral.OutOfDateConfigurationNeeded.String():
		base = collateral.ConfigurationNeeded.String()
	default:
		return false
	}
	since, ok := c.Time(p + "out_of_date_since")
	return ok && slices.Contains(accepted, base) && at.Before(since.Add(r.TCBRecoveryGrace))
}

func (r *Rules) appraise(ctx context.Context, a *Appraisal, c claims.Set, refs refvalue.Store, at time.Time, reportData string) error {
	e := &evaluator{a: a, c: c}
	tee := c.TEE()
	nitroTEE := tee == claims.TEENitro
	if !knownTEE(tee) {
		// Nothing else can be evaluated for evidence of an unknown kind.
		e.fail(RuleAuthentic, "tee", "tdx, sgx, snp or nitro", e.str("tee"))
		return nil
	} else if nitroTEE {
		if _, ok := c.String("nitro.module_id"); !ok {
			e.fail(RuleAuthentic, "nitro.module_id", "a verified Nitro document", absent)
		}
	} else if _, ok := c.String(tee + ".tcb_status"); !ok {
		e.fail(RuleAuthentic, tee+".tcb_status", "a verified quote", absent)
	}
	if len(r.TEEs) > 0 && !slices.Contains(r.TEEs, tee) {
		e.fail(RuleTEE, "tee", strings.Join(r.TEEs, " or "), e.str("tee"))
	}
	p := tee + "."
	accepted := r.AcceptedTCBStatuses
	if len(accepted) == 0 {
		accepted = []string{collateral.UpToDate.String()}
	}
	// AWS Nitro has no TCB levels, collateral or advisories: the
	// hardware check is the AWS-signed document and its chain, verified
	// before the claims were made. The TCB rules do not apply to it.
	if st, ok := c.String(p + "tcb_status"); !nitroTEE && (!ok || !(slices.Contains(accepted, st) || r.inRecoveryGrace(c, p, st, accepted, at))) {
		e.fail(RuleTCBStatus, p+"tcb_status", "one of ["+strings.Join(accepted, ", ")+"]", e.str(p+"tcb_status"))
	}
	// SEV-SNP has no collateral: certificate and CRL validity are checked
	// when the report is verified.
	if !r.AllowExpiredCollateralUnsafe && tee != claims.TEESNP && !nitroTEE {
		e.wantBool(RuleCollateralExpired, p+"collateral.expired", false)
	}
	if tee == claims.TEESNP && !r.AllowUncheckedCRLUnsafe {
		e.wantBool(RuleCRLChecked, "snp.crl_checked", true)
	}
	if r.MaxCollateralAge > 0 && !nitroTEE {
		e.maxAge(RuleCollateralAge, p+"collateral.issue_date", r.MaxCollateralAge, at)
	}
	if r.MaxTCBDateAge > 0 && !nitroTEE {
		e.maxAge(RuleTCBDateAge, p+"tcb_date", r.MaxTCBDateAge, at)
	}
	if len(r.RejectedAdvisoryIDs) > 0 && !nitroTEE {
		r.advisories(e, p, tee == claims.TEESNP)
	}
	if r.MinTCBEvalNum > 0 && !nitroTEE {
		if n, ok := c.Int(p + "collateral.tcb_eval_num"); !ok || n < int64(r.MinTCBEvalNum) {
			e.fail(RuleTCBEvalNum, p+"collateral.tcb_eval_num", ">= "+strconv.Itoa(r.MinTCBEvalNum), e.str(p+"collateral.tcb_eval_num"))
		}
	}
	if !r.AllowDebugUnsafe {
		switch tee {
		case claims.TEESGX:
			e.wantBool(RuleDebug, "sgx.debug", false)
		case claims.TEESNP:
			e.wantBool(RuleDebug, "snp.guest_policy.debug", false)
		case claims.TEENitro:
			// An enclave whose PCR0–2 are zero runs in debug mode; a
			// NitroTPM instance has no debug mode.
			if c.Platform() != claims.PlatformNitroTPM {
				e.wantBool(RuleDebug, "nitro.debug", false)
			}
		default:
			e.wantBool(RuleDebug, "tdx.td_attributes.debug", false)
		}
	}
	if tee == claims.TEETDX && !r.AllowMissingSEPTVEDisableUnsafe {
		e.wantBool(RuleSEPTVEDisable, "tdx.td_attributes.septve_disable", true)
	}
	if tee == claims.TEETDX && !r.AllowServiceTDUnsafe {
		if z, ok := c.Bool("tdx.mr_servicetd_zero"); !ok || !z {
			e.fail(RuleMRServiceTD, "tdx.quote.body.mr_servicetd", "zero", e.str("tdx.quote.body.mr_servicetd"))
		}
	}
	a.TrustVector.Hardware = TrustAffirming
	a.TrustVector.Configuration = TrustAffirming
	matched, err := r.referenceValues(ctx, e, refs, at)
	if err != nil {
		return err
	}
	if r.pinned(e, tee, matched) {
		a.TrustVector.Executables = TrustAffirming
	}
	if len(r.AllowedAppIDs) > 0 {
		e.allowList(RuleAppID, "dstack.app_id", r.AllowedAppIDs)
	}
	if evs, ok := c.Strings("dstack.events_after_system_ready"); ok && len(evs) > 0 && !r.AllowEventsAfterSystemReadyUnsafe {
		e.fail(RuleEventsAfterSystemReady, "dstack.events_after_system_ready", "none", strings.Join(evs, ", "))
	}
	if len(r.AllowedComposeHashes) > 0 {
		e.allowList(RuleComposeHash, "dstack.compose_hash", r.AllowedComposeHashes)
	}
	for _, want := range []string{refvalue.NormalizeValue(r.ExpectedReportData), reportData} {
		if want == "" {
			continue
		}
		claim := p + "quote.body.report_data"
		switch tee {
		case claims.TEESNP:
			claim = "snp.report.report_data"
		case claims.TEENitro:
			claim = "nitro.user_data"
		}
		if v, ok := c.String(claim); !ok || !strings.HasPrefix(v, want) {
			e.fail(RuleReportData, claim, want+"…", e.str(claim))
		}
	}
	if len(r.AllowedAppIDs)+len(r.AllowedComposeHashes) > 0 || r.ExpectedReportData != "" || reportData != "" {
		a.TrustVector.InstanceIdentity = TrustAffirming
	}
	a.Allow = len(a.Failed) == 0
	return nil
}

// advisories fails rule advisory_ids when any component of the platform
// is affected by a rejected advisory. <tee>.advisory_ids is Intel's
// sa_list, the platform level's IDs only; an advisory of the QE or the
// TDX module level (which can make the platform OutOfDate) rejects as
// well, so each component's list is read: platform and QE must be
// present, the module's when the evidence has a module level.
func (r *Rules) advisories(e *evaluator, p string, sevSNP bool) {
	comps := []struct {
		claim    string
		required bool
	}{{p + "platform.advisory_ids", true}, {p + "qe.advisory_ids", true}, {p + "module.advisory_ids", false}}
	if sevSNP {
		comps = comps[:1]
		comps[0].claim = p + "advisory_ids"
	}
	for _, comp := range comps {
		v, present := e.get(comp.claim)
		if !present && !comp.required {
			continue
		}
		ids, ok := e.c.Strings(comp.claim)
		if !present || !ok || v == nil {
			e.fail(RuleAdvisoryIDs, comp.claim, "none of ["+strings.Join(r.RejectedAdvisoryIDs, ", ")+"]", e.str(comp.claim))
			continue
		}
		var hit []string
		for _, id := range ids {
			if slices.ContainsFunc(r.RejectedAdvisoryIDs, func(s string) bool { return strings.EqualFold(s, id) }) && !slices.Contains(hit, id) {
				hit = append(hit, id)
			}
		}
		if len(hit) > 0 {
			e.fail(RuleAdvisoryIDs, comp.claim, "none of ["+strings.Join(r.RejectedAdvisoryIDs, ", ")+"]", "["+strings.Join(hit, ", ")+"]")
		}
	}
}

// pinned reports whether the evidence's code is pinned: every one of
// pinnedTDX (a TD) or one of pinnedSGX (an enclave) matched a reference
// value. When it is not and AllowUnpinnedUnsafe is off, it adds an
// "unpinned" warning per missing name and returns false.
func (r *Rules) pinned(e *evaluator, tee string, matched map[string]bool) bool {
	if r.AllowUnpinnedUnsafe {
		return true
	}
	var lack []string
	all := func(names []string) {
		for _, n := range names {
			if !matched[n] {
				lack = append(lack, n)
			}
		}
	}
	switch e.c.Platform() {
	case claims.PlatformTDX:
		all(pinnedTDX)
	case claims.PlatformGCPTDX:
		all(pinnedGCPTDX)
	case claims.PlatformSGX:
		if !slices.ContainsFunc(pinnedSGX, func(n string) bool { return matched[n] }) {
			lack = pinnedSGX
		}
	case claims.PlatformSNP:
		all(pinnedSNP)
	case claims.PlatformNitroEnclave:
		all(pinnedNitroEnclave)
	case claims.PlatformNitroTPM:
		all(pinnedNitroTPM)
	default:
		// A platform the policy cannot name has nothing pinned.
		lack = append(lack, "tee")
	}
	for _, n := range lack {
		claim, ok := claims.MeasurementClaim(n)
		if !ok {
			claim = n
		}
		e.warn(RuleUnpinned, claim, "a reference value "+n, e.str(claim))
	}
	return len(lack) == 0
}

// referenceValues compares the required and the well-known measurements;
// matched holds the names whose comparison was made and passed.
//
// A well-known measurement of the evidence's TEE, or a dstack one for a TD
// quote, with a valid reference value is compared whether or not the
// evidence carries the claim: a claim the evidence lacks (a quote sent
// without its event log has no dstack.* claims; an os_image_hash that is
// not bound to the quote is unverified) fails the rule.
func (r *Rules) referenceValues(ctx context.Context, e *evaluator, refs refvalue.Store, at time.Time) (matched map[string]bool, err error) {
	matched = map[string]bool{}
	lookup := func(name string) ([]string, error) {
		if refs == nil {
			return nil, nil
		}
		vals, err := refs.Lookup(ctx, name, at)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: reference value %s: %w", ErrEvaluation, name, err)
		}
		return refvalue.Accepted(vals), nil
	}
	compare := func(name, claim string, required bool) error {
		acc, err := lookup(name)
		if err != nil {
			return err
		}
		cmp := Comparison{Name: name, Claim: claim, Expected: acc, Actual: e.str(claim)}
		switch v, ok := e.get(claim); {
		case len(acc) == 0:
			cmp.Outcome = NoReferenceValue
			if required {
				e.fail(RuleReferenceValue, claim, "a valid reference value "+name, e.str(claim))
			}
		case !ok:
			cmp.Outcome = ClaimMissing
		case isString(v) && slices.Contains(acc, fmt.Sprint(v)):
			cmp.Outcome = Match
			matched[name] = true
		default:
			cmp.Outcome = Mismatch
		}
		e.a.Comparisons = append(e.a.Comparisons, cmp)
		if cmp.Outcome == ClaimMissing || cmp.Outcome == Mismatch {
			e.fail(RuleReferenceValue, claim, name+" one of ["+strings.Join(acc, ", ")+"]", e.str(claim))
		}
		return nil
	}
	explicit := make(map[string]bool, len(r.ReferenceValues))
	if e.a.Comparisons == nil {
		e.a.Comparisons = make([]Comparison, 0, len(r.ReferenceValues)+claims.NumMeasurements())
	}
	for _, m := range r.ReferenceValues {
		claim := m.Claim
		if claim == "" {
			claim, _ = claims.MeasurementClaim(m.Name)
		}
		explicit[m.Name] = true
		if err := compare(m.Name, claim, true); err != nil {
			return nil, err
		}
	}
	if r.IgnoreKnownReferenceValuesUnsafe {
		return matched, nil
	}
	applies := claims.MeasurementsFor(e.c)
	for _, m := range claims.Measurements() {
		if explicit[m.Name] || !applies(m.Name) {
			continue // pinned above, or a measurement of another kind of evidence
		}
		if err := compare(m.Name, m.Claim, false); err != nil {
			return nil, err
		}
	}
	return matched, nil
}
