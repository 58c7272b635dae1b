package dcaptest_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

func TestCollateralDefaults(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.TDXQuoteV5TD15, dcaptest.SGXQuoteV3} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, kind, dcaptest.FixtureOptions{PKI: pki})
			c, err := f.BuildCollateral()
			if err != nil {
				t.Fatalf("BuildCollateral: %v", err)
			}
			checkCollateralCrypto(t, f, c)

			info, qe := c.TCBInfo.Info, c.QEIdentity.Identity
			wantID, wantQE := "SGX", "QE"
			if kind.IsTDX() {
				wantID, wantQE = "TDX", "TD_QE"
			}
			issue, next := f.Now.Add(-24*time.Hour), f.Now.Add(29*24*time.Hour)
			if info.ID != wantID || info.Version != 3 || info.TCBType != 0 || info.TCBEvaluationDataNumber != 17 ||
				!info.IssueDate.Equal(issue) || !info.NextUpdate.Equal(next) ||
				info.FMSPC != f.Platform.Spec.FMSPC || info.PCEID != f.Platform.Spec.PCEID {
				t.Errorf("TCB info header %+v", info)
			}
			if qe.ID != wantQE || qe.Version != 2 || !qe.IssueDate.Equal(issue) || !qe.NextUpdate.Equal(next) {
				t.Errorf("QE identity header %+v", qe)
			}
			if l := c.RootCACRL.List; !l.ThisUpdate.Equal(issue) || !l.NextUpdate.Equal(next) || len(l.RevokedCertificateEntries) != 0 {
				t.Errorf("root CRL %v–%v", l.ThisUpdate, l.NextUpdate)
			}
			if len(info.TCBLevels) != 2 || info.TCBLevels[1].TCBStatus != collateral.OutOfDate || len(info.TCBLevels[1].AdvisoryIDs) == 0 {
				t.Errorf("TCB levels %+v", info.TCBLevels)
			}
			b, err := f.BuildQuote()
			if err != nil || b.Parsed == nil {
				t.Fatalf("BuildQuote: %v %v", err, b.ParseErr)
			}
			checkUpToDate(t, f, b.Parsed, c)
		})
	}
}

// checkCollateralCrypto verifies every signature, chain and CRL of c
// against f's PKI and checks the QVL JSON round trip.
func checkCollateralCrypto(t *testing.T, f *dcaptest.Fixture, c *collateral.Collateral) {
	t.Helper()
	p := f.PKI
	tcbKey := &p.TCBSigning.Key.PublicKey
	if !verifyRaw(tcbKey, c.TCBInfo.Raw, c.TCBInfo.Signature[:]) {
		t.Errorf("TCB info signature does not verify over the exact bytes")
	}
	if !verifyRaw(tcbKey, c.QEIdentity.Raw, c.QEIdentity.Signature[:]) {
		t.Errorf("QE identity signature does not verify over the exact bytes")
	}
	inter := f.Platform.Intermediate().Certificate
	for _, ch := range []struct {
		name string
		c    *collateral.Chain
		want []*x509.Certificate
	}{
		{"TCB info", c.TCBInfoIssuerChain, p.TCBSigningChain()},
		{"QE identity", c.QEIdentityIssuerChain, p.TCBSigningChain()},
		{"PCK CRL", c.PCKCRLIssuerChain, []*x509.Certificate{inter, p.Root.Certificate}},
	} {
		if len(ch.c.Certs) != 2 || !ch.c.Certs[0].Equal(ch.want[0]) || !ch.c.Certs[1].Equal(ch.want[1]) {
			t.Errorf("%s issuer chain is not %s, root", ch.name, ch.want[0].Subject.CommonName)
			continue
		}
		if err := ch.c.Certs[0].CheckSignatureFrom(ch.c.Certs[1]); err != nil {
			t.Errorf("%s issuer chain: %v", ch.name, err)
		}
		if err := ch.c.Certs[1].CheckSignatureFrom(ch.c.Certs[1]); err != nil {
			t.Errorf("%s issuer chain root: %v", ch.name, err)
		}
	}
	if err := c.RootCACRL.List.CheckSignatureFrom(p.Root.Certificate); err != nil {
		t.Errorf("root CRL: %v", err)
	}
	if err := c.PCKCRL.List.CheckSignatureFrom(inter); err != nil {
		t.Errorf("PCK CRL: %v", err)
	}

	// dcap-qvl JSON round trip keeps the signed bytes.
	j, err := c.MarshalQVLJSON()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := collateral.ParseQVLJSON(j)
	if err != nil {
		t.Fatalf("ParseQVLJSON(MarshalQVLJSON): %v", err)
	}
	if !bytes.Equal(c2.TCBInfo.Raw, c.TCBInfo.Raw) || c2.TCBInfo.Signature != c.TCBInfo.Signature ||
		!bytes.Equal(c2.QEIdentity.Raw, c.QEIdentity.Raw) || c2.QEIdentity.Signature != c.QEIdentity.Signature ||
		!bytes.Equal(c2.RootCACRL.DER, c.RootCACRL.DER) || !bytes.Equal(c2.PCKCRL.DER, c.PCKCRL.DER) ||
		c2.TCBInfoIssuerChain.PEM != c.TCBInfoIssuerChain.PEM || c2.QEIdentityIssuerChain.PEM != c.QEIdentityIssuerChain.PEM ||
		c2.PCKCRLIssuerChain.PEM != c.PCKCRLIssuerChain.PEM || (c2.PCKCertChain == nil) != (c.PCKCertChain == nil) {
		t.Errorf("QVL JSON round trip changed the collateral")
	}
	// The parsed objects re-parse identically from their raw bytes.
	if info, err := collateral.ParseTCBInfo(c.TCBInfo.Raw); err != nil || info.ID != c.TCBInfo.Info.ID {
		t.Errorf("ParseTCBInfo: %v", err)
	}
	if id, err := collateral.ParseQEIdentity(c.QEIdentity.Raw); err != nil || id.ID != c.QEIdentity.Identity.ID {
		t.Errorf("ParseQEIdentity: %v", err)
	}
}

// checkUpToDate checks, field by field, that the default quote matches
// the top level of every part of the default collateral (Intel's
// matching rules, dcap.md §2.4).
func checkUpToDate(t *testing.T, f *dcaptest.Fixture, q *quote.Quote, c *collateral.Collateral) {
	t.Helper()
	info, qe := c.TCBInfo.Info, c.QEIdentity.Identity
	x, err := pckcert.FromCertificate(f.Platform.PCK.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if x.FMSPC != info.FMSPC || x.PCEID != info.PCEID {
		t.Errorf("FMSPC/PCE-ID mismatch")
	}
	r := q.Signature.QEReport
	for i := range r.Attributes {
		if r.Attributes[i]&qe.AttributesMask[i] != qe.Attributes[i] {
			t.Errorf("QE attributes byte %d: %#x & %#x != %#x", i, r.Attributes[i], qe.AttributesMask[i], qe.Attributes[i])
		}
	}
	if r.MRSigner != qe.MRSigner || r.ISVProdID != qe.ISVProdID || r.MiscSelect != 0 ||
		r.ISVSVN < qe.TCBLevels[0].ISVSVN || qe.TCBLevels[0].TCBStatus != collateral.UpToDate {
		t.Errorf("QE report does not match the QE identity's top level")
	}
	top := info.TCBLevels[0]
	if top.TCBStatus != collateral.UpToDate || top.AdvisoryIDs != nil || top.SGXComponents != x.TCB.Components || top.PCESVN != x.TCB.PCESVN {
		t.Errorf("top TCB level %+v is not the platform's TCB", top)
	}
	if !q.IsTDX() {
		return
	}
	svn := q.TD.TEETCBSVN
	if svn[1] == 0 {
		t.Fatal("default TEE_TCB_SVN has no module version")
	}
	for i := 2; i < 16; i++ {
		if svn[i] < top.TDXComponents[i] {
			t.Errorf("TEE_TCB_SVN[%d] = %d < %d", i, svn[i], top.TDXComponents[i])
		}
	}
	if svn[0] >= top.TDXComponents[0] {
		t.Errorf("default TEE_TCB_SVN[0] should be below tdxtcbcomponents[0] (index-2 rule exercised)")
	}
	id := fmt.Sprintf("TDX_%02X", svn[1])
	i := slices.IndexFunc(info.TDXModuleIdentities, func(m collateral.TDXModuleIdentity) bool { return m.ID == id })
	if i < 0 {
		t.Fatalf("no module identity %s", id)
	}
	m := info.TDXModuleIdentities[i]
	if q.TD.MRSignerSEAM != m.MRSigner || q.TD.SEAMAttributes != m.Attributes || m.AttributesMask != [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF} {
		t.Errorf("module identity %s does not match MRSIGNERSEAM/SEAMATTRIBUTES", id)
	}
	if uint16(svn[0]) < m.TCBLevels[0].ISVSVN || m.TCBLevels[0].TCBStatus != collateral.UpToDate {
		t.Errorf("module SVN %d below the top %s level", svn[0], id)
	}
	if len(m.TCBLevels) < 2 || m.TCBLevels[1].TCBStatus != collateral.OutOfDate {
		t.Errorf("%s has no OutOfDate level", id)
	}
}

func TestCollateralMutations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	tcbKey := &f.PKI.TCBSigning.Key.PublicKey
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte {
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%q not in %s", old, b)
			}
			return bytes.Replace(b, []byte(old), []byte(new), 1)
		}
	}

	t.Run("wrong version before sign", func(t *testing.T) {
		s := f.CollateralSpec
		s.MutateTCBInfoJSON = replace(`"version":3`, `"version":4`)
		raw, err := f.PKI.RawCollateral(s)
		if err != nil {
			t.Fatal(err)
		}
		if !verifyRaw(tcbKey, raw.TCBInfo, raw.TCBInfoSignature) {
			t.Errorf("signature does not cover the mutated bytes")
		}
		if _, err := raw.Collateral(); !errors.Is(err, collateral.ErrMalformed) {
			t.Errorf("Collateral() = %v, want ErrMalformed", err)
		}
		j, err := raw.QVLJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := collateral.ParseQVLJSON(j); !errors.Is(err, collateral.ErrMalformed) {
			t.Errorf("ParseQVLJSON = %v, want ErrMalformed", err)
		}
		if _, err := f.PKI.Collateral(s); err == nil {
			t.Errorf("PKI.Collateral accepted an unparsable TCB info")
		}
	})
	t.Run("duplicate levels", func(t *testing.T) {
		s := f.CollateralSpec
		s.TCBInfo.TCBLevels = append(slices.Clone(s.TCBInfo.TCBLevels), s.TCBInfo.TCBLevels[0])
		raw, err := f.PKI.RawCollateral(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Collateral(); !errors.Is(err, collateral.ErrMalformed) {
			t.Errorf("Collateral() = %v, want ErrMalformed (duplicate level)", err)
		}
	})
	t.Run("FMSPC after sign", func(t *testing.T) {
		s := f.CollateralSpec
		s.MutateTCBInfoAfterSign = replace(`"fmspc":"90C06F000000"`, `"fmspc":"90C06F000001"`)
		c, err := f.PKI.Collateral(s)
		if err != nil {
			t.Fatal(err)
		}
		if c.TCBInfo.Info.FMSPC[5] != 1 || verifyRaw(tcbKey, c.TCBInfo.Raw, c.TCBInfo.Signature[:]) {
			t.Errorf("after-sign mutation: FMSPC %X, signature still valid", c.TCBInfo.Info.FMSPC)
		}
		if !verifyRaw(tcbKey, c.QEIdentity.Raw, c.QEIdentity.Signature[:]) {
			t.Errorf("QE identity signature broken too")
		}
	})
	t.Run("QE identity id after sign", func(t *testing.T) {
		s := f.CollateralSpec
		s.MutateQEIdentityAfterSign = replace(`"id":"TD_QE"`, `"id":"QE"`)
		c, err := f.PKI.Collateral(s)
		if err != nil {
			t.Fatal(err)
		}
		if c.QEIdentity.Identity.ID != "QE" || verifyRaw(tcbKey, c.QEIdentity.Raw, c.QEIdentity.Signature[:]) {
			t.Errorf("after-sign mutation not applied")
		}
	})
	t.Run("signing key and chain overrides", func(t *testing.T) {
		other := newPKI(t)
		s := f.CollateralSpec
		s.TCBInfoKey = other.TCBSigning.Key
		s.QEIdentityIssuerChain = other.TCBSigningChain()
		s.PCKCRLIssuerChain = []*x509.Certificate{f.PKI.ProcessorCA.Certificate, f.PKI.Root.Certificate}
		c, err := f.PKI.Collateral(s)
		if err != nil {
			t.Fatal(err)
		}
		if verifyRaw(tcbKey, c.TCBInfo.Raw, c.TCBInfo.Signature[:]) || !verifyRaw(&other.TCBSigning.Key.PublicKey, c.TCBInfo.Raw, c.TCBInfo.Signature[:]) {
			t.Errorf("TCB info not signed by the override key")
		}
		if !c.QEIdentityIssuerChain.Certs[1].Equal(other.Root.Certificate) || !c.TCBInfoIssuerChain.Certs[1].Equal(f.PKI.Root.Certificate) {
			t.Errorf("issuer chain override not applied")
		}
		if pckcert.CATypeOf(c.PCKCRLIssuerChain.Certs[0], true) != pckcert.CAProcessor {
			t.Errorf("PCK CRL chain override not applied")
		}
	})
	t.Run("CA, revocation and PCK chain", func(t *testing.T) {
		s := f.CollateralSpec
		s.CA = pckcert.CAProcessor
		s.PCKCRL.Revoked = []*big.Int{f.Platform.PCK.Certificate.SerialNumber}
		s.RootCRL.Revoked = []*big.Int{f.PKI.TCBSigning.Certificate.SerialNumber}
		s.PCKCRL.Number = big.NewInt(99)
		s.PCKCertChain = f.Platform.Chain
		c, err := f.PKI.Collateral(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PCKCRL.List.CheckSignatureFrom(f.PKI.ProcessorCA.Certificate); err != nil || c.PCKCRL.List.Number.Int64() != 99 {
			t.Errorf("PCK CRL not from the Processor CA: %v", err)
		}
		if len(c.PCKCRL.List.RevokedCertificateEntries) != 1 || len(c.RootCACRL.List.RevokedCertificateEntries) != 1 {
			t.Errorf("revocations missing")
		}
		if c.PCKCertChain == nil || len(c.PCKCertChain.Certs) != 3 || !c.PCKCertChain.Certs[0].Equal(f.Platform.PCK.Certificate) {
			t.Fatalf("PCK cert chain missing")
		}
		j, err := c.MarshalQVLJSON()
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := collateral.ParseQVLJSON(j); err != nil || c2.PCKCertChain == nil {
			t.Errorf("PCK cert chain lost in QVL JSON: %v", err)
		}
	})
	t.Run("unknown status", func(t *testing.T) {
		s := f.CollateralSpec
		s.QEIdentity.TCBLevels = []collateral.ISVSVNLevel{{ISVSVN: 1}}
		if _, err := f.PKI.RawCollateral(s); err == nil {
			t.Errorf("StatusUnknown encoded")
		}
	})
	t.Run("PCS responses", func(t *testing.T) {
		raw, err := f.BuildRawCollateral()
		if err != nil {
			t.Fatal(err)
		}
		ti, err := collateral.ParseTCBInfoResponse(raw.TCBInfoResponse())
		if err != nil || !bytes.Equal(ti.Raw, raw.TCBInfo) || !bytes.Equal(ti.Signature[:], raw.TCBInfoSignature) {
			t.Errorf("TCB info response: %v", err)
		}
		qi, err := collateral.ParseQEIdentityResponse(raw.QEIdentityResponse())
		if err != nil || !bytes.Equal(qi.Raw, raw.QEIdentity) {
			t.Errorf("QE identity response: %v", err)
		}
		j, err := raw.QVLJSON()
		if err != nil {
			t.Fatal(err)
		}
		c, err := collateral.ParseQVLJSON(j)
		if err != nil || !bytes.Equal(c.TCBInfo.Raw, raw.TCBInfo) {
			t.Errorf("RawCollateral.QVLJSON: %v", err)
		}
	})
}

func TestCollateralTCBInfoV2(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{})
	s := f.CollateralSpec
	s.TCBInfo.ID = ""
	s.TCBInfo.Version = 2
	raw, err := f.PKI.RawCollateral(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw.TCBInfo, []byte(`{"version":2,`)) || !bytes.Contains(raw.TCBInfo, []byte(`"sgxtcbcomp16svn":0,"pcesvn":13}`)) {
		t.Errorf("v2 layout: %s", raw.TCBInfo)
	}
	c, err := raw.Collateral()
	if err != nil {
		t.Fatal(err)
	}
	if c.TCBInfo.Info.ID != "SGX" || c.TCBInfo.Info.Version != 2 || c.TCBInfo.Info.TCBLevels[0].SGXComponents != f.Platform.Spec.Components {
		t.Errorf("v2 TCB info parsed as %+v", c.TCBInfo.Info)
	}
}

func TestFixtureOptions(t *testing.T) {
	t.Parallel()
	at := time.Date(2027, 6, 1, 12, 30, 15, 999, time.UTC)
	spec := dcaptest.DefaultTDXPlatformSpec()
	spec.FMSPC = [6]byte{0x50, 0x80, 0x6F}
	spec.CA = pckcert.CAProcessor
	f := newFixture(t, dcaptest.TDXQuoteV5TD10, dcaptest.FixtureOptions{Now: at, Platform: &spec})
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	if !f.Now.Equal(at) || !c.TCBInfo.Info.IssueDate.Equal(at.Truncate(time.Second).Add(-24*time.Hour)) {
		t.Errorf("issue date %v for now %v", c.TCBInfo.Info.IssueDate, at)
	}
	if c.TCBInfo.Info.FMSPC != spec.FMSPC || pckcert.CATypeOf(c.PCKCRLIssuerChain.Certs[0], true) != pckcert.CAProcessor {
		t.Errorf("platform spec not used")
	}
	checkCollateralCrypto(t, f, c)
}
