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

// TestSNPProvenance: no claim of dstack SEV-SNP evidence is replayed (no
// event log is replayed for SEV-SNP): the dstack identity read from the
// MrConfigV3 document HOST_DATA binds, device_id = SHA-256(CHIP_ID) and
// the values computed from MEASUREMENT are bound; the report fields are
// signed. The same names keep their TDX provenance in a TDX set. The
// SEV-SNP table of docs/claims.md agrees with ProvenanceIn.
func TestSNPProvenance(t *testing.T) {
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
	want := map[string]claims.Provenance{
		"dstack.app_id": claims.Bound, "dstack.compose_hash": claims.Bound, "dstack.instance_id": claims.Bound,
		"dstack.key_provider": claims.Bound, "dstack.key_provider_id": claims.Bound, "dstack.event_log_verified": claims.Bound,
		"dstack.device_id": claims.Bound, "dstack.mr_system": claims.Bound, "dstack.mr_aggregated": claims.Bound,
		"dstack.os_image_hash": claims.Bound, "snp.report.host_data": claims.Signed, "snp.report.measurement": claims.Signed,
		"snp.crl_checked": claims.Signed, "tee": claims.Signed,
	}
	for name, p := range want {
		if _, ok := s.Get(name); !ok {
			t.Errorf("claim %s missing", name)
		}
		if got := s.Provenance(name); got != p {
			t.Errorf("SEV-SNP %s: provenance %s, want %s", name, got, p)
		}
	}
	for _, name := range s.Names() {
		if p := s.Provenance(name); p == claims.Replayed || p == claims.Unverified {
			t.Errorf("SEV-SNP %s: provenance %s", name, p)
		}
	}
	for name, p := range map[string]claims.Provenance{"dstack.app_id": claims.Replayed, "dstack.device_id": claims.Signed} {
		if got := claims.ProvenanceIn(claims.TEETDX, name); got != p {
			t.Errorf("TDX %s: %s, want %s", name, got, p)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "claims.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := bytes.Cut(doc, []byte("### SEV-SNP provenance"))
	if !ok {
		t.Fatal("docs/claims.md has no SEV-SNP provenance section")
	}
	sec, _, _ = bytes.Cut(sec, []byte("\n## "))
	rows := 0
	for _, line := range bytes.Split(sec, []byte("\n")) {
		cells := bytes.Split(line, []byte("|"))
		if len(cells) != 4 || !bytes.HasPrefix(bytes.TrimSpace(cells[1]), []byte("`")) {
			continue
		}
		p := claims.Provenance(bytes.Trim(bytes.TrimSpace(cells[1]), "`"))
		for _, f := range bytes.Split(cells[2], []byte("`")) {
			if !bytes.Contains(f, []byte(".")) || bytes.Contains(f, []byte(" ")) {
				continue
			}
			rows++
			if got := claims.ProvenanceIn(claims.TEESNP, string(f)); got != p {
				t.Errorf("docs/claims.md lists SEV-SNP %s as %s; ProvenanceIn says %s", f, p, got)
			}
		}
	}
	if rows < 10 {
		t.Errorf("only %d claims in the SEV-SNP provenance table", rows)
	}
}
