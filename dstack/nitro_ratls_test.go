package dstack_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitrosim"
)

// nitroRATLS makes a dstack RA-TLS certificate for certKey carrying a
// Nitro Enclave attestation whose report data binds boundKey.
func nitroRATLS(t *testing.T, ca *nitrosim.CA, certKey, boundKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&boundKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rd := dstack.RATLSReportData(spki)
	d := nitrosim.Enclave(nitroAt, rd[:])
	doc, err := ca.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for i := 0; i < 3; i++ {
		h.Write(d.PCRs[i])
	}
	cfg, _ := json.Marshal(map[string]string{"os_image_hash": hex.EncodeToString(h.Sum(nil))})
	a := &dstack.Attestation{Platform: dstack.PlatformNitroEnclave, NSMQuote: doc, ReportData: rd, Config: string(cfg)}
	raw, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ext, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example"},
		NotBefore: nitroAt.Add(-1e12), NotAfter: nitroAt.Add(1e12), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ExtraExtensions: []pkix.Extension{{Id: dstack.OIDAttestation, Value: ext}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestNitroRATLSBinding(t *testing.T) {
	ca, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opts := dstack.NitroOptions{Time: nitroAt, Root: ca.Root}
	ev, err := dstack.ParseEvidence(nitroRATLS(t, ca, k1, k1))
	if err != nil {
		t.Fatal(err)
	}
	r, err := dstack.VerifyNitro(ev, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ReportDataChecks) != 2 || r.ReportDataChecks[1] != dstack.SourceCertificate || r.EvidenceFormat != dstack.FormatRATLS {
		t.Fatalf("checks %v format %s", r.ReportDataChecks, r.EvidenceFormat)
	}
	// The certificate's key is not the attested one.
	ev, err = dstack.ParseEvidence(nitroRATLS(t, ca, k2, k1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dstack.VerifyNitro(ev, opts); !errors.Is(err, dstack.ErrCertificateBinding) {
		t.Fatalf("%v, want ErrCertificateBinding", err)
	}
}
