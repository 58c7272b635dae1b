package verifiersvc_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

const adminToken = "s3cret-admin-token"

// acceptOutOfDate is a declarative policy that also accepts OutOfDate.
const acceptOutOfDate = "accepted_tcb_statuses: [UpToDate, OutOfDate]\n"

type fakeCollateral struct{ now time.Time }

func (f fakeCollateral) Now() time.Time { return f.now }
func (f fakeCollateral) Stats() pcscache.Stats {
	return pcscache.Stats{Hits: 3, Misses: 1, Items: []pcscache.ItemStats{{IssueDate: f.now.Add(-time.Hour), NextUpdate: f.now.Add(time.Hour)}}}
}

// outOfDateFixture returns an OutOfDate TDX quote and its collateral.
func outOfDateFixture(tb testing.TB) (q []byte, col *collateral.Collateral, f *dcaptest.Fixture) {
	tb.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	f.QuoteSpec.QEReport.ISVSVN = 2 // QE level 2: OutOfDate
	qt, err := f.BuildQuote()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		tb.Fatal(err)
	}
	return qt.Raw, c, f
}

// adminReplica is one service over the store at dsn, behind a listener.
func adminReplica(tb testing.TB, dsn, token string, col *collateral.Collateral, f *dcaptest.Fixture) *env {
	tb.Helper()
	return replica(tb, dsn, token, col, f, replicaOptions{})
}

// replicaOptions: cached serves verifications from a store.Cache as
// tdproof serve does; observe sees every statement of the store.
type replicaOptions struct {
	cached  bool
	observe func(query string)
}

func replica(tb testing.TB, dsn, token string, col *collateral.Collateral, f *dcaptest.Fixture, o replicaOptions) *env {
	tb.Helper()
	var sopts []store.Option
	if o.observe != nil {
		sopts = append(sopts, store.WithQueryObserver(o.observe))
	}
	st, err := store.Open(context.Background(), dsn, sopts...)
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	var (
		refs     refvalue.Store             = st.RefValues()
		policies verifiersvc.ActivePolicies = st
	)
	if o.cached {
		c, err := st.NewCache(context.Background(), store.CacheOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.Close)
		refs, policies = c.RefValues(), c
	}
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	now := func() time.Time { return f.Now }
	signer, err := ear.NewSigner(keys, ear.WithClock(now))
	if err != nil {
		tb.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
	v, err := verifier.New(src, refs, signer, verifier.WithClock(now), verifier.WithTrustedRoot(f.PKI.Root.Certificate),
		verifier.WithPolicyResolver(verifiersvc.DryRunResolver(verifiersvc.StorePolicyResolver(policies))))
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := keys.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { return jwks }, verifiersvc.Options{
		AdminToken: token, Policies: st, RefValues: st.RefValues(), Collateral: fakeCollateral{now: f.Now},
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(svc)
	srv.Config = svc.Server()
	srv.Start()
	tb.Cleanup(srv.Close)
	return &env{srv: srv, keys: keys, now: f.Now}
}

func (e *env) admin(tb testing.TB, method, path, token string, body any) response {
	tb.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		tb.Fatal(err)
	}
	return response{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: buf.Bytes()}
}

func wantProblem(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	if r.status != status || r.ctype != verifiersvc.ProblemMediaType {
		tb.Fatalf("status %d %s, want %d problem: %s", r.status, r.ctype, status, r.body)
	}
	var p struct{ Code string }
	if err := json.Unmarshal(r.body, &p); err != nil || p.Code != code {
		tb.Fatalf("code %q (%v), want %q: %s", p.Code, err, code, r.body)
	}
}

// allowOf verifies quote on e's /v1/verify and returns the decision.
func allowOf(tb testing.TB, e *env, q []byte) (bool, *verifier.Result) {
	tb.Helper()
	r := e.admin(tb, http.MethodPost, "/v1/verify", "", map[string]any{"quote": hex.EncodeToString(q)})
	if r.status != http.StatusOK {
		tb.Fatalf("/v1/verify: %d %s", r.status, r.body)
	}
	var nr verifiersvc.NativeResponse
	if err := json.Unmarshal(r.body, &nr); err != nil {
		tb.Fatal(err)
	}
	return nr.Result.Allow, nr.Result
}

func sqliteDSN(tb testing.TB) string {
	return "sqlite://" + filepath.Join(tb.TempDir(), "tdproof.db")
}

func TestAdminAuth(t *testing.T) {
	_, col, f := outOfDateFixture(t)
	on := adminReplica(t, sqliteDSN(t), adminToken, col, f)
	off := adminReplica(t, sqliteDSN(t), "", col, f)
	for _, path := range []string{"/admin/v1/policies", "/admin/v1/refvalues", "/admin/v1/collateral"} {
		wantProblem(t, on.admin(t, http.MethodGet, path, "", nil), http.StatusUnauthorized, "unauthorized")
		wantProblem(t, on.admin(t, http.MethodGet, path, "wrong", nil), http.StatusUnauthorized, "unauthorized")
		wantProblem(t, on.admin(t, http.MethodGet, path, adminToken+"x", nil), http.StatusUnauthorized, "unauthorized")
		wantProblem(t, off.admin(t, http.MethodGet, path, adminToken, nil), http.StatusNotFound, "not_found")
		wantProblem(t, off.admin(t, http.MethodGet, path, "", nil), http.StatusNotFound, "not_found")
		if r := on.admin(t, http.MethodGet, path, adminToken, nil); r.status != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s", path, r.status, r.body)
		}
	}
	wantProblem(t, on.admin(t, http.MethodPut, "/admin/v1/policies", adminToken, nil), http.StatusMethodNotAllowed, "method_not_allowed")
	// Without a token the route does not exist, so the method is not checked.
	wantProblem(t, off.admin(t, http.MethodPut, "/admin/v1/policies", "", nil), http.StatusNotFound, "not_found")
	if _, err := verifiersvc.New(nil, nil, verifiersvc.Options{AdminToken: "x"}); err == nil {
		t.Error("New without a verifier succeeded")
	}
}

func TestAdminNeedsStores(t *testing.T) {
	v, err := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return nil, nil }), nil, mustSigner(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifiersvc.New(v, func() []byte { return nil }, verifiersvc.Options{AdminToken: "x"}); err == nil {
		t.Error("New with an admin token and no stores succeeded")
	}
}

func mustSigner(tb testing.TB) *ear.Signer {
	tb.Helper()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ear.NewSigner(keys)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestAdminPolicies(t *testing.T) {
	q, col, f := outOfDateFixture(t)
	e := adminReplica(t, sqliteDSN(t), adminToken, col, f)
	if allow, _ := allowOf(t, e, q); allow {
		t.Fatal("the built-in default policy allowed an OutOfDate quote")
	}

	// Bad policies are 400 with the compile error; nothing is stored.
	for name, body := range map[string]map[string]any{
		"yaml":      {"id": "default", "kind": "yaml", "body": "accepted_tcb_statuses: [Fine]"},
		"rego":      {"id": "default", "kind": "rego", "body": "package tdproof.policy\nallow if {"},
		"kind":      {"id": "default", "kind": "json", "body": "{}"},
		"no id":     {"kind": "yaml", "body": acceptOutOfDate},
		"unknown":   {"id": "default", "kind": "yaml", "body": acceptOutOfDate, "extra": 1},
		"wrongtype": {"id": "default", "kind": "yaml", "body": 5},
	} {
		r := e.admin(t, http.MethodPost, "/admin/v1/policies", adminToken, body)
		code := "invalid_policy"
		if name == "unknown" || name == "wrongtype" {
			code = "malformed_request"
		}
		wantProblem(t, r, http.StatusBadRequest, code)
	}

	// Version 1, not active: the decision is unchanged.
	r := e.admin(t, http.MethodPost, "/admin/v1/policies", adminToken, map[string]any{"id": "default", "kind": "yaml", "body": acceptOutOfDate, "description": "accept OutOfDate"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var p verifiersvc.PolicyJSON
	if err := json.Unmarshal(r.body, &p); err != nil || p.Version != 1 || p.Active || p.Kind != "yaml" || p.Description != "accept OutOfDate" {
		t.Fatalf("created %+v (%v)", p, err)
	}
	if allow, _ := allowOf(t, e, q); allow {
		t.Fatal("an inactive policy changed the decision")
	}
	// Activation takes effect on the next request.
	if r := e.admin(t, http.MethodPost, "/admin/v1/policies/default/versions/1/activate", adminToken, nil); r.status != http.StatusOK {
		t.Fatalf("activate: %d %s", r.status, r.body)
	}
	allow, res := allowOf(t, e, q)
	if !allow || res.Appraisal.PolicyID != "default" || res.Appraisal.PolicyVersion != "1" {
		t.Fatalf("after activation: allow %v, policy %s@%s", allow, res.Appraisal.PolicyID, res.Appraisal.PolicyVersion)
	}
	// Version 2 (Rego, denying everything) created active.
	r = e.admin(t, http.MethodPost, "/admin/v1/policies", adminToken, map[string]any{"id": "default", "kind": "rego", "activate": true,
		"body": "package tdproof.policy\n\nallow := false\n"})
	if r.status != http.StatusCreated {
		t.Fatalf("create v2: %d %s", r.status, r.body)
	}
	if allow, res := allowOf(t, e, q); allow || res.Appraisal.PolicyVersion != "2" {
		t.Fatalf("v2 active: allow %v, version %s", allow, res.Appraisal.PolicyVersion)
	}

	var list struct{ Policies []verifiersvc.PolicyJSON }
	r = e.admin(t, http.MethodGet, "/admin/v1/policies?id=default", adminToken, nil)
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Policies) != 2 || list.Policies[0].Active || !list.Policies[1].Active {
		t.Fatalf("list: %s (%v)", r.body, err)
	}
	r = e.admin(t, http.MethodGet, "/admin/v1/policies?id=other", adminToken, nil)
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Policies) != 0 {
		t.Fatalf("list other: %s (%v)", r.body, err)
	}

	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/policies/default/versions/9/activate", adminToken, nil), http.StatusNotFound, "unknown_policy")
	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/policies/nope/versions/1/activate", adminToken, nil), http.StatusNotFound, "unknown_policy")
	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/policies/default/versions/x/activate", adminToken, nil), http.StatusBadRequest, "malformed_request")
}

func TestAdminDryRun(t *testing.T) {
	q, col, f := outOfDateFixture(t)
	e := adminReplica(t, sqliteDSN(t), adminToken, col, f)
	dry := func(kind, body string) response {
		return e.admin(t, http.MethodPost, "/admin/v1/policies/dry-run", adminToken,
			map[string]any{"kind": kind, "body": body, "quote": hex.EncodeToString(q)})
	}
	for _, c := range []struct {
		kind, body string
		allow      bool
	}{
		{"yaml", acceptOutOfDate, true},
		{"yaml", "accepted_tcb_statuses: [UpToDate]\n", false},
		{"rego", "package tdproof.policy\n\nallow if input.tdx.tcb_status == \"OutOfDate\"\n", true},
	} {
		r := dry(c.kind, c.body)
		if r.status != http.StatusOK {
			t.Fatalf("dry-run %s: %d %s", c.body, r.status, r.body)
		}
		var dr verifiersvc.DryRunResponse
		if err := json.Unmarshal(r.body, &dr); err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		_ = json.Unmarshal(r.body, &raw)
		if _, ok := raw["token"]; ok {
			t.Error("a dry run returned a token")
		}
		if dr.Result.Allow != c.allow || dr.Result.Appraisal.PolicyVersion != verifiersvc.DryRunVersion {
			t.Errorf("dry-run %q: allow %v (want %v), version %s; failed %v", c.body, dr.Result.Allow, c.allow, dr.Result.Appraisal.PolicyVersion, dr.Result.Appraisal.Failed)
		}
	}
	wantProblem(t, dry("yaml", "nonsense_rule: 1"), http.StatusBadRequest, "invalid_policy")
	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/policies/dry-run", adminToken, map[string]any{"kind": "yaml", "body": acceptOutOfDate, "quote": "00"}), http.StatusBadRequest, "malformed_evidence")
	// Nothing was stored, and the live decision is the default's.
	r := e.admin(t, http.MethodGet, "/admin/v1/policies", adminToken, nil)
	if !bytes.Contains(r.body, []byte(`"policies":[]`)) {
		t.Errorf("dry runs stored a policy: %s", r.body)
	}
	if allow, _ := allowOf(t, e, q); allow {
		t.Error("a dry run changed the live decision")
	}
}

func TestAdminDryRunWithoutResolver(t *testing.T) {
	q, col, f := outOfDateFixture(t)
	st, err := store.Open(context.Background(), sqliteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := newEnv(t, col, nil, f.Now, verifiersvc.Options{AdminToken: adminToken, Policies: st, RefValues: st.RefValues()},
		verifier.WithTrustedRoot(f.PKI.Root.Certificate))
	r := e.admin(t, http.MethodPost, "/admin/v1/policies/dry-run", adminToken, map[string]any{"kind": "yaml", "body": acceptOutOfDate, "quote": hex.EncodeToString(q)})
	wantProblem(t, r, http.StatusNotImplemented, "dry_run_unavailable")
}

func TestAdminRefValues(t *testing.T) {
	_, col, f := outOfDateFixture(t)
	e := adminReplica(t, sqliteDSN(t), adminToken, col, f)
	r := e.admin(t, http.MethodPost, "/admin/v1/refvalues", adminToken, map[string]any{"name": "tdx.mr_td", "values": []string{"0xAABB"},
		"provenance": map[string]any{"source": "test"}})
	if r.status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	var added struct {
		ID     string
		Values []string
	}
	if err := json.Unmarshal(r.body, &added); err != nil || added.ID == "" || len(added.Values) != 1 || added.Values[0] != "aabb" {
		t.Fatalf("added %s (%v)", r.body, err)
	}
	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/refvalues", adminToken, map[string]any{"name": "", "values": []string{}}), http.StatusBadRequest, "invalid_refvalue")
	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/refvalues", adminToken, map[string]any{"name": "x", "bogus": 1}), http.StatusBadRequest, "malformed_request")
	var list struct{ Refvalues []struct{ ID, Name string } }
	r = e.admin(t, http.MethodGet, "/admin/v1/refvalues", adminToken, nil)
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Refvalues) != 1 || list.Refvalues[0].ID != added.ID {
		t.Fatalf("list: %s (%v)", r.body, err)
	}
	if r := e.admin(t, http.MethodDelete, "/admin/v1/refvalues/"+added.ID, adminToken, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantProblem(t, e.admin(t, http.MethodDelete, "/admin/v1/refvalues/"+added.ID, adminToken, nil), http.StatusNotFound, "unknown_refvalue")
	r = e.admin(t, http.MethodGet, "/admin/v1/refvalues", adminToken, nil)
	if !bytes.Contains(r.body, []byte(`"refvalues":[]`)) {
		t.Errorf("after delete: %s", r.body)
	}
}

func TestAdminCollateral(t *testing.T) {
	_, col, f := outOfDateFixture(t)
	e := adminReplica(t, sqliteDSN(t), adminToken, col, f)
	r := e.admin(t, http.MethodGet, "/admin/v1/collateral", adminToken, nil)
	var cr verifiersvc.CollateralResponse
	if err := json.Unmarshal(r.body, &cr); err != nil || !cr.Configured || cr.Hits != 3 || len(cr.Items) != 1 || cr.Items[0].AgeSeconds != 3600 {
		t.Fatalf("collateral: %s (%v)", r.body, err)
	}
}

// TestAdminKeysUnmanaged: without Options.Keys the key routes exist (401
// without the token) but answer 501 keys_unavailable.
func TestAdminKeysUnmanaged(t *testing.T) {
	_, col, f := outOfDateFixture(t)
	e := adminReplica(t, sqliteDSN(t), adminToken, col, f)
	wantProblem(t, e.admin(t, http.MethodGet, "/admin/v1/keys", "", nil), http.StatusUnauthorized, "unauthorized")
	wantProblem(t, e.admin(t, http.MethodGet, "/admin/v1/keys", adminToken, nil), http.StatusNotImplemented, "keys_unavailable")
	wantProblem(t, e.admin(t, http.MethodPost, "/admin/v1/keys/rotate", adminToken, nil), http.StatusNotImplemented, "keys_unavailable")
	wantProblem(t, e.admin(t, http.MethodDelete, "/admin/v1/keys/x", adminToken, nil), http.StatusNotImplemented, "keys_unavailable")
	wantProblem(t, e.admin(t, http.MethodGet, "/admin/v1/keys/rotate", adminToken, nil), http.StatusMethodNotAllowed, "method_not_allowed")
}
