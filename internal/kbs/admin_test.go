package kbs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

const adminToken = "admin-token-for-tests"

// adminEnv is a broker whose verifier, like serve's, resolves attestation
// policies and reference values from the store.
type adminEnv struct {
	*env
	st     *store.Store
	b      *kbs.Broker
	v      *verifier.Verifier
	signer *ear.Signer
	kek    []byte
	dsn    string
}

type envOpts struct {
	adminToken string
	appKeyRoot []byte
	// unpinned leaves the reference-value store empty (by default it
	// pins the simulated TD's MRTD and RTMR0–2).
	unpinned bool
}

func newAdminEnv(t *testing.T, dsn string, sim *tdsim.Sim, o envOpts) *adminEnv {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ear.NewSigner(keys, ear.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	col, err := sim.Collateral(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
	for _, rv := range sim.ReferenceValues() {
		if o.unpinned {
			break
		}
		if _, err := st.RefValues().Add(t.Context(), rv); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verifier.New(src, st.RefValues(), signer, verifier.WithClock(clk.Now),
		verifier.WithTrustedRoot(sim.TrustRoot()), verifier.WithPolicyResolver(verifiersvc.StorePolicyResolver(st)))
	if err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	e := &adminEnv{st: st, v: v, signer: signer, kek: kek, dsn: dsn}
	e.b = e.newBroker(t, keys, clk, o)
	srv := httptest.NewServer(e.b)
	t.Cleanup(srv.Close)
	e.env = &env{srv: srv, clock: clk, keys: keys}
	return e
}

func (e *adminEnv) newBroker(t *testing.T, keys *ear.KeySet, clk *clock, o envOpts) *kbs.Broker {
	t.Helper()
	b, err := kbs.New(kbs.Config{Store: e.st, Verifier: e.v, TokenKeys: keys, KEK: e.kek, Now: clk.Now,
		AdminToken: o.adminToken, AppKeyRoot: o.appKeyRoot})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// second starts another broker on the same database (another process).
func (e *adminEnv) second(t *testing.T, o envOpts) *env {
	t.Helper()
	st, err := store.Open(t.Context(), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	b, err := kbs.New(kbs.Config{Store: st, Verifier: e.v, TokenKeys: e.keys, KEK: e.kek, Now: e.clock.Now,
		AdminToken: o.adminToken, AppKeyRoot: o.appKeyRoot})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return &env{srv: srv, clock: e.clock, keys: e.keys}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const denyAll = "package policy\n\ndefault allow := false\n"

func TestAdminAuth(t *testing.T) {
	sim := newSim(t, false)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken})
		off := e.second(t, envOpts{})
		routes := []struct{ method, path string }{
			{http.MethodPost, protocol.PathResource + "/default/key/x"},
			{http.MethodDelete, protocol.PathResource + "/default/key/x"},
			{http.MethodPost, protocol.PathResourcePolicy},
			{http.MethodGet, protocol.PathResourcePolicy},
			{http.MethodPost, protocol.PathAttestationPolicy},
			{http.MethodPost, protocol.PathReferenceValue},
			{http.MethodGet, protocol.PathReferenceValue + "/tdx.mr_td"},
		}
		for _, rt := range routes {
			a := newAgent(t, e.env)
			for _, bearer := range []string{"", "wrong", adminToken + "x", strings.ToUpper(adminToken)} {
				code, body := a.do(t, rt.method, rt.path, []byte(`{}`), bearer)
				wantProblem(t, rt.method+" "+rt.path+" bearer "+bearer, code, body, protocol.ProblemAdminAuth)
			}
			// Not a Bearer scheme.
			req, _ := http.NewRequestWithContext(t.Context(), rt.method, e.srv.URL+rt.path, nil)
			req.Header.Set("Authorization", "Basic "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			wantProblem(t, rt.method+" "+rt.path+" Basic", resp.StatusCode, buf.Bytes(), protocol.ProblemAdminAuth)
			// Without an admin token the admin API is off.
			o := newAgent(t, off)
			code, body := o.do(t, rt.method, rt.path, []byte(`{}`), adminToken)
			wantProblem(t, rt.method+" "+rt.path+" disabled", code, body, protocol.ProblemAdminAuth)
		}
	})
}

func TestAdminResource(t *testing.T) {
	sim := newSim(t, false)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken})
		adm := newAgent(t, e.env)
		path, _ := resourceID.Path()

		code, body := adm.do(t, http.MethodPost, path, secret, adminToken)
		if code != 200 {
			t.Fatalf("POST resource: %d %s", code, body)
		}
		a := newAgent(t, e.env)
		a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
		a.wantSecret(t, "")

		// Sealed at rest.
		rec, err := e.st.KBSResource(t.Context(), resourceID.String())
		if err != nil || bytes.Contains(rec.Ciphertext, secret) {
			t.Fatalf("stored resource: %v (plaintext at rest?)", err)
		}

		// Another broker on the same store and KEK serves it too.
		b2 := e.second(t, envOpts{adminToken: adminToken})
		a2 := newAgent(t, b2)
		a2.attestOK(t, a2.attestation(t, sim, a2.auth(t), a2.jwk))
		a2.wantSecret(t, "")

		code, body = adm.do(t, http.MethodPost, protocol.PathResource+"/default/app-key/x", secret, adminToken)
		wantProblem(t, "POST derived type", code, body, protocol.ProblemInvalidRequestPath)
		code, body = adm.do(t, http.MethodPost, protocol.PathResource+"/default/key/a%20b", secret, adminToken)
		wantProblem(t, "POST bad path", code, body, protocol.ProblemInvalidRequestPath)
		code, body = adm.do(t, http.MethodPost, path, make([]byte, protocol.MaxMessageSize+1), adminToken)
		wantProblem(t, "POST too large", code, body, protocol.ProblemSerdeError)
		a.wantSecret(t, "") // unchanged

		code, body = adm.do(t, http.MethodDelete, path, nil, adminToken)
		if code != 200 {
			t.Fatalf("DELETE resource: %d %s", code, body)
		}
		code, body = a.resource(t, "")
		wantProblem(t, "GET deleted", code, body, protocol.ProblemPluginNotFound)
		code, body = adm.do(t, http.MethodDelete, path, nil, adminToken)
		wantProblem(t, "DELETE again", code, body, protocol.ProblemPluginNotFound)
	})
}

func getResourcePolicy(t *testing.T, a *agent) kbs.ResourcePolicyResponse {
	t.Helper()
	code, body := a.do(t, http.MethodGet, protocol.PathResourcePolicy, nil, adminToken)
	if code != 200 {
		t.Fatalf("GET resource-policy: %d %s", code, body)
	}
	var r kbs.ResourcePolicyResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func wantPolicy(t *testing.T, what string, r kbs.ResourcePolicyResponse, src string) {
	t.Helper()
	if r.Policy != b64(src) || r.SHA256 != store.KBSPolicyDigest(src) {
		t.Fatalf("%s: resource policy %+v, want %q", what, r, src)
	}
}

func TestAdminResourcePolicy(t *testing.T) {
	sim := newSim(t, false)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken})
		if err := e.b.PutResource(t.Context(), resourceID, secret); err != nil {
			t.Fatal(err)
		}
		adm := newAgent(t, e.env)
		wantPolicy(t, "initial", getResourcePolicy(t, adm), kbs.DefaultResourcePolicy)

		for _, tc := range []struct {
			name, body string
			want       protocol.ProblemType
		}{
			{"not JSON", `policy`, protocol.ProblemSerdeError},
			{"trailing data", `{"policy":"` + b64(denyAll) + `"} {}`, protocol.ProblemSerdeError},
			{"no policy", `{}`, protocol.ProblemSerdeError},
			{"not base64", `{"policy":"!!!"}`, protocol.ProblemSerdeError},
			{"not Rego", `{"policy":"` + b64("allow := true") + `"}`, protocol.ProblemPolicyEngine},
			{"wrong package", `{"policy":"` + b64("package other\nallow := true\n") + `"}`, protocol.ProblemPolicyEngine},
			{"denied builtin", `{"policy":"` + b64("package policy\nallow if http.send({})\n") + `"}`, protocol.ProblemPolicyEngine},
		} {
			code, body := adm.do(t, http.MethodPost, protocol.PathResourcePolicy, []byte(tc.body), adminToken)
			wantProblem(t, tc.name, code, body, tc.want)
		}
		wantPolicy(t, "after rejected policies", getResourcePolicy(t, adm), kbs.DefaultResourcePolicy)

		a := newAgent(t, e.env)
		a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
		a.wantSecret(t, "")

		// Padded standard base64 is accepted too.
		code, body := adm.do(t, http.MethodPost, protocol.PathResourcePolicy,
			jsonBody(t, protocol.ResourcePolicyRequest{Policy: base64.StdEncoding.EncodeToString([]byte(denyAll))}), adminToken)
		if code != 200 {
			t.Fatalf("POST resource-policy: %d %s", code, body)
		}
		wantPolicy(t, "after POST", getResourcePolicy(t, adm), denyAll)
		code, body = a.resource(t, "")
		wantProblem(t, "resource under deny-all", code, body, protocol.ProblemPolicyDeny)

		// A new broker on the same database (a restart, or a second
		// process) keeps the stored policy: its default does not
		// overwrite it.
		e2 := e.second(t, envOpts{adminToken: adminToken})
		adm2 := newAgent(t, e2)
		wantPolicy(t, "second broker", getResourcePolicy(t, adm2), denyAll)
		a2 := newAgent(t, e2)
		a2.attestOK(t, a2.attestation(t, sim, a2.auth(t), a2.jwk))
		code, body = a2.resource(t, "")
		wantProblem(t, "second broker resource", code, body, protocol.ProblemPolicyDeny)

		// A policy set through the second broker takes effect on the first.
		code, body = adm2.do(t, http.MethodPost, protocol.PathResourcePolicy,
			jsonBody(t, protocol.ResourcePolicyRequest{Policy: b64(kbs.DefaultResourcePolicy)}), adminToken)
		if code != 200 {
			t.Fatalf("POST resource-policy (second): %d %s", code, body)
		}
		a.wantSecret(t, "")
		a2.wantSecret(t, "")
	})
}

func TestAdminAttestationPolicy(t *testing.T) {
	sim := newSim(t, false)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken})
		if err := e.b.PutResource(t.Context(), resourceID, secret); err != nil {
			t.Fatal(err)
		}
		adm := newAgent(t, e.env)
		const denyTD = "package tdproof.policy\n\ndefault allow := false\n"
		for _, tc := range []struct {
			name string
			req  any
			want protocol.ProblemType
		}{
			{"not JSON", "x", protocol.ProblemSerdeError},
			{"bad type", protocol.AttestationPolicyRequest{Type: "cue", PolicyID: "default", Policy: b64(denyTD)}, protocol.ProblemSerdeError},
			{"no policy", protocol.AttestationPolicyRequest{Type: "rego", PolicyID: "default"}, protocol.ProblemSerdeError},
			{"not base64", protocol.AttestationPolicyRequest{Type: "rego", PolicyID: "default", Policy: "%%"}, protocol.ProblemSerdeError},
			{"bad rego", protocol.AttestationPolicyRequest{Type: "rego", PolicyID: "default", Policy: b64("package tdproof.policy\nallow if {")}, protocol.ProblemPolicyEngine},
			{"bad yaml", protocol.AttestationPolicyRequest{Type: "yaml", PolicyID: "default", Policy: b64("rules: [")}, protocol.ProblemPolicyEngine},
		} {
			var body []byte
			if s, ok := tc.req.(string); ok {
				body = []byte(s)
			} else {
				body = jsonBody(t, tc.req)
			}
			code, resp := adm.do(t, http.MethodPost, protocol.PathAttestationPolicy, body, adminToken)
			wantProblem(t, tc.name, code, resp, tc.want)
		}
		if ps, err := e.st.ListPolicies(t.Context(), ""); err != nil || len(ps) != 0 {
			t.Fatalf("policies after rejected requests: %v, %v", ps, err)
		}

		// Under the built-in default policy the TD is affirmed.
		a := newAgent(t, e.env)
		a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
		a.wantSecret(t, "")

		code, resp := adm.do(t, http.MethodPost, protocol.PathAttestationPolicy,
			jsonBody(t, protocol.AttestationPolicyRequest{Type: "rego", PolicyID: "default", Policy: b64(denyTD)}), adminToken)
		if code != 200 {
			t.Fatalf("POST attestation-policy: %d %s", code, resp)
		}
		var ar kbs.AttestationPolicyResponse
		if err := json.Unmarshal(resp, &ar); err != nil || ar.PolicyID != "default" || ar.Version != 1 || !ar.Active || ar.Type != "rego" {
			t.Fatalf("POST attestation-policy: %s (%v)", resp, err)
		}
		p, err := e.st.ActivePolicy(t.Context(), "default")
		if err != nil || p.Body != denyTD || p.Version != 1 {
			t.Fatalf("active policy %+v, %v", p, err)
		}

		// A later attestation is appraised with it: the evidence is
		// authentic, so a token is issued, contraindicated under
		// default@1, and the default resource policy denies.
		b := newAgent(t, e.env)
		code, resp = b.attest(t, b.attestation(t, sim, b.auth(t), b.jwk))
		if code != http.StatusOK {
			t.Fatalf("attest under deny policy: %d %s", code, resp)
		}
		var tr protocol.TokenResponse
		if err := json.Unmarshal(resp, &tr); err != nil {
			t.Fatal(err)
		}
		c, err := ear.Verify(tr.Token, e.keys, ear.VerifyOptions{Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Submods) == 0 {
			t.Fatal("token without submodules")
		}
		for name, s := range c.Submods {
			if s.Status != ear.StatusContraindicated || !strings.HasPrefix(s.PolicyID, "default@1") {
				t.Fatalf("submod %s under deny policy: %v %s", name, s.Status, s.PolicyID)
			}
		}
		code, resp = b.resource(t, "")
		wantProblem(t, "resource under deny policy", code, resp, protocol.ProblemPolicyDeny)

		// A YAML version, padded base64, becomes version 2.
		code, resp = adm.do(t, http.MethodPost, protocol.PathAttestationPolicy,
			jsonBody(t, protocol.AttestationPolicyRequest{Type: "yaml", PolicyID: "default", Policy: base64.StdEncoding.EncodeToString([]byte("{}\n"))}), adminToken)
		if code != 200 {
			t.Fatalf("POST yaml attestation-policy: %d %s", code, resp)
		}
		if p, err := e.st.ActivePolicy(t.Context(), "default"); err != nil || p.Version != 2 || p.Kind != store.PolicyYAML {
			t.Fatalf("active policy %+v, %v", p, err)
		}
	})
}

func TestAdminReferenceValue(t *testing.T) {
	sim := newSim(t, false)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken, unpinned: true})
		adm := newAgent(t, e.env)
		msg := func(payload string) kbs.RVPSMessage {
			return kbs.RVPSMessage{Version: "0.1.0", Type: "sample", Payload: base64.StdEncoding.EncodeToString([]byte(payload))}
		}
		mrtd := strings.Repeat("AB", 48)
		for _, tc := range []struct {
			name string
			msg  kbs.RVPSMessage
		}{
			{"bad version", kbs.RVPSMessage{Version: "0.2.0", Type: "sample", Payload: msg(`{"tdx.mr_td":["00"]}`).Payload}},
			{"bad type", kbs.RVPSMessage{Version: "0.1.0", Type: "swid", Payload: msg(`{"tdx.mr_td":["00"]}`).Payload}},
			{"not base64", kbs.RVPSMessage{Version: "0.1.0", Type: "sample", Payload: "%%%"}},
			{"not an object", msg(`["x"]`)},
			{"empty", msg(`{}`)},
			{"value not a list", msg(`{"tdx.mr_td":"00"}`)},
			{"bad name", msg(`{"tdx mr_td":["00"]}`)},
			{"no values", msg(`{"tdx.mr_td":[]}`)},
			{"empty value", msg(`{"tdx.mr_td":[" "]}`)},
		} {
			code, body := adm.do(t, http.MethodPost, protocol.PathReferenceValue, jsonBody(t, tc.msg), adminToken)
			wantProblem(t, tc.name, code, body, protocol.ProblemSerdeError)
		}
		if vs, err := e.st.RefValues().List(t.Context()); err != nil || len(vs) != 0 {
			t.Fatalf("reference values after rejected messages: %v, %v", vs, err)
		}
		code, body := adm.do(t, http.MethodGet, protocol.PathReferenceValue+"/tdx.mr_td", nil, adminToken)
		wantProblem(t, "GET absent", code, body, protocol.ProblemPluginNotFound)

		code, body = adm.do(t, http.MethodPost, protocol.PathReferenceValue,
			jsonBody(t, msg(`{"tdx.mr_td":["0x`+mrtd+`"],"dstack.compose_hash":["aa","bb"]}`)), adminToken)
		if code != 200 {
			t.Fatalf("POST reference-value: %d %s", code, body)
		}
		var added struct {
			ReferenceValues []kbs.ReferenceValueResponse `json:"reference_values"`
		}
		if err := json.Unmarshal(body, &added); err != nil || len(added.ReferenceValues) != 2 ||
			added.ReferenceValues[0].Name != "dstack.compose_hash" || added.ReferenceValues[1].Name != "tdx.mr_td" {
			t.Fatalf("POST reference-value: %s (%v)", body, err)
		}

		// Persisted: a second broker on the same database answers.
		e2 := e.second(t, envOpts{adminToken: adminToken})
		adm2 := newAgent(t, e2)
		for _, tc := range []struct {
			name string
			want []string
		}{{"tdx.mr_td", []string{strings.ToLower(mrtd)}}, {"dstack.compose_hash", []string{"aa", "bb"}}} {
			code, body := adm2.do(t, http.MethodGet, protocol.PathReferenceValue+"/"+tc.name, nil, adminToken)
			if code != 200 {
				t.Fatalf("GET %s: %d %s", tc.name, code, body)
			}
			var got kbs.ReferenceValueResponse
			if err := json.Unmarshal(body, &got); err != nil || got.Name != tc.name || fmt.Sprint(got.Values) != fmt.Sprint(tc.want) {
				t.Fatalf("GET %s: %s, want %v", tc.name, body, tc.want)
			}
		}
		// The verifier's store sees them (lookups of the default policy).
		vs, err := e.st.RefValues().Lookup(t.Context(), "tdx.mr_td", time.Now())
		if err != nil || len(vs) != 1 || vs[0].Provenance.Author != "kbs-admin" {
			t.Fatalf("Lookup: %+v, %v", vs, err)
		}
	})
}

// TestEmptyStoreReleasesNothing: with no reference values the default
// attestation policy gives at most "warning", and the default resource
// policy releases nothing; once the TD is pinned, the same TD gets its
// secret.
func TestEmptyStoreReleasesNothing(t *testing.T) {
	sim := newSim(t, false)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{unpinned: true})
		if err := e.b.PutResource(t.Context(), resourceID, secret); err != nil {
			t.Fatal(err)
		}
		a := newAgent(t, e.env)
		tok := a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
		c, err := ear.Verify(tok, e.keys, ear.VerifyOptions{Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range c.Submods {
			if s.Status != ear.StatusWarning {
				t.Errorf("submod %s with an empty store: %v, want warning", name, s.Status)
			}
		}
		code, body := a.resource(t, "")
		wantProblem(t, "resource with an empty store", code, body, protocol.ProblemPolicyDeny)

		for _, rv := range sim.ReferenceValues() {
			if _, err := e.st.RefValues().Add(t.Context(), rv); err != nil {
				t.Fatal(err)
			}
		}
		b := newAgent(t, e.env)
		b.attestOK(t, b.attestation(t, sim, b.auth(t), b.jwk))
		b.wantSecret(t, "")
	})
}
