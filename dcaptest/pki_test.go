package dcaptest_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
)

func TestPKIStructure(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cases := []struct {
		name     string
		c        *dcaptest.Cert
		issuer   *dcaptest.Cert
		cn       string
		isCA     bool
		pathLen  int
		keyUsage x509.KeyUsage
	}{
		{"root", p.Root, p.Root, "Intel SGX Root CA", true, 1, x509.KeyUsageCertSign | x509.KeyUsageCRLSign},
		{"platform CA", p.PlatformCA, p.Root, "Intel SGX PCK Platform CA", true, 0, x509.KeyUsageCertSign | x509.KeyUsageCRLSign},
		{"processor CA", p.ProcessorCA, p.Root, "Intel SGX PCK Processor CA", true, 0, x509.KeyUsageCertSign | x509.KeyUsageCRLSign},
		{"TCB signing", p.TCBSigning, p.Root, "Intel SGX TCB Signing", false, -1, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment},
	}
	for _, tc := range cases {
		c := tc.c.Certificate
		if got, want := c.Subject.String(), "CN="+tc.cn+",O=Intel Corporation,L=Santa Clara,ST=CA,C=US"; got != want {
			t.Errorf("%s: subject %q, want %q", tc.name, got, want)
		}
		if !bytes.Equal(c.RawIssuer, tc.issuer.Certificate.RawSubject) {
			t.Errorf("%s: issuer is not %s", tc.name, tc.issuer.Certificate.Subject.CommonName)
		}
		if err := c.CheckSignatureFrom(tc.issuer.Certificate); err != nil {
			t.Errorf("%s: CheckSignatureFrom: %v", tc.name, err)
		}
		if c.IsCA != tc.isCA || !c.BasicConstraintsValid || c.KeyUsage != tc.keyUsage {
			t.Errorf("%s: IsCA %v key usage %v", tc.name, c.IsCA, c.KeyUsage)
		}
		if tc.isCA && (c.MaxPathLen != tc.pathLen || (tc.pathLen == 0) != c.MaxPathLenZero) {
			t.Errorf("%s: MaxPathLen %d zero=%v, want %d", tc.name, c.MaxPathLen, c.MaxPathLenZero, tc.pathLen)
		}
		if !c.NotBefore.Equal(dcaptest.DefaultNotBefore) || !c.NotAfter.Equal(dcaptest.DefaultNotAfter) {
			t.Errorf("%s: validity %v – %v", tc.name, c.NotBefore, c.NotAfter)
		}
		if c.SignatureAlgorithm != x509.ECDSAWithSHA256 || !tc.c.Key.PublicKey.Equal(c.PublicKey) || !bytes.Equal(c.Raw, tc.c.DER) {
			t.Errorf("%s: key, algorithm or DER mismatch", tc.name)
		}
		if !bytes.Equal(c.SubjectKeyId, c.SerialNumber.Bytes()) {
			t.Errorf("%s: SKI is not the serial, as in Intel's certificates", tc.name)
		}
		if len(c.CRLDistributionPoints) != 1 || c.CRLDistributionPoints[0] != dcaptest.RootCRLURL {
			t.Errorf("%s: CRL DP %v", tc.name, c.CRLDistributionPoints)
		}
	}
	if pckcert.CATypeOf(p.PlatformCA.Certificate, true) != pckcert.CAPlatform || pckcert.CATypeOf(p.ProcessorCA.Certificate, true) != pckcert.CAProcessor {
		t.Errorf("CATypeOf does not recognise the intermediates")
	}

	// The chain verifies with crypto/x509 under the PKI's own root only.
	plat, err := p.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(root *x509.Certificate) error {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(root)
		inter.AddCert(p.PlatformCA.Certificate)
		_, err := plat.PCK.Certificate.Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, CurrentTime: dcaptest.ReferenceTime,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		return err
	}
	if err := verify(p.Root.Certificate); err != nil {
		t.Errorf("x509 Verify: %v", err)
	}
	other := newPKI(t)
	if err := verify(other.Root.Certificate); err == nil {
		t.Errorf("chain verifies under an unrelated PKI's root")
	}
	if bytes.Equal(other.Root.DER, p.Root.DER) || other.Root.Key.Equal(p.Root.Key) {
		t.Errorf("two PKIs share a root")
	}
	if err := other.PlatformCA.Certificate.CheckSignatureFrom(p.Root.Certificate); err == nil {
		t.Errorf("other PKI's intermediate verifies under this root")
	}
	if got := dcaptest.ChainPEM(p.Root.Certificate); !bytes.Equal(got, p.RootPEM()) {
		t.Errorf("RootPEM differs from ChainPEM(root)")
	}
}

func TestPKIOptions(t *testing.T) {
	t.Parallel()
	nb, na := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := time.Date(2025, 5, 21, 0, 0, 0, 0, time.UTC)
	base := newPKI(t)
	p, err := dcaptest.NewPKI(dcaptest.PKIOptions{
		NotBefore: nb, NotAfter: na,
		TCBSigning: dcaptest.CertOptions{NotAfter: expired, Key: base.TCBSigning.Key, Serial: big.NewInt(42)},
		ProcessorCA: dcaptest.CertOptions{
			CommonName: "Not Intel",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Root.Certificate.NotBefore.Equal(nb) || !p.Root.Certificate.NotAfter.Equal(na) {
		t.Errorf("root validity %v – %v", p.Root.Certificate.NotBefore, p.Root.Certificate.NotAfter)
	}
	ts := p.TCBSigning.Certificate
	if !ts.NotBefore.Equal(nb) || !ts.NotAfter.Equal(expired) || ts.SerialNumber.Int64() != 42 || !base.TCBSigning.Key.Equal(p.TCBSigning.Key) {
		t.Errorf("TCB signing overrides not applied: %v – %v serial %v", ts.NotBefore, ts.NotAfter, ts.SerialNumber)
	}
	if p.ProcessorCA.Certificate.Subject.CommonName != "Not Intel" {
		t.Errorf("CN override not applied")
	}
	plat, err := p.NewPlatform(dcaptest.PlatformSpec{CA: pckcert.CAPlatform})
	if err != nil {
		t.Fatal(err)
	}
	if !plat.PCK.Certificate.NotAfter.Equal(na) {
		t.Errorf("PCK leaf does not inherit the PKI validity")
	}
}

func TestCRLs(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	this, next := dcaptest.ReferenceTime.Add(-time.Hour), dcaptest.ReferenceTime.Add(time.Hour)

	root, err := p.RootCRL(dcaptest.CRLSpec{
		ThisUpdate: this, NextUpdate: next, Number: big.NewInt(7),
		Revoked: []*big.Int{p.TCBSigning.Certificate.SerialNumber, p.ProcessorCA.Certificate.SerialNumber},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := root.List
	if err := l.CheckSignatureFrom(p.Root.Certificate); err != nil {
		t.Errorf("root CRL signature: %v", err)
	}
	if !bytes.Equal(l.RawIssuer, p.Root.Certificate.RawSubject) || !l.ThisUpdate.Equal(this) || !l.NextUpdate.Equal(next) || l.Number.Int64() != 7 {
		t.Errorf("root CRL fields: issuer %v %v–%v #%v", l.Issuer, l.ThisUpdate, l.NextUpdate, l.Number)
	}
	if !bytes.Equal(l.AuthorityKeyId, p.Root.Certificate.SubjectKeyId) {
		t.Errorf("root CRL AKI %x", l.AuthorityKeyId)
	}
	if len(l.RevokedCertificateEntries) != 2 || l.RevokedCertificateEntries[0].SerialNumber.Cmp(p.TCBSigning.Certificate.SerialNumber) != 0 ||
		l.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Errorf("revoked entries %+v", l.RevokedCertificateEntries)
	}

	plat, err := p.NewPlatform(dcaptest.DefaultSGXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	pck, err := p.PCKCRL(pckcert.CAProcessor, dcaptest.CRLSpec{Revoked: []*big.Int{plat.PCK.Certificate.SerialNumber}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pck.List.CheckSignatureFrom(p.ProcessorCA.Certificate); err != nil {
		t.Errorf("PCK CRL signature: %v", err)
	}
	if !pck.List.ThisUpdate.Equal(p.NotBefore) || !pck.List.NextUpdate.Equal(p.NotAfter) || pck.List.Number.Int64() != 1 {
		t.Errorf("PCK CRL defaults %v–%v #%v", pck.List.ThisUpdate, pck.List.NextUpdate, pck.List.Number)
	}
	if len(pck.List.RevokedCertificateEntries) != 1 {
		t.Errorf("PCK CRL revokes %d", len(pck.List.RevokedCertificateEntries))
	}
	if _, err := p.PCKCRL(pckcert.CAUnknown, dcaptest.CRLSpec{}); err == nil {
		t.Errorf("PCKCRL accepted CAUnknown")
	}

	// Wrong signer: same issuer name, signature does not verify.
	bad, err := p.PCKCRL(pckcert.CAPlatform, dcaptest.CRLSpec{SignerKey: p.ProcessorCA.Key})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.List.CheckSignatureFrom(p.PlatformCA.Certificate); err == nil {
		t.Errorf("CRL signed with the wrong key verifies")
	}
	// Issuer override: a non-CA certificate as issuer.
	odd, err := p.PCKCRL(pckcert.CAPlatform, dcaptest.CRLSpec{Issuer: plat.PCK.Certificate, SignerKey: plat.PCK.Key})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(odd.List.RawIssuer, plat.PCK.Certificate.RawSubject) {
		t.Errorf("issuer override not applied: %v", odd.List.Issuer)
	}
	var ce x509.ConstraintViolationError
	if err := odd.List.CheckSignatureFrom(plat.PCK.Certificate); !errors.As(err, &ce) {
		t.Errorf("CRL from a non-CA issuer: CheckSignatureFrom = %v, want ConstraintViolationError", err)
	}
}
