package dcaptest_test

import (
	"bytes"
	"fmt"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/quote"
)

// A default fixture is a TDX quote and collateral under which it is
// UpToDate at f.Now; a test changes one thing and builds.
func ExampleNewFixture() {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		panic(err)
	}
	// One change: a TD with the DEBUG attribute.
	f.QuoteSpec.TD.TDAttributes[0] |= 1

	q, err := f.BuildQuote()
	if err != nil {
		panic(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		panic(err)
	}
	fmt.Println(q.Parsed.Header.Version, q.Parsed.Header.TEEType, q.Parsed.BodyType, q.Parsed.TD.Debug())
	fmt.Printf("%s %X %v\n", c.TCBInfo.Info.ID, c.TCBInfo.Info.FMSPC, c.TCBInfo.Info.TCBLevels[0].TCBStatus)
	fmt.Println(c.QEIdentity.Identity.ID, c.TCBInfo.Info.NextUpdate.Sub(f.Now))
	// Output:
	// 4 TDX TD report 1.0 true
	// TDX 90C06F000000 UpToDate
	// TD_QE 696h0m0s
}

// Hooks reach what specs cannot express: here a TCB info changed after
// it was signed, and a quote body changed after it was signed.
func ExampleFixture_tamper() {
	f, err := dcaptest.NewFixture(dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{})
	if err != nil {
		panic(err)
	}
	f.CollateralSpec.MutateTCBInfoAfterSign = func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"tcbEvaluationDataNumber":17`), []byte(`"tcbEvaluationDataNumber":18`), 1)
	}
	f.QuoteSpec.MutateAfterSign = func(q *quote.Quote) { q.Enclave.ReportData[0] ^= 1 }

	c, err := f.BuildCollateral()
	if err != nil {
		panic(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		panic(err)
	}
	fmt.Println(c.TCBInfo.Info.TCBEvaluationDataNumber, q.Parsed.Enclave.ReportData[0] != f.QuoteSpec.Enclave.ReportData[0])
	// Output:
	// 18 true
}
