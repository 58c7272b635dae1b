package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/report"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// verify runs the verifier on ev with collateral col at at and reference
// values refs, and returns the /v1/verify-shaped response body.
func verify(t testing.TB, ev verifier.Evidence, col *collateral.Collateral, at time.Time, refs []refvalue.Value) []byte {
	t.Helper()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ear.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ear.NewSigner(ks, ear.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	store := refvalue.NewMemoryStore()
	for _, r := range refs {
		if _, err := store.Add(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil }),
		store, signer, verifier.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	ev.Details = true
	o, err := v.Verify(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"media_type": verifier.MediaType, "result": o.Result, "token": o.Token})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func render(t *testing.T, body []byte) (page, frag string) {
	t.Helper()
	in, err := report.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	v, err := report.New(in)
	if err != nil {
		t.Fatal(err)
	}
	var p, f bytes.Buffer
	if err := report.Page(&p, v); err != nil {
		t.Fatal(err)
	}
	if err := report.Fragment(&f, v); err != nil {
		t.Fatal(err)
	}
	return p.String(), f.String()
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: no %q", what, sub)
		}
	}
}

// TestDstackVectorMismatch: the dstack vector with RTMR1 pinned to a value
// one byte off is contraindicated; the report names the failed rules,
// marks exactly the differing byte, shows the chain, the TCB, the
// system-ready cut-off with the event after it, and the app identity.
func TestDstackVectorMismatch(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "dstack", "quote-report.json")
	col, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	de, err := dstack.ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	refs := refvalue.ForTD(de.Quote.TD.MRTD, de.Quote.TD.RTMRs, refvalue.Provenance{Source: "test"})
	good := refs[2].Values[0]
	b := []byte(good)
	// Flip the 5th byte's low nibble.
	if b[9] == '0' {
		b[9] = '1'
	} else {
		b[9] = '0'
	}
	refs[2].Values = []string{string(b)}
	page, frag := render(t, verify(t, verifier.Evidence{Dstack: data}, col, time.Unix(1774003274, 0), refs))
	wantContains(t, "fragment", frag,
		`data-verdict="contraindicated"`, "Contraindicated: the evidence is authentic",
		`data-rule="reference_value"`, `data-rule="events_after_system_ready"`,
		`data-name="tdx.rtmr_1" data-outcome="mismatch"`,
		`<mark class="diff">`+good[8:10]+`</mark>`, `<mark class="diff">`+string(b[8:10])+`</mark>`,
		`data-name="tdx.mr_td" data-outcome="match"`,
		`id="system-ready-marker"`, "after system-ready: not part of the identity",
		"Intel SGX Root CA", "not revoked", `id="tcb-status">UpToDate`,
		"App id", "Compose hash", `id="download-token"`, `href="data:application/jwt;base64,`)
	// The quoted and the reference byte, and the legend's example.
	if n := strings.Count(frag, `<mark class="diff">`); n != 3 {
		t.Errorf("%d marked runs, want 3", n)
	}
	wantContains(t, "page", page, "<style>", "prefers-color-scheme: dark", frag)
	for _, bad := range []string{"<script", "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q: not self-contained", bad)
		}
	}
}

// TestSGXVectorAdvisories: the SGX vector's advisories link to Intel's
// advisory pages; its TCB status fails the default policy.
func TestSGXVectorAdvisories(t *testing.T) {
	t.Parallel()
	raw := testvectors.ReadFile(t, "dcap", "sgx-v3-00a067", "quote.bin")
	col, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "sgx-v3-00a067", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, frag := render(t, verify(t, verifier.Evidence{Quote: raw}, col, time.Unix(1752919277, 0), nil))
	wantContains(t, "fragment", frag, `data-verdict="contraindicated"`, `data-rule="tcb_status"`,
		`href="https://www.intel.com/content/www/us/en/security-center/advisory/intel-sa-00289.html"`,
		`id="tcb-status">ConfigurationAndSWHardeningNeeded`, "MRENCLAVE", "no reference value")
}

// TestNotAuthentic: a quote whose signature is broken renders the
// not-authentic verdict with the reason, and no measurements.
func TestNotAuthentic(t *testing.T) {
	t.Parallel()
	raw := testvectors.ReadFile(t, "dcap", "tdx-v4-b0c06f", "quote.bin")
	col, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-b0c06f", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := quote.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Tamper with REPORTDATA (signed by the attestation key).
	tampered := append([]byte(nil), raw...)
	off := bytes.Index(tampered, q.TD.ReportData[:])
	if off < 0 {
		t.Fatal("report data not found in the quote")
	}
	tampered[off] ^= 1
	_, frag := render(t, verify(t, verifier.Evidence{Quote: tampered}, col, time.Unix(1752919234, 0), nil))
	wantContains(t, "fragment", frag, `data-verdict="not-authentic"`, "Not authentic: the evidence failed verification",
		`data-rule="authentic"`, "No measurements", "No TCB evaluation")
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{}`, `{"result":{}}`, `not json`, `{"result":{"appraisal":null}}`} {
		if _, err := report.Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%s) accepted", in)
		}
	}
}

// FuzzReport: any input either is refused by Parse or renders, and the
// rendering never carries markup from the input.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`{"result":{"authentic":false,"allow":false,"ear_status":"contraindicated","tee":"tdx","reason":"x","appraisal":{"allow":false,"failed":[{"rule":"authentic"}],"policy_id":"default","policy_version":"1","trust_vector":{},"time":"2026-01-01T00:00:00Z"},"trust_vector":{}},"token":"a.b.c"}`))
	f.Add([]byte(`{"result":{"authentic":true,"allow":false,"ear_status":"contraindicated","tee":"tdx","appraisal":{"allow":false,"failed":[],"comparisons":[{"name":"tdx.mr_td","claim":"c","expected":["00ff","0fff"],"actual":"00fe","outcome":"mismatch"}],"policy_id":"p","policy_version":"1","trust_vector":{},"time":"2026-01-01T00:00:00Z"},"trust_vector":{},"event_log":[{"imr":3,"event_type":"DSTACK_RUNTIME","event":"system-ready","description":"d","runtime":true,"system_ready":true}]}}`))
	// A real result: the dstack vector.
	if _, err := os.Stat(testvectors.Location()); err == nil {
		col, err := collateral.ParseQVLJSON(testvectors.ReadFile(f, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(verify(f, verifier.Evidence{Dstack: testvectors.ReadFile(f, "dstack", "quote-report.json")}, col, time.Unix(1774003274, 0), nil))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := report.Parse(body)
		if err != nil {
			return
		}
		v, err := report.New(in)
		if err != nil {
			t.Fatalf("New after Parse: %v", err)
		}
		var b bytes.Buffer
		if err := report.Fragment(&b, v); err != nil {
			t.Fatalf("Fragment: %v", err)
		}
		if strings.Contains(b.String(), "<script") {
			t.Fatalf("markup from the input: %s", b.String())
		}
	})
}
