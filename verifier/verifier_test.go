package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
	"github.com/tdproof/tdproof/verifier/pcsource"
)

// memSource is a pcs.Source serving one collateral set (or an error).
type memSource struct {
	c   *collateral.Collateral
	err error
}

func (m memSource) Collateral(context.Context, pcs.Key) (*collateral.Collateral, error) {
	return m.c, m.err
}

var (
	pkiOnce sync.Once
	pki     *dcaptest.PKI
	pkiErr  error
)

func sharedPKI(tb testing.TB) *dcaptest.PKI {
	tb.Helper()
	pkiOnce.Do(func() { pki, pkiErr = dcaptest.NewPKI(dcaptest.PKIOptions{}) })
	if pkiErr != nil {
		tb.Fatal(pkiErr)
	}
	return pki
}

// env is a verifier over one dcaptest fixture.
type env struct {
	f     *dcaptest.Fixture
	quote []byte
	keys  *ear.KeySet
	v     *verifier.Verifier
}

func newEnv(tb testing.TB, mutate func(*dcaptest.Fixture), refs refvalue.Store, srcErr error) *env {
	tb.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	if mutate != nil {
		mutate(f)
	}
	q, err := f.BuildQuote()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		tb.Fatal(err)
	}
	keys, signer := newSigner(tb, f.Now)
	clock := func() time.Time { return f.Now }
	if refs == nil && q.Parsed != nil {
		// The fixture's own TD, pinned: without reference values a
		// result is at most warning.
		refs = pinned(tb, q.Parsed)
	}
	v, err := pcsource.NewVerifier(memSource{c: c, err: srcErr}, refs, signer,
		verifier.WithTrustedRoot(f.PKI.Root.Certificate), verifier.WithClock(clock))
	if err != nil {
		tb.Fatal(err)
	}
	return &env{f: f, quote: q.Raw, keys: keys, v: v}
}

// pinned is a reference-value store pinning q's MRTD and RTMR0–2.
func pinned(tb testing.TB, q *quote.Quote) *refvalue.MemoryStore {
	tb.Helper()
	refs := refvalue.NewMemoryStore()
	for _, v := range refvalue.ForTD(q.TD.MRTD, q.TD.RTMRs, refvalue.Provenance{Source: "test"}) {
		if _, err := refs.Add(context.Background(), v); err != nil {
			tb.Fatal(err)
		}
	}
	return refs
}

func newSigner(tb testing.TB, now time.Time) (*ear.KeySet, *ear.Signer) {
	tb.Helper()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ear.NewSigner(keys, ear.WithClock(func() time.Time { return now }))
	if err != nil {
		tb.Fatal(err)
	}
	return keys, s
}

// verifyToken checks the token against the published JWKS.
func verifyToken(t *testing.T, keys *ear.KeySet, o *verifier.Outcome, now time.Time, nonce string) *ear.Claims {
	t.Helper()
	doc, err := keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ear.ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ear.Verify(o.Token, pub, ear.VerifyOptions{Now: func() time.Time { return now }, ExpectedNonce: nonce})
	if err != nil {
		t.Fatalf("ear.Verify: %v", err)
	}
	return c
}

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

func TestUpToDateAllows(t *testing.T) {
	t.Parallel()
	nonce := []byte("relying-party-challenge-0123456789")
	e := newEnv(t, func(f *dcaptest.Fixture) { copy(f.QuoteSpec.TD.ReportData[:], nonce) }, nil, nil)
	o, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: e.quote, Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	r := o.Result
	if !r.Authentic || !r.Allow || !r.Appraisal.Allow || r.Status != ear.StatusAffirming {
		t.Fatalf("result: authentic %v allow %v status %v failed %v", r.Authentic, r.Allow, r.Status, r.Appraisal.Failed)
	}
	if r.MediaType != verifier.MediaType || r.DCAP == nil || r.Claims == nil || r.Dstack != nil {
		t.Errorf("result fields: %+v", r)
	}
	c := verifyToken(t, e.keys, o, e.f.Now, verifier.NonceClaim(nonce))
	sub, ok := c.Submods[ear.SubmodTDX]
	if !ok || sub.Status != ear.StatusAffirming || sub.PolicyID != "default@1" || len(sub.Claims) == 0 {
		t.Errorf("submod: %+v", sub)
	}
	// A wrong nonce fails.
	if _, err := ear.Verify(o.Token, e.keys, ear.VerifyOptions{Now: func() time.Time { return e.f.Now }, ExpectedNonce: "other"}); !errors.Is(err, ear.ErrNonce) {
		t.Errorf("wrong nonce: %v", err)
	}
	// A nonce that is not the REPORTDATA prefix is a denial.
	o, err = e.v.Verify(t.Context(), verifier.Evidence{Quote: e.quote, Nonce: []byte("stale")})
	if err != nil {
		t.Fatal(err)
	}
	if o.Result.Allow || !slices.Equal(failedRules(o.Result.Appraisal), []string{policy.RuleReportData}) || o.Result.Status != ear.StatusContraindicated {
		t.Errorf("stale nonce: allow %v failed %v status %v", o.Result.Allow, o.Result.Appraisal.Failed, o.Result.Status)
	}
}

func TestDenials(t *testing.T) {
	t.Parallel()
	otherMRTD := refvalue.NewMemoryStore()
	if _, err := otherMRTD.Add(t.Context(), refvalue.Value{
		Name: "tdx.mr_td", Values: []string{fmt.Sprintf("%096x", 1)}, Provenance: refvalue.Provenance{Source: "test"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*dcaptest.Fixture)
		refs   refvalue.Store
		want   []string
	}{
		{"debug", func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }, nil, []string{policy.RuleDebug}},
		{"out-of-date", func(f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 2 }, nil, []string{policy.RuleTCBStatus}},
		{"mr_td-mismatch", nil, otherMRTD, []string{policy.RuleReferenceValue}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.mutate, tc.refs, nil)
			o, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: e.quote})
			if err != nil {
				t.Fatal(err)
			}
			r := o.Result
			if !r.Authentic || r.Allow || r.Status != ear.StatusContraindicated {
				t.Errorf("authentic %v allow %v status %v", r.Authentic, r.Allow, r.Status)
			}
			if got := failedRules(r.Appraisal); !slices.Equal(got, tc.want) {
				t.Errorf("failed %v, want rules %v", r.Appraisal.Failed, tc.want)
			}
			c := verifyToken(t, e.keys, o, e.f.Now, "")
			if c.Submods[ear.SubmodTDX].Status != ear.StatusContraindicated {
				t.Errorf("token status %v", c.Submods[ear.SubmodTDX].Status)
			}
		})
	}
}

func TestNotAuthentic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil)
	raw := slices.Clone(e.quote)
	// The quote signature starts after the header, the body and the
	// 4-byte signature data length.
	raw[48+584+4] ^= 1
	o, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: raw})
	if err != nil {
		t.Fatalf("a bad signature is a verdict, not an error: %v", err)
	}
	r := o.Result
	if r.Authentic || r.Allow || r.Status != ear.StatusContraindicated || r.Reason == "" || r.Claims != nil {
		t.Errorf("authentic %v allow %v status %v reason %q", r.Authentic, r.Allow, r.Status, r.Reason)
	}
	if got := failedRules(r.Appraisal); !slices.Equal(got, []string{policy.RuleAuthentic}) {
		t.Errorf("failed %v", r.Appraisal.Failed)
	}
	verifyToken(t, e.keys, o, e.f.Now, "")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil)
	for _, tc := range []struct {
		name string
		ev   verifier.Evidence
	}{
		{"truncated", verifier.Evidence{Quote: e.quote[:100]}},
		{"empty", verifier.Evidence{}},
		{"both", verifier.Evidence{Quote: e.quote, Dstack: []byte("{}")}},
		{"dstack-garbage", verifier.Evidence{Dstack: []byte("{\"quote\": 1}")}},
		{"long-nonce", verifier.Evidence{Quote: e.quote, Nonce: make([]byte, 65)}},
	} {
		if _, err := e.v.Verify(t.Context(), tc.ev); !errors.Is(err, verifier.ErrMalformedEvidence) {
			t.Errorf("%s: %v, want ErrMalformedEvidence", tc.name, err)
		}
	}
	if _, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: e.quote[:100]}); !errors.Is(err, quote.ErrMalformed) {
		t.Errorf("truncated: %v does not wrap quote.ErrMalformed", err)
	}
	if _, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: e.quote, PolicyID: "nope"}); !errors.Is(err, verifier.ErrUnknownPolicy) {
		t.Errorf("unknown policy: %v", err)
	}

	down := newEnv(t, nil, nil, fmt.Errorf("fetch: %w", pcs.ErrUnavailable))
	_, err := down.v.Verify(t.Context(), verifier.Evidence{Quote: down.quote})
	if !errors.Is(err, verifier.ErrCollateralUnavailable) || !errors.Is(err, pcs.ErrUnavailable) {
		t.Errorf("outage: %v", err)
	}
}

func TestDstackVector(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "dstack", "quote-report.json")
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1774003274, 0)
	keys, signer := newSigner(t, at)
	// The log has an event after system-ready (LIUM_MINER_HOTKEY): the
	// default policy rejects it, this one does not.
	lenient, err := policy.FromRules(policy.DefaultID, "after-ready", policy.Rules{AllowEventsAfterSystemReadyUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pcsource.NewVerifier(memSource{c: c}, pinned(t, ev.Quote), signer, verifier.WithClock(func() time.Time { return at }),
		verifier.WithPolicyResolver(func(_ context.Context, id string) (*policy.Policy, error) {
			if id == "lenient" {
				return lenient, nil
			}
			return verifier.DefaultPolicyResolver(t.Context(), id)
		}))
	if err != nil {
		t.Fatal(err)
	}
	o, err := v.Verify(t.Context(), verifier.Evidence{Dstack: data})
	if err != nil {
		t.Fatal(err)
	}
	if r := o.Result; !r.Authentic || r.Allow || len(r.Appraisal.Failed) != 1 || r.Appraisal.Failed[0].Rule != policy.RuleEventsAfterSystemReady {
		t.Fatalf("default policy: authentic %v allow %v failed %v", r.Authentic, r.Allow, r.Appraisal.Failed)
	}
	o, err = v.Verify(t.Context(), verifier.Evidence{Dstack: data, PolicyID: "lenient"})
	if err != nil {
		t.Fatal(err)
	}
	r := o.Result
	if !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming || r.Dstack == nil {
		t.Fatalf("authentic %v allow %v status %v failed %v reason %q", r.Authentic, r.Allow, r.Status, r.Appraisal.Failed, r.Reason)
	}
	if id, ok := r.Claims.String("dstack.app_id"); !ok || id == "" {
		t.Errorf("dstack.app_id claim missing: %v", r.Claims.Names())
	}
	verifyToken(t, keys, o, at, "")
}

func BenchmarkVerifyRepeat(b *testing.B) {
	nonce := []byte("benchmark-nonce")
	e := newEnv(b, func(f *dcaptest.Fixture) { copy(f.QuoteSpec.TD.ReportData[:], nonce) }, nil, nil)
	ctx := context.Background()
	ev := verifier.Evidence{Quote: e.quote, Nonce: nonce}
	if o, err := e.v.Verify(ctx, ev); err != nil || !o.Result.Allow {
		b.Fatalf("warm-up: %v %+v", err, o)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.v.Verify(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.v.Verify(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	})
}
