package verifiersvc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// TestSNPFixtureEndpoints sends the real dstack SEV-SNP fixture through
// /v1/verify and the dstack-compatible /verify: under a policy that
// accepts OutOfDate (dstack has no TCB policy) with the measurement pinned
// it is valid; under the default policy OutOfDate rejects it.
func TestSNPFixtureEndpoints(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
	now := time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)
	refs := refvalue.NewMemoryStore()
	if _, err := refs.Add(context.Background(), refvalue.Value{Name: "snp.measurement",
		Values: []string{"7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"}}); err != nil {
		t.Fatal(err)
	}
	compat, err := policy.FromRules("dstack-compat", "1", policy.Rules{AcceptedTCBStatuses: []string{"UpToDate", "OutOfDate"}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil, nil, now, verifiersvc.Options{RefValues: refs},
		verifier.WithPolicyResolver(func(context.Context, string) (*policy.Policy, error) { return compat, nil }))
	out, _ := e.native(t, map[string]any{"dstack": json.RawMessage(data)})
	r := out.Result
	if !r.Authentic || !r.Allow || r.TEE != "snp" || r.Dstack == nil || r.Status != ear.StatusWarning {
		t.Fatalf("/v1/verify: authentic %v allow %v tee %s status %v reason %s", r.Authentic, r.Allow, r.TEE, r.Status, r.Reason)
	}
	if v, _ := r.Claims.String("dstack.device_id"); v != "310f86e9970d2b625f8a1024f05ea59d540743de63e9017c8c4c0f50a14a10a6" {
		t.Errorf("device_id claim %q", v)
	}
	tc := e.verifyToken(t, out.Token, "")
	if _, ok := tc.Submods[ear.SubmodSNP]; !ok {
		t.Errorf("token submods %v", tc.Submods)
	}
	resp := e.post(t, "/verify", data)
	if resp.status != http.StatusOK {
		t.Fatalf("/verify: %d %s", resp.status, resp.body)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	d, _ := raw["details"].(map[string]any)
	if raw["is_valid"] != true || d["quote_verified"] != true || d["event_log_verified"] != true || d["os_image_hash_verified"] != true ||
		d["acpi_tables_verified"] != false || d["tee_variant"] != "dstack-amd-sev-snp" || d["tcb_status"] != "OutOfDate" {
		t.Errorf("/verify: %s", resp.body)
	}
	if got := keysOf(d); len(got) != len(dstackVerifierDetails) {
		t.Errorf("/verify details members %v, want %v", got, dstackVerifierDetails)
	}
	ai, _ := d["app_info"].(map[string]any)
	if ai["app_id"] != "86e59625be93207bc2351c4d1bba20037cec8e16" || ai["mr_aggregated"] != "c7a8e492fcd0167c76f3c64ff20d96648403020f80b38e9384a7432077e4a7a7" {
		t.Errorf("app_info %v", ai)
	}

	// Default policy: OutOfDate is rejected, the rule named.
	e2 := newEnv(t, nil, nil, now, verifiersvc.Options{RefValues: refs})
	resp = e2.post(t, "/verify", data)
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["is_valid"] != false || !strings.Contains(raw["reason"].(string), "tcb_status") {
		t.Errorf("default policy /verify: %s", resp.body)
	}
	// A tampered report is not authentic.
	var req map[string]string
	_ = json.Unmarshal(data, &req)
	att := []byte(req["attestation"])
	i := strings.Index(string(att), "7f51e17f")
	att[i] = '8'
	resp = e.post(t, "/verify", mustJSON(t, map[string]string{"attestation": string(att)}))
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["is_valid"] != false || !strings.HasPrefix(raw["reason"].(string), "Quote verification failed") {
		t.Errorf("tampered /verify: %s", resp.body)
	}
}
