package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/revocation"
)

var at = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(t *testing.T, serial int64, cn string, isCA bool, parent *ca, dp []string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, CRLDistributionPoints: dp}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{c, key}
}

func crl(t *testing.T, issuer *ca, from, to time.Time, revoked ...int64) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: from, NextUpdate: to}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: from})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, issuer.key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestCheck: a chain root → regional (names the root's CRL) → zonal
// (names the regional CRL) → leaf (names none), as the Nitro PKI.
func TestCheck(t *testing.T) {
	root := issue(t, 1, "root", true, nil, nil)
	regional := issue(t, 2, "regional", true, root, []string{"http://crl.example/root.crl"})
	zonal := issue(t, 3, "zonal", true, regional, []string{"http://crl.example/regional.crl", "ldap://x"})
	leaf := issue(t, 4, "leaf", false, zonal, nil)
	chain := []*x509.Certificate{leaf.cert, zonal.cert, regional.cert, root.cert}
	if got := revocation.DistributionPoints(chain); len(got) != 2 || got[0] != "http://crl.example/regional.crl" || got[1] != "http://crl.example/root.crl" {
		t.Fatalf("distribution points %v", got)
	}
	rootCRL := crl(t, root, at.Add(-time.Hour), at.Add(time.Hour), 99)
	regionalCRL := crl(t, regional, at.Add(-time.Hour), at.Add(time.Hour))
	if err := revocation.Check(chain, []*x509.RevocationList{rootCRL, regionalCRL}, at); err != nil {
		t.Fatalf("current CRLs: %v", err)
	}
	other := issue(t, 1, "root", true, nil, nil) // same name, another key
	for _, c := range []struct {
		name string
		crls []*x509.RevocationList
		at   time.Time
		want error
	}{
		{"zonal revoked", []*x509.RevocationList{rootCRL, crl(t, regional, at.Add(-time.Hour), at.Add(time.Hour), 3)}, at, revocation.ErrRevoked},
		{"regional revoked", []*x509.RevocationList{crl(t, root, at.Add(-time.Hour), at.Add(time.Hour), 2), regionalCRL}, at, revocation.ErrRevoked},
		{"root CRL missing", []*x509.RevocationList{regionalCRL}, at, revocation.ErrCRL},
		{"no CRL", nil, at, revocation.ErrCRL},
		{"root CRL expired", []*x509.RevocationList{crl(t, root, at.Add(-2*time.Hour), at.Add(-time.Minute)), regionalCRL}, at, revocation.ErrCRL},
		{"root CRL not yet valid", []*x509.RevocationList{crl(t, root, at.Add(time.Minute), at.Add(time.Hour)), regionalCRL}, at, revocation.ErrCRL},
		{"root CRL signed by another key", []*x509.RevocationList{crl(t, other, at.Add(-time.Hour), at.Add(time.Hour)), regionalCRL}, at, revocation.ErrCRL},
	} {
		if err := revocation.Check(chain, c.crls, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A chain whose certificates name no distribution point needs no CRL.
	plain := issue(t, 5, "plain", false, root, nil)
	if err := revocation.Check([]*x509.Certificate{plain.cert, root.cert}, nil, at); err != nil {
		t.Fatal(err)
	}
}
