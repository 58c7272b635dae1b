package verifiersvc_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

// TestSNPFixtureEndpoints sends the real dstack SEV-SNP fixture through
// /v1/verify and the dstack-compatible /verify: under a policy that
// accepts OutOfDate (dstack has no TCB policy) and an unchecked CRL
// (dstack fetches none) with the measurement pinned it is valid; under the
// default policy OutOfDate and the missing CRL reject it.
func TestSNPFixtureEndpoints(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
	now := time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)
	refs := refvalue.NewMemoryStore()
	if _, err := refs.Add(context.Background(), refvalue.Value{Name: "snp.measurement",
		Values: []string{"7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"}}); err != nil {
		t.Fatal(err)
	}
	// dstack's acceptance: no TCB policy, no CRL (no AMD-signed CRL is
	// among the test data; TestSNPCRLEndpoints covers CRLs).
	compat, err := policy.FromRules("dstack-compat", "1", policy.Rules{AcceptedTCBStatuses: []string{"UpToDate", "OutOfDate"}, AllowUncheckedCRLUnsafe: true})
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
	if raw["is_valid"] != false || !strings.Contains(raw["reason"].(string), "tcb_status") || !strings.Contains(raw["reason"].(string), "crl_checked") {
		t.Errorf("default policy /verify: %s", resp.body)
	}
	// serve --dstack-compat-policy: /verify's is_valid is dstack's rule
	// (every step verified; no TCB policy, no CRL) under the default
	// policy, which still refuses the evidence on /v1/verify.
	e3 := newEnv(t, nil, nil, now, verifiersvc.Options{RefValues: refs, DstackCompatPolicy: true})
	resp = e3.post(t, "/verify", data)
	raw = nil
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	d, _ = raw["details"].(map[string]any)
	if raw["is_valid"] != true || raw["reason"] != nil || d["quote_verified"] != true || d["acpi_tables_verified"] != false || d["tcb_status"] != "OutOfDate" {
		t.Errorf("--dstack-compat-policy /verify: %s", resp.body)
	}
	if out, _ := e3.native(t, map[string]any{"dstack": json.RawMessage(data)}); out.Result.Allow {
		t.Errorf("--dstack-compat-policy /v1/verify allowed under the default policy: %s", out.Result.Reason)
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

// TestSNPCRLEndpoints sends snpsim dstack SEV-SNP evidence through
// /v1/verify and the dstack-compatible /verify with the AMD CRL the
// verifier obtains (WithSNPCRLs): a clean current CRL is valid (the
// details name it); a revoked VCEK or ASK, a CRL past its nextUpdate and
// one signed by another ARK are not authentic; no CRL is refused by the
// default policy (rule crl_checked).
func TestSNPCRLEndpoints(t *testing.T) {
	t.Parallel()
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	other, err := snpsim.GeneratePKI(snp.ProductGenoa, g.PKI.NotBefore, g.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	now, day := snpsim.Now, 24*time.Hour
	refs := refvalue.NewMemoryStore()
	if _, err := refs.Add(context.Background(), refvalue.Value{Name: "snp.measurement", Values: []string{hex.EncodeToString(g.Template.Measurement[:])}}); err != nil {
		t.Fatal(err)
	}
	doc := `{"compose_hash":"0000000000000000000000000000000000000000000000000000000000000000","key_provider":"none"}`
	att, err := g.DstackAttestation([64]byte{7}, doc, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body := mustJSON(t, map[string]string{"attestation": hex.EncodeToString(att)})
	crl := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	envOpts := func(crl []byte, opts verifiersvc.Options) *env {
		return newEnv(t, nil, nil, now, opts,
			verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})),
			verifier.WithSNPCRLs(func(context.Context, *snp.Report) ([][]byte, error) {
				if crl == nil {
					return nil, errors.New("AMD KDS unavailable")
				}
				return [][]byte{crl}, nil
			}))
	}
	envWith := func(crl []byte) *env { return envOpts(crl, verifiersvc.Options{RefValues: refs}) }
	// verdict posts the evidence to both endpoints: the native result and
	// /verify's is_valid and reason.
	verdict := func(e *env) (*verifier.Result, bool, string) {
		t.Helper()
		out, _ := e.native(t, map[string]any{"dstack": json.RawMessage(body), "details": true})
		resp := e.post(t, "/verify", body)
		var raw map[string]any
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &raw) != nil {
			t.Fatalf("/verify: %d %s", resp.status, resp.body)
		}
		reason, _ := raw["reason"].(string)
		return out.Result, raw["is_valid"] == true, reason
	}
	r, valid, reason := verdict(envWith(crl(g.CRL())))
	if !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming || !valid {
		t.Fatalf("clean CRL: authentic %v allow %v status %v; /verify %v %s", r.Authentic, r.Allow, r.Status, valid, reason)
	}
	if len(r.Chain) != 3 || r.Chain[0].Revocation != verifier.NotRevoked || r.Chain[0].CRLNextUpdate == nil || r.Dstack.SNP.CRL == nil {
		t.Errorf("clean CRL details: %+v", r.Chain)
	}
	for _, c := range []struct {
		name      string
		crl       []byte
		authentic bool
	}{
		{"VCEK revoked", crl(g.CRL(g.Key.Cert)), false},
		{"ASK revoked", crl(g.CRL(g.PKI.ASK)), false},
		{"CRL expired", crl(g.PKI.CRL(now.Add(-3*day), now.Add(-day))), false},
		{"CRL of another ARK", crl(other.CRL(now.Add(-day), now.Add(day))), false},
		{"CRL missing", nil, true},
	} {
		r, valid, reason := verdict(envWith(c.crl))
		if r.Allow || valid || r.Authentic != c.authentic || r.Status == ear.StatusAffirming || r.Status == ear.StatusWarning {
			t.Errorf("%s: authentic %v allow %v status %v; /verify valid %v %s", c.name, r.Authentic, r.Allow, r.Status, valid, reason)
			continue
		}
		want := "Quote verification failed"
		if c.authentic {
			want = "crl_checked"
		}
		if !strings.Contains(reason, want) {
			t.Errorf("%s: /verify reason %q, want %q", c.name, reason, want)
		}
		// serve --dstack-compat-policy: /verify's is_valid is dstack's
		// rule, which needs no CRL (this evidence then fails only its
		// OS image step: it carries no vm_config) but still refuses a
		// revoked or stale one as a quote failure; /v1/verify is
		// unaffected.
		r, valid, reason = verdict(envOpts(c.crl, verifiersvc.Options{RefValues: refs, DstackCompatPolicy: true}))
		want = "Quote verification failed"
		if c.authentic {
			want = "OS image hash verification failed"
		}
		if valid || r.Allow || !strings.HasPrefix(reason, want) {
			t.Errorf("%s, dstack-compat policy: /verify valid %v (%s), want %q; /v1/verify allow %v", c.name, valid, reason, want, r.Allow)
		}
	}
}
