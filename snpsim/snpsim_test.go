package snpsim_test

import (
	"bytes"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// TestEncodeParse: Encode is the inverse of snp.ParseReport, and a guest's
// reports and dstack attestations verify.
func TestEncodeParse(t *testing.T) {
	for _, p := range snp.Products {
		g, err := snpsim.NewGuest(p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := g.Attest([64]byte{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		r, err := snp.ParseReport(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snpsim.Encode(r), raw) {
			t.Errorf("%s: Encode(ParseReport(raw)) differs", p)
		}
		if _, err := snp.Verify(r, g.Certificates(), snp.Options{Now: snpsim.Now, Roots: g.PKI.Roots()}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		doc := `{"compose_hash":"` + string(bytes.Repeat([]byte("ab"), 32)) + `","key_provider":"none"}`
		att, err := g.DstackAttestation([64]byte{9}, doc, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dstack.ParseEvidence(att)
		if err != nil {
			t.Fatal(err)
		}
		res, err := dstack.VerifySNP(ev, dstack.SNPOptions{Now: snpsim.Now, Roots: g.PKI.Roots()})
		if err != nil || res.OSImageHashVerified || res.AppInfo.ComposeHash.String() != string(bytes.Repeat([]byte("ab"), 32)) {
			t.Errorf("%s dstack: %v", p, err)
		}
	}
	if err := snpsim.Sign(make([]byte, 10), nil); err == nil {
		t.Error("short report signed")
	}
}
