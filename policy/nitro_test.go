package policy_test

import (
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

// nitroClaims is a claim set as claims.New makes it for a verified
// Nitro document of kind.
func nitroClaims(kind string) claims.Set {
	s := claims.Set{"tee": "nitro", "nitro.kind": kind, "nitro.module_id": "i-0123", "nitro.user_data": "0a0b",
		"dstack.tee_variant": "dstack-nitro-enclave"}
	if kind == "nitro-enclave" {
		s["nitro.debug"] = false
		s["nitro.pcr0"], s["nitro.pcr1"], s["nitro.pcr2"] = "a0", "a1", "a2"
	} else {
		s["dstack.tee_variant"] = "dstack-aws-nitro-tpm"
		s["tpm.pcr0"], s["tpm.pcr4"], s["tpm.pcr7"], s["tpm.pcr12"] = "b0", "b4", "b7", "bc"
	}
	return s
}

func rulesOf(a *policy.Appraisal) []string {
	var out []string
	for _, f := range a.Failed {
		out = append(out, f.Rule)
	}
	return out
}

// TestNitroAppraisal: the default policy's rules for tee nitro — no TCB
// rules, debug on enclaves only, report_data on nitro.user_data, the
// pinned PCRs per kind, and reference values of the kind only.
func TestNitroAppraisal(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	refs := func(kv ...string) refvalue.Store {
		s := refvalue.NewMemoryStore()
		for i := 0; i < len(kv); i += 2 {
			if _, err := s.Add(ctx, refvalue.Value{Name: kv[i], Values: []string{kv[i+1]}}); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	strict, err := policy.FromRules("strict", "1", policy.Rules{MaxCollateralAge: time.Hour, MaxTCBDateAge: time.Hour,
		RejectedAdvisoryIDs: []string{"INTEL-SA-00837"}, MinTCBEvalNum: 17, ExpectedReportData: "0a0b"})
	if err != nil {
		t.Fatal(err)
	}
	enc := refs("nitro.pcr0", "a0", "nitro.pcr1", "a1", "nitro.pcr2", "a2", "tpm.pcr0", "ff")
	for _, pol := range []*policy.Policy{policy.Default(), strict} {
		a, err := policy.Appraise(ctx, pol, nitroClaims("nitro-enclave"), enc, now)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Allow || len(a.Warnings) != 0 || a.TrustVector.Executables != policy.TrustAffirming {
			t.Fatalf("%s: pinned enclave: %+v", pol.ID(), a)
		}
	}
	dbg := nitroClaims("nitro-enclave")
	dbg["nitro.debug"] = true
	if a, _ := policy.Appraise(ctx, policy.Default(), dbg, enc, now); a.Allow || rulesOf(a)[0] != policy.RuleDebug {
		t.Errorf("debug enclave: %+v", a)
	}
	if a, _ := policy.Appraise(ctx, policy.Default(), nitroClaims("nitro-enclave"), refs("nitro.pcr0", "a0", "nitro.pcr1", "00", "nitro.pcr2", "a2"), now); a.Allow || rulesOf(a)[0] != policy.RuleReferenceValue {
		t.Errorf("wrong PCR1: %+v", a)
	}
	if a, _ := policy.Appraise(ctx, policy.Default(), nitroClaims("nitro-enclave"), refs("nitro.pcr0", "a0"), now); !a.Allow || len(a.Warnings) != 2 {
		t.Errorf("PCR1 and PCR2 unpinned: %+v", a)
	}
	if pol, _ := policy.Default().WithExpectedReportData("0a0c"); pol != nil {
		if a, _ := policy.Appraise(ctx, pol, nitroClaims("nitro-enclave"), enc, now); a.Allow || rulesOf(a)[0] != policy.RuleReportData || a.Failed[0].Claim != "nitro.user_data" {
			t.Errorf("nonce: %+v", a)
		}
	}
	// NitroTPM: pinned by PCR4/7/12; the enclave's PCR0 and GCP's
	// tpm.pcr0 reference values do not apply to it.
	tpmRefs := refs("tpm.pcr4", "b4", "tpm.pcr7", "b7", "tpm.pcr12", "bc", "tpm.pcr0", "ff", "nitro.pcr0", "ff")
	a, err := policy.Appraise(ctx, policy.Default(), nitroClaims("aws-nitro-tpm"), tpmRefs, now)
	if err != nil || !a.Allow || len(a.Warnings) != 0 {
		t.Fatalf("pinned NitroTPM: %v %+v", err, a)
	}
	if a, _ := policy.Appraise(ctx, policy.Default(), nitroClaims("aws-nitro-tpm"), refs("tpm.pcr4", "b4", "tpm.pcr7", "00", "tpm.pcr12", "bc"), now); a.Allow {
		t.Errorf("NitroTPM wrong PCR7: %+v", a)
	}
	// A nitro claim set without a verified document is not authentic.
	bad := nitroClaims("nitro-enclave")
	delete(bad, "nitro.module_id")
	if a, _ := policy.Appraise(ctx, policy.Default(), bad, enc, now); a.Allow || rulesOf(a)[0] != policy.RuleAuthentic {
		t.Errorf("no module_id: %+v", a)
	}
	// tees restricts to other TEEs.
	only, _ := policy.FromRules("tdx-only", "1", policy.Rules{TEEs: []string{"tdx"}})
	if a, _ := policy.Appraise(ctx, only, nitroClaims("nitro-enclave"), enc, now); a.Allow || rulesOf(a)[0] != policy.RuleTEE {
		t.Errorf("tees [tdx]: %+v", a)
	}
	if _, err := policy.FromRules("nitro-only", "1", policy.Rules{TEEs: []string{"nitro"}}); err != nil {
		t.Error(err)
	}
}
