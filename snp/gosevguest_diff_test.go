package snp_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevverify "github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// goSEVVerify runs go-sev-guest's own verification (signature, chain,
// validity at now; no fetching, no CRL) on raw with ask and vcek.
func goSEVVerify(raw []byte, ask, vcek *x509.Certificate, now time.Time, roots map[string][]*trust.AMDRootCerts) error {
	rep, err := sevabi.ReportToProto(raw)
	if err != nil {
		return err
	}
	att := &spb.Attestation{Report: rep, CertificateChain: &spb.CertificateChain{AskCert: ask.Raw, VcekCert: vcek.Raw}}
	return sevverify.SnpAttestation(att, &sevverify.Options{DisableCertFetching: true, Now: now, TrustedRoots: roots})
}

func simRoots(p *snpsim.PKI) map[string][]*trust.AMDRootCerts {
	return map[string][]*trust.AMDRootCerts{p.Product.String(): {{
		ProductLine:  p.Product.String(),
		ProductCerts: &trust.ProductCerts{Ark: p.ARK, Ask: p.ASK, Asvk: p.ASVK},
	}}}
}

// TestDiffGoSEVGuestFixture: go-sev-guest and tdproof agree on the real
// dstack fixture, and on a flipped byte of it.
func TestDiffGoSEVGuestFixture(t *testing.T) {
	raw, certs := fixtureReport(t)
	now := time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)
	if err := goSEVVerify(raw, certs.ASK, certs.VCEK, now, nil); err != nil {
		t.Fatalf("go-sev-guest: %v", err)
	}
	if _, err := verifyRaw(raw, certs, snp.Options{Now: now}); err != nil {
		t.Fatalf("tdproof: %v", err)
	}
	if err := sevverify.SnpReportSignature(raw, certs.VCEK); err != nil {
		t.Fatalf("go-sev-guest signature: %v", err)
	}
	for _, off := range []int{0x04, 0x50, 0x90, 0xC0, 0x180, 0x1A0, 0x2A0} {
		b := append([]byte(nil), raw...)
		b[off] ^= 1
		g := goSEVVerify(b, certs.ASK, certs.VCEK, now, nil)
		_, e := verifyRaw(b, certs, snp.Options{Now: now})
		if g == nil || e == nil {
			t.Errorf("flip 0x%x: go-sev-guest %v, tdproof %v", off, g, e)
		}
	}
	// Both check validity at the verification time (dstack does not).
	late := time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC)
	g := goSEVVerify(raw, certs.ASK, certs.VCEK, late, nil)
	_, e := verifyRaw(raw, certs, snp.Options{Now: late})
	if g == nil || !errors.Is(e, snp.ErrExpired) {
		t.Errorf("after VCEK expiry: go-sev-guest %v, tdproof %v", g, e)
	}
}

// TestDiffGoSEVGuestSim: on snpsim reports both agree on signature and
// chain validity; the documented differences are asserted.
func TestDiffGoSEVGuestSim(t *testing.T) {
	for _, p := range []snp.Product{snp.ProductMilan, snp.ProductGenoa} {
		g := newGuest(t, p)
		roots := simRoots(g.PKI)
		raw := attest(t, g, nil)
		if err := goSEVVerify(raw, g.PKI.ASK, g.Key.Cert, snpsim.Now, roots); err != nil {
			t.Fatalf("%s go-sev-guest: %v", p, err)
		}
		if _, err := verifyRaw(raw, g.Certificates(), simOpts(g)); err != nil {
			t.Fatalf("%s tdproof: %v", p, err)
		}
		for _, f := range signedFields {
			b := append([]byte(nil), raw...)
			b[f.off] ^= 1
			ge := goSEVVerify(b, g.PKI.ASK, g.Key.Cert, snpsim.Now, roots)
			_, te := verifyRaw(b, g.Certificates(), simOpts(g))
			if ge == nil || te == nil {
				t.Errorf("%s %s: go-sev-guest %v, tdproof %v", p, f.name, ge, te)
			}
		}
		// Chain from another PKI: both refuse.
		other, err := snpsim.GeneratePKI(p, g.PKI.NotBefore, g.PKI.NotAfter)
		if err != nil {
			t.Fatal(err)
		}
		ov, err := other.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: snpsim.DefaultTCB, Key: g.Key.Key})
		if err != nil {
			t.Fatal(err)
		}
		ge := goSEVVerify(raw, other.ASK, ov.Cert, snpsim.Now, roots)
		_, te := verifyRaw(raw, snp.Certificates{ASK: other.ASK, VCEK: ov.Cert}, simOpts(g))
		if ge == nil || !errors.Is(te, snp.ErrChain) {
			t.Errorf("%s foreign chain: go-sev-guest %v, tdproof %v", p, ge, te)
		}
		// Expired VCEK: both refuse.
		old, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: snpsim.DefaultTCB, Key: g.Key.Key, NotAfter: snpsim.Now.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ge = goSEVVerify(raw, g.PKI.ASK, old.Cert, snpsim.Now, roots)
		_, te = verifyRaw(raw, snp.Certificates{ASK: g.PKI.ASK, VCEK: old.Cert}, simOpts(g))
		if ge == nil || !errors.Is(te, snp.ErrExpired) {
			t.Errorf("%s expired VCEK: go-sev-guest %v, tdproof %v", p, ge, te)
		}
		// Documented difference 1: go-sev-guest's verify package does not
		// compare the VCEK's TCB extensions with REPORTED_TCB (its
		// separate validate package does); tdproof refuses in Verify.
		lower := snpsim.DefaultTCB
		lower.SNP--
		mis, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: lower, Key: g.Key.Key})
		if err != nil {
			t.Fatal(err)
		}
		ge = goSEVVerify(raw, g.PKI.ASK, mis.Cert, snpsim.Now, roots)
		_, te = verifyRaw(raw, snp.Certificates{ASK: g.PKI.ASK, VCEK: mis.Cert}, simOpts(g))
		if ge != nil || !errors.Is(te, snp.ErrTCBMismatch) {
			t.Errorf("%s TCB extension mismatch: go-sev-guest %v (documented: accepts), tdproof %v", p, ge, te)
		}
		// Documented difference 2: wrong chip (hwID ≠ CHIP_ID), same.
		otherChip := g.Template.ChipID
		otherChip[0] ^= 1
		wc, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: otherChip, TCB: snpsim.DefaultTCB, Key: g.Key.Key})
		if err != nil {
			t.Fatal(err)
		}
		ge = goSEVVerify(raw, g.PKI.ASK, wc.Cert, snpsim.Now, roots)
		_, te = verifyRaw(raw, snp.Certificates{ASK: g.PKI.ASK, VCEK: wc.Cert}, simOpts(g))
		if ge != nil || !errors.Is(te, snp.ErrChipID) {
			t.Errorf("%s wrong chip: go-sev-guest %v (documented: accepts), tdproof %v", p, ge, te)
		}
	}
}

func fixtureReport(t *testing.T) ([]byte, snp.Certificates) { return snp.FixtureReport(t) }
