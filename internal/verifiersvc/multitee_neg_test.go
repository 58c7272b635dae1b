package verifiersvc_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
	"github.com/tdproof/tdproof/verifier"
)

// teeNegative is one refused evidence through the service.
type teeNegative struct {
	name string
	env  *env
	att  []byte
	// nonce is the request's nonce (hex, "" none).
	nonce string
	// reason, when set, is a substring of the result's reason: the
	// evidence is not authentic. rule, when set, is the failed policy
	// rule: authentic but denied.
	reason, rule string
}

// TestTEENegativeCases sends, for each of Nitro Enclave, NitroTPM and GCP
// TDX, the refusal families of issue 14 through the service path (POST
// /v1/verify and the dstack-compatible POST /verify) against a service
// that pins the evidence's code and trusts its simulator PKI: a debug
// enclave or TD, a wrong PCR (pinned, or not the one the OS image names),
// a wrong binding (report data, nonce, the vTPM quote's extraData), an
// expired document or certificate, and swapped evidence (a part of
// another attestation or platform). Every one is refused — not
// authentic, with the reason, or denied, with the rule — and /verify
// answers is_valid false.
func TestTEENegativeCases(t *testing.T) {
	var cases []teeNegative

	// Nitro Enclave and NitroTPM under one test PKI.
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	enc := nitrosim.Enclave(now, nil)
	tpmDoc := nitrosim.NitroTPM(now, nil, nil)
	refs := refStore(t, map[string]string{
		"nitro.pcr0": hex.EncodeToString(enc.PCRs[0]), "nitro.pcr1": hex.EncodeToString(enc.PCRs[1]), "nitro.pcr2": hex.EncodeToString(enc.PCRs[2]),
		"tpm.pcr4": hex.EncodeToString(tpmDoc.PCRs[4]), "tpm.pcr7": hex.EncodeToString(tpmDoc.PCRs[7]), "tpm.pcr12": hex.EncodeToString(tpmDoc.PCRs[12]),
	})
	nitroEnv := newEnv(t, nil, nil, now, verifiersvc.Options{RefValues: refs}, verifier.WithNitroRoot(ca.Root))
	late := newEnv(t, nil, nil, now.Add(time.Hour+time.Second), verifiersvc.Options{RefValues: refs}, verifier.WithNitroRoot(ca.Root))
	appIDRefs := refStore(t, map[string]string{
		"nitro.pcr0": hex.EncodeToString(enc.PCRs[0]), "nitro.pcr1": hex.EncodeToString(enc.PCRs[1]), "nitro.pcr2": hex.EncodeToString(enc.PCRs[2]),
		"dstack.app_id": hex.EncodeToString([]byte("0123456789abcdefghij")),
	})
	appIDEnv := newEnv(t, nil, nil, now, verifiersvc.Options{RefValues: appIDRefs}, verifier.WithNitroRoot(ca.Root))
	rd := [64]byte{0x42}
	encl := func(o nitrosim.DstackOptions) []byte {
		t.Helper()
		if o.ReportData == ([64]byte{}) {
			o.ReportData = rd
		}
		b, err := ca.DstackEnclave(now, o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ntpm := func(o nitrosim.DstackOptions) []byte {
		t.Helper()
		o.ReportData = rd
		o.Events = teeEvents()
		b, err := ca.DstackNitroTPM(now, o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Controls: both are affirming here (checked below), so the refusals
	// come from the one change each makes.
	goodEnclave, goodTPM := encl(nitrosim.DstackOptions{}), ntpm(nitrosim.DstackOptions{})
	swap := func(att []byte, edit func(a *dstack.Attestation)) []byte {
		t.Helper()
		a, err := dstack.ParseAttestation(att)
		if err != nil {
			t.Fatal(err)
		}
		edit(a)
		b, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flip := func(i int) func(*nitrosim.Doc) {
		return func(d *nitrosim.Doc) { d.PCRs[i] = append([]byte{0xee}, d.PCRs[i][1:]...) }
	}
	zero := func(d *nitrosim.Doc) {
		for i := 0; i < 3; i++ {
			d.PCRs[i] = make([]byte, 48)
		}
	}
	nonceRD := hex.EncodeToString(rd[:])
	cases = append(cases,
		teeNegative{name: "nitro-enclave/debug enclave", env: nitroEnv, att: encl(nitrosim.DstackOptions{Doc: zero}), reason: "debug mode"},
		teeNegative{name: "nitro-enclave/wrong PCR1 (pinned)", env: nitroEnv, att: encl(nitrosim.DstackOptions{Doc: flip(1)}), rule: policy.RuleReferenceValue},
		teeNegative{name: "nitro-enclave/wrong PCR2 (not the os_image_hash's)", env: nitroEnv, att: encl(nitrosim.DstackOptions{Tamper: flip(2)}), reason: "os_image_hash"},
		teeNegative{name: "nitro-enclave/wrong binding: user_data not report_data", env: nitroEnv, att: encl(nitrosim.DstackOptions{Tamper: func(d *nitrosim.Doc) { d.UserData = make([]byte, 64) }}), reason: "user_data"},
		teeNegative{name: "nitro-enclave/wrong binding: nonce", env: nitroEnv, att: goodEnclave, nonce: "43", rule: policy.RuleReportData},
		teeNegative{name: "nitro-enclave/expired document", env: late, att: goodEnclave, nonce: nonceRD, reason: "stale"},
		teeNegative{name: "nitro-enclave/swapped: NitroTPM document as nsm_quote", env: nitroEnv, att: swap(goodEnclave, func(a *dstack.Attestation) {
			b, _ := dstack.ParseAttestation(goodTPM)
			a.NSMQuote = b.NitroTPMDocument
		}), reason: "nitro"},
		teeNegative{name: "nitro-enclave/swapped: report_data of another attestation", env: nitroEnv, att: swap(goodEnclave, func(a *dstack.Attestation) { a.ReportData[0] ^= 1 }), reason: "user_data"},
		// An enclave's runtime events are not measured: a pinned app id
		// can never be matched by one (fail closed), whatever it says.
		teeNegative{name: "nitro-enclave/unmeasured app-id event against a pinned app id", env: appIDEnv,
			att: encl(nitrosim.DstackOptions{Events: []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}}}), rule: policy.RuleReferenceValue},
		teeNegative{name: "aws-nitro-tpm/wrong PCR7 (pinned)", env: nitroEnv, att: ntpm(nitrosim.DstackOptions{Doc: flip(7)}), rule: policy.RuleReferenceValue},
		teeNegative{name: "aws-nitro-tpm/wrong PCR12 (not the aws_measurement's)", env: nitroEnv, att: ntpm(nitrosim.DstackOptions{Tamper: flip(12)}), reason: "boot_pcr_digest"},
		teeNegative{name: "aws-nitro-tpm/wrong PCR14 (not the runtime replay)", env: nitroEnv, att: ntpm(nitrosim.DstackOptions{Tamper: flip(14)}), reason: "PCR14"},
		teeNegative{name: "aws-nitro-tpm/wrong binding: user_data not report_data", env: nitroEnv, att: ntpm(nitrosim.DstackOptions{Tamper: func(d *nitrosim.Doc) { d.UserData = make([]byte, 64) }}), reason: "user_data"},
		teeNegative{name: "aws-nitro-tpm/wrong binding: nonce", env: nitroEnv, att: goodTPM, nonce: "43", rule: policy.RuleReportData},
		teeNegative{name: "aws-nitro-tpm/expired document", env: late, att: goodTPM, reason: "stale"},
		teeNegative{name: "aws-nitro-tpm/swapped: enclave document as attestation_doc", env: nitroEnv, att: swap(goodTPM, func(a *dstack.Attestation) {
			b, _ := dstack.ParseAttestation(goodEnclave)
			a.NitroTPMDocument = b.NSMQuote
		}), reason: "nitro"},
		teeNegative{name: "aws-nitro-tpm/swapped: runtime events of another instance", env: nitroEnv, att: swap(goodTPM, func(a *dstack.Attestation) {
			a.RuntimeEvents[1].Payload = []byte("another app id 12345")
		}), reason: "PCR14"},
	)

	// GCP TDX: one dcaptest PKI, one tpmsim AK PKI.
	pki := sharedPKI(t)
	gf, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: pki})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tpmsim.New(gf.Now, false)
	if err != nil {
		t.Fatal(err)
	}
	gcp := func(o tpmsim.GCPOptions) []byte {
		t.Helper()
		f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: pki})
		if err != nil {
			t.Fatal(err)
		}
		if o.ReportData == ([64]byte{}) {
			o.ReportData = rd
		}
		o.Events = teeEvents()
		b, _, err := s.DstackGCP(f, o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	col, err := gf.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	var pcr2 [32]byte
	for _, d := range tpmsim.DefaultPCR2Events() {
		pcr2 = tpm.Extend(pcr2, d)
	}
	grefs := refStore(t, map[string]string{"tdx.mr_td": hex.EncodeToString(gf.QuoteSpec.TD.MRTD[:]), "tpm.pcr0": dstack.DefaultGCPFirmwarePCR0, "tpm.pcr2": hex.EncodeToString(pcr2[:])})
	gopts := []verifier.Option{verifier.WithTrustedRoot(pki.Root.Certificate), verifier.WithGCPTPMRoots(s.Root, []*x509.Certificate{s.Intermediate})}
	gcpEnv := newEnv(t, col, nil, gf.Now, verifiersvc.Options{RefValues: grefs}, gopts...)
	// Two days later the AK certificate (valid a day around the
	// fixture's time) has expired.
	gcpLate := newEnv(t, col, nil, gf.Now.Add(48*time.Hour), verifiersvc.Options{RefValues: grefs}, gopts...)
	goodGCP, otherGCP := gcp(tpmsim.GCPOptions{}), gcp(tpmsim.GCPOptions{ReportData: [64]byte{0x43}})
	extraPCR2 := append(tpmsim.DefaultPCR2Events(), make([]byte, 32))
	cases = append(cases,
		teeNegative{name: "gcp-tdx/debug TD", env: gcpEnv, att: gcp(tpmsim.GCPOptions{TD: func(td *quote.TDReport) { td.TDAttributes[0] |= 1 }}), rule: policy.RuleDebug},
		teeNegative{name: "gcp-tdx/wrong PCR2 (pinned)", env: gcpEnv, att: gcp(tpmsim.GCPOptions{PCR2Events: extraPCR2}), rule: policy.RuleReferenceValue},
		teeNegative{name: "gcp-tdx/wrong PCR0 (not an accepted firmware)", env: gcpEnv, att: gcp(tpmsim.GCPOptions{PCR0: make([]byte, 32)}), reason: "accepted GCP firmware"},
		teeNegative{name: "gcp-tdx/wrong MRTD (pinned)", env: gcpEnv, att: gcp(tpmsim.GCPOptions{TD: func(td *quote.TDReport) { td.MRTD[0] ^= 1 }}), rule: policy.RuleReferenceValue},
		teeNegative{name: "gcp-tdx/wrong binding: vTPM extraData", env: gcpEnv, att: gcp(tpmsim.GCPOptions{ExtraData: func([]byte) []byte { return make([]byte, 32) }}), reason: "qualified_data"},
		teeNegative{name: "gcp-tdx/wrong binding: nonce", env: gcpEnv, att: goodGCP, nonce: "43", rule: policy.RuleReportData},
		teeNegative{name: "gcp-tdx/expired AK certificate", env: gcpLate, att: goodGCP, reason: "TPM quote"},
		teeNegative{name: "gcp-tdx/swapped: vTPM quote of another attestation", env: gcpEnv, att: swap(goodGCP, func(a *dstack.Attestation) {
			b, _ := dstack.ParseAttestation(otherGCP)
			a.TPMQuote = b.TPMQuote
		}), reason: "qualified_data"},
		teeNegative{name: "gcp-tdx/swapped: TDX quote of another attestation", env: gcpEnv, att: swap(goodGCP, func(a *dstack.Attestation) {
			b, _ := dstack.ParseAttestation(otherGCP)
			a.Quote = b.Quote
		}), reason: "report"},
		teeNegative{name: "gcp-tdx/swapped: quoted PCR0 not the signed one", env: gcpEnv, att: swap(goodGCP, func(a *dstack.Attestation) {
			a.TPMQuote.PCRValues[0].Value = make([]byte, 32)
		}), reason: "TPM quote"},
	)

	// The controls.
	for _, c := range []struct {
		e   *env
		att []byte
	}{{nitroEnv, goodEnclave}, {nitroEnv, goodTPM}, {gcpEnv, goodGCP}} {
		out, _ := c.e.native(t, map[string]any{"dstack": map[string]string{"attestation": hex.EncodeToString(c.att)}, "nonce": nonceRD})
		if !out.Result.Authentic || out.Result.Status.String() != "affirming" {
			t.Fatalf("control %s: %+v", out.Result.TEEVariant, out.Result)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := map[string]any{"dstack": map[string]string{"attestation": hex.EncodeToString(c.att)}}
			if c.nonce != "" {
				req["nonce"] = c.nonce
			}
			out, _ := c.env.native(t, req)
			r := out.Result
			switch {
			case c.reason != "":
				if r.Authentic || !strings.Contains(r.Reason, c.reason) {
					t.Fatalf("authentic %v reason %q, want not authentic with %q", r.Authentic, r.Reason, c.reason)
				}
			default:
				if !r.Authentic || r.Allow || r.Appraisal == nil || len(r.Appraisal.Failed) == 0 || r.Appraisal.Failed[0].Rule != c.rule {
					t.Fatalf("authentic %v allow %v appraisal %+v, want denied by %s", r.Authentic, r.Allow, r.Appraisal, c.rule)
				}
			}
			if r.Status.String() != "contraindicated" {
				t.Errorf("EAR status %s", r.Status)
			}
			if c.nonce == "" {
				resp := c.env.post(t, "/verify", mustJSON(t, map[string]string{"attestation": hex.EncodeToString(c.att)}))
				var got map[string]any
				if err := json.Unmarshal(resp.body, &got); err != nil || got["is_valid"] != false {
					t.Errorf("/verify: %s", resp.body)
				}
			}
		})
	}
	if len(cases) < 25 {
		t.Fatalf("%d cases", len(cases))
	}
}
