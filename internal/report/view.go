// Package report turns a verification result (the body of POST
// /v1/verify: a verifier.Result and its EAR token) into a view model and
// renders it as HTML: the evidence report of tdproof report --html and of
// tdproof serve's page.
//
// The report explains a verdict the verifier already made; it verifies
// nothing itself. Its sections, in order: the verdict sentence (EAR status,
// failed policy rules in plain words), the chain of trust, the TCB
// statuses with their advisories and the collateral's dates, the
// measurements next to the reference values they were compared with
// (differing bytes marked), the event log as a timeline (the
// "system-ready" cut-off and the events after it marked), the app
// identity (verified or not) and downloads of the token and the result.
//
// The HTML is html/template output: every value from the evidence is
// escaped. The standalone page (Page) inlines its style sheet and needs no
// script; the fragment (Fragment) is what the serve page inserts, styled
// by the same sheet (Stylesheet) served as a file.
package report

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"strings"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/verifier"
)

// Input is what a report is made from: the body of a 200 from POST
// /v1/verify (verifiersvc.NativeResponse).
type Input struct {
	MediaType string           `json:"media_type"`
	Result    *verifier.Result `json:"result"`
	Token     string           `json:"token"`
	// Raw, when set, is the response exactly as received: the JSON
	// download offers these bytes rather than a re-encoding.
	Raw []byte `json:"-"`
}

// ErrNoResult: the input holds no verification result.
var ErrNoResult = errors.New("report: no verification result")

// Parse decodes a /v1/verify response body.
func Parse(body []byte) (*Input, error) {
	var in Input
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if in.Result == nil || in.Result.Appraisal == nil {
		return nil, ErrNoResult
	}
	in.Raw = body
	return &in, nil
}

// Verdict classes (CSS classes and data-verdict values).
const (
	ClassAffirming       = "affirming"
	ClassWarning         = "warning"
	ClassContraindicated = "contraindicated"
	ClassNotAuthentic    = "not-authentic"
)

// View is the report's view model.
type View struct {
	Title   string
	Verdict Verdict
	// Failed and Warnings are the policy's failed rules and warnings.
	Failed, Warnings []Rule
	Chain            []Link
	TCB              *TCB
	// OtherTCB is the TCB status of authentic evidence of a TEE without
	// Intel's DCAP component table (SEV-SNP), "" otherwise; OtherTCBClass
	// its status class.
	OtherTCB, OtherTCBClass string
	Measurements            []Measurement
	Events                  *Timeline
	Identity                []IdentityItem
	// TokenHref and ResultHref are data: URLs of the EAR token and the
	// JSON result, for download links.
	TokenHref, ResultHref template.URL
	// Generated is when the report was made (from the appraisal time).
	Generated string
}

// Verdict is the headline.
type Verdict struct {
	// Class is one of the Class* constants.
	Class string
	// Label is the verdict in one or two words ("Affirming", "Not
	// authentic").
	Label string
	// Sentence says it in plain words.
	Sentence string
	// EARStatus is the token's EAR status.
	EARStatus string
	// Policy names the policy and version.
	Policy string
	// Reason is why the evidence is not authentic ("" when it is).
	Reason string
	TEE    string
}

// Rule is one failed rule or warning.
type Rule struct {
	Rule, Claim, Expected, Actual string
	// Plain explains the rule in words.
	Plain string
}

// Link is one step of the chain of trust.
type Link struct {
	Role    string
	Subject string
	Issuer  string
	// Validity is "from … to …"; Valid is false when the verification
	// time is outside it.
	Validity string
	Valid    bool
	// Revocation in words.
	Revocation string
	SHA256     string
}

// TCB is the TCB section.
type TCB struct {
	Status      string
	StatusClass string
	Components  []Component
	Collateral  []CollateralDoc
	FMSPC       string
	EvalNumber  int
	VerifiedAt  string
	IntelRoot   bool
	RootSHA256  string
	// Expired is Intel's collateral_expiration_status.
	Expired bool
}

// Component is one TCB component's matched level.
type Component struct {
	Name, Status, StatusClass, TCBDate, SupersededAt string
	Advisories                                       []Advisory
}

// Advisory is an Intel security advisory ID and its public page.
type Advisory struct {
	ID  string
	URL string // "" when the ID does not have Intel's form
}

// CollateralDoc is one collateral document's dates.
type CollateralDoc struct {
	Name, Issued, NextUpdate, Age, Detail string
	Expired                               bool
}

// Measurement is one measured value and what it was compared with.
type Measurement struct {
	Label, Name, Claim string
	// Value is the actual value, as byte segments (differing bytes
	// marked when the outcome is a mismatch).
	Value []Segment
	// Outcome is the policy.Comparison outcome, "" when not compared.
	Outcome, OutcomeText, OutcomeClass string
	References                         []Reference
}

// Reference is one accepted reference value.
type Reference struct {
	Value []Segment
	// Closest marks the reference the differing bytes are computed
	// against.
	Closest bool
}

// Segment is a run of hex text; Differs marks bytes that differ from the
// compared value.
type Segment struct {
	Text    string
	Differs bool
}

// Timeline is the event log section.
type Timeline struct {
	Boot    []Event
	Runtime []Event
	// SystemReady is whether the runtime log has a "system-ready" event;
	// After counts the events after it.
	SystemReady bool
	After       int
	// Source says where the events come from.
	Source string
}

// Event is one timeline row.
type Event struct {
	Index                           int
	IMR                             uint32
	Type, Name, Digest, Description string
	SystemReady, AfterSystemReady   bool
}

// IdentityItem is one app identity value.
type IdentityItem struct {
	Label, Value string
	Verified     bool
	// How says how it is (or is not) verified.
	How string
}

// New builds the view of in.
func New(in *Input) (*View, error) {
	r := in.Result
	if r == nil || r.Appraisal == nil {
		return nil, ErrNoResult
	}
	v := &View{Title: "Evidence report"}
	a := r.Appraisal
	v.Verdict = verdict(r)
	for _, f := range a.Failed {
		v.Failed = append(v.Failed, rule(f))
	}
	for _, w := range a.Warnings {
		v.Warnings = append(v.Warnings, rule(w))
	}
	if !a.Time.IsZero() {
		v.Generated = stamp(a.Time)
	}
	at := a.Time
	if r.DCAP != nil && !r.DCAP.VerificationTime.IsZero() {
		at = r.DCAP.VerificationTime
	}
	v.Chain = chain(r, at)
	if r.DCAP != nil {
		v.TCB = tcb(r.DCAP, at)
	} else if r.Authentic && r.Dstack != nil && r.Dstack.TCBStatus != "" {
		v.OtherTCB, v.OtherTCBClass = r.Dstack.TCBStatus, statusClass(r.Dstack.TCBStatus)
	}
	v.Measurements = measurements(r)
	v.Events = timeline(r)
	v.Identity = identity(r)
	if in.Token != "" {
		// Safe: a fixed scheme and media type, then base64 only.
		v.TokenHref = template.URL("data:application/jwt;base64," + base64.StdEncoding.EncodeToString([]byte(in.Token)))
	}
	body := in.Raw
	if body == nil {
		var err error
		if body, err = json.MarshalIndent(in, "", "  "); err != nil {
			return nil, fmt.Errorf("report: encode the result: %w", err)
		}
	}
	v.ResultHref = template.URL("data:application/json;base64," + base64.StdEncoding.EncodeToString(body))
	return v, nil
}

func verdict(r *verifier.Result) Verdict {
	a := r.Appraisal
	v := Verdict{EARStatus: r.Status.String(), Policy: a.PolicyID, Reason: r.Reason, TEE: strings.ToUpper(r.TEE)}
	if a.PolicyVersion != "" {
		v.Policy += " version " + a.PolicyVersion
	}
	n := len(a.Failed)
	switch {
	case !r.Authentic:
		v.Class, v.Label = ClassNotAuthentic, "Not authentic"
		v.Sentence = "Not authentic: the evidence failed verification, so nothing it says can be trusted."
	case !r.Allow || r.Status == ear.StatusContraindicated:
		v.Class, v.Label = ClassContraindicated, "Contraindicated"
		v.Sentence = fmt.Sprintf("Contraindicated: the evidence is authentic, but policy %s rejects it (%d %s failed).", v.Policy, n, plural(n, "rule", "rules"))
	case r.Status == ear.StatusWarning:
		v.Class, v.Label = ClassWarning, "Warning"
		w := len(a.Warnings)
		v.Sentence = fmt.Sprintf("Warning: the evidence is authentic and policy %s allows it, with %d %s.", v.Policy, w, plural(w, "reservation", "reservations"))
		if w == 0 {
			v.Sentence = fmt.Sprintf("Warning: the evidence is authentic and policy %s allows it, but the token's trust vector has reservations.", v.Policy)
		}
	case r.Status == ear.StatusAffirming:
		v.Class, v.Label = ClassAffirming, "Affirming"
		v.Sentence = fmt.Sprintf("Affirming: the evidence is authentic and policy %s accepts it.", v.Policy)
	default:
		// An allowed result whose token makes no claim: never shown as
		// trusted.
		v.Class, v.Label = ClassWarning, "No claim"
		v.Sentence = fmt.Sprintf("No claim: the verifier makes no statement about this evidence (EAR status %s).", v.EARStatus)
	}
	return v
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ruleText explains each rule in words.
var ruleText = map[string]string{
	policy.RuleAuthentic:              "The evidence must verify: the quote's signature, its certificate chain up to the trusted root, and the collateral.",
	policy.RuleTEE:                    "The evidence must come from an accepted kind of TEE.",
	policy.RuleTCBStatus:              "The platform's TCB status must be one the policy accepts.",
	policy.RuleCollateralExpired:      "The collateral (TCB info, QE identity, CRLs) must not be past its next update.",
	policy.RuleCollateralAge:          "The collateral must not be older than the policy allows.",
	policy.RuleTCBDateAge:             "The platform's TCB date must not be older than the policy allows.",
	policy.RuleAdvisoryIDs:            "The platform must not be affected by a rejected Intel security advisory.",
	policy.RuleTCBEvalNum:             "The collateral must come from a recent enough TCB evaluation.",
	policy.RuleDebug:                  "The TD or enclave must not run in debug mode (its memory is readable by the host).",
	policy.RuleSEPTVEDisable:          "The TD must set SEPT_VE_DISABLE.",
	policy.RuleMRServiceTD:            "The TD must not be bound to a service TD.",
	policy.RuleReferenceValue:         "A measurement must equal one of its accepted reference values.",
	policy.RuleAppID:                  "The dstack app id must be an accepted one.",
	policy.RuleComposeHash:            "The dstack compose hash must be an accepted one.",
	policy.RuleReportData:             "The report data must start with the nonce of the request.",
	policy.RuleEventsAfterSystemReady: "No runtime event may follow system-ready: events after it are not part of the app's verified identity.",
	policy.RuleUnpinned:               "No reference value pins the code it runs (TDX: MRTD and RTMR0–2; SEV-SNP: the launch measurement), so any guest on this platform would pass.",
}

func rule(v policy.Violation) Rule {
	plain := ruleText[v.Rule]
	if plain == "" {
		plain = "Policy rule " + v.Rule + " failed."
	}
	return Rule{Rule: v.Rule, Claim: v.Claim, Expected: v.Expected, Actual: v.Actual, Plain: plain}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02")
}

var roleNames = map[string]string{
	verifier.RolePCK:    "PCK certificate (the platform's key)",
	verifier.RolePCKCA:  "PCK CA",
	verifier.RoleRootCA: "Root CA (trust anchor)",
	verifier.RoleVCEK:   "VCEK (the chip's AMD key)",
	verifier.RoleVLEK:   "VLEK (the cloud provider's AMD key)",
	verifier.RoleASK:    "AMD SEV key (ASK)",
	verifier.RoleASVK:   "AMD SEV VLEK key (ASVK)",
	verifier.RoleARK:    "AMD root key (ARK, trust anchor)",
}

func chain(r *verifier.Result, at time.Time) []Link {
	var out []Link
	// Root first: the order trust flows in.
	for i := len(r.Chain) - 1; i >= 0; i-- {
		c := r.Chain[i]
		l := Link{Role: roleNames[c.Role], Subject: c.Subject, Issuer: c.Issuer, SHA256: c.SHA256,
			Validity: stamp(c.NotBefore) + " to " + stamp(c.NotAfter),
			Valid:    !at.Before(c.NotBefore) && !at.After(c.NotAfter)}
		if l.Role == "" {
			l.Role = c.Role
		}
		switch c.Revocation {
		case verifier.TrustAnchor:
			l.Revocation = "pinned trust anchor (no CRL applies)"
		case verifier.NotRevoked:
			l.Revocation = "not revoked (checked against the " + strings.ReplaceAll(strings.ToUpper(c.CRL), "_", " ")
			if c.CRLNumber != "" {
				l.Revocation += " number " + c.CRLNumber
			}
			l.Revocation += ")"
		case verifier.NotChecked:
			l.Revocation = "revocation NOT checked: " + c.RevocationNote
		default:
			l.Revocation = c.Revocation
		}
		out = append(out, l)
	}
	if r.DCAP == nil || len(out) == 0 {
		return out
	}
	d := r.DCAP
	qe := Link{Role: "Quoting enclave (QE)", Subject: "MRSIGNER " + d.QEReport.MRSigner + ", ISV SVN " + fmt.Sprint(d.QEReport.ISVSVN),
		Issuer: "signed by the PCK key", Valid: true, Validity: "QE identity status " + d.QE.Status.String(),
		Revocation: "QE report signature verified; it binds the attestation key"}
	q := Link{Role: "Quote (" + d.TEEType + " v" + fmt.Sprint(d.Version) + ")", Subject: "body " + d.BodyType,
		Issuer: "signed by the QE's attestation key", Valid: true, Validity: "verified at " + stamp(d.VerificationTime),
		Revocation: "quote signature verified"}
	return append(out, qe, q)
}

func statusClass(s string) string {
	switch s {
	case "UpToDate":
		return "ok"
	case "Revoked":
		return "bad"
	}
	return "warn"
}

// intelAdvisory matches Intel's advisory IDs (INTEL-SA-00615).
var intelAdvisory = regexp.MustCompile(`^INTEL-SA-([0-9]{5})$`)

func advisories(ids []string) []Advisory {
	out := make([]Advisory, 0, len(ids))
	for _, id := range ids {
		a := Advisory{ID: id}
		if m := intelAdvisory.FindStringSubmatch(id); m != nil {
			a.URL = "https://www.intel.com/content/www/us/en/security-center/advisory/intel-sa-" + m[1] + ".html"
		}
		out = append(out, a)
	}
	return out
}

func component(name string, c dcap.ComponentStatus) Component {
	s := c.Status.String()
	out := Component{Name: name, Status: s, StatusClass: statusClass(s), TCBDate: day(c.TCBDate), Advisories: advisories(c.AdvisoryIDs)}
	if !c.SupersededAt.IsZero() {
		out.SupersededAt = day(c.SupersededAt)
	}
	return out
}

func age(at, t time.Time) string {
	if t.IsZero() || at.IsZero() {
		return "—"
	}
	d := at.Sub(t)
	if d < 0 {
		return "issued after the verification time"
	}
	days := int(d.Hours() / 24)
	if days == 0 {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d %s", days, plural(days, "day", "days"))
}

func tcb(d *dcap.Result, at time.Time) *TCB {
	s := d.Status.String()
	t := &TCB{Status: s, StatusClass: statusClass(s), FMSPC: d.FMSPC, VerifiedAt: stamp(d.VerificationTime),
		IntelRoot: d.IntelRoot, RootSHA256: d.TrustedRootSHA256, Expired: d.CollateralExpired,
		EvalNumber: min(d.Collateral.TCBInfo.TCBEvaluationDataNumber, d.Collateral.QEIdentity.TCBEvaluationDataNumber)}
	t.Components = append(t.Components, component("Platform (SGX and TDX TCB)", d.Platform))
	if d.Module != nil {
		name := "TDX module"
		if d.TDXModuleIdentity != "" {
			name += " (" + d.TDXModuleIdentity + ")"
		}
		t.Components = append(t.Components, component(name, *d.Module))
	}
	t.Components = append(t.Components, component("Quoting enclave (QE)", d.QE))
	if d.Current != nil {
		t.Components = append(t.Components, component("Current TDX module (TD relaunch)", *d.Current))
	}
	doc := func(name string, issued, next time.Time, detail string) CollateralDoc {
		return CollateralDoc{Name: name, Issued: stamp(issued), NextUpdate: stamp(next), Age: age(at, issued),
			Expired: !next.IsZero() && !at.Before(next), Detail: detail}
	}
	c := d.Collateral
	t.Collateral = []CollateralDoc{
		doc("TCB info", c.TCBInfo.IssueDate, c.TCBInfo.NextUpdate, fmt.Sprintf("evaluation data number %d", c.TCBInfo.TCBEvaluationDataNumber)),
		doc("QE identity", c.QEIdentity.IssueDate, c.QEIdentity.NextUpdate, fmt.Sprintf("evaluation data number %d", c.QEIdentity.TCBEvaluationDataNumber)),
		doc("PCK CRL", c.PCKCRL.ThisUpdate, c.PCKCRL.NextUpdate, crlDetail(c.PCKCRL.Number)),
		doc("Root CA CRL", c.RootCACRL.ThisUpdate, c.RootCACRL.NextUpdate, crlDetail(c.RootCACRL.Number)),
	}
	return t
}

func crlDetail(n string) string {
	if n == "" {
		return ""
	}
	return "CRL number " + n
}

// measured are the measurements shown first, in order: label, reference
// value name.
var measured = []struct{ label, name string }{
	{"MRTD", "tdx.mr_td"},
	{"RTMR0", "tdx.rtmr_0"},
	{"RTMR1", "tdx.rtmr_1"},
	{"RTMR2", "tdx.rtmr_2"},
	{"RTMR3", "tdx.rtmr_3"},
	{"MRENCLAVE", "sgx.mr_enclave"},
	{"MRSIGNER", "sgx.mr_signer"},
}

var outcomeText = map[string]string{
	policy.Match:            "match",
	policy.Mismatch:         "mismatch",
	policy.ClaimMissing:     "claim missing",
	policy.NoReferenceValue: "no reference value",
}

func measurements(r *verifier.Result) []Measurement {
	byName := map[string]policy.Comparison{}
	var order []string
	for _, c := range r.Appraisal.Comparisons {
		if _, ok := byName[c.Name]; !ok {
			order = append(order, c.Name)
		}
		byName[c.Name] = c
	}
	values := map[string]string{}
	if d := r.DCAP; d != nil && d.TD != nil {
		values["tdx.mr_td"] = d.TD.MRTD
		for i, v := range d.TD.RTMRs {
			values[fmt.Sprintf("tdx.rtmr_%d", i)] = v
		}
	}
	if d := r.DCAP; d != nil && d.Enclave != nil {
		values["sgx.mr_enclave"], values["sgx.mr_signer"] = d.Enclave.MREnclave, d.Enclave.MRSigner
	}
	var out []Measurement
	seen := map[string]bool{}
	add := func(label, name string) {
		c, compared := byName[name]
		val, known := values[name]
		if !compared && !known {
			return
		}
		seen[name] = true
		m := Measurement{Label: label, Name: name, Claim: c.Claim}
		if compared && c.Actual != "" {
			val = c.Actual
		}
		if !compared {
			m.OutcomeText, m.OutcomeClass = "not compared", "none"
			m.Value = plainHex(val)
			out = append(out, m)
			return
		}
		m.Outcome, m.OutcomeText = c.Outcome, outcomeText[c.Outcome]
		if m.OutcomeText == "" {
			m.OutcomeText = c.Outcome
		}
		switch c.Outcome {
		case policy.Match:
			m.OutcomeClass = "ok"
		case policy.NoReferenceValue:
			m.OutcomeClass = "none"
		default:
			m.OutcomeClass = "bad"
		}
		m.Value = plainHex(val)
		best := -1
		if c.Outcome == policy.Mismatch {
			best = closest(val, c.Expected)
		}
		for i, e := range c.Expected {
			ref := Reference{Value: plainHex(e)}
			if i == best {
				ref.Closest = true
				m.Value, ref.Value = diff(val, e)
			}
			m.References = append(m.References, ref)
		}
		out = append(out, m)
	}
	for _, m := range measured {
		add(m.label, m.name)
	}
	for _, n := range order {
		if !seen[n] {
			add(n, n)
		}
	}
	if rd := reportData(r); rd != "" {
		m := Measurement{Label: "Report data", Name: "report_data", Value: plainHex(rd), OutcomeText: "not compared", OutcomeClass: "none"}
		for _, f := range r.Appraisal.Failed {
			if f.Rule == policy.RuleReportData {
				m.Outcome, m.OutcomeText, m.OutcomeClass = policy.Mismatch, "mismatch", "bad"
				m.References = []Reference{{Value: plainHex(f.Expected)}}
			}
		}
		if m.Outcome == "" && r.Nonce != "" {
			if n, err := base64.RawURLEncoding.DecodeString(r.Nonce); err == nil {
				m.Outcome, m.OutcomeText, m.OutcomeClass = policy.Match, "starts with the nonce", "ok"
				m.References = []Reference{{Value: plainHex(hex.EncodeToString(n))}}
			}
		}
		out = append(out, m)
	}
	return out
}

func reportData(r *verifier.Result) string {
	if d := r.DCAP; d != nil {
		if d.TD != nil {
			return d.TD.ReportData
		}
		if d.Enclave != nil {
			return d.Enclave.ReportData
		}
	}
	return ""
}

// hexBytes splits a hex string into bytes ("" when it is not even hex).
func hexBytes(s string) []string {
	s = strings.TrimPrefix(strings.ToLower(s), "0x")
	if len(s)%2 != 0 {
		return nil
	}
	if _, err := hex.DecodeString(s); err != nil {
		return nil
	}
	out := make([]string, 0, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return out
}

func plainHex(s string) []Segment {
	if s == "" {
		return nil
	}
	return []Segment{{Text: s}}
}

// closest returns the index of the expected value with the fewest
// differing bytes from actual (-1 when none is hex of the same length).
func closest(actual string, expected []string) int {
	a := hexBytes(actual)
	best, bestN := -1, 0
	for i, e := range expected {
		b := hexBytes(e)
		if a == nil || len(b) != len(a) {
			continue
		}
		n := 0
		for j := range a {
			if a[j] != b[j] {
				n++
			}
		}
		if best < 0 || n < bestN {
			best, bestN = i, n
		}
	}
	return best
}

// diff returns a and b as segments with their differing bytes marked.
func diff(a, b string) (sa, sb []Segment) {
	x, y := hexBytes(a), hexBytes(b)
	if x == nil || len(x) != len(y) {
		return plainHex(a), plainHex(b)
	}
	seg := func(bs []string) []Segment {
		var out []Segment
		for i, by := range bs {
			d := x[i] != y[i]
			if n := len(out); n > 0 && out[n-1].Differs == d {
				out[n-1].Text += by
				continue
			}
			out = append(out, Segment{Text: by, Differs: d})
		}
		return out
	}
	return seg(x), seg(y)
}

func timeline(r *verifier.Result) *Timeline {
	t := &Timeline{}
	switch {
	case len(r.EventLog) > 0:
		t.Source = "the event log the evidence carries, replayed to the quote's RTMRs"
		for i, e := range r.EventLog {
			ev := Event{Index: i + 1, IMR: e.IMR, Type: e.Type, Name: e.Name, Digest: e.Digest, Description: e.Description,
				SystemReady: e.SystemReady, AfterSystemReady: e.AfterSystemReady}
			if e.Runtime {
				t.Runtime = append(t.Runtime, ev)
			} else {
				t.Boot = append(t.Boot, ev)
			}
		}
	case r.Dstack != nil && r.TEE == claims.TEESNP:
		// SEV-SNP has no runtime register: its identity is in the
		// MrConfigV3 document bound by HOST_DATA, not in events.
		return nil
	case r.Dstack != nil:
		t.Source = "the runtime events of the dstack evidence, replayed to RTMR3"
		ready := false
		for i, e := range r.Dstack.RuntimeEvents {
			ev := Event{Index: i + 1, IMR: 3, Type: "runtime", Name: e.Name, Digest: hex.EncodeToString(e.Digest),
				Description: fmt.Sprintf("%d-byte payload", len(e.Payload)), AfterSystemReady: e.IgnoredForIdentity}
			if !ready && e.Name == "system-ready" {
				ev.SystemReady, ready = true, true
			}
			t.Runtime = append(t.Runtime, ev)
		}
	default:
		return nil
	}
	for _, e := range t.Runtime {
		if e.SystemReady {
			t.SystemReady = true
		}
		if e.AfterSystemReady {
			t.After++
		}
	}
	return t
}

func identity(r *verifier.Result) []IdentityItem {
	cs := r.Claims
	if cs == nil || r.Dstack == nil {
		return nil
	}
	logOK, _ := cs.Bool("dstack.event_log_verified")
	howEvent := "verified: read from runtime events before system-ready, replayed to RTMR3"
	howKP := "verified: key-provider runtime event, replayed to RTMR3"
	howImage := "verified: MRTD and RTMR0–2 recomputed from the image it names match the quote"
	if r.TEE == claims.TEESNP {
		howEvent = "verified: from the MrConfigV3 document whose hash is the report's HOST_DATA"
		howKP = howEvent
		howImage = "verified: the launch digest recomputed from the measurement inputs it names matches MEASUREMENT"
	}
	var out []IdentityItem
	replayed := func(label, name string) {
		v, ok := cs.String(name)
		it := IdentityItem{Label: label, Value: v}
		switch {
		case !ok:
			it.Value, it.How = "—", "absent from the event log"
		case logOK:
			it.Verified, it.How = true, howEvent
		default:
			it.How = "unverified: the event log does not replay to the quote"
		}
		out = append(out, it)
	}
	replayed("App id", "dstack.app_id")
	replayed("Compose hash", "dstack.compose_hash")
	replayed("Instance id", "dstack.instance_id")
	kp, ok := cs.String("dstack.key_provider")
	if id, _ := cs.String("dstack.key_provider_id"); ok && id != "" {
		kp += " " + id
	}
	kpItem := IdentityItem{Label: "Key provider", Value: kp}
	switch {
	case !ok:
		kpItem.Value, kpItem.How = "—", "absent from the event log"
	case logOK:
		kpItem.Verified, kpItem.How = true, howKP
	default:
		kpItem.How = "unverified: the event log does not replay to the quote"
	}
	out = append(out, kpItem)
	img := IdentityItem{Label: "OS image hash"}
	if v, ok := cs.String("dstack.os_image_hash"); ok {
		img.Value, img.Verified = v, true
		img.How = howImage
	} else if v, ok := cs.String(claims.UnverifiedPrefix + "dstack.os_image_hash"); ok {
		img.Value = v
		img.How = "unverified: only the VM configuration names it; nothing binds it to the quote"
	} else {
		img.Value, img.How = "—", "the evidence names no OS image"
	}
	return append(out, img)
}
