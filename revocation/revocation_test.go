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
	return crlWith(t, issuer, from, to, nil, nil, revoked...)
}

// crlWith is crl with extra CRL extensions, and extensions on each entry.
func crlWith(t *testing.T, issuer *ca, from, to time.Time, exts, entryExts []pkix.Extension, revoked ...int64) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: from, NextUpdate: to, ExtraExtensions: exts}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: from, ExtraExtensions: entryExts})
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

// tlv is a DER element of one-byte tag and short length.
func tlv(tag byte, content ...[]byte) []byte {
	var c []byte
	for _, b := range content {
		c = append(c, b...)
	}
	return append([]byte{tag, byte(len(c))}, c...)
}

// idp is an issuing distribution point extension (RFC 5280 §5.2.5,
// encoded by hand): fullName URIs, then the given [1]–[5] fields.
func idp(uris []string, fields ...[]byte) pkix.Extension {
	var body [][]byte
	if len(uris) > 0 {
		var names [][]byte
		for _, u := range uris {
			names = append(names, tlv(0x86, []byte(u)))
		}
		body = append(body, tlv(0xa0, tlv(0xa0, names...)))
	}
	body = append(body, fields...)
	return pkix.Extension{Id: []int{2, 5, 29, 28}, Critical: true, Value: tlv(0x30, body...)}
}

// TestCheckCRLScope: crypto/x509 parses CRLs with critical extensions it
// does not process. A CRL whose issuing distribution point restricts it
// to another partition, to CA certificates, or to some reasons is not the
// full list of a certificate it does not cover, and a delta CRL or an
// entry's critical extension is refused: otherwise a revoked certificate
// absent from a partial list would pass.
func TestCheckCRLScope(t *testing.T) {
	root := issue(t, 1, "root", true, nil, nil)
	const dp = "http://crl.example/root.crl"
	inter := issue(t, 2, "inter", true, root, []string{dp})
	leaf := issue(t, 3, "leaf", false, root, []string{dp})
	from, to := at.Add(-time.Hour), at.Add(time.Hour)
	onlyCA := tlv(0x82, []byte{0xff})
	onlyUser := tlv(0x81, []byte{0xff})
	someReasons := tlv(0x83, []byte{0x07, 0x80})
	indirect := tlv(0x84, []byte{0xff})
	for _, c := range []struct {
		name      string
		cert      *ca
		exts      []pkix.Extension
		entryExts []pkix.Extension
		revoked   int64
		want      error
	}{
		{"IDP of this distribution point", leaf, []pkix.Extension{idp([]string{"http://other.example/x.crl", dp})}, nil, 0, nil},
		{"IDP of this distribution point, revoked", leaf, []pkix.Extension{idp([]string{dp})}, nil, 3, revocation.ErrRevoked},
		{"IDP of another partition", leaf, []pkix.Extension{idp([]string{"http://crl.example/part2.crl"})}, nil, 0, revocation.ErrCRL},
		{"IDP CA certificates only, leaf", leaf, []pkix.Extension{idp(nil, onlyCA)}, nil, 0, revocation.ErrCRL},
		{"IDP CA certificates only, CA", inter, []pkix.Extension{idp(nil, onlyCA)}, nil, 0, nil},
		{"IDP user certificates only, CA", inter, []pkix.Extension{idp(nil, onlyUser)}, nil, 0, revocation.ErrCRL},
		{"IDP some reasons", leaf, []pkix.Extension{idp([]string{dp}, someReasons)}, nil, 0, revocation.ErrCRL},
		{"IDP indirect", leaf, []pkix.Extension{idp([]string{dp}, indirect)}, nil, 0, revocation.ErrCRL},
		{"IDP garbled", leaf, []pkix.Extension{{Id: []int{2, 5, 29, 28}, Critical: true, Value: []byte{0x30, 0x03, 0x01}}}, nil, 0, revocation.ErrCRL},
		{"delta CRL", leaf, []pkix.Extension{{Id: []int{2, 5, 29, 27}, Critical: true, Value: []byte{0x02, 0x01, 0x01}}}, nil, 0, revocation.ErrCRL},
		{"delta CRL, indicator not critical", leaf, []pkix.Extension{{Id: []int{2, 5, 29, 27}, Value: []byte{0x02, 0x01, 0x01}}}, nil, 0, revocation.ErrCRL},
		{"non-critical unknown extension", leaf, []pkix.Extension{{Id: []int{1, 2, 3}, Value: []byte{0x05, 0x00}}}, nil, 0, nil},
		{"entry with a critical certificate issuer", leaf, nil, []pkix.Extension{{Id: []int{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0x00}}}, 99, revocation.ErrCRL},
	} {
		var revoked []int64
		if c.revoked != 0 {
			revoked = append(revoked, c.revoked)
		}
		l := crlWith(t, root, from, to, c.exts, c.entryExts, revoked...)
		if err := revocation.Check([]*x509.Certificate{c.cert.cert, root.cert}, []*x509.RevocationList{l}, at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestCheckFetched: a verifier's errors wrap the cause: a fetch failure
// and an invalid list are its CRL error, a revocation its revoked error;
// current lists without the certificate pass.
func TestCheckFetched(t *testing.T) {
	root := issue(t, 1, "root", true, nil, nil)
	inter := issue(t, 2, "intermediate", true, root, []string{"http://crl.example/root.crl"})
	chain := []*x509.Certificate{inter.cert, root.cert}
	errRevoked, errCRL, errFetch := errors.New("revoked"), errors.New("crl"), errors.New("fetch")
	serve := func(ls ...*x509.RevocationList) func([]*x509.Certificate) ([]*x509.RevocationList, error) {
		return func([]*x509.Certificate) ([]*x509.RevocationList, error) { return ls, nil }
	}
	for _, c := range []struct {
		name  string
		fetch func([]*x509.Certificate) ([]*x509.RevocationList, error)
		want  []error
	}{
		{"current", serve(crl(t, root, at.Add(-time.Hour), at.Add(time.Hour))), nil},
		{"revoked", serve(crl(t, root, at.Add(-time.Hour), at.Add(time.Hour), 2)), []error{errRevoked, revocation.ErrRevoked}},
		{"expired", serve(crl(t, root, at.Add(-2*time.Hour), at.Add(-time.Minute))), []error{errCRL, revocation.ErrCRL}},
		{"missing", serve(), []error{errCRL, revocation.ErrCRL}},
		{"fetch fails", func([]*x509.Certificate) ([]*x509.RevocationList, error) { return nil, errFetch }, []error{errCRL, errFetch}},
	} {
		err := revocation.CheckFetched(chain, at, c.fetch, errRevoked, errCRL)
		if c.want == nil && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want %v", c.name, err, w)
			}
		}
		if c.want != nil && errors.Is(err, errRevoked) == errors.Is(err, errCRL) {
			t.Errorf("%s: %v is both or neither", c.name, err)
		}
	}
}
