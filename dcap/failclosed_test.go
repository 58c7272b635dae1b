package dcap_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/quote"
)

// Regions of a dcaptest quote and its collateral that are covered by a
// signature (directly, or through the QE report binding).
const (
	regionQuoteSigned    = iota // header, v5 descriptor, body
	regionQuoteSignature        // the quote signature itself
	regionAttestationKey        // bound by QE REPORTDATA
	regionQEReport              // signed by the PCK key
	regionQEReportSig           // its signature
	regionQEAuthData            // bound by QE REPORTDATA
	regionPCKLeafTBS            // signed by the PCK CA
	regionPCKCATBS              // signed by the root
	regionTCBInfo               // signed by TCB signing
	regionQEIdentity            // signed by TCB signing
	regionRootCRLTBS            // signed by the root
	regionPCKCRLTBS             // signed by the PCK CA
	regionTCBSigningTBS         // signed by the root (TCB info chain)
	regionCRLChainCATBS         // signed by the root (PCK CRL chain)
	numRegions
)

type failClosedFixture struct {
	f      *dcaptest.Fixture
	raw    []byte
	q      *quote.Quote
	c      *collateral.Collateral
	warm   *dcap.Verifier
	root   *x509.Certificate
	leaf   *x509.Certificate
	inter  *x509.Certificate
	kind   dcaptest.QuoteKind
	signed int
}

func newFailClosedFixture(t testing.TB, kind dcaptest.QuoteKind) *failClosedFixture {
	t.Helper()
	f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qb, err := f.BuildQuote()
	if err != nil || qb.Parsed == nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	fx := &failClosedFixture{f: f, raw: qb.Raw, q: qb.Parsed, c: c, root: f.PKI.Root.Certificate,
		leaf: f.Platform.Chain[0], inter: f.Platform.Chain[1], kind: kind, signed: len(qb.Parsed.Signed())}
	fx.warm = dcap.NewVerifier(dcap.VerifierOptions{TrustedRoot: fx.root})
	if _, err := fx.warm.Verify(fx.q, fx.c, f.Now); err != nil {
		t.Fatalf("fixture does not verify: %v", err)
	}
	return fx
}

// offsetOf returns the offset of sub within whole (sub aliases whole).
func offsetOf(whole, sub []byte) int {
	i := bytes.Index(whole, sub)
	if i < 0 {
		panic("region not found")
	}
	return i
}

func flipIn(region []byte, off uint32, mask byte) []byte {
	out := bytes.Clone(region)
	out[int(off)%len(out)] ^= mask
	return out
}

// flipCertTBS flips a TBS byte of cert and returns the reparsed
// certificate, or nil when it no longer parses.
func flipCertTBS(cert *x509.Certificate, off uint32, mask byte) (*x509.Certificate, []byte) {
	raw := bytes.Clone(cert.Raw)
	start := offsetOf(raw, cert.RawTBSCertificate)
	raw[start+int(off)%len(cert.RawTBSCertificate)] ^= mask
	c, err := x509.ParseCertificate(raw)
	if err != nil {
		return nil, raw
	}
	return c, raw
}

func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }

// mutate returns the quote bytes and collateral after flipping one byte
// of a signed region, or ok=false when the flip already made the input
// unusable (which is itself a failure to verify).
func (fx *failClosedFixture) mutate(region uint8, off uint32, mask byte) (raw []byte, c *collateral.Collateral, ok bool) {
	raw = bytes.Clone(fx.raw)
	cc := *fx.c
	c = &cc
	sd := fx.q.Signature
	inQuote := func(sub []byte) {
		start := offsetOf(fx.raw, sub)
		raw[start+int(off)%len(sub)] ^= mask
	}
	replaceCert := func(old *x509.Certificate, der []byte) {
		o, n := pemOf(old.Raw), pemOf(der)
		raw = bytes.Replace(raw, o, n, 1)
	}
	switch int(region) % numRegions {
	case regionQuoteSigned:
		inQuote(fx.raw[:fx.signed])
	case regionQuoteSignature:
		inQuote(sd.Signature[:])
	case regionAttestationKey:
		inQuote(sd.AttestationKey[:])
	case regionQEReport:
		inQuote(sd.QEReport.Raw)
	case regionQEReportSig:
		inQuote(sd.QEReportSignature[:])
	case regionQEAuthData:
		inQuote(sd.QEAuthData)
	case regionPCKLeafTBS:
		_, der := flipCertTBS(fx.leaf, off, mask)
		replaceCert(fx.leaf, der)
	case regionPCKCATBS:
		_, der := flipCertTBS(fx.inter, off, mask)
		replaceCert(fx.inter, der)
	case regionTCBInfo:
		s, err := collateral.NewSignedTCBInfo(flipIn(fx.c.TCBInfo.Raw, off, mask), fx.c.TCBInfo.Signature[:])
		if err != nil {
			return nil, nil, false
		}
		c.TCBInfo = s
	case regionQEIdentity:
		s, err := collateral.NewSignedQEIdentity(flipIn(fx.c.QEIdentity.Raw, off, mask), fx.c.QEIdentity.Signature[:])
		if err != nil {
			return nil, nil, false
		}
		c.QEIdentity = s
	case regionRootCRLTBS, regionPCKCRLTBS:
		crl := fx.c.RootCACRL
		if int(region)%numRegions == regionPCKCRLTBS {
			crl = fx.c.PCKCRL
		}
		der := bytes.Clone(crl.DER)
		tbs := crl.List.RawTBSRevocationList
		der[offsetOf(der, tbs)+int(off)%len(tbs)] ^= mask
		n, err := collateral.ParseCRL(der)
		if err != nil {
			return nil, nil, false
		}
		if int(region)%numRegions == regionPCKCRLTBS {
			c.PCKCRL = n
		} else {
			c.RootCACRL = n
		}
	case regionTCBSigningTBS, regionCRLChainCATBS:
		chain := fx.c.TCBInfoIssuerChain
		if int(region)%numRegions == regionCRLChainCATBS {
			chain = fx.c.PCKCRLIssuerChain
		}
		n, _ := flipCertTBS(chain.Certs[0], off, mask)
		if n == nil {
			return nil, nil, false
		}
		nc := &collateral.Chain{PEM: chain.PEM, Certs: []*x509.Certificate{n, chain.Certs[1]}}
		if int(region)%numRegions == regionCRLChainCATBS {
			c.PCKCRLIssuerChain = nc
		} else {
			c.TCBInfoIssuerChain = nc
		}
	}
	return raw, c, true
}

// FuzzVerifyFailClosed flips one byte at a fuzzed offset of a signed
// region of a dcaptest quote or its collateral; verification (pure, and
// through a Verifier that has already verified the untouched inputs)
// must fail.
func FuzzVerifyFailClosed(f *testing.F) {
	for r := range numRegions {
		for _, off := range []uint32{0, 1, 7, 100, 383} {
			f.Add(uint8(0), uint8(r), off, byte(0x01))
		}
		f.Add(uint8(1), uint8(r), uint32(13), byte(0x80))
		f.Add(uint8(2), uint8(r), uint32(64), byte(0xFF))
	}
	kinds := []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.SGXQuoteV3, dcaptest.TDXQuoteV5TD15}
	fixtures := make([]*failClosedFixture, len(kinds))
	for i, k := range kinds {
		fixtures[i] = newFailClosedFixture(f, k)
	}
	f.Fuzz(func(t *testing.T, which, region uint8, off uint32, mask byte) {
		if mask == 0 {
			return
		}
		fx := fixtures[int(which)%len(fixtures)]
		raw, c, ok := fx.mutate(region, off, mask)
		if !ok {
			return // the flip made the input unparsable: rejected
		}
		q, err := quote.Parse(raw)
		if err != nil {
			return // rejected at parsing
		}
		opts := dcap.Options{TrustedRoot: fx.root, Now: fx.f.Now}
		if res, err := dcap.Verify(q, c, opts); err == nil || res != nil {
			t.Fatalf("%v region %d offset %d mask %#x: Verify accepted (status %v)", fx.kind, int(region)%numRegions, off, mask, res.Status)
		}
		if res, err := fx.warm.Verify(q, c, fx.f.Now); err == nil || res != nil {
			t.Fatalf("%v region %d offset %d mask %#x: warm Verifier accepted", fx.kind, int(region)%numRegions, off, mask)
		}
	})
}
