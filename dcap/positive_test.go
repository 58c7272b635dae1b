package dcap_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/quote"
)

// TestStatusesEndToEnd drives convergence through signed quotes and
// collateral: module, QE and TD relaunch (dcap.md §2.5, §2.10).
func TestStatusesEndToEnd(t *testing.T) {
	shared, _ := pkis(t)
	cases := []struct {
		name  string
		kind  dcaptest.QuoteKind
		setup func(f *dcaptest.Fixture)
		want  collateral.TCBStatus
		// ids is the sorted union of the component advisory lists (the
		// top-level list is Intel's: the platform level's only).
		ids []string
	}{
		{"module OutOfDate", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TEETCBSVN[0] = 2 },
			collateral.OutOfDate, []string{"INTEL-SA-01036"}},
		{"platform ConfigurationNeeded + module OutOfDate", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.ConfigurationNeeded
		}, collateral.OutOfDateConfigurationNeeded, []string{"INTEL-SA-01036"}},
		{"QE OutOfDate", dcaptest.SGXQuoteV3, func(f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 3 },
			collateral.OutOfDate, []string{"INTEL-SA-00837"}},
		{"TD relaunch advised", dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[0] = 2 // launched on an OutOfDate module
			f.QuoteSpec.TD.TEETCBSVN2 = [16]byte{3, 1, 2}
		}, collateral.TDRelaunchAdvised, []string{"INTEL-SA-01036"}},
		{"TD relaunch advised, configuration needed", dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
			f.QuoteSpec.TD.TEETCBSVN2 = [16]byte{3, 1, 2}
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.ConfigurationNeeded
		}, collateral.TDRelaunchAdvisedConfigurationNeeded, []string{"INTEL-SA-01036"}},
		{"TD 1.5 both OutOfDate", dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
			f.QuoteSpec.TD.TEETCBSVN2 = [16]byte{2, 1, 2}
		}, collateral.OutOfDate, []string{"INTEL-SA-01036"}},
		{"TD relaunch not advised when the QE is OutOfDate", dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
			f.QuoteSpec.TD.TEETCBSVN2 = [16]byte{3, 1, 2}
			f.QuoteSpec.QEReport.ISVSVN = 3
		}, collateral.OutOfDate, []string{"INTEL-SA-00837", "INTEL-SA-01036"}},
		{"platform level Revoked is a status", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.Revoked
		}, collateral.Revoked, []string{}},
		{"lower platform level with advisories", dcaptest.SGXQuoteV3, func(f *dcaptest.Fixture) {
			spec := dcaptest.DefaultSGXPlatformSpec()
			for i, c := range spec.Components {
				if c > 0 {
					spec.Components[i] = c - 1
				}
			}
			p, err := f.PKI.NewPlatform(spec)
			if err != nil {
				panic(err)
			}
			// Keep the collateral of the original platform: the new one is
			// one level below it.
			f.Platform = p
		}, collateral.OutOfDate, nil},
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
			if res.Status != c.want {
				t.Errorf("Status = %v, want %v (platform %v, module %+v, QE %v, current %+v)", res.Status, c.want, res.Platform.Status, res.Module, res.QE.Status, res.Current)
			}
			if c.ids != nil && !slices.Equal(componentAdvisories(res), c.ids) {
				t.Errorf("component advisory IDs = %q, want %q", componentAdvisories(res), c.ids)
			}
			if !slices.Equal(res.AdvisoryIDs, res.Platform.AdvisoryIDs) {
				t.Errorf("AdvisoryIDs = %q, want the platform level's %q", res.AdvisoryIDs, res.Platform.AdvisoryIDs)
			}
			if err := (dcap.Policy{}).Appraise(res); err == nil {
				t.Errorf("default policy accepted %v", res.Status)
			}
		})
	}
}

// componentAdvisories returns the sorted union of the platform, QE and
// module advisory IDs of a result.
func componentAdvisories(res *dcap.Result) []string {
	out := slices.Concat(res.Platform.AdvisoryIDs, res.QE.AdvisoryIDs)
	if res.Module != nil {
		out = append(out, res.Module.AdvisoryIDs...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestEncryptedPPIDWithCollateralChain verifies a quote whose
// certification data is an encrypted PPID, with the PCK chain supplied in
// the collateral (as fetched from the PCS pckcert route).
func TestEncryptedPPIDWithCollateralChain(t *testing.T) {
	shared, _ := pkis(t)
	for _, typ := range []quote.CertificationType{quote.CertPPIDRSA2048, quote.CertPPIDRSA3072} {
		t.Run(typ.String(), func(t *testing.T) {
			f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: shared})
			if err != nil {
				t.Fatal(err)
			}
			cd, err := f.Platform.EncryptedPPIDCertification(typ)
			if err != nil {
				t.Fatal(err)
			}
			f.QuoteSpec.Certification = &cd
			f.CollateralSpec.PCKCertChain = f.Platform.Chain
			res, err := verifyFixture(t, f, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != collateral.UpToDate {
				t.Errorf("status %v", res.Status)
			}
		})
	}
}

// TestTCBInfoV2 verifies an SGX quote against a legacy version 2 TCB info.
func TestTCBInfoV2(t *testing.T) {
	shared, _ := pkis(t)
	f, err := dcaptest.NewFixture(dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{PKI: shared})
	if err != nil {
		t.Fatal(err)
	}
	f.CollateralSpec.TCBInfo.Version = 2
	f.CollateralSpec.TCBInfo.ID = ""
	for i := range f.CollateralSpec.TCBInfo.TCBLevels {
		f.CollateralSpec.TCBInfo.TCBLevels[i].TCBDate = time.Time{}
	}
	res, err := verifyFixture(t, f, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != collateral.UpToDate || res.Collateral.TCBInfo.Version != 2 {
		t.Errorf("status %v version %d", res.Status, res.Collateral.TCBInfo.Version)
	}
}

// TestQEIdentityDuplicateLevels: duplicated QE identity levels are
// rejected at parsing.
func TestQEIdentityDuplicateLevels(t *testing.T) {
	shared, _ := pkis(t)
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: shared})
	if err != nil {
		t.Fatal(err)
	}
	q := &f.CollateralSpec.QEIdentity
	q.TCBLevels = append(q.TCBLevels, q.TCBLevels[0])
	if _, err := f.BuildCollateral(); err == nil {
		t.Fatal("duplicate QE identity levels accepted")
	}
}

// TestOutOfDateSince: the date a TCB recovery left a component behind is
// the tcbDate of the level just newer than the matched one.
func TestOutOfDateSince(t *testing.T) {
	shared, _ := pkis(t)
	cases := []struct {
		name   string
		kind   dcaptest.QuoteKind
		setup  func(f *dcaptest.Fixture)
		newest func(f *dcaptest.Fixture) time.Time
	}{
		{"up to date", dcaptest.TDXQuoteV4, func(*dcaptest.Fixture) {}, func(*dcaptest.Fixture) time.Time { return time.Time{} }},
		{"module", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TEETCBSVN[0] = 2 },
			func(f *dcaptest.Fixture) time.Time {
				for _, id := range f.CollateralSpec.TCBInfo.TDXModuleIdentities {
					if id.ID == "TDX_01" {
						return id.TCBLevels[0].TCBDate
					}
				}
				return time.Time{}
			}},
		{"QE", dcaptest.SGXQuoteV3, func(f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 3 },
			func(f *dcaptest.Fixture) time.Time { return f.CollateralSpec.QEIdentity.TCBLevels[0].TCBDate }},
		{"platform", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[1].TCBStatus = collateral.OutOfDate
			f.QuoteSpec.TD.TEETCBSVN[2] = 1 // below the newest level's TDX component 2
		}, func(f *dcaptest.Fixture) time.Time { return f.CollateralSpec.TCBInfo.TCBLevels[0].TCBDate }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := dcaptest.NewFixture(c.kind, dcaptest.FixtureOptions{PKI: shared})
			if err != nil {
				t.Fatal(err)
			}
			c.setup(f)
			res, err := verifyFixture(t, f, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.newest(f); !res.OutOfDateSince.Equal(want) {
				t.Errorf("OutOfDateSince = %v, want %v (status %v)", res.OutOfDateSince, want, res.Status)
			}
		})
	}
}
