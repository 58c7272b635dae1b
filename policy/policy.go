package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/refvalue"
)

// MediaType identifies the JSON schema of Appraisal.
const MediaType = "application/vnd.tdproof.appraisal.v1+json"

var (
	// ErrRejected: the evidence is not acceptable under the policy. The
	// error from Appraisal.Err is a *RejectedError that wraps it.
	ErrRejected = errors.New("policy: rejected")
	// ErrInvalid: a policy document cannot be parsed or compiled.
	ErrInvalid = errors.New("policy: invalid policy")
	// ErrEvaluation: a policy could not be evaluated (Rego runtime
	// error, reference-value store failure).
	ErrEvaluation = errors.New("policy: evaluation failed")
)

// Format is the language of a policy.
type Format string

// Policy formats.
const (
	FormatYAML Format = "yaml"
	FormatRego Format = "rego"
)

// Policy is a compiled policy: declarative rules or a prepared Rego
// query. A Policy is immutable and safe for concurrent use.
type Policy struct {
	id, version string
	format      Format
	source      []byte
	rules       *Rules
	eval        Evaluator
	reportData  string
}

// ID returns the policy's id.
func (p *Policy) ID() string { return p.id }

// Version returns the policy's version.
func (p *Policy) Version() string { return p.version }

// Format returns the policy's language.
func (p *Policy) Format() Format { return p.format }

// Source returns the policy document (a copy).
func (p *Policy) Source() []byte { return append([]byte(nil), p.source...) }

// Rules returns a copy of the declarative rules, or nil for a policy of
// another format.
func (p *Policy) Rules() *Rules {
	if p.rules == nil {
		return nil
	}
	r := *p.rules
	return &r
}

// WithExpectedReportData returns a copy of p that also requires the
// quote's report_data to begin with the given hex bytes (a per-request
// nonce or key binding; give all 64 bytes for an exact match). Declarative
// policies check it as rule "report_data"; Rego policies read it as
// data.tdproof.expected_report_data.
func (p *Policy) WithExpectedReportData(hexPrefix string) (*Policy, error) {
	h := refvalue.NormalizeValue(hexPrefix)
	if !isHex(h) || len(h) > 128 {
		return nil, fmt.Errorf("%w: expected report data %q is not at most 64 bytes of hex", ErrInvalid, hexPrefix)
	}
	q := *p
	q.reportData = h
	return &q, nil
}

// Parse compiles a declarative policy document (FormatYAML; see
// ParseYAML). Rego policies are compiled by package policy/rego, whose
// Parse handles both formats.
func Parse(format Format, id, version string, src []byte) (*Policy, error) {
	if format == FormatYAML {
		return ParseYAML(id, version, src)
	}
	return nil, fmt.Errorf("%w: unsupported format %q", ErrInvalid, format)
}

// Evaluator evaluates a compiled policy that is not declarative rules:
// package policy/rego implements it for Rego. Implementations must be
// safe for concurrent use and must not keep ctx.
type Evaluator interface {
	// Evaluate decides on c at time at with reference values from refs
	// (nil: none); expectedReportData is the hex prefix set with
	// Policy.WithExpectedReportData, or "". An error means the policy
	// could not be evaluated.
	Evaluate(ctx context.Context, c claims.Set, refs refvalue.Store, at time.Time, expectedReportData string) (Decision, error)
}

// Decision is what an Evaluator returns.
type Decision struct {
	Allow bool
	// Failed lists the failed rules; any entry denies, whatever Allow
	// says.
	Failed []Violation
	// TrustVector, if not nil, gives the categories the policy set;
	// failed rules override them (see Category).
	TrustVector *TrustVector
}

// NewPolicy wraps a compiled policy of another format (for package
// policy/rego). src is kept as the policy's Source.
func NewPolicy(id, version string, format Format, src []byte, e Evaluator) (*Policy, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil evaluator", ErrInvalid)
	}
	if format == FormatYAML {
		return nil, fmt.Errorf("%w: declarative policies are built with ParseYAML or FromRules", ErrInvalid)
	}
	return &Policy{id: id, version: version, format: format, source: append([]byte(nil), src...), eval: e}, nil
}

// Violation is one failed rule.
type Violation struct {
	// Rule names the rule (see the package documentation).
	Rule string `json:"rule"`
	// Claim is the claim the rule looked at, if any.
	Claim string `json:"claim,omitempty"`
	// Expected and Actual describe what the rule wanted and what the
	// claim was ("<absent>" for a missing claim).
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
}

// Comparison is one reference-value comparison of an appraisal.
type Comparison struct {
	// Name is the reference value's name (tdx.mr_td, dstack.compose_hash).
	Name string `json:"name"`
	// Claim is the claim compared with it.
	Claim string `json:"claim"`
	// Expected are the accepted values valid at the appraisal time
	// (empty with Outcome NoReferenceValue).
	Expected []string `json:"expected"`
	// Actual is the claim's value, or "<absent> (claim missing)".
	Actual string `json:"actual"`
	// Outcome is Match, Mismatch, ClaimMissing or NoReferenceValue.
	Outcome string `json:"outcome"`
}

// Comparison outcomes.
const (
	Match            = "match"
	Mismatch         = "mismatch"
	ClaimMissing     = "claim_missing"
	NoReferenceValue = "no_reference_value"
)

func (v Violation) String() string {
	s := v.Rule
	if v.Claim != "" {
		s += " (" + v.Claim + ")"
	}
	if v.Expected != "" || v.Actual != "" {
		s += ": expected " + v.Expected + ", got " + v.Actual
	}
	return s
}

// Appraisal is the outcome of applying a policy to a claim set.
type Appraisal struct {
	MediaType string `json:"media_type"`
	// Allow is the decision.
	Allow bool `json:"allow"`
	// Failed lists every failed rule, in rule order for declarative
	// policies and sorted for Rego ones. A denial always has at least one
	// entry (Rego: rule "deny" when the policy gives no reason).
	Failed []Violation `json:"failed"`
	// Warnings lists what keeps an allowed result from being affirming
	// (rule "unpinned": no reference value pins the TD's code). They do
	// not deny; they lower the EAR status to warning.
	Warnings []Violation `json:"warnings,omitempty"`
	// Comparisons lists every reference-value comparison a declarative
	// policy made (nil for Rego policies), for reports: the measurement,
	// the claim, the accepted values and the outcome.
	Comparisons   []Comparison `json:"comparisons,omitempty"`
	PolicyID      string       `json:"policy_id"`
	PolicyVersion string       `json:"policy_version"`
	// TrustVector is an AR4SI-style trustworthiness vector (see
	// TrustVector).
	TrustVector TrustVector `json:"trust_vector"`
	// Time is the appraisal time, used for reference-value validity and
	// age rules.
	Time time.Time `json:"time"`
}

// Err returns nil when a allows the evidence and a *RejectedError
// otherwise.
func (a *Appraisal) Err() error {
	if a.Allow {
		return nil
	}
	return &RejectedError{PolicyID: a.PolicyID, PolicyVersion: a.PolicyVersion, Failed: a.Failed}
}

// RejectedError lists why a policy rejected evidence. It wraps
// ErrRejected.
type RejectedError struct {
	PolicyID, PolicyVersion string
	Failed                  []Violation
}

func (e *RejectedError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, v := range e.Failed {
		parts[i] = v.String()
	}
	return fmt.Sprintf("policy: %s@%s rejected: %s", e.PolicyID, e.PolicyVersion, strings.Join(parts, "; "))
}

func (e *RejectedError) Unwrap() error { return ErrRejected }

// Appraise applies p to the claim set c at time at, looking reference
// values up in refs (nil: no reference values). Expired and not yet
// valid reference values never match. It returns an error only when the
// policy could not be evaluated (ErrEvaluation, or ctx's error); a
// rejection is an Appraisal with Allow false.
func Appraise(ctx context.Context, p *Policy, c claims.Set, refs refvalue.Store, at time.Time) (*Appraisal, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil policy", ErrEvaluation)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if at.IsZero() {
		return nil, fmt.Errorf("%w: zero appraisal time", ErrEvaluation)
	}
	a := &Appraisal{MediaType: MediaType, PolicyID: p.id, PolicyVersion: p.version, Time: at.UTC()}
	var err error
	switch {
	case p.rules != nil:
		err = p.rules.appraise(ctx, a, c, refs, at, p.reportData)
	case p.eval != nil:
		var d Decision
		d, err = p.eval.Evaluate(ctx, c, refs, at, p.reportData)
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		} else if err != nil && !errors.Is(err, ErrEvaluation) {
			err = fmt.Errorf("%w: %w", ErrEvaluation, err)
		}
		if d.TrustVector != nil {
			a.TrustVector = *d.TrustVector
		}
		a.Failed = append(a.Failed, d.Failed...)
		a.Allow = d.Allow && len(a.Failed) == 0
	default:
		return nil, fmt.Errorf("%w: empty policy", ErrEvaluation)
	}
	if err != nil {
		return nil, err
	}
	if a.Failed == nil {
		a.Failed = []Violation{}
	}
	if !a.Allow && len(a.Failed) == 0 {
		a.Failed = append(a.Failed, Violation{Rule: "deny"})
	}
	a.TrustVector.fail(a.Failed)
	return a, nil
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
