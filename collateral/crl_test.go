package collateral_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
)

// TestCRLDigest checks that a parsed CRL's digest is SHA-256 of its DER
// and that a hand-built CRL value computes the same.
func TestCRLDigest(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, SubjectKeyId: []byte{1, 2, 3, 4}}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: now}},
	}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := collateral.ParseCRL(der)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(der)
	if got := c.Digest(); got != want {
		t.Errorf("parsed digest %x, want %x", got, want)
	}
	hand := &collateral.CRL{DER: c.DER, List: c.List}
	if got := hand.Digest(); got != want {
		t.Errorf("hand-built digest %x, want %x", got, want)
	}
	other := &collateral.CRL{DER: append([]byte{}, der[:len(der)-1]...), List: c.List}
	if other.Digest() == want {
		t.Error("different DER, same digest")
	}
}
