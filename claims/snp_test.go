package claims_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

func TestSNPClaims(t *testing.T) {
	for _, p := range snp.Products {
		g, err := snpsim.NewGuest(p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := g.Attest([64]byte{0xaa})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := snp.ParseReport(raw)
		res, err := snp.Verify(r, g.Certificates(), snp.Options{Now: snpsim.Now, Roots: g.PKI.Roots()})
		if err != nil {
			t.Fatal(err)
		}
		s, err := claims.New(claims.Input{SNP: res})
		if err != nil {
			t.Fatal(err)
		}
		if s.TEE() != claims.TEESNP {
			t.Errorf("tee %q", s.TEE())
		}
		if v, _ := s.String("snp.report.report_data"); v[:4] != "aa00" {
			t.Errorf("report_data %s", v)
		}
		if v, _ := s.Bool("snp.guest_policy.debug"); v {
			t.Error("debug")
		}
		if v, _ := s.Int("snp.tcb.reported.snp"); v != 24 {
			t.Errorf("reported snp %d", v)
		}
		if _, ok := s.Int("snp.tcb.reported.fmc"); ok != (p == snp.ProductTurin) {
			t.Errorf("%s fmc claim present %v", p, ok)
		}
		doc, err := os.ReadFile(filepath.Join("..", "docs", "claims.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range s.Names() {
			if !bytes.Contains(doc, []byte("`"+k+"`")) {
				t.Errorf("claim %s is not documented in docs/claims.md", k)
			}
			if !claims.Matchable(k) {
				t.Errorf("%s is not matchable", k)
			}
		}
		if _, err := claims.New(claims.Input{SNP: res, Replayed: &[4][48]byte{}}); err == nil {
			t.Error("SNP mixed with replayed RTMRs accepted")
		}
	}
	if _, err := claims.New(claims.Input{SNP: &snp.Result{}}); err == nil {
		t.Error("empty SNP result accepted")
	}
}

func TestSNPDstackClaims(t *testing.T) {
	ev, err := dstack.ParseEvidence(testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := dstack.VerifySNP(ev, dstack.SNPOptions{Now: time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := claims.New(claims.Input{Dstack: res})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"tee":                    "snp",
		"snp.tcb_status":         "OutOfDate",
		"snp.product":            "Milan",
		"snp.report.measurement": "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d",
		"dstack.app_id":          "86e59625be93207bc2351c4d1bba20037cec8e16",
		"dstack.device_id":       "310f86e9970d2b625f8a1024f05ea59d540743de63e9017c8c4c0f50a14a10a6",
		"dstack.os_image_hash":   "f69c8e5031ec2b269bbc08839ce02cb98ee255d695626f941f4b37b95946d352",
		"dstack.key_provider":    "kms",
	} {
		if got, _ := s.String(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}
