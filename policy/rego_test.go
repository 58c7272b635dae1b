package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/policy/rego"
	"github.com/tdproof/tdproof/refvalue"
)

func loadPolicy(t testing.TB, format policy.Format, file string) *policy.Policy {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rego.Parse(format, "twin", "1", src)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return p
}

// twinRefs are reference values for the twin table: some evidence
// matches them, some does not.
func twinRefs(t testing.TB, ev []evidence) refvalue.Store {
	t.Helper()
	good := ev[0].claims // tdx-v4
	return storeOf(t,
		refvalue.Value{Name: "tdx.mr_td", Values: []string{mustString(good, "tdx.quote.body.mr_td")}},
		refvalue.Value{Name: "tdx.rtmr_2", Values: []string{mustString(good, "tdx.quote.body.rtmr_2"), strings.Repeat("ab", 48)}},
		refvalue.Value{Name: "sgx.mr_signer", Values: []string{strings.Repeat("00", 32)}, Expires: ev[0].at}, // expired
	)
}

// TestTwins: a Rego policy and its declarative twin decide identically,
// with the same failed rules, on the fixture table and the real vectors.
func TestTwins(t *testing.T) {
	t.Parallel()
	y := loadPolicy(t, policy.FormatYAML, "twin.yaml")
	r := loadPolicy(t, policy.FormatRego, "twin.rego")
	check := func(t *testing.T, evs []evidence, refs refvalue.Store) {
		for _, ev := range evs {
			for _, variant := range []struct {
				name   string
				mutate func(claims.Set)
			}{
				{"", nil},
				{"/no-tcb-status", func(s claims.Set) { delete(s, s.TEE()+".tcb_status") }},
				{"/sev", func(s claims.Set) { s["tee"] = "sev" }},
				{"/expired", func(s claims.Set) { s[s.TEE()+".collateral.expired"] = true }},
				{"/advisory", func(s claims.Set) { s[s.TEE()+".platform.advisory_ids"] = []string{"intel-sa-00837"} }},
				{"/qe-advisory", func(s claims.Set) { s[s.TEE()+".qe.advisory_ids"] = []string{"INTEL-SA-00837"} }},
				{"/no-qe-advisories", func(s claims.Set) { delete(s, s.TEE()+".qe.advisory_ids") }},
				{"/old-collateral", func(s claims.Set) { s[s.TEE()+".collateral.issue_date"] = "2020-01-01T00:00:00Z" }},
				{"/dstack", func(s claims.Set) { s["dstack.compose_hash"] = "c0c0" }},
				{"/after-ready", func(s claims.Set) { s["dstack.events_after_system_ready"] = []string{"injected"} }},
				{"/after-ready-none", func(s claims.Set) { s["dstack.events_after_system_ready"] = []string{} }},
			} {
				s := clone(ev.claims)
				if variant.mutate != nil {
					variant.mutate(s)
				}
				ay, err := policy.Appraise(t.Context(), y, s, refs, ev.at)
				if err != nil {
					t.Fatal(err)
				}
				ar, err := policy.Appraise(t.Context(), r, s, refs, ev.at)
				if err != nil {
					t.Fatal(err)
				}
				gy, gr := failedRules(ay), failedRules(ar)
				if ay.Allow != ar.Allow || !slices.Equal(gy, gr) {
					t.Errorf("%s%s: yaml allow %v %v, rego allow %v %v", ev.name, variant.name, ay.Allow, ay.Failed, ar.Allow, ar.Failed)
				}
				t.Logf("%s%s: allow %v failed %v", ev.name, variant.name, ay.Allow, gy)
			}
		}
	}
	t.Run("fixtures", func(t *testing.T) {
		t.Parallel()
		evs := fixtures(t)
		refs := twinRefs(t, evs)
		refs.Add(t.Context(), refvalue.Value{Name: "dstack.compose_hash", Values: []string{"c0c0"}})
		check(t, evs, refs)
		// The table must contain both decisions.
		var allowed, denied int
		for _, ev := range evs {
			a, _ := policy.Appraise(t.Context(), y, ev.claims, refs, ev.at)
			if a.Allow {
				allowed++
			} else {
				denied++
			}
		}
		if allowed == 0 || denied == 0 {
			t.Errorf("table has %d allowed and %d denied", allowed, denied)
		}
	})
	t.Run("real", func(t *testing.T) {
		t.Parallel()
		evs := realEvidence(t)
		check(t, evs, storeOf(t, refvalue.Value{Name: "dstack.compose_hash", Values: []string{"00"}}))
		check(t, evs, nil)
	})
}

func TestRegoResult(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	r := loadPolicy(t, policy.FormatRego, "twin.rego")
	a, err := policy.Appraise(t.Context(), r, ev.claims, nil, ev.at)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allow || a.TrustVector.Hardware != 2 || a.PolicyID != "twin" || a.PolicyVersion != "1" || a.Failed == nil {
		t.Errorf("Appraise = %+v", a)
	}
	// Expected and actual values come through, non-strings as JSON.
	store := storeOf(t, refvalue.Value{Name: "tdx.mr_td", Values: []string{"00"}})
	a, err = policy.Appraise(t.Context(), r, ev.claims, store, ev.at)
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Violation{Rule: "reference_value", Claim: "tdx.quote.body.mr_td", Expected: `["00"]`, Actual: mustString(ev.claims, "tdx.quote.body.mr_td")}
	if a.Allow || len(a.Failed) != 1 || a.Failed[0] != want {
		t.Errorf("Failed = %+v, want [%+v]", a.Failed, want)
	}
	if a.TrustVector.Executables != policy.TrustExecutablesUnrecognized {
		t.Errorf("trust vector %+v", a.TrustVector)
	}
	// The nonce reaches data.tdproof.expected_report_data.
	p, err := r.WithExpectedReportData("ff")
	if err != nil {
		t.Fatal(err)
	}
	a, _ = policy.Appraise(t.Context(), p, ev.claims, nil, ev.at)
	if got := failedRules(a); !slices.Equal(got, []string{"report_data"}) {
		t.Errorf("nonce mismatch: %v", a.Failed)
	}
}

func TestRegoDecisions(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	for _, c := range []struct {
		name, src string
		allow     bool
		rules     []string
	}{
		{"allow", "package tdproof.policy\nallow := true", true, nil},
		{"no allow", "package tdproof.policy\nx := 1", false, []string{"deny"}},
		{"non-bool allow", "package tdproof.policy\nallow := \"yes\"", false, []string{"deny"}},
		{"allow with violations", "package tdproof.policy\nallow := true\nviolations contains {\"rule\": \"mine\"} if true", false, []string{"mine"}},
		{"bad violations", "package tdproof.policy\nallow := true\nviolations := 3", false, []string{"violations"}},
		{"input", "package tdproof.policy\nallow if input.tdx.quote.body.mr_td == \"" + mustString(ev.claims, "tdx.quote.body.mr_td") + "\"", true, nil},
		{"time", "package tdproof.policy\nallow if time.now_ns() == " + strconv.FormatInt(ev.at.UnixNano(), 10), true, nil},
	} {
		p, err := rego.Compile("t", "1", []byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		a, err := policy.Appraise(t.Context(), p, ev.claims, nil, ev.at)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := failedRules(a); a.Allow != c.allow || !slices.Equal(got, c.rules) {
			t.Errorf("%s: allow %v failed %v; want %v %v", c.name, a.Allow, a.Failed, c.allow, c.rules)
		}
	}
}

func TestRegoEvaluationError(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	p, err := rego.Compile("t", "1", []byte("package tdproof.policy\nallow if to_number(input.tee) > 0"))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := policy.Appraise(t.Context(), p, ev.claims, nil, ev.at); !errors.Is(err, policy.ErrEvaluation) || a != nil {
		t.Errorf("runtime error: %v, %v; want ErrEvaluation", a, err)
	}
	// A failing reference-value store fails the evaluation that reads it.
	p, err = rego.Compile("t", "1", []byte("package tdproof.policy\nallow if count(data.tdproof.reference_values) == 0"))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := policy.Appraise(t.Context(), p, ev.claims, failingStore{}, ev.at); err == nil {
		t.Errorf("failing store: %v", a)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := policy.Appraise(ctx, p, ev.claims, nil, ev.at); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	c := policy.NewCache(2, rego.Parse)
	src := []byte("package tdproof.policy\nallow := true")
	p1, err := c.Get(policy.FormatRego, "a", "1", src)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := c.Get(policy.FormatRego, "a", "1", src)
	if p1 != p2 {
		t.Error("same id, version and source compiled twice")
	}
	p3, _ := c.Get(policy.FormatRego, "a", "2", src)
	if p3 == p1 {
		t.Error("a new version reused the old compilation")
	}
	p4, _ := c.Get(policy.FormatRego, "a", "1", []byte("package tdproof.policy\nallow := false"))
	if p4 == p1 {
		t.Error("a changed source under the same version served stale")
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2 (bounded)", c.Len())
	}
	if _, err := c.Get(policy.FormatRego, "b", "1", []byte("nope")); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("invalid source: %v", err)
	}
	if _, err := c.Get("json", "b", "1", src); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
}

// TestConcurrentAppraise runs one prepared Rego query and one declarative
// policy from many goroutines (meaningful under -race).
func TestConcurrentAppraise(t *testing.T) {
	t.Parallel()
	evs := fixtures(t)
	refs := twinRefs(t, evs)
	ps := []*policy.Policy{loadPolicy(t, policy.FormatRego, "twin.rego"), loadPolicy(t, policy.FormatYAML, "twin.yaml")}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				ev := evs[(i+j)%len(evs)]
				if _, err := policy.Appraise(t.Context(), ps[i%2], ev.claims, refs, ev.at); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDeclarativeOnlyParse(t *testing.T) {
	t.Parallel()
	if _, err := policy.Parse(policy.FormatRego, "r", "1", []byte("package tdproof.policy\nallow := true")); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("policy.Parse(rego) = %v, want ErrInvalid", err)
	}
	if _, err := policy.NewCache(0, nil).Get(policy.FormatRego, "r", "1", nil); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("default cache parsed Rego: %v", err)
	}
	if _, err := policy.NewPolicy("x", "1", policy.FormatRego, nil, nil); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("NewPolicy(nil evaluator) = %v", err)
	}
}

// TestRegoExpiredReferenceValue: data.tdproof.reference_values holds only
// values valid at the appraisal time.
func TestRegoExpiredReferenceValue(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	r := loadPolicy(t, policy.FormatRego, "twin.rego")
	store := storeOf(t, refvalue.Value{Name: "tdx.mr_td", Values: []string{strings.Repeat("11", 48)}, Expires: ev.at.Add(time.Hour)})
	for _, c := range []struct {
		at    time.Time
		allow bool
	}{
		{ev.at, false},                 // valid and mismatching
		{ev.at.Add(time.Hour), true},   // expired: no longer compared
		{ev.at.Add(-time.Hour), false}, // no not_before: valid
	} {
		a, err := policy.Appraise(t.Context(), r, ev.claims, store, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if a.Allow != c.allow {
			t.Errorf("at %v: allow %v %v, want %v", c.at, a.Allow, a.Failed, c.allow)
		}
	}
}

// TestRegoUnverifiedInvisible: an unverified claim is not in a Rego
// policy's input, so a policy reading it cannot match it.
func TestRegoUnverifiedInvisible(t *testing.T) {
	t.Parallel()
	ev := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	c := clone(ev.claims)
	c["unverified.dstack.os_image_hash"] = "aa"
	p, err := rego.Parse(policy.FormatRego, "p", "1", []byte("package tdproof.policy\n\ndefault allow := false\n\nallow if input.unverified.dstack.os_image_hash == \"aa\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := policy.Appraise(t.Context(), p, c, nil, ev.at)
	if err != nil {
		t.Fatal(err)
	}
	if a.Allow {
		t.Error("a Rego policy matched an unverified claim")
	}
}
