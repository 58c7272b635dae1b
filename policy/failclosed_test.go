package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

// pinTD returns reference values pinning the TD of ev.
func pinTD(t *testing.T, ev evidence) []refvalue.Value {
	t.Helper()
	var out []refvalue.Value
	for _, n := range []string{"mr_td", "rtmr_0", "rtmr_1", "rtmr_2"} {
		out = append(out, refvalue.Value{Name: "tdx." + n, Values: []string{mustString(ev.claims, "tdx.quote.body."+n)}})
	}
	return out
}

func warnedRules(a *policy.Appraisal) []string {
	var out []string
	for _, v := range a.Warnings {
		out = append(out, v.Claim)
	}
	slices.Sort(out)
	return out
}

// TestUnpinnedIsWarning: the default policy allows authentic, UpToDate
// evidence whose code no reference value pins, but lists it as a warning
// and leaves executables unaffirmed, so the EAR status is at most warning.
func TestUnpinnedIsWarning(t *testing.T) {
	t.Parallel()
	td := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	sgx := fixture(t, "sgx-v3", dcaptest.SGXQuoteV3, nil)
	pins := pinTD(t, td)
	unsafe, err := policy.FromRules("unsafe", "1", policy.Rules{AllowUnpinnedUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		ev       evidence
		pol      *policy.Policy
		refs     []refvalue.Value
		warnings []string
	}{
		{"tdx empty store", td, policy.Default(), nil, []string{"tdx.quote.body.mr_td", "tdx.quote.body.rtmr_0", "tdx.quote.body.rtmr_1", "tdx.quote.body.rtmr_2"}},
		{"tdx mrtd only", td, policy.Default(), pins[:1], []string{"tdx.quote.body.rtmr_0", "tdx.quote.body.rtmr_1", "tdx.quote.body.rtmr_2"}},
		{"tdx pinned", td, policy.Default(), pins, nil},
		{"tdx allow_unpinned_unsafe", td, unsafe, nil, nil},
		{"sgx empty store", sgx, policy.Default(), nil, []string{"sgx.quote.body.mr_enclave", "sgx.quote.body.mr_signer"}},
		{"sgx mr_signer", sgx, policy.Default(), []refvalue.Value{{Name: "sgx.mr_signer", Values: []string{mustString(sgx.claims, "sgx.quote.body.mr_signer")}}}, nil},
	} {
		a, err := policy.Appraise(t.Context(), c.pol, c.ev.claims, storeOf(t, c.refs...), c.ev.at)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Allow {
			t.Errorf("%s: denied %v", c.name, a.Failed)
			continue
		}
		if got := warnedRules(a); !slices.Equal(got, c.warnings) {
			t.Errorf("%s: warnings on %v, want %v", c.name, got, c.warnings)
		}
		for _, w := range a.Warnings {
			if w.Rule != policy.RuleUnpinned {
				t.Errorf("%s: warning rule %q", c.name, w.Rule)
			}
		}
		if affirmed := a.TrustVector.Executables == policy.TrustAffirming; affirmed != (c.warnings == nil) {
			t.Errorf("%s: executables %d with warnings %v", c.name, a.TrustVector.Executables, c.warnings)
		}
	}
}

// TestClaimMissingFails: a reference value whose claim the evidence lacks
// fails the rule. A TD quote sent without its event log has no dstack.*
// claims, so a stored dstack.compose_hash refuses it.
func TestClaimMissingFails(t *testing.T) {
	t.Parallel()
	td := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	refs := append(pinTD(t, td), refvalue.Value{Name: "dstack.compose_hash", Values: []string{strings.Repeat("ab", 32)}})
	for _, name := range []string{"dstack.compose_hash", "dstack.app_id", "dstack.os_image_hash", "dstack.mr_system", "dstack.key_provider_id"} {
		rs := append(pinTD(t, td), refvalue.Value{Name: name, Values: []string{strings.Repeat("ab", 32)}})
		a, err := policy.Appraise(t.Context(), policy.Default(), td.claims, storeOf(t, rs...), td.at)
		if err != nil {
			t.Fatal(err)
		}
		claim, _ := claims.MeasurementClaim(name)
		if a.Allow || len(a.Failed) != 1 || a.Failed[0].Rule != policy.RuleReferenceValue || a.Failed[0].Claim != claim ||
			!strings.Contains(a.Failed[0].Actual, "claim missing") {
			t.Errorf("%s stored, claim absent: allow %v failed %v", name, a.Allow, a.Failed)
		}
	}
	// An SGX quote is not compared with dstack (or TDX) reference values.
	sgx := fixture(t, "sgx-v3", dcaptest.SGXQuoteV3, nil)
	a, err := policy.Appraise(t.Context(), policy.Default(), sgx.claims, storeOf(t, refs...), sgx.at)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allow {
		t.Errorf("sgx with TDX and dstack reference values: %v", a.Failed)
	}
	// Allow-lists fail on a missing claim too.
	allow, err := policy.FromRules("allow", "1", policy.Rules{AllowedComposeHashes: []string{strings.Repeat("ab", 32)}, AllowUnpinnedUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := policy.Appraise(t.Context(), allow, td.claims, nil, td.at); err != nil || a.Allow {
		t.Errorf("allowed_compose_hashes with no dstack claims: allow %v err %v", a != nil && a.Allow, err)
	}
}

// TestUnverifiedNeverMatches: a claim reported as unverified (vm_config's
// os_image_hash not bound to the quote) satisfies no rule, even when its
// value is the reference value.
func TestUnverifiedNeverMatches(t *testing.T) {
	t.Parallel()
	td := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	h := strings.Repeat("aa", 32)
	forged := clone(td.claims)
	forged["unverified.dstack.os_image_hash"] = h
	forged["dstack.compose_hash"] = strings.Repeat("cd", 32)
	refs := append(pinTD(t, td), refvalue.Value{Name: "dstack.os_image_hash", Values: []string{h}})
	a, err := policy.Appraise(t.Context(), policy.Default(), forged, storeOf(t, refs...), td.at)
	if err != nil {
		t.Fatal(err)
	}
	if a.Allow || len(a.Failed) != 1 || a.Failed[0].Claim != "dstack.os_image_hash" {
		t.Errorf("unverified os_image_hash equal to the reference value: allow %v failed %v", a.Allow, a.Failed)
	}
	bound := clone(forged)
	delete(bound, "unverified.dstack.os_image_hash")
	bound["dstack.os_image_hash"] = h
	if a, err := policy.Appraise(t.Context(), policy.Default(), bound, storeOf(t, refs...), td.at); err != nil || !a.Allow {
		t.Errorf("bound os_image_hash: %v %v", a, err)
	}
	// A policy cannot name an unverified claim.
	if _, err := policy.ParseYAML("p", "1", []byte("reference_values:\n  - {name: img, claim: unverified.dstack.os_image_hash}\n")); err == nil {
		t.Error("a reference value on an unverified claim parsed")
	}
}

// TestComparisons: the appraisal reports each reference-value comparison
// with its outcome.
func TestComparisons(t *testing.T) {
	t.Parallel()
	td := fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	refs := append(pinTD(t, td), refvalue.Value{Name: "dstack.compose_hash", Values: []string{"ab"}},
		refvalue.Value{Name: "tdx.mr_owner", Values: []string{"cd"}})
	a, err := policy.Appraise(t.Context(), policy.Default(), td.claims, storeOf(t, refs...), td.at)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range a.Comparisons {
		got[c.Name] = c.Outcome
	}
	for name, want := range map[string]string{
		"tdx.mr_td": policy.Match, "tdx.rtmr_2": policy.Match, "dstack.compose_hash": policy.ClaimMissing,
		"tdx.mr_owner": policy.Mismatch, "tdx.mr_config_id": policy.NoReferenceValue,
	} {
		if got[name] != want {
			t.Errorf("comparison %s: %q, want %q", name, got[name], want)
		}
	}
	if _, ok := got["sgx.mr_enclave"]; ok {
		t.Error("an SGX measurement was compared for a TD")
	}
}
