package nitro_test

import (
	"crypto/x509"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/revocation"
)

// TestRevocation: with Options.Revocation, a chain whose intermediate
// names a CRL distribution point needs a current root CRL that does not
// list it.
func TestRevocation(t *testing.T) {
	ca := newCA(t)
	if err := ca.SetIntermediateCRL("http://crl.example/root.crl"); err != nil {
		t.Fatal(err)
	}
	doc, err := ca.Sign(simEnclave())
	if err != nil {
		t.Fatal(err)
	}
	rootCRL := func(from, to time.Time, revoked ...int64) *x509.RevocationList {
		var serials []*big.Int
		for _, s := range revoked {
			serials = append(serials, big.NewInt(s))
		}
		der, err := ca.RootCRL(from, to, serials...)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	current := rootCRL(simTime.Add(-time.Hour), simTime.Add(time.Hour), 77)
	var seen []*x509.Certificate
	opts := nitro.Options{Time: simTime, Root: ca.Root, Revocation: func(chain []*x509.Certificate) ([]*x509.RevocationList, error) {
		seen = chain
		return []*x509.RevocationList{current}, nil
	}}
	if _, err := nitro.Verify(doc, opts); err != nil {
		t.Fatalf("current CRL: %v", err)
	}
	if len(seen) != 3 || !seen[1].Equal(ca.Intermediate) || !seen[2].Equal(ca.Root) {
		t.Fatalf("the callback got %d certificates, not the verified chain", len(seen))
	}
	fetchErr := errors.New("fetch failed")
	for _, c := range []struct {
		name string
		crls []*x509.RevocationList
		err  error
		want []error
	}{
		{"intermediate revoked", []*x509.RevocationList{rootCRL(simTime.Add(-time.Hour), simTime.Add(time.Hour), 2)}, nil, []error{nitro.ErrRevoked, nitro.ErrChain, revocation.ErrRevoked}},
		{"no CRL", nil, nil, []error{nitro.ErrCRL, revocation.ErrCRL}},
		{"CRL past its next update", []*x509.RevocationList{rootCRL(simTime.Add(-2*time.Hour), simTime.Add(-time.Second))}, nil, []error{nitro.ErrCRL}},
		{"CRL of another root", []*x509.RevocationList{func() *x509.RevocationList {
			o := newCA(t)
			der, _ := o.RootCRL(simTime.Add(-time.Hour), simTime.Add(time.Hour))
			l, _ := x509.ParseRevocationList(der)
			return l
		}()}, nil, []error{nitro.ErrCRL}},
		{"the CRLs cannot be had", nil, fetchErr, []error{nitro.ErrCRL, fetchErr}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := opts
			o.Revocation = func([]*x509.Certificate) ([]*x509.RevocationList, error) { return c.crls, c.err }
			res, err := nitro.Verify(doc, o)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("%v, want %v", err, w)
				}
			}
			if res != nil {
				t.Fatal("a result with an error")
			}
		})
	}
	// A chain that names no distribution point needs no CRL.
	plain := newCA(t)
	pd, _ := plain.Sign(simEnclave())
	if _, err := nitro.Verify(pd, nitro.Options{Time: simTime, Root: plain.Root,
		Revocation: func([]*x509.Certificate) ([]*x509.RevocationList, error) { return nil, nil }}); err != nil {
		t.Fatal(err)
	}
}

// TestRealChainNamesCRLs: AWS's regional and zonal CA certificates name
// CRL distribution points (the signing and instance certificates do not):
// with revocation checking and no CRL the real document is refused.
func TestRealChainNamesCRLs(t *testing.T) {
	rd := realDocs[0]
	var chain []*x509.Certificate
	_, err := nitro.Verify(readReal(t, rd.file), nitro.Options{Time: time.UnixMilli(rd.tsMillis),
		Revocation: func(c []*x509.Certificate) ([]*x509.RevocationList, error) { chain = c; return nil, nil }})
	if !errors.Is(err, nitro.ErrCRL) {
		t.Fatalf("%v, want ErrCRL", err)
	}
	dps := revocation.DistributionPoints(chain)
	if len(chain) != 5 || len(dps) != 2 || len(chain[0].CRLDistributionPoints)+len(chain[1].CRLDistributionPoints) != 0 ||
		!slices.Equal(chain[2].CRLDistributionPoints, dps[:1]) || !slices.Equal(chain[3].CRLDistributionPoints, dps[1:]) {
		t.Fatalf("distribution points %v", dps)
	}
}
