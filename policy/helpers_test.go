package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
)

var (
	pkiOnce sync.Once
	pki     *dcaptest.PKI
	pkiErr  error
)

// sharedPKI saves key generation across fixtures.
func sharedPKI(t testing.TB) *dcaptest.PKI {
	t.Helper()
	pkiOnce.Do(func() { pki, pkiErr = dcaptest.NewPKI(dcaptest.PKIOptions{}) })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

// evidence is a claim set and the time to appraise it at.
type evidence struct {
	name   string
	claims claims.Set
	at     time.Time
}

// fixture verifies a dcaptest quote of kind after mutate changed its
// spec, and returns its claims (with the quote's RTMRs as replayed ones
// for TDX) at the fixture's time.
func fixture(t testing.TB, name string, kind dcaptest.QuoteKind, mutate func(*dcaptest.Fixture)) evidence {
	t.Helper()
	f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(f)
	}
	q, err := f.BuildQuote()
	if err != nil || q.Parsed == nil {
		t.Fatalf("%s: BuildQuote: %v %v", name, err, q.ParseErr)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	r, err := dcap.Verify(q.Parsed, c, dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now})
	if err != nil {
		t.Fatalf("%s: dcap.Verify: %v", name, err)
	}
	in := claims.Input{DCAP: r, Quote: q.Parsed}
	if q.Parsed.IsTDX() {
		in.Replayed = &q.Parsed.TD.RTMRs
	}
	s, err := claims.New(in)
	if err != nil {
		t.Fatal(err)
	}
	return evidence{name: name, claims: s, at: f.Now}
}

// Fixture mutations.
var (
	debugTD   = func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }
	noSEPTVE  = func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[3] &^= 0x10 }
	outOfDate = func(f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 2 } // QE level 2: OutOfDate, INTEL-SA-00837
	serviceTD = func(f *dcaptest.Fixture) { f.QuoteSpec.TD.MRServiceTD[0] = 1 }
	otherMRTD = func(f *dcaptest.Fixture) { f.QuoteSpec.TD.MRTD[0] ^= 0xff }
)

// fixtures is the table of dcaptest claim sets (always available).
func fixtures(t testing.TB) []evidence {
	t.Helper()
	return []evidence{
		fixture(t, "tdx-v4", dcaptest.TDXQuoteV4, nil),
		fixture(t, "tdx-v5-td15", dcaptest.TDXQuoteV5TD15, nil),
		fixture(t, "sgx-v3", dcaptest.SGXQuoteV3, nil),
		fixture(t, "tdx-debug", dcaptest.TDXQuoteV4, debugTD),
		fixture(t, "tdx-no-septve", dcaptest.TDXQuoteV4, noSEPTVE),
		fixture(t, "tdx-out-of-date", dcaptest.TDXQuoteV4, outOfDate),
		fixture(t, "tdx-service-td", dcaptest.TDXQuoteV5TD15, serviceTD),
		fixture(t, "tdx-other-mrtd", dcaptest.TDXQuoteV4, otherMRTD),
		fixture(t, "sgx-out-of-date", dcaptest.SGXQuoteV3, outOfDate),
	}
}

// realEvidence returns claim sets of the shared real vectors; it skips
// when they are absent.
func realEvidence(t testing.TB) []evidence {
	t.Helper()
	var out []evidence
	for _, v := range []struct {
		dir string
		at  int64
	}{
		{"tdx-v4-b0c06f", 1752919234},
		{"sgx-v3-00a067", 1752919277},
		{"tdx-v4-90c06f-dstack", 1774003274},
	} {
		base := testvectors.Path(t, "dcap", v.dir)
		raw, err := os.ReadFile(filepath.Join(base, "quote.bin"))
		if err != nil {
			t.Fatal(err)
		}
		q, err := quote.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		js, err := os.ReadFile(filepath.Join(base, "collateral.json"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := collateral.ParseQVLJSON(js)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Unix(v.at, 0)
		r, err := dcap.Verify(q, c, dcap.Options{Now: at})
		if err != nil {
			t.Fatalf("%s: %v", v.dir, err)
		}
		s, err := claims.New(claims.Input{DCAP: r, Quote: q})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evidence{name: v.dir, claims: s, at: at})
	}
	ev, err := dstack.ParseEvidence(testvectors.ReadFile(t, "dstack", "quote-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1774003274, 0)
	r, err := dstack.Verify(ev, c, dstack.Options{Now: at})
	if err != nil {
		t.Fatal(err)
	}
	s, err := claims.New(claims.Input{Dstack: r})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, evidence{name: "dstack-quote-report", claims: s, at: at})
}

// clone copies a claim set so a test can change it.
func clone(s claims.Set) claims.Set {
	out := make(claims.Set, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// storeOf returns a memory store holding vals.
func storeOf(t testing.TB, vals ...refvalue.Value) refvalue.Store {
	t.Helper()
	s := refvalue.NewMemoryStore()
	for _, v := range vals {
		if _, err := s.Add(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// failedRules returns the sorted, distinct rule names of a's failures.
func failedRules(a *policy.Appraisal) []string {
	var out []string
	for _, v := range a.Failed {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	slices.Sort(out)
	return out
}
