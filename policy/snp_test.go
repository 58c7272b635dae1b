package policy_test

import (
	"encoding/hex"
	"testing"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// snpClaims are the claims of a snpsim guest's report verified with a
// clean CRL of its ARK.
func snpClaims(t *testing.T, mutate func(*snp.Report)) claims.Set {
	t.Helper()
	return snpClaimsCRL(t, mutate, true)
}

func snpClaimsCRL(t *testing.T, mutate func(*snp.Report), withCRL bool) claims.Set {
	t.Helper()
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	r := g.Template
	if mutate != nil {
		mutate(&r)
	}
	raw, err := g.AttestReport(&r)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := snp.ParseReport(raw)
	certs := g.Certificates()
	if withCRL {
		crl, err := g.CRL()
		if err != nil {
			t.Fatal(err)
		}
		certs.CRLs = [][]byte{crl}
	}
	res, err := snp.Verify(rep, certs, snp.Options{Now: snpsim.Now, Roots: g.PKI.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := claims.New(claims.Input{SNP: res})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSNPAppraisal(t *testing.T) {
	ctx := t.Context()
	good := snpClaims(t, nil)
	meas, _ := good.String("snp.report.measurement")
	refs := refvalue.NewMemoryStore()
	if _, err := refs.Add(ctx, refvalue.Value{Name: "snp.measurement", Values: []string{meas}}); err != nil {
		t.Fatal(err)
	}
	a, err := policy.Appraise(ctx, policy.Default(), good, refs, snpsim.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allow || a.TrustVector.Executables != policy.TrustAffirming {
		t.Fatalf("default policy on a pinned SNP guest: %+v", a)
	}
	// Unpinned: allowed but not affirming; wrong measurement: denied.
	a, _ = policy.Appraise(ctx, policy.Default(), good, refvalue.NewMemoryStore(), snpsim.Now)
	if !a.Allow || a.TrustVector.Executables == policy.TrustAffirming {
		t.Errorf("unpinned: %+v", a)
	}
	other := refvalue.NewMemoryStore()
	if _, err := other.Add(ctx, refvalue.Value{Name: "snp.measurement", Values: []string{hex.EncodeToString(make([]byte, 48))}}); err != nil {
		t.Fatal(err)
	}
	deny := func(name string, s claims.Set, p *policy.Policy, refs refvalue.Store, rule string) {
		t.Helper()
		a, err := policy.Appraise(ctx, p, s, refs, snpsim.Now)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range a.Failed {
			found = found || f.Rule == rule
		}
		if a.Allow || !found {
			t.Errorf("%s: allow %v, failed %+v; want rule %s", name, a.Allow, a.Failed, rule)
		}
	}
	deny("measurement", good, policy.Default(), other, policy.RuleReferenceValue)
	// No CRL applied: denied by default (rule crl_checked); dstack's
	// acceptance (allow_unchecked_crl_unsafe) allows it.
	noCRL := snpClaimsCRL(t, nil, false)
	deny("no CRL", noCRL, policy.Default(), refs, policy.RuleCRLChecked)
	lax, err := policy.ParseYAML("lax", "1", []byte("allow_unchecked_crl_unsafe: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := policy.Appraise(ctx, lax, noCRL, refs, snpsim.Now); !a.Allow {
		t.Errorf("no CRL, allow_unchecked_crl_unsafe: %+v", a.Failed)
	}
	withoutClaim := claims.Set{}
	for k, v := range good {
		if k != "snp.crl_checked" {
			withoutClaim[k] = v
		}
	}
	deny("crl_checked absent", withoutClaim, policy.Default(), refs, policy.RuleCRLChecked)
	deny("debug", snpClaims(t, func(r *snp.Report) { r.Policy |= snp.PolicyDebug }), policy.Default(), refs, policy.RuleDebug)
	outOfDate := snpClaims(t, func(r *snp.Report) { r.CurrentTCB++ })
	deny("OutOfDate", outOfDate, policy.Default(), refs, policy.RuleTCBStatus)
	p, err := policy.ParseYAML("compat", "1", []byte("tees: [snp]\naccepted_tcb_statuses: [UpToDate, OutOfDate]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := policy.Appraise(ctx, p, outOfDate, refs, snpsim.Now); !a.Allow {
		t.Errorf("OutOfDate accepted by policy: %+v", a.Failed)
	}
	tdxOnly, _ := policy.ParseYAML("tdx", "1", []byte("tees: [tdx]\n"))
	deny("tees", good, tdxOnly, refs, policy.RuleTEE)
	rd, _ := policy.ParseYAML("rd", "1", []byte("expected_report_data: \"01\"\n"))
	deny("report data", good, rd, refs, policy.RuleReportData)
	adv, _ := policy.ParseYAML("adv", "1", []byte("rejected_advisory_ids: [AMD-SB-3019]\n"))
	if a, _ := policy.Appraise(ctx, adv, good, refs, snpsim.Now); !a.Allow {
		t.Errorf("advisory rule on SNP (no advisories): %+v", a.Failed)
	}
}
