package dstack_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitrosim"
)

// profileCert issues a certificate for key, signed by signer, from a
// template that passes dstack's RA-TLS profile at nitroAt after edit.
func profileCert(t *testing.T, key, signer *ecdsa.PrivateKey, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example"},
		NotBefore: nitroAt.Add(-time.Hour), NotAfter: nitroAt.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckCertificateProfile(t *testing.T) {
	t.Parallel()
	k, other := newKey(t), newKey(t)
	if err := dstack.CheckCertificateProfile(profileCert(t, k, k, nil), nitroAt); err != nil {
		t.Fatalf("valid profile: %v", err)
	}
	clientOnly := profileCert(t, k, k, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	if err := dstack.CheckCertificateProfile(clientOnly, nitroAt); err != nil {
		t.Fatalf("clientAuth only: %v", err)
	}
	for name, c := range map[string]struct {
		cert *x509.Certificate
		at   time.Time
	}{
		"signed by another key": {profileCert(t, k, other, nil), nitroAt},
		"expired":               {profileCert(t, k, k, nil), nitroAt.Add(2 * time.Hour)},
		"not yet valid":         {profileCert(t, k, k, nil), nitroAt.Add(-2 * time.Hour)},
		"no digitalSignature":   {profileCert(t, k, k, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }), nitroAt},
		"no EKU":                {profileCert(t, k, k, func(c *x509.Certificate) { c.ExtKeyUsage = nil }), nitroAt},
		"codeSigning EKU":       {profileCert(t, k, k, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning} }), nitroAt},
		"no SAN":                {profileCert(t, k, k, func(c *x509.Certificate) { c.DNSNames = nil }), nitroAt},
	} {
		if err := dstack.CheckCertificateProfile(c.cert, c.at); !errors.Is(err, dstack.ErrCertificateProfile) {
			t.Errorf("%s: %v, want ErrCertificateProfile", name, err)
		}
	}
}

func TestParseCertificate(t *testing.T) {
	t.Parallel()
	der := profileCert(t, newKey(t), newKey(t), nil).Raw
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, in := range map[string][]byte{
		"der": der, "pem": p, "pem after a key": append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), p...),
		"pem with leading space": append([]byte("\n  "), p...),
	} {
		c, err := dstack.ParseCertificate(in)
		if err != nil || string(c.Raw) != string(der) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not a certificate"),
		"truncated der":  der[:len(der)-1],
		"pem no cert":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}),
		"pem bad cert":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}),
		"over the limit": make([]byte, dstack.MaxCertificateSize+1),
	} {
		if _, err := dstack.ParseCertificate(in); !errors.Is(err, dstack.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// TestNotAttested: an ordinary certificate is ErrNotAttested (and
// ErrMalformed as evidence).
func TestNotAttested(t *testing.T) {
	t.Parallel()
	c := profileCert(t, newKey(t), newKey(t), nil)
	if dstack.IsAttested(c) {
		t.Fatal("IsAttested on an ordinary certificate")
	}
	_, err := dstack.ParseEvidence(c.Raw)
	if !errors.Is(err, dstack.ErrNotAttested) || !errors.Is(err, dstack.ErrMalformed) {
		t.Fatalf("%v, want ErrNotAttested", err)
	}
}

func TestNewCertVerification(t *testing.T) {
	t.Parallel()
	ca, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	der := nitroRATLS(t, ca, k, k)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !dstack.IsAttested(c) {
		t.Fatal("IsAttested false on an RA-TLS certificate")
	}
	ev, err := dstack.ParseEvidence(der)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dstack.VerifyNitro(ev, dstack.NitroOptions{Time: nitroAt, Root: ca.Root})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dstack.NewCertVerification(c, r)
	if err != nil {
		t.Fatal(err)
	}
	d := v.Details
	if !v.IsValid || d.TEEVariant != "dstack-nitro-enclave" || d.PublicKeyDER != hex.EncodeToString(c.RawSubjectPublicKeyInfo) ||
		d.ReportData != hex.EncodeToString(r.ReportData) || !d.AppInfo.OSImageHashVerified ||
		d.AppInfo.DeviceID != hex.EncodeToString(r.Nitro.DstackDeviceID) || d.AppInfo.OSImageHash != hex.EncodeToString(r.AppInfo.OSImageHash) {
		t.Fatalf("%+v", d)
	}
	// A result that does not record the binding, or binds another key,
	// is refused whatever produced it.
	unchecked := *r
	unchecked.ReportDataChecks = []string{dstack.SourceEvidence}
	other := *r
	other.ReportData = append(dstack.HexBytes{}, r.ReportData...)
	other.ReportData[0] ^= 1
	for name, res := range map[string]*dstack.Result{"no binding check": &unchecked, "other report data": &other, "nil": nil} {
		if _, err := dstack.NewCertVerification(c, res); !errors.Is(err, dstack.ErrCertificateBinding) {
			t.Errorf("%s: %v, want ErrCertificateBinding", name, err)
		}
	}
	// Another certificate for the same result.
	c2 := profileCert(t, newKey(t), newKey(t), nil)
	if _, err := dstack.NewCertVerification(c2, r); !errors.Is(err, dstack.ErrCertificateBinding) {
		t.Errorf("other certificate: %v, want ErrCertificateBinding", err)
	}
}

// FuzzParseCertificate: any input either fails with ErrMalformed or gives
// a certificate whose DER parses again to the same bytes; the profile and
// attestation checks never panic on it.
func FuzzParseCertificate(f *testing.F) {
	k := ecdsaKey(f)
	der := func(edit func(*x509.Certificate)) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example"},
			NotBefore: nitroAt.Add(-time.Hour), NotAfter: nitroAt.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if edit != nil {
			edit(tmpl)
		}
		b, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	d := der(nil)
	f.Add(d)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d}))
	f.Add(der(func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: dstack.OIDAttestation, Value: []byte{4, 2, 0, 0}}}
	}))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := dstack.ParseCertificate(data)
		if err != nil {
			if !errors.Is(err, dstack.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := dstack.ParseCertificate(c.Raw)
		if err != nil || string(again.Raw) != string(c.Raw) {
			t.Fatalf("DER does not parse again: %v", err)
		}
		_ = dstack.CheckCertificateProfile(c, nitroAt)
		_ = dstack.IsAttested(c)
	})
}

func ecdsaKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
