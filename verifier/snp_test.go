package verifier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

// TestSNPEndorsement: SEV-SNP evidence without a cert_chain verifies
// with certificates from WithSNPEndorsement, and is not authentic
// without it.
func TestSNPEndorsement(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"compose_hash":"0000000000000000000000000000000000000000000000000000000000000000","key_provider":"none"}`
	att, err := g.DstackAttestationNoCerts([64]byte{5}, doc)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ear.GenerateKey(nil)
	ks, _ := ear.NewKeySet(k)
	signer, _ := ear.NewSigner(ks)
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return nil, nil })
	base := []verifier.Option{verifier.WithClock(func() time.Time { return snpsim.Now }),
		verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()}))}
	v, _ := verifier.New(src, nil, signer, base...)
	out, err := v.Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || out.Result.Authentic {
		t.Fatalf("without endorsement: %v %+v", err, out)
	}
	calls := 0
	v, _ = verifier.New(src, nil, signer, append(base, verifier.WithSNPEndorsement(func(_ context.Context, r *snp.Report) (snp.Certificates, error) {
		calls++
		if r.ChipID != g.Template.ChipID {
			t.Error("endorsement asked for another chip")
		}
		return g.Certificates(), nil
	}))...)
	out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || !out.Result.Authentic || out.Result.TEE != "snp" || calls != 1 {
		t.Fatalf("with endorsement: %v %+v", err, out.Result)
	}
	// The SEV-SNP path has no image or ACPI check: asking for one is
	// refused, not skipped.
	for _, in := range []*verifier.DstackInputs{{Image: &measure.Image{}}, {ImageOSHash: make([]byte, 32)}, {ACPI: &measure.ACPIDigests{}}} {
		out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: att, DstackInputs: in})
		if !errors.Is(err, verifier.ErrMalformedEvidence) {
			t.Fatalf("SEV-SNP evidence with %+v: %v %+v", in, err, out)
		}
	}
}
