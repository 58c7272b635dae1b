package snp

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// TestCRLWithoutNextUpdate: an ARK-signed CRL without a nextUpdate is
// never known to be current, so it is refused (x509.CreateRevocationList
// cannot make one, hence the verified form directly); one with a
// nextUpdate still applies.
func TestCRLWithoutNextUpdate(t *testing.T) {
	cert := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, SerialNumber: big.NewInt(serial)}
	}
	ch := &chain{ark: cert("ARK-Milan", 1), ask: cert("SEV-Milan", 2), vcek: cert("SEV-VCEK", 3)}
	now := time.Unix(1_800_000_000, 0)
	v := &verifiedCRL{thisUpdate: now.Add(-time.Hour), revoked: map[string]bool{}}
	if err := v.check(ch, now); !errors.Is(err, ErrCRL) {
		t.Fatalf("CRL without nextUpdate: %v, want ErrCRL", err)
	}
	v.nextUpdate = now.Add(time.Hour)
	if err := v.check(ch, now); err != nil {
		t.Fatalf("current CRL: %v", err)
	}
}
