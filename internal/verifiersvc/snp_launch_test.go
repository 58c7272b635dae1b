package verifiersvc_test

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// TestSNPLaunchMismatchReason: when the vm_config's launch inputs do not
// reproduce MEASUREMENT, dstack's /verify reason names the input, as
// `tdproof measure snp` does (measure.DiagnoseSNPLaunch through
// dstack.SNPLaunchError).
func TestSNPLaunchMismatchReason(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
	ev, err := dstack.ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil, nil, time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC), verifiersvc.Options{})
	for _, c := range []struct{ old, repl, cause string }{
		{`\"vcpus\":2`, `\"vcpus\":3`, "likely cause: vcpus: MEASUREMENT is the launch digest of 2 vCPUs; the inputs say 3"},
		{`\"guest_features\":1`, `\"guest_features\":33`, "likely cause: guest_features: MEASUREMENT is the launch digest of guest_features 0x1"},
	} {
		a := *ev.Attestation
		a.Config = strings.Replace(a.Config, c.old, c.repl, 1)
		b, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		resp := e.post(t, "/verify", mustJSON(t, map[string]string{"attestation": hex.EncodeToString(b)}))
		var raw map[string]any
		if err := json.Unmarshal(resp.body, &raw); err != nil {
			t.Fatal(err)
		}
		reason, _ := raw["reason"].(string)
		if raw["is_valid"] != false || !strings.Contains(reason, "amd sev-snp measurement mismatch") || !strings.Contains(reason, c.cause) {
			t.Errorf("%s: /verify %s", c.repl, resp.body)
		}
		// As dstack: the report verified, its OS-image step failed.
		det, _ := raw["details"].(map[string]any)
		if !strings.HasPrefix(reason, "OS image hash verification failed: ") || det["quote_verified"] != true || det["tee_variant"] != dstack.TEEVariantSEVSNP {
			t.Errorf("%s: reason %q, quote_verified %v, tee_variant %v; want dstack's OS-image step failure after a verified report", c.repl, reason, det["quote_verified"], det["tee_variant"])
		}
		t.Log(reason)
	}
}
