package snp_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// The real Trustee evidence in testdata/trustee (see its README): one
// Milan report in the repr(C) form with its VCEK, and the same report in
// the sev 6 form without a cert_chain.
func readTrustee(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/trustee/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrusteeRealEvidence: both real forms rebuild the same 1184 bytes,
// whose signature verifies with the carried VCEK to the pinned AMD Milan
// ARK; the sev 6 form re-encodes to the exact input.
func TestTrusteeRealEvidence(t *testing.T) {
	old, err := snp.ParseTrusteeEvidence(readTrustee(t, "e2e-evidence-reprc.json"))
	if err != nil {
		t.Fatal(err)
	}
	sev6, err := snp.ParseTrusteeEvidence(readTrustee(t, "e2e-evidence-sev6.json"))
	if err != nil {
		t.Fatal(err)
	}
	if old.Form != snp.TrusteeFormReprC || sev6.Form != snp.TrusteeFormSev6 {
		t.Fatalf("forms %s %s", old.Form, sev6.Form)
	}
	if !bytes.Equal(old.Report.Raw, sev6.Report.Raw) {
		t.Fatal("the two forms of one report rebuild different bytes")
	}
	if sev6.CertChain != nil || len(old.CertChain) != 1 || old.CertChain[0].Type != snp.TrusteeCertVCEK {
		t.Fatalf("cert chains %+v / %d entries", sev6.CertChain, len(old.CertChain))
	}
	if _, err := sev6.Certificates(); !errors.Is(err, snp.ErrChain) {
		t.Errorf("certificates of evidence without a chain: %v", err)
	}
	certs, err := old.Certificates()
	if err != nil {
		t.Fatal(err)
	}
	res, err := snp.Verify(old.Report, certs, snp.Options{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Product != snp.ProductMilan || !res.AMDRoot || res.Report.Version != 2 {
		t.Errorf("product %s amd root %v version %d", res.Product, res.AMDRoot, res.Report.Version)
	}
	// One changed signed byte: the signature no longer verifies.
	bad := bytes.Replace(readTrustee(t, "e2e-evidence-sev6.json"), []byte(`"guest_svn":4`), []byte(`"guest_svn":5`), 1)
	ev, err := snp.ParseTrusteeEvidence(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snp.Verify(ev.Report, certs, snp.Options{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}); !errors.Is(err, snp.ErrSignature) {
		t.Errorf("changed guest_svn: %v", err)
	}
	// Re-encoding reproduces the inputs byte for byte.
	for _, c := range []struct {
		file string
		form snp.TrusteeForm
		ev   *snp.TrusteeEvidence
	}{{"e2e-evidence-sev6.json", snp.TrusteeFormSev6, sev6}, {"e2e-evidence-reprc.json", snp.TrusteeFormReprC, old}} {
		out, err := snp.MarshalTrusteeEvidence(c.ev.Report, snp.ProductMilan, c.form, c.ev.CertChain)
		if err != nil {
			t.Fatal(err)
		}
		want := readTrustee(t, c.file)
		if c.ev.CertChain == nil {
			// This sample leaves cert_chain out; serde writes null.
			want = append(bytes.TrimSuffix(want, []byte("}")), `,"cert_chain":null}`...)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: re-encoding differs", c.file)
		}
	}
}

// TestTrusteeRoundTrip: snpsim reports of every product, version 2, 3 and
// 5, VCEK and VLEK, in both forms, parse back to the same bytes and
// verify.
func TestTrusteeRoundTrip(t *testing.T) {
	for _, p := range snp.Products {
		g := newGuest(t, p)
		for _, version := range []uint32{2, 3, 5} {
			r := g.Template
			r.Version = version
			if version == 2 {
				r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = 0, 0, 0
				if p == snp.ProductTurin {
					// A Turin chip: CHIP_ID carries 8 bytes, the VCEK a
					// short hwID.
					clear(r.ChipID[8:])
					k, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: r.ChipID, TCB: r.ReportedTCB.Parts(p), ShortHWID: true})
					if err != nil {
						t.Fatal(err)
					}
					g2 := *g
					g2.Key = k
					g = &g2
				}
			}
			raw, err := g.AttestReport(&r)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := snp.ParseReport(raw)
			if err != nil {
				t.Fatal(err)
			}
			chain := []snp.TrusteeCert{{Type: snp.TrusteeCertVCEK, Data: g.Key.Cert.Raw}, {Type: snp.TrusteeCertASK, Data: g.PKI.ASK.Raw},
				{Type: snp.TrusteeCertOther, GUID: "11111111-2222-3333-4444-555555555555", Data: []byte{1}}}
			for _, form := range []snp.TrusteeForm{snp.TrusteeFormSev6, snp.TrusteeFormReprC} {
				js, err := snp.MarshalTrusteeEvidence(rep, p, form, chain)
				if err != nil {
					t.Fatalf("%s v%d %s: %v", p, version, form, err)
				}
				ev, err := snp.ParseTrusteeEvidence(js)
				if err != nil {
					t.Fatalf("%s v%d %s: %v", p, version, form, err)
				}
				if !bytes.Equal(ev.Report.Raw, raw) || ev.Form != form || len(ev.CertChain) != 3 {
					t.Fatalf("%s v%d %s: round trip differs", p, version, form)
				}
				certs, err := ev.Certificates()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := snp.Verify(ev.Report, certs, snp.Options{Now: snpsim.Now, Roots: g.PKI.Roots()}); err != nil {
					t.Errorf("%s v%d %s: %v", p, version, form, err)
				}
			}
		}
	}
}

// TestTrusteeRejects: every deviation from the exact serde forms, and
// every field the byte layout cannot hold, is refused as malformed or
// unsupported.
func TestTrusteeRejects(t *testing.T) {
	sev6 := string(readTrustee(t, "e2e-evidence-sev6.json"))
	reprc := string(readTrustee(t, "e2e-evidence-reprc.json"))
	g := newGuest(t, snp.ProductMilan)
	raw, err := g.Attest([64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := snp.ParseReport(raw)
	v3b, err := snp.MarshalTrusteeEvidence(rep, snp.ProductMilan, snp.TrusteeFormSev6, nil)
	if err != nil {
		t.Fatal(err)
	}
	v3 := string(v3b)
	cases := []struct{ name, in, old, new string }{
		{"not an object", sev6, `{"attestation_report"`, `[{"attestation_report"`},
		{"unknown top member", sev6, `{"attestation_report"`, `{"version":1,"attestation_report"`},
		{"no report", `{"cert_chain":null}`, "", ""},
		{"unknown report member", sev6, `"vmpl":0`, `"vmpl":0,"x":1`},
		{"missing member", sev6, `"vmpl":0,`, ``},
		{"case differs", sev6, `"vmpl":0`, `"VMPL":0`},
		{"repeated member", sev6, `"vmpl":0`, `"vmpl":0,"vmpl":0`},
		{"byte out of range", sev6, `"family_id":[1,`, `"family_id":[256,`},
		{"byte negative", sev6, `"family_id":[1,`, `"family_id":[-1,`},
		{"byte float", sev6, `"family_id":[1,`, `"family_id":[1.0,`},
		{"byte as string", sev6, `"family_id":[1,`, `"family_id":["1",`},
		{"array short", sev6, `"family_id":[1,`, `"family_id":[`},
		{"array long", sev6, `"family_id":[1,`, `"family_id":[1,1,`},
		{"array as base64", sev6, `"host_data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]`, `"host_data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`},
		{"number as string", sev6, `"vmpl":0`, `"vmpl":"0"`},
		{"number null", sev6, `"vmpl":0`, `"vmpl":null`},
		{"u32 overflow", sev6, `"vmpl":0`, `"vmpl":4294967296`},
		{"exponent", sev6, `"guest_svn":4`, `"guest_svn":4e0`},
		{"fmc on one TCB only", sev6, `"current_tcb":{"fmc":null`, `"current_tcb":{"fmc":1`},
		{"fmc on a Milan chip id", sev6, `"fmc":null`, `"fmc":0`},
		{"cpuid in a version 2 report", sev6, `"cpuid_fam_id":null`, `"cpuid_fam_id":25`},
		{"no cpuid in a version 3 report", v3, `"cpuid_fam_id":25`, `"cpuid_fam_id":null`},
		{"fmc with a Milan CPUID", v3, `"fmc":null`, `"fmc":1`},
		{"Turin CPUID with legacy TCBs", v3, `"cpuid_fam_id":25`, `"cpuid_fam_id":26`},
		{"tcb member missing", sev6, `"current_tcb":{"fmc":null,`, `"current_tcb":{`},
		{"version member unknown", sev6, `"current":{"major":1`, `"current":{"patch":0,"major":1`},
		{"signature reserved in sev6", sev6, `"s":[64`, `"_reserved":[],"s":[64`},
		{"version 4", sev6, `"version":2`, `"version":4`},
		{"version 2 masked chip id", sev6, `"chip_id":[195,132,39,163,13,76,122,249,217,111,122,21,185,114,105,130,90,100,203,118,162,53,47,253,93,24,17,93,137,173,71,63,142,140,11,205,154,93,146,134,97,43,173,74,173,251,68,38,32,90,59,158,79,234,130,48,17,53,161,112,228,119,82,78]`, `"chip_id":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]`},
		{"policy reserved bit", sev6, `"policy":196639`, `"policy":67305503`},
		{"mixed forms", sev6, `"key_info":0`, `"key_info":0,"_author_key_en":0`},
		{"neither form", sev6, `"key_info":0`, `"keyinfo":0`},
		{"repr-C reserved not zero", reprc, `"_reserved_0":0`, `"_reserved_0":1`},
		{"repr-C signature reserved not zero", reprc, `"_reserved":[0,0,0,0,0,0,0,0,0,0`, `"_reserved":[1,0,0,0,0,0,0,0,0,0`},
		{"repr-C missing reserved", reprc, `"_reserved_2":0,`, ``},
		{"cert type unknown", reprc, `"cert_type":"VCEK"`, `"cert_type":"PCK"`},
		{"cert type lower case", reprc, `"cert_type":"VCEK"`, `"cert_type":"vcek"`},
		{"cert type unit as map", reprc, `"cert_type":"VCEK"`, `"cert_type":{"VCEK":null}`},
		{"cert type OTHER no GUID", reprc, `"cert_type":"VCEK"`, `"cert_type":{"OTHER":"x"}`},
		{"cert entry unknown member", reprc, `"cert_type":"VCEK"`, `"cert_type":"VCEK","guid":"x"`},
		{"cert data not bytes", reprc, `"data":[48,`, `"data":[4800,`},
		{"cert chain not a list", sev6, `}}}`, `}},"cert_chain":{}}`},
		{"trailing data", sev6, `}}}`, `}}}{}`},
	}
	for _, c := range cases {
		in := c.in
		if c.old != "" {
			if !strings.Contains(in, c.old) {
				t.Fatalf("%s: %q not in the input", c.name, c.old)
			}
			in = strings.Replace(in, c.old, c.new, 1)
		}
		ev, err := snp.ParseTrusteeEvidence([]byte(in))
		if err == nil || ev != nil || !(errors.Is(err, snp.ErrMalformed) || errors.Is(err, snp.ErrUnsupported)) {
			t.Errorf("%s: evidence %v, error %v", c.name, ev != nil, err)
		}
	}
	// Too many cert_chain entries.
	many := strings.Repeat(`{"cert_type":"Empty","data":[]},`, 17)
	if _, err := snp.ParseTrusteeEvidence([]byte(strings.Replace(sev6, `}}}`, `}},"cert_chain":[`+many[:len(many)-1]+`]}`, 1))); !errors.Is(err, snp.ErrMalformed) {
		t.Errorf("17 entries: %v", err)
	}
	// Two VCEK entries, or none for the report's signing key.
	ent := `{"cert_type":"VCEK","data":[` + strings.Trim(strings.Join(strings.Fields(strings.Repeat("1 ", 3)), ","), ",") + `]}`
	two, err := snp.ParseTrusteeEvidence([]byte(strings.Replace(sev6, `}}}`, `}},"cert_chain":[`+ent+`,`+ent+`]}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := two.Certificates(); !errors.Is(err, snp.ErrMalformed) {
		t.Errorf("two VCEK entries: %v", err)
	}
	vlek, err := snp.ParseTrusteeEvidence([]byte(strings.Replace(reprc, `"cert_type":"VCEK"`, `"cert_type":"VLEK"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vlek.Certificates(); !errors.Is(err, snp.ErrChain) {
		t.Errorf("VLEK entry for a VCEK-signed report: %v", err)
	}
	// The sev 6 form cannot carry mitigation vectors.
	r5 := g.Template
	r5.Version, r5.LaunchMitVector = 5, 1
	raw5, _ := g.AttestReport(&r5)
	rep5, _ := snp.ParseReport(raw5)
	if _, err := snp.MarshalTrusteeEvidence(rep5, snp.ProductMilan, snp.TrusteeFormSev6, nil); !errors.Is(err, snp.ErrMalformed) {
		t.Errorf("mitigation vector in the sev 6 form: %v", err)
	}
	if _, err := snp.MarshalTrusteeEvidence(rep5, snp.ProductMilan, snp.TrusteeFormReprC, nil); err != nil {
		t.Errorf("mitigation vector in the repr(C) form: %v", err)
	}
}
