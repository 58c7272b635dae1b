package policy_test

import (
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/policy"
)

// TestTCBRecoveryGrace: an OutOfDate platform is accepted only while the
// recovery that made it OutOfDate is younger than the grace period.
func TestTCBRecoveryGrace(t *testing.T) {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.QuoteSpec.TD.TEETCBSVN[0] = 2 // module OutOfDate
	qb, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	res, err := dcap.Verify(qb.Parsed, c, dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != collateral.OutOfDate || res.OutOfDateSince.IsZero() {
		t.Fatalf("status %v since %v", res.Status, res.OutOfDateSince)
	}
	set, err := claims.New(claims.Input{DCAP: res, Quote: qb.Parsed})
	if err != nil {
		t.Fatal(err)
	}
	since := res.OutOfDateSince
	cases := []struct {
		name  string
		rules policy.Rules
		at    time.Time
		allow bool
	}{
		{"no grace", policy.Rules{}, since.Add(time.Hour), false},
		{"inside the grace", policy.Rules{TCBRecoveryGrace: 30 * 24 * time.Hour}, since.Add(29 * 24 * time.Hour), true},
		{"after the grace", policy.Rules{TCBRecoveryGrace: 30 * 24 * time.Hour}, since.Add(30 * 24 * time.Hour), false},
		{"base status not accepted", policy.Rules{TCBRecoveryGrace: 30 * 24 * time.Hour, AcceptedTCBStatuses: []string{"SWHardeningNeeded"}}, since.Add(time.Hour), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The collateral's own age is not under test here.
			tc.rules.AllowExpiredCollateralUnsafe = true
			p, err := policy.FromRules("grace", "1", tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			a, err := policy.Appraise(t.Context(), p, set, nil, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if a.Allow != tc.allow {
				t.Errorf("Allow = %v, want %v (failed %+v)", a.Allow, tc.allow, a.Failed)
			}
			if !tc.allow {
				found := false
				for _, v := range a.Failed {
					found = found || v.Rule == policy.RuleTCBStatus
				}
				if !found {
					t.Errorf("failed rules %+v do not name %s", a.Failed, policy.RuleTCBStatus)
				}
			}
		})
	}
	// The YAML key parses.
	if _, err := policy.ParseYAML("g", "1", []byte("tcb_recovery_grace: 720h\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.ParseYAML("g", "1", []byte("tcb_recovery_grace: -1h\n")); err == nil {
		t.Error("a negative grace period was accepted")
	}
}
