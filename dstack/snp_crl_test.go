package dstack_test

import (
	"errors"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// TestSNPRequireCRL: SNPOptions.RequireCRL refuses (snp.ErrCRL) a report
// whose chain no CRL of its ARK was applied to, with opts.Verifier (whose
// own RequireCRL is off) as without it; SNPOptions.CRLs apply on both
// paths (a revoking one is snp.ErrRevoked, a clean one verifies).
func TestSNPRequireCRL(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"compose_hash":"0000000000000000000000000000000000000000000000000000000000000000","key_provider":"none"}`
	raw, err := g.DstackAttestation([64]byte{5}, doc, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(raw)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := g.CRL()
	if err != nil {
		t.Fatal(err)
	}
	revoking, err := g.CRL(g.Key.Cert)
	if err != nil {
		t.Fatal(err)
	}
	other, err := snpsim.GeneratePKI(snp.ProductGenoa, g.PKI.NotBefore, g.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	otherCRL, err := other.CRL(snpsim.Now.Add(-snpsim.CRLValidity), snpsim.Now.Add(snpsim.CRLValidity))
	if err != nil {
		t.Fatal(err)
	}
	roots := g.PKI.Roots()
	for _, withVerifier := range []bool{false, true} {
		opts := func(require bool, crls ...[]byte) dstack.SNPOptions {
			o := dstack.SNPOptions{Now: snpsim.Now, Roots: roots, CRLs: crls, RequireCRL: require}
			if withVerifier {
				o.Verifier = snp.NewVerifier(snp.VerifierOptions{Roots: roots})
			}
			return o
		}
		for _, c := range []struct {
			name string
			opts dstack.SNPOptions
			want error
		}{
			{"no CRL, not required", opts(false), nil},
			{"no CRL, required", opts(true), snp.ErrCRL},
			{"another ARK's CRL only, required", opts(true, otherCRL), snp.ErrCRL},
			{"clean CRL, required", opts(true, clean), nil},
			{"revoking CRL, not required", opts(false, revoking), snp.ErrRevoked},
		} {
			res, err := dstack.VerifySNP(ev, c.opts)
			switch {
			case c.want == nil && err != nil:
				t.Errorf("verifier %v, %s: %v", withVerifier, c.name, err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Errorf("verifier %v, %s: err %v, want %v", withVerifier, c.name, err, c.want)
			case c.want == nil && res.SNP.CRLChecked != (len(c.opts.CRLs) > 0):
				t.Errorf("verifier %v, %s: CRLChecked %v", withVerifier, c.name, res.SNP.CRLChecked)
			}
		}
	}
}
