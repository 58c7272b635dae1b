package pinnedcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pinned"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	sum := sha256.Sum256(der)
	pin := hex.EncodeToString(sum[:])
	if c, err := Parse(p, pin); err != nil || c.Subject.CommonName != "pinned" {
		t.Fatalf("pinned certificate: %v", err)
	}
	other := strings.Repeat("0", 64)
	for name, in := range map[string][]byte{
		"not PEM":     []byte("garbage"),
		"other block": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	} {
		if _, err := Parse(in, pin); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := Parse(p, other); err == nil {
		t.Error("another fingerprint accepted")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic on a fingerprint mismatch")
		}
	}()
	MustParse("test", p, other)
}
