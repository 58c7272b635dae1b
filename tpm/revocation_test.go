package tpm_test

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/revocation"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

// TestRevocation: with Options.Revocation, an AK chain whose intermediate
// names a CRL distribution point (as Google's EK/AK CA Intermediate does)
// needs a current root CRL that does not list it.
func TestRevocation(t *testing.T) {
	s, err := tpmsim.New(simAt, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetIntermediateCRL("http://crl.example/root.crl"); err != nil {
		t.Fatal(err)
	}
	pcrs, evs := simPCRs()
	extra := sha256.Sum256([]byte("tdx quote"))
	q, err := s.Quote(extra[:], pcrs, evs)
	if err != nil {
		t.Fatal(err)
	}
	rootCRL := func(from, to time.Time, revoked ...int64) *x509.RevocationList {
		var serials []*big.Int
		for _, n := range revoked {
			serials = append(serials, big.NewInt(n))
		}
		der, err := s.RootCRL(from, to, serials...)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	with := func(crls []*x509.RevocationList, err error) tpm.Options {
		o := s.Options(simAt)
		o.Revocation = func([]*x509.Certificate) ([]*x509.RevocationList, error) { return crls, err }
		return o
	}
	if _, err := tpm.Verify(q, with([]*x509.RevocationList{rootCRL(simAt.Add(-time.Hour), simAt.Add(time.Hour), 9)}, nil)); err != nil {
		t.Fatalf("current CRL: %v", err)
	}
	fetchErr := errors.New("fetch failed")
	for _, c := range []struct {
		name string
		opts tpm.Options
		want []error
	}{
		{"intermediate revoked", with([]*x509.RevocationList{rootCRL(simAt.Add(-time.Hour), simAt.Add(time.Hour), 2)}, nil), []error{tpm.ErrRevoked, tpm.ErrChain, revocation.ErrRevoked}},
		{"no CRL", with(nil, nil), []error{tpm.ErrCRL}},
		{"CRL not yet issued", with([]*x509.RevocationList{rootCRL(simAt.Add(time.Minute), simAt.Add(time.Hour))}, nil), []error{tpm.ErrCRL}},
		{"the CRLs cannot be had", with(nil, fetchErr), []error{tpm.ErrCRL, fetchErr}},
	} {
		res, err := tpm.Verify(q, c.opts)
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want %v", c.name, err, w)
			}
		}
		if res != nil {
			t.Errorf("%s: a result with an error", c.name)
		}
	}
}

// TestPinnedIntermediateNamesCRL: Google's pinned EK/AK CA Intermediate
// names the root's CRL; the root names none.
func TestPinnedIntermediateNamesCRL(t *testing.T) {
	root, inter := tpm.Root(), tpm.Intermediate()
	dps := revocation.DistributionPoints([]*x509.Certificate{inter, root})
	if len(root.CRLDistributionPoints) != 0 || len(dps) != 1 || dps[0] != inter.CRLDistributionPoints[0] {
		t.Fatalf("root %v intermediate %v", root.CRLDistributionPoints, inter.CRLDistributionPoints)
	}
}
