package policy_test

import (
	"context"
	"fmt"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

func ExampleAppraise() {
	// A debug TD from the dcaptest fake PKI, verified at the fixture's time.
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		panic(err)
	}
	f.QuoteSpec.TD.TDAttributes[0] |= 1 // DEBUG
	q, err := f.BuildQuote()
	if err != nil {
		panic(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		panic(err)
	}
	res, err := dcap.Verify(q.Parsed, c, dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now})
	if err != nil {
		panic(err)
	}
	set, err := claims.New(claims.Input{DCAP: res, Quote: q.Parsed})
	if err != nil {
		panic(err)
	}

	// A reference value for MRTD that the TD does not match.
	ctx := context.Background()
	refs := refvalue.NewMemoryStore()
	if _, err := refs.Add(ctx, refvalue.Value{Name: "tdx.mr_td", Values: []string{"00"}}); err != nil {
		panic(err)
	}

	a, err := policy.Appraise(ctx, policy.Default(), set, refs, f.Now)
	if err != nil {
		panic(err)
	}
	fmt.Println("allow:", a.Allow)
	for _, v := range a.Failed {
		fmt.Println("failed:", v.Rule, v.Claim)
	}
	// Output:
	// allow: false
	// failed: debug tdx.td_attributes.debug
	// failed: reference_value tdx.quote.body.mr_td
}
