package dcap_test

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
)

// Behaviours confirmed by running Intel's QVL and QvE logic as an oracle
// on test-PKI quotes; docs/verifier.md lists them with these tests.

// TestQEIdentityLevelStatus: an enclave identity level whose status is
// not UpToDate, OutOfDate or Revoked makes Intel's QVL fail
// (QEIDENTITY_UNSUPPORTED_FORMAT), whichever level the QE's ISVSVN
// matches. tdproof rejects it when parsing (collateral.ErrMalformed) and,
// for a hand-built identity, when verifying (ErrCollateral).
func TestQEIdentityLevelStatus(t *testing.T) {
	shared, _ := pkis(t)
	// The default QE identity has levels isvsvn 4 (matched by the default
	// QE, index 0) and 2 (index 1).
	for _, st := range collateral.AllStatuses() {
		for _, level := range []int{0, 1} {
			name := st.String() + map[int]string{0: " matched", 1: " not matched"}[level]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: shared})
				if err != nil {
					t.Fatal(err)
				}
				qb, err := f.BuildQuote()
				if err != nil {
					t.Fatal(err)
				}
				opts := dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now}
				// Parse-time: the signed identity as Intel would receive it.
				f.CollateralSpec.QEIdentity.TCBLevels[level].TCBStatus = st
				c, err := f.BuildCollateral()
				if !collateral.IdentityLevelStatus(st) {
					if !errors.Is(err, collateral.ErrMalformed) {
						t.Fatalf("parse: err = %v, want collateral.ErrMalformed", err)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					res, err := dcap.Verify(qb.Parsed, c, opts)
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					want := collateral.UpToDate
					if level == 0 {
						want = st // the matched QE level converges into the UpToDate platform
					}
					if res.Status != want {
						t.Errorf("status %v (QE %v), want %v", res.Status, res.QE.Status, want)
					}
				}
				// Verify-time: the same status in an identity built by hand
				// (bypassing the parser) is rejected too.
				f.CollateralSpec = dcaptest.DefaultTDXCollateralSpec(f.Platform, f.Now)
				if c, err = f.BuildCollateral(); err != nil {
					t.Fatal(err)
				}
				id := *c.QEIdentity.Identity
				id.TCBLevels = append([]collateral.ISVSVNLevel(nil), id.TCBLevels...)
				id.TCBLevels[level].TCBStatus = st
				c.QEIdentity = &collateral.SignedQEIdentity{Raw: c.QEIdentity.Raw, Signature: c.QEIdentity.Signature, Identity: &id}
				res, err := dcap.Verify(qb.Parsed, c, opts)
				if collateral.IdentityLevelStatus(st) {
					if err != nil {
						t.Errorf("hand-built %v level: %v", st, err)
					}
				} else if !errors.Is(err, dcap.ErrCollateral) || res != nil {
					t.Errorf("hand-built %v level: (%v, %v), want ErrCollateral", st, res, err)
				}
			})
		}
	}
}

// TestCertificateNamesContain: Intel's QVL requires the root CN to
// contain "SGX Root CA", the PCK CA's "SGX PCK Platform CA" or "SGX PCK
// Processor CA", the PCK leaf's "SGX PCK Certificate" and the TCB signing
// certificate's "SGX TCB Signing" — containment, so a private PKI with
// its own names verifies under its own trusted root. Every other chain
// check still applies (TestNegativeCases: names that do not contain them,
// signatures, CRLs).
func TestCertificateNamesContain(t *testing.T) {
	pki := newPKI(t, dcaptest.PKIOptions{
		Root:        dcaptest.CertOptions{CommonName: "Acme SGX Root CA (test)"},
		PlatformCA:  dcaptest.CertOptions{CommonName: "Acme SGX PCK Platform CA"},
		ProcessorCA: dcaptest.CertOptions{CommonName: "Acme SGX PCK Processor CA 2"},
		TCBSigning:  dcaptest.CertOptions{CommonName: "Acme SGX TCB Signing"},
	})
	for _, c := range []struct {
		kind dcaptest.QuoteKind
		ca   string
	}{{dcaptest.TDXQuoteV4, "platform"}, {dcaptest.TDXQuoteV5TD15, "platform"}, {dcaptest.SGXQuoteV3, "processor"}} {
		t.Run(c.kind.String(), func(t *testing.T) {
			var spec dcaptest.PlatformSpec
			if c.kind.IsTDX() {
				spec = dcaptest.DefaultTDXPlatformSpec()
			} else {
				spec = dcaptest.DefaultSGXPlatformSpec()
			}
			spec.CommonName = "Acme SGX PCK Certificate"
			f, err := dcaptest.NewFixture(c.kind, dcaptest.FixtureOptions{PKI: pki, Platform: &spec})
			if err != nil {
				t.Fatal(err)
			}
			res, err := verifyFixture(t, f, true, nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Status != collateral.UpToDate || res.CAType != c.ca || res.IntelRoot {
				t.Errorf("status %v, CA %q, Intel root %v; want UpToDate, %q, false", res.Status, res.CAType, res.IntelRoot, c.ca)
			}
			qb, err := f.BuildQuote()
			if err != nil {
				t.Fatal(err)
			}
			if err := dcap.VerifySignatures(qb.Parsed, dcap.Options{TrustedRoot: pki.Root.Certificate}); err != nil {
				t.Errorf("VerifySignatures: %v", err)
			}
			// Still pinned: the same names under another root fail.
			if _, err := verifyFixture(t, f, false, func(*dcaptest.Fixture) *x509.Certificate { return dcap.IntelRoot() }); !errors.Is(err, dcap.ErrChain) {
				t.Errorf("Intel root trusted: err = %v, want ErrChain", err)
			}
		})
	}
}

// TestScalablePlatformProcessorCA: Intel's QVL treats the PCK certificate
// of a platform whose SGX type is Scalable or ScalableWithIntegrity as a
// Platform CA certificate and fails it (PCK_CERT_UNSUPPORTED_FORMAT) when
// the Processor CA issued it (such a certificate has no platform instance
// ID and configuration). Every other SGX type / CA pair verifies.
func TestScalablePlatformProcessorCA(t *testing.T) {
	shared, _ := pkis(t)
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.SGXQuoteV3} {
		for _, ca := range []pckcert.CAType{pckcert.CAPlatform, pckcert.CAProcessor} {
			for _, typ := range []pckcert.SGXType{pckcert.SGXTypeStandard, pckcert.SGXTypeScalable, pckcert.SGXTypeScalableWithIntegrity} {
				reject := ca == pckcert.CAProcessor && typ != pckcert.SGXTypeStandard
				t.Run(fmt.Sprintf("%v/%v/%v", kind, ca, typ), func(t *testing.T) {
					t.Parallel()
					spec := dcaptest.DefaultSGXPlatformSpec()
					if kind.IsTDX() {
						spec = dcaptest.DefaultTDXPlatformSpec()
					}
					spec.CA, spec.SGXType = ca, typ
					f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{PKI: shared, Platform: &spec})
					if err != nil {
						t.Fatal(err)
					}
					res, err := verifyFixture(t, f, true, nil)
					qb, qerr := f.BuildQuote()
					if qerr != nil {
						t.Fatal(qerr)
					}
					sigErr := dcap.VerifySignatures(qb.Parsed, dcap.Options{TrustedRoot: f.PKI.Root.Certificate})
					if reject {
						if !errors.Is(err, dcap.ErrPCKCertUnsupported) || !errors.Is(err, dcap.ErrChain) || res != nil {
							t.Errorf("Verify = (%v, %v), want ErrPCKCertUnsupported", res, err)
						}
						if !errors.Is(sigErr, dcap.ErrPCKCertUnsupported) {
							t.Errorf("VerifySignatures = %v, want ErrPCKCertUnsupported", sigErr)
						}
						return
					}
					if err != nil || sigErr != nil {
						t.Fatalf("Verify: %v; VerifySignatures: %v", err, sigErr)
					}
					if res.Status != collateral.UpToDate || res.CAType != ca.String() || res.SGXType != typ.String() {
						t.Errorf("status %v, CA %q, SGX type %q", res.Status, res.CAType, res.SGXType)
					}
				})
			}
		}
	}
}

// TestCollateralNotYetValidIsAFlag: collateral issued after the
// verification time is flagged like expired collateral, not an error
// (Strict: ErrNotYetValid). Intel sets collateral_expiration_status for a
// CRL whose thisUpdate is in the future; it ignores the TCB info and QE
// identity issueDate, which tdproof flags the same way (stricter). The
// "QE identity" case is the one found: issued 2026-02-18, verified at
// 2025-07-19.
func TestCollateralNotYetValidIsAFlag(t *testing.T) {
	shared, _ := pkis(t)
	at := time.Date(2025, 7, 19, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		setup func(f *dcaptest.Fixture)
		want  []string // CollateralNotYetValid; nil: nothing flagged
		crl   bool
		// strictOnly: not flagged (Intel does not check it), but Strict
		// still fails with ErrNotYetValid.
		strictOnly bool
	}{
		{name: "root CA CRL", setup: func(f *dcaptest.Fixture) { f.CollateralSpec.RootCRL.ThisUpdate = f.Now.Add(time.Hour) }, want: []string{"root CA CRL"}, crl: true},
		{name: "PCK CRL", setup: func(f *dcaptest.Fixture) { f.CollateralSpec.PCKCRL.ThisUpdate = f.Now.Add(time.Second) }, want: []string{"PCK CRL"}, crl: true},
		{name: "TCB info", setup: func(f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.IssueDate = f.Now.Add(time.Second) }, want: []string{"TCB info"}},
		{name: "QE identity", setup: func(f *dcaptest.Fixture) {
			q := &f.CollateralSpec.QEIdentity
			q.IssueDate = time.Date(2026, 2, 18, 0, 0, 0, 0, time.UTC)
			q.NextUpdate = q.IssueDate.Add(30 * 24 * time.Hour)
		}, want: []string{"QE identity"}},
		{name: "TCB info and PCK CRL", setup: func(f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.IssueDate = f.Now.Add(time.Minute)
			f.CollateralSpec.PCKCRL.ThisUpdate = f.Now.Add(time.Minute)
		}, want: []string{"PCK CRL", "TCB info"}, crl: true},
		// Certificates' notBefore: Intel does not check it; neither does
		// tdproof unless Strict.
		{name: "PCK leaf notBefore", setup: func(f *dcaptest.Fixture) {
			spec := f.Platform.Spec
			spec.NotBefore = f.Now.Add(time.Hour)
			replacePlatformFixture(f, spec)
		}, strictOnly: true},
		// Issued exactly at the verification time: valid.
		{name: "QE identity issued at the verification time", setup: func(f *dcaptest.Fixture) { f.CollateralSpec.QEIdentity.IssueDate = f.Now }},
		{name: "root CA CRL issued at the verification time", setup: func(f *dcaptest.Fixture) { f.CollateralSpec.RootCRL.ThisUpdate = f.Now }},
	}
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.SGXQuoteV3} {
		for _, c := range cases {
			t.Run(kind.String()+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{PKI: shared, Now: at})
				if err != nil {
					t.Fatal(err)
				}
				c.setup(f)
				res, err := verifyFixture(t, f, false, nil)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				flagged := c.want != nil
				if !slices.Equal(res.CollateralNotYetValid, c.want) || res.CRLNotYetValid != c.crl || res.CollateralExpired != flagged {
					t.Errorf("not yet valid %q, CRL %v, expired %v; want %q, %v, %v",
						res.CollateralNotYetValid, res.CRLNotYetValid, res.CollateralExpired, c.want, c.crl, flagged)
				}
				if !res.EarliestExpiration.After(f.Now) || res.Status != collateral.UpToDate {
					t.Errorf("earliest expiration %v, status %v: the case must not expire anything", res.EarliestExpiration, res.Status)
				}
				perr := dcap.Policy{RejectExpiredCollateral: true}.Appraise(res)
				if pe, ok := errors.AsType[*dcap.PolicyError](perr); flagged && (!ok || pe.Violations[0].Rule != "collateral_expired" ||
					!strings.Contains(pe.Violations[0].Got, c.want[len(c.want)-1])) {
					t.Errorf("Appraise = %v, want a collateral_expired violation naming %q", perr, c.want)
				} else if !flagged && perr != nil {
					t.Errorf("Appraise = %v", perr)
				}
				_, err = verifyFixture(t, f, true, nil)
				if wantStrict := flagged || c.strictOnly; wantStrict != errors.Is(err, dcap.ErrNotYetValid) || (!wantStrict && err != nil) {
					t.Errorf("strict: err = %v, want ErrNotYetValid %v", err, wantStrict)
				}
			})
		}
	}
}

// TestScalablePlatformFields: the Platform CA format Intel reads a
// Scalable platform's certificate in needs the platform instance ID and
// the configuration; without either Intel fails it
// (PCK_CERT_UNSUPPORTED_FORMAT). A Standard platform's certificate needs
// neither. A Processor CA certificate claiming a Scalable platform is
// rejected even when it carries both (stricter than Intel, which reads
// only the extension; Intel's Processor CA issues no such certificate).
func TestScalablePlatformFields(t *testing.T) {
	shared, _ := pkis(t)
	id := [16]byte{1, 2, 3}
	yes := true
	conf := &pckcert.Configuration{DynamicPlatform: &yes, CachedKeys: &yes, SMTEnabled: &yes}
	cases := []struct {
		name    string
		ca      pckcert.CAType
		typ     pckcert.SGXType
		omit    bool // leave both fields out
		id      *[16]byte
		conf    *pckcert.Configuration
		wantErr error
	}{
		{name: "Scalable, Platform CA, both fields", ca: pckcert.CAPlatform, typ: pckcert.SGXTypeScalable},
		{name: "Scalable, Platform CA, no fields", ca: pckcert.CAPlatform, typ: pckcert.SGXTypeScalable, omit: true, wantErr: dcap.ErrPCKCertUnsupported},
		{name: "ScalableWithIntegrity, Platform CA, no fields", ca: pckcert.CAPlatform, typ: pckcert.SGXTypeScalableWithIntegrity, omit: true, wantErr: dcap.ErrPCKCertUnsupported},
		{name: "Standard, Platform CA, no fields", ca: pckcert.CAPlatform, typ: pckcert.SGXTypeStandard, omit: true},
		{name: "Scalable, Processor CA, both fields", ca: pckcert.CAProcessor, typ: pckcert.SGXTypeScalable, id: &id, conf: conf, wantErr: dcap.ErrPCKCertUnsupported},
		{name: "Standard, Processor CA, both fields", ca: pckcert.CAProcessor, typ: pckcert.SGXTypeStandard, id: &id, conf: conf},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.CA, spec.SGXType, spec.OmitPlatformFields = c.ca, c.typ, c.omit
			spec.PlatformInstanceID, spec.Configuration = c.id, c.conf
			f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: shared, Platform: &spec})
			if err != nil {
				t.Fatal(err)
			}
			x, err := pckcert.FromCertificate(f.Platform.PCK.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if c.omit != (x.PlatformInstanceID == nil && x.Configuration == nil) {
				t.Fatalf("fixture: platform instance ID %v, configuration %v", x.PlatformInstanceID, x.Configuration)
			}
			res, err := verifyFixture(t, f, true, nil)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || res != nil {
					t.Errorf("Verify = (%v, %v), want %v", res, err, c.wantErr)
				}
				return
			}
			if err != nil || res.Status != collateral.UpToDate {
				t.Errorf("Verify = (%v, %v), want UpToDate", res, err)
			}
		})
	}
}

// TestAdvisoryIDsPlatformOnly: Intel's QvE sa_list is the advisory IDs of
// the matched platform TCB level only, in the TCB info's order; never the
// module's or the QE's, even when they made the status OutOfDate (QE
// OutOfDate → OutOfDate with an empty list). Result.AdvisoryIDs is that
// list; the component lists keep the others.
func TestAdvisoryIDsPlatformOnly(t *testing.T) {
	shared, _ := pkis(t)
	platformIDs := []string{"INTEL-SA-00615", "INTEL-SA-00289"} // not sorted: Intel keeps the order
	var manyAdvisories []string
	for i := range 25 {
		manyAdvisories = append(manyAdvisories, fmt.Sprintf("INTEL-SA-%05d", 1000+i))
	}
	cases := []struct {
		name             string
		kind             dcaptest.QuoteKind
		setup            func(f *dcaptest.Fixture)
		status           collateral.TCBStatus
		want, qe, module []string
	}{
		{name: "QE OutOfDate", kind: dcaptest.SGXQuoteV3, setup: func(f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 3 },
			status: collateral.OutOfDate, want: []string{}, qe: []string{"INTEL-SA-00837"}},
		{name: "module OutOfDate", kind: dcaptest.TDXQuoteV4, setup: func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TEETCBSVN[0] = 2 },
			status: collateral.OutOfDate, want: []string{}, qe: []string{}, module: []string{"INTEL-SA-01036"}},
		{name: "platform, module and QE", kind: dcaptest.TDXQuoteV5TD15, setup: func(f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.SWHardeningNeeded
			f.CollateralSpec.TCBInfo.TCBLevels[0].AdvisoryIDs = platformIDs
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
			f.QuoteSpec.TD.TEETCBSVN2[0] = 2
			f.QuoteSpec.QEReport.ISVSVN = 3
		}, status: collateral.OutOfDate, want: platformIDs, qe: []string{"INTEL-SA-00837"}, module: []string{"INTEL-SA-01036"}},
		{name: "TD relaunch advised", kind: dcaptest.TDXQuoteV5TD15, setup: func(f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[0].AdvisoryIDs = platformIDs
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
		}, status: collateral.TDRelaunchAdvised, want: platformIDs, qe: []string{}, module: []string{"INTEL-SA-01036"}},
		// Intel's QvE fails with an unexpected error beyond 20 IDs on a
		// level (a limit of its output buffer); tdproof reports them all.
		{name: "25 platform advisories", kind: dcaptest.TDXQuoteV4, setup: func(f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.SWHardeningNeeded
			f.CollateralSpec.TCBInfo.TCBLevels[0].AdvisoryIDs = manyAdvisories
		}, status: collateral.SWHardeningNeeded, want: manyAdvisories, qe: []string{}, module: []string{}},
		{name: "lower platform level", kind: dcaptest.SGXQuoteV3, setup: func(f *dcaptest.Fixture) {
			f.QuoteSpec.QEReport.ISVSVN = 3
			f.CollateralSpec.TCBInfo.TCBLevels[0].SGXComponents[0]++ // the platform now matches the OutOfDate level
		}, status: collateral.OutOfDate, want: []string{"INTEL-SA-00837", "INTEL-SA-01036"}, qe: []string{"INTEL-SA-00837"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := dcaptest.NewFixture(c.kind, dcaptest.FixtureOptions{PKI: shared})
			if err != nil {
				t.Fatal(err)
			}
			c.setup(f)
			res, err := verifyFixture(t, f, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.status {
				t.Errorf("status %v, want %v", res.Status, c.status)
			}
			if res.AdvisoryIDs == nil || !slices.Equal(res.AdvisoryIDs, c.want) || !slices.Equal(res.AdvisoryIDs, res.Platform.AdvisoryIDs) {
				t.Errorf("AdvisoryIDs %q (platform %q), want %q", res.AdvisoryIDs, res.Platform.AdvisoryIDs, c.want)
			}
			if !slices.Equal(res.QE.AdvisoryIDs, c.qe) {
				t.Errorf("QE advisory IDs %q, want %q", res.QE.AdvisoryIDs, c.qe)
			}
			if (res.Module == nil) != (c.module == nil) || res.Module != nil && !slices.Equal(res.Module.AdvisoryIDs, c.module) {
				t.Errorf("module %+v, want advisory IDs %q", res.Module, c.module)
			}
			js, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.want) == 0 && !strings.Contains(string(js), `"advisory_ids":[]`) {
				t.Errorf("JSON has no empty advisory_ids list: %s", js)
			}
		})
	}
}

// replacePlatformFixture swaps the fixture's platform for one built from
// spec on the same PKI (replacePlatform for callers without a
// testing.T at hand panics on error: a broken fixture).
func replacePlatformFixture(f *dcaptest.Fixture, spec dcaptest.PlatformSpec) {
	p, err := f.PKI.NewPlatform(spec)
	if err != nil {
		panic(err)
	}
	f.Platform = p
}
