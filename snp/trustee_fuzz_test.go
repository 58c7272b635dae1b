package snp_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// FuzzParseTrusteeEvidence: ParseTrusteeEvidence never panics, fails only
// with ErrMalformed or ErrUnsupported and a nil result, and evidence it
// accepts re-encodes (MarshalTrusteeEvidence, same form) to evidence that
// parses to the same report bytes and certificate chain. Seeds: the real
// Trustee evidence of testdata/trustee and snpsim reports of each product
// in both forms.
func FuzzParseTrusteeEvidence(f *testing.F) {
	for _, name := range []string{"e2e-evidence-sev6.json", "e2e-evidence-reprc.json"} {
		if b, err := os.ReadFile("testdata/trustee/" + name); err == nil {
			f.Add(b)
		}
	}
	// Reports of each product and version, built (unsigned: parsing does
	// not verify) from the real one.
	if b, err := os.ReadFile("testdata/trustee/e2e-evidence-reprc.json"); err == nil {
		ev, err := snp.ParseTrusteeEvidence(b)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range snp.Products {
			for _, version := range []uint32{3, 5} {
				r := *ev.Report
				r.Version = version
				r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = snpsim.CPUID(p)
				tcb := snp.TCBParts{FMC: 1, BootLoader: 9, TEE: 0, SNP: 23, Microcode: 72}.Compose(p)
				r.CurrentTCB, r.ReportedTCB, r.CommittedTCB, r.LaunchTCB = tcb, tcb, tcb, tcb
				rr, err := snp.ParseReport(snpsim.Encode(&r))
				if err != nil {
					f.Fatal(err)
				}
				chain := []snp.TrusteeCert{{Type: snp.TrusteeCertVCEK, Data: []byte{48, 1}}, {Type: snp.TrusteeCertOther, GUID: "92f81bc3-5811-4d3d-97ff-d19f88dc67ea", Data: []byte{1, 2}}}
				for _, form := range []snp.TrusteeForm{snp.TrusteeFormSev6, snp.TrusteeFormReprC} {
					b, err := snp.MarshalTrusteeEvidence(rr, p, form, chain)
					if err != nil {
						f.Fatal(err)
					}
					f.Add(b)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := snp.ParseTrusteeEvidence(b)
		if err != nil {
			if ev != nil || !(errors.Is(err, snp.ErrMalformed) || errors.Is(err, snp.ErrUnsupported)) {
				t.Fatalf("result %v, error %v", ev != nil, err)
			}
			return
		}
		r := ev.Report
		p := snp.ProductMilan
		turinLike := r.ChipID != [64]byte{} && [56]byte(r.ChipID[8:]) == [56]byte{}
		if r.Version >= 3 && r.CPUIDFamily >= 0x1A || r.Version == 2 && turinLike {
			p = snp.ProductTurin
		}
		out, err := snp.MarshalTrusteeEvidence(r, p, ev.Form, ev.CertChain)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ev2, err := snp.ParseTrusteeEvidence(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(ev2.Report.Raw, r.Raw) || len(ev2.CertChain) != len(ev.CertChain) {
			t.Fatal("round trip differs")
		}
		for i := range ev.CertChain {
			a, c := ev.CertChain[i], ev2.CertChain[i]
			if a.Type != c.Type || a.GUID != c.GUID || !bytes.Equal(a.Data, c.Data) {
				t.Fatalf("cert_chain[%d] differs", i)
			}
		}
		_, _ = ev.Certificates()
	})
}
