package verifiersvc_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// TestEveryDstackVector sends every shared dstack evidence file through
// both endpoints: the GetQuote JSON of the legacy and lite variants and
// the SCALE attestation of the lite VM.
func TestEveryDstackVector(t *testing.T) {
	t.Parallel()
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"quote-report.json", "tdx-lite-getquote.json", "tdx-lite-attestation.json"}
	var all [][]byte
	for _, name := range names {
		all = append(all, testvectors.ReadFile(t, "dstack", name))
	}
	e := newEnv(t, c, nil, time.Unix(1774003274, 0), verifiersvc.Options{RefValues: pinned(t, all...)}, afterReadyAllowed(t))
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data := testvectors.ReadFile(t, "dstack", name)
			out, _ := e.native(t, map[string]any{"dstack": json.RawMessage(data)})
			r := out.Result
			if !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming || r.Dstack == nil {
				t.Fatalf("/v1/verify: authentic %v allow %v status %v", r.Authentic, r.Allow, r.Status)
			}
			e.verifyToken(t, out.Token, "")

			resp := e.post(t, "/verify", data)
			if resp.status != http.StatusOK {
				t.Fatalf("/verify: status %d: %s", resp.status, resp.body)
			}
			var raw map[string]any
			if err := json.Unmarshal(resp.body, &raw); err != nil {
				t.Fatal(err)
			}
			d, _ := raw["details"].(map[string]any)
			if raw["is_valid"] != true || d == nil || d["quote_verified"] != true || d["event_log_verified"] != true {
				t.Errorf("/verify: is_valid %v reason %v details %v", raw["is_valid"], raw["reason"], d)
			}
			// The lite fixtures bind os_image_hash, but the ACPI tables'
			// contents are never recomputed from these inputs: dstack
			// reports false as well.
			lite := strings.Contains(name, "lite")
			if d["os_image_hash_verified"] != lite || d["acpi_tables_verified"] != false {
				t.Errorf("/verify: os_image_hash_verified %v acpi_tables_verified %v (lite %v)", d["os_image_hash_verified"], d["acpi_tables_verified"], lite)
			}
			if got := keysOf(d); len(got) != len(dstackVerifierDetails) {
				t.Errorf("/verify details members %v, want %v", got, dstackVerifierDetails)
			}
		})
	}
}

// TestDstackAttestationBeside: on /verify, dstack-verifier lets an
// attestation win over quote and event_log members; tdproof refuses them
// unless they are the attestation's own, so that a response is never
// is_valid for a request that carries a second, unverified evidence.
func TestDstackAttestationBeside(t *testing.T) {
	t.Parallel()
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	att := testvectors.ReadFile(t, "dstack", "tdx-lite-attestation.json")
	gq := testvectors.ReadFile(t, "dstack", "quote-report.json")
	e := newEnv(t, c, nil, time.Unix(1774003274, 0), verifiersvc.Options{RefValues: pinned(t, att, gq)}, afterReadyAllowed(t))
	var a, other map[string]any
	if err := json.Unmarshal(att, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(gq, &other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra map[string]any
		valid bool
	}{
		{"attestation alone", nil, true},
		{"with another quote", map[string]any{"quote": other["quote"]}, false},
		{"with another event log", map[string]any{"event_log": other["event_log"]}, false},
	} {
		req := map[string]any{"attestation": a["attestation"]}
		for k, v := range tc.extra {
			req[k] = v
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := e.post(t, "/verify", body)
		var out struct {
			IsValid bool    `json:"is_valid"`
			Reason  *string `json:"reason"`
		}
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatalf("%s: %v: %s", tc.name, err, resp.body)
		}
		if out.IsValid != tc.valid {
			t.Errorf("%s: is_valid %v (status %d, %s), want %v", tc.name, out.IsValid, resp.status, resp.body, tc.valid)
		}
		if !tc.valid && (out.Reason == nil || !strings.Contains(*out.Reason, "beside an attestation")) {
			t.Errorf("%s: reason %s", tc.name, resp.body)
		}
	}
}
