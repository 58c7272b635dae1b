package policy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

// TestRules checks every declarative rule: one claim set it accepts and
// one it rejects naming the rule.
func TestRules(t *testing.T) {
	t.Parallel()
	base := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	at := base.at
	mrtd, _ := base.claims.String("tdx.quote.body.mr_td")
	tcbDate, _ := base.claims.Time("tdx.tcb_date")
	tcbAge := at.Sub(tcbDate)
	set := func(kv ...any) func(claims.Set) {
		return func(s claims.Set) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(s, kv[i].(string))
				} else {
					s[kv[i].(string)] = kv[i+1]
				}
			}
		}
	}
	withDstack := set("dstack.app_id", "a1a1", "dstack.compose_hash", "c0c0")
	mrtdRef := refvalue.Value{Name: "tdx.mr_td", Values: []string{mrtd}}
	otherRef := refvalue.Value{Name: "tdx.mr_td", Values: []string{strings.Repeat("00", 48)}}
	expiredRef := refvalue.Value{Name: "tdx.mr_td", Values: []string{mrtd}, Expires: at}

	type tc struct {
		rule   string
		yaml   string
		refs   []refvalue.Value
		accept func(claims.Set) // applied for the accepting case (nil: unchanged)
		reject func(claims.Set) // applied for the rejecting case
		// rejectYAML, if set, replaces yaml for the rejecting case.
		rejectYAML string
		rejectRefs []refvalue.Value
		// want, if set, are the rules the rejecting case fails (else rule).
		want []string
	}
	for _, c := range []tc{
		{rule: policy.RuleAuthentic, reject: set("tdx.tcb_status", nil), want: []string{policy.RuleAuthentic, policy.RuleTCBStatus}},
		{rule: policy.RuleAuthentic, reject: set("tee", "sev")},
		{rule: policy.RuleTEE, yaml: "tees: [tdx]", rejectYAML: "tees: [sgx]"},
		{rule: policy.RuleTCBStatus, reject: set("tdx.tcb_status", "OutOfDate")},
		{rule: policy.RuleTCBStatus, yaml: "accepted_tcb_statuses: [UpToDate, SWHardeningNeeded]",
			accept: set("tdx.tcb_status", "SWHardeningNeeded"), reject: set("tdx.tcb_status", "ConfigurationNeeded")},
		{rule: policy.RuleCollateralExpired, yaml: "allow_expired_collateral_unsafe: true", accept: set("tdx.collateral.expired", true),
			rejectYAML: "{}", reject: set("tdx.collateral.expired", true)},
		{rule: policy.RuleCollateralAge, yaml: "max_collateral_age: 25h", rejectYAML: "max_collateral_age: 23h"},
		{rule: policy.RuleCollateralAge, yaml: "max_collateral_age: 25h", reject: set("tdx.collateral.issue_date", nil)},
		{rule: policy.RuleTCBDateAge, yaml: fmt.Sprintf("max_tcb_date_age: %s", tcbAge+time.Hour),
			rejectYAML: fmt.Sprintf("max_tcb_date_age: %s", tcbAge-time.Hour)},
		{rule: policy.RuleAdvisoryIDs, yaml: "rejected_advisory_ids: [INTEL-SA-00837]",
			accept: set("tdx.platform.advisory_ids", []string{"INTEL-SA-00615"}), reject: set("tdx.module.advisory_ids", []string{"INTEL-SA-00615", "intel-sa-00837"})},
		{rule: policy.RuleAdvisoryIDs, yaml: "rejected_advisory_ids: [INTEL-SA-00837]",
			accept: set("tdx.qe.advisory_ids", []string{}), reject: set("tdx.qe.advisory_ids", []string{"INTEL-SA-00837"})},
		{rule: policy.RuleAdvisoryIDs, yaml: "rejected_advisory_ids: [INTEL-SA-00837]",
			accept: set("tdx.module.advisory_ids", nil), reject: set("tdx.platform.advisory_ids", nil)},
		{rule: policy.RuleTCBEvalNum, yaml: "min_tcb_eval_num: 17", rejectYAML: "min_tcb_eval_num: 18"},
		{rule: policy.RuleDebug, yaml: "allow_debug_unsafe: true", accept: set("tdx.td_attributes.debug", true),
			rejectYAML: "{}", reject: set("tdx.td_attributes.debug", true)},
		{rule: policy.RuleSEPTVEDisable, yaml: "allow_missing_sept_ve_disable_unsafe: true", accept: set("tdx.td_attributes.septve_disable", false),
			rejectYAML: "{}", reject: set("tdx.td_attributes.septve_disable", false)},
		{rule: policy.RuleMRServiceTD, yaml: "allow_service_td_unsafe: true", accept: set("tdx.mr_servicetd_zero", false),
			rejectYAML: "{}", reject: set("tdx.mr_servicetd_zero", false)},
		// Well-known measurements: compared whenever a reference value exists.
		{rule: policy.RuleReferenceValue, refs: []refvalue.Value{mrtdRef}, rejectRefs: []refvalue.Value{otherRef}},
		{rule: policy.RuleReferenceValue, yaml: "ignore_known_reference_values_unsafe: true", refs: []refvalue.Value{otherRef},
			rejectYAML: "{}", rejectRefs: []refvalue.Value{otherRef}},
		// Required measurements: a valid reference value must exist.
		{rule: policy.RuleReferenceValue, yaml: "reference_values: [tdx.mr_td]", refs: []refvalue.Value{mrtdRef, otherRef},
			rejectRefs: []refvalue.Value{expiredRef}},
		{rule: policy.RuleReferenceValue, yaml: "reference_values: [{name: my-rtmr3, claim: tdx.quote.body.rtmr_3}]",
			refs:       []refvalue.Value{{Name: "my-rtmr3", Values: []string{mustString(base.claims, "tdx.quote.body.rtmr_3")}}},
			rejectRefs: []refvalue.Value{{Name: "my-rtmr3", Values: []string{"00"}}}},
		{rule: policy.RuleAppID, yaml: "allowed_app_ids: [A1A1, b2b2]", accept: withDstack, reject: set("dstack.app_id", "c3c3")},
		{rule: policy.RuleAppID, yaml: "allowed_app_ids: [a1a1]", accept: withDstack, reject: set()},
		{rule: policy.RuleComposeHash, yaml: "allowed_compose_hashes: [c0c0]", accept: withDstack, reject: set("dstack.compose_hash", "0c0c")},
		{rule: policy.RuleReportData, yaml: "expected_report_data: \"\"", rejectYAML: "expected_report_data: " + strings.Repeat("ff", 32)},
	} {
		t.Run(c.rule+"/"+strings.ReplaceAll(c.yaml+c.rejectYAML, " ", ""), func(t *testing.T) {
			t.Parallel()
			appraise := func(doc string, refs []refvalue.Value, mutate func(claims.Set)) *policy.Appraisal {
				t.Helper()
				p, err := policy.ParseYAML("t", "1", []byte(doc))
				if err != nil {
					t.Fatalf("ParseYAML(%q): %v", doc, err)
				}
				s := clone(base.claims)
				if mutate != nil {
					mutate(s)
				}
				a, err := policy.Appraise(t.Context(), p, s, storeOf(t, refs...), at)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			a := appraise(c.yaml, c.refs, c.accept)
			if !a.Allow || len(a.Failed) != 0 {
				t.Errorf("accepting case: Allow = %v, Failed = %v", a.Allow, a.Failed)
			}
			doc, refs := c.yaml, c.refs
			if c.rejectYAML != "" {
				doc = c.rejectYAML
			}
			if c.rejectRefs != nil {
				refs = c.rejectRefs
			}
			a = appraise(doc, refs, c.reject)
			want := c.want
			if want == nil {
				want = []string{c.rule}
			}
			if got := failedRules(a); a.Allow || !slices.Equal(got, want) {
				t.Errorf("rejecting case: Allow = %v, failed rules %v, want %v; %v", a.Allow, got, want, a.Failed)
			}
			for _, v := range a.Failed {
				if v.Claim == "" || v.Expected == "" || v.Actual == "" {
					t.Errorf("violation %+v lacks claim, expected or actual", v)
				}
			}
			if err := a.Err(); !errors.Is(err, policy.ErrRejected) {
				t.Errorf("Err() = %v, want ErrRejected", err)
			}
		})
	}
}

func mustString(s claims.Set, name string) string {
	v, ok := s.String(name)
	if !ok {
		panic(name)
	}
	return v
}

// TestDefault checks the built-in policy on fixtures.
func TestDefault(t *testing.T) {
	t.Parallel()
	good := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	mrtd := mustString(good.claims, "tdx.quote.body.mr_td")
	rtmr1 := mustString(good.claims, "tdx.quote.body.rtmr_1")
	refs := []refvalue.Value{
		{Name: "tdx.mr_td", Values: []string{mrtd}},
		{Name: "tdx.rtmr_1", Values: []string{rtmr1}},
		{Name: "sgx.mr_enclave", Values: []string{"00"}}, // another TEE's value is not compared
	}
	for _, c := range []struct {
		ev   evidence
		refs []refvalue.Value
		want []string
	}{
		{good, refs, nil},
		{good, nil, nil},
		{fixture(t, "tdx-v5-td15", dcaptest.TDXQuoteV5TD15, nil), nil, nil},
		{fixture(t, "sgx-v3", dcaptest.SGXQuoteV3, nil), nil, nil},
		{fixture(t, "debug", dcaptest.TDXQuoteV4, debugTD), refs, []string{policy.RuleDebug}},
		{fixture(t, "out-of-date", dcaptest.TDXQuoteV4, outOfDate), refs, []string{policy.RuleTCBStatus}},
		{fixture(t, "sgx-out-of-date", dcaptest.SGXQuoteV3, outOfDate), nil, []string{policy.RuleTCBStatus}},
		{fixture(t, "mismatch", dcaptest.TDXQuoteV4, otherMRTD), refs, []string{policy.RuleReferenceValue}},
		{fixture(t, "no-septve", dcaptest.TDXQuoteV4, noSEPTVE), refs, []string{policy.RuleSEPTVEDisable}},
		{fixture(t, "service-td", dcaptest.TDXQuoteV5TD15, serviceTD), nil, []string{policy.RuleMRServiceTD}},
		// Every failed rule is listed, not only the first.
		{fixture(t, "all", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { debugTD(f); outOfDate(f); otherMRTD(f) }), refs,
			[]string{policy.RuleDebug, policy.RuleReferenceValue, policy.RuleTCBStatus}},
	} {
		a, err := policy.Appraise(t.Context(), policy.Default(), c.ev.claims, storeOf(t, c.refs...), c.ev.at)
		if err != nil {
			t.Fatal(err)
		}
		if got := failedRules(a); a.Allow != (c.want == nil) || !slices.Equal(got, c.want) {
			t.Errorf("Appraise(default, %s) = allow %v, failed %v; want %v", c.ev.name, a.Allow, a.Failed, c.want)
		}
		if a.PolicyID != policy.DefaultID || a.PolicyVersion != policy.DefaultVersion {
			t.Errorf("policy %s@%s", a.PolicyID, a.PolicyVersion)
		}
		if a.Allow && (a.TrustVector.Hardware != policy.TrustAffirming || a.TrustVector.Configuration != policy.TrustAffirming) {
			t.Errorf("%s: trust vector %+v", c.ev.name, a.TrustVector)
		}
		if !a.Allow && a.TrustVector == (policy.TrustVector{Hardware: 2, Configuration: 2, Executables: 2}) {
			t.Errorf("%s: a denial with an all-affirming trust vector", c.ev.name)
		}
	}
}

// TestExpiredReferenceValue: once a reference value expires it no longer
// matches, for the default and for a policy that requires it.
func TestExpiredReferenceValue(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	mrtd := mustString(ev.claims, "tdx.quote.body.mr_td")
	// The only value that matches expires an hour after ev.at; a stale
	// value that does not match expired before.
	store := storeOf(t,
		refvalue.Value{Name: "tdx.mr_td", Values: []string{mrtd}, Expires: ev.at.Add(time.Hour)},
		refvalue.Value{Name: "tdx.mr_td", Values: []string{strings.Repeat("11", 48)}, Expires: ev.at},
	)
	required, err := policy.ParseYAML("req", "1", []byte("reference_values: [tdx.mr_td]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p     *policy.Policy
		at    time.Time
		allow bool
	}{
		{required, ev.at, true},
		{required, ev.at.Add(time.Hour), false}, // expired: no valid reference value
		{policy.Default(), ev.at, true},
		{policy.Default(), ev.at.Add(time.Hour), true}, // no valid value left: nothing to compare
	} {
		a, err := policy.Appraise(t.Context(), c.p, ev.claims, store, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if a.Allow != c.allow {
			t.Errorf("Appraise(%s, at %v) = %v %v, want %v", c.p.ID(), c.at, a.Allow, a.Failed, c.allow)
		}
	}
	// A not-yet-valid mismatching value does not count either.
	store = storeOf(t, refvalue.Value{Name: "tdx.mr_td", Values: []string{"22"}, NotBefore: ev.at.Add(time.Second)})
	a, err := policy.Appraise(t.Context(), policy.Default(), ev.claims, store, ev.at)
	if err != nil || !a.Allow {
		t.Errorf("not-yet-valid reference value: %v %v", a, err)
	}
}

func TestReportDataNonce(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { copy(f.QuoteSpec.TD.ReportData[:], "nonce-0123456789") })
	nonce := fmt.Sprintf("%x", "nonce-0123456789")
	p, err := policy.Default().WithExpectedReportData(nonce)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := policy.Appraise(t.Context(), p, ev.claims, nil, ev.at)
	if !a.Allow || a.TrustVector.InstanceIdentity != policy.TrustAffirming {
		t.Errorf("matching nonce: %+v", a)
	}
	p, _ = policy.Default().WithExpectedReportData("0x" + strings.ToUpper(fmt.Sprintf("%x", "other")))
	a, _ = policy.Appraise(t.Context(), p, ev.claims, nil, ev.at)
	if got := failedRules(a); a.Allow || !slices.Equal(got, []string{policy.RuleReportData}) {
		t.Errorf("other nonce: %v", a.Failed)
	}
	if _, err := policy.Default().WithExpectedReportData("xyz"); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("WithExpectedReportData(xyz) = %v", err)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		"unknown_key: 1",
		"accepted_tcb_statuses: [Fine]",
		"accepted_tcb_statuses: [Revoked]",
		"max_collateral_age: soon",
		"max_collateral_age: -1h",
		"min_tcb_eval_num: -1",
		"tees: [sev]",
		"reference_values: [my-name]",
		"reference_values: [{name: x, claim: y, extra: z}]",
		"allowed_app_ids: [zz]",
		"expected_report_data: " + strings.Repeat("00", 65),
		"allow_debug_unsafe: true\nallow_debug_unsafe: false",
		"{}\n---\n{}",
		"[1, 2]",
		"id: other",
	} {
		if p, err := policy.ParseYAML("t", "", []byte(doc)); !errors.Is(err, policy.ErrInvalid) || p != nil {
			t.Errorf("ParseYAML(%q) = %v, %v; want ErrInvalid", doc, p, err)
		}
	}
	p, err := policy.ParseYAML("", "", []byte("id: prod\nversion: \"7\"\nmax_collateral_age: 720h\n"))
	if err != nil || p.ID() != "prod" || p.Version() != "7" || p.Rules().MaxCollateralAge != 720*time.Hour || p.Format() != policy.FormatYAML {
		t.Errorf("ParseYAML with id and version = %+v, %v", p, err)
	}
	if p, err := policy.ParseYAML("t", "1", nil); err != nil || p.Rules() == nil {
		t.Errorf("empty document: %v", err)
	}
}

func TestAppraiseErrors(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	if _, err := policy.Appraise(t.Context(), nil, ev.claims, nil, ev.at); !errors.Is(err, policy.ErrEvaluation) {
		t.Errorf("nil policy: %v", err)
	}
	if _, err := policy.Appraise(t.Context(), policy.Default(), ev.claims, nil, time.Time{}); !errors.Is(err, policy.ErrEvaluation) {
		t.Errorf("zero time: %v", err)
	}
	if _, err := policy.Appraise(t.Context(), policy.Default(), ev.claims, failingStore{}, ev.at); !errors.Is(err, policy.ErrEvaluation) {
		t.Errorf("failing store: %v", err)
	}
}

type failingStore struct{ refvalue.Store }

func (failingStore) Lookup(_ context.Context, _ string, _ time.Time) ([]refvalue.Value, error) {
	return nil, errors.New("store down")
}

func (failingStore) List(context.Context) ([]refvalue.Value, error) {
	return nil, errors.New("store down")
}

// TestDefaultReal applies the default policy to the shared vectors.
func TestDefaultReal(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"tdx-v4-b0c06f":        nil,
		"sgx-v3-00a067":        {policy.RuleTCBStatus}, // ConfigurationAndSWHardeningNeeded
		"tdx-v4-90c06f-dstack": nil,
		// LIUM_MINER_HOTKEY was emitted after system-ready.
		"dstack-quote-report": {policy.RuleEventsAfterSystemReady},
	}
	for _, ev := range realEvidence(t) {
		a, err := policy.Appraise(t.Context(), policy.Default(), ev.claims, nil, ev.at)
		if err != nil {
			t.Fatal(err)
		}
		if got := failedRules(a); !slices.Equal(got, want[ev.name]) {
			t.Errorf("%s: failed %v, want %v", ev.name, a.Failed, want[ev.name])
		}
	}
	// The opt-out accepts the event after system-ready.
	p, err := policy.FromRules("lenient", "1", policy.Rules{AllowEventsAfterSystemReadyUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range realEvidence(t) {
		if ev.name != "dstack-quote-report" {
			continue
		}
		a, err := policy.Appraise(t.Context(), p, ev.claims, nil, ev.at)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Allow {
			t.Errorf("%s with allow_events_after_system_ready_unsafe: failed %v", ev.name, a.Failed)
		}
	}
}
