package verifiersvc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

var (
	pkiOnce sync.Once
	pki     *dcaptest.PKI
	pkiErr  error
)

func sharedPKI(tb testing.TB) *dcaptest.PKI {
	tb.Helper()
	pkiOnce.Do(func() { pki, pkiErr = dcaptest.NewPKI(dcaptest.PKIOptions{}) })
	if pkiErr != nil {
		tb.Fatal(pkiErr)
	}
	return pki
}

// env is a service over one collateral set, behind a real listener.
type env struct {
	srv  *httptest.Server
	keys *ear.KeySet
	now  time.Time
}

func newEnv(tb testing.TB, col *collateral.Collateral, srcErr error, now time.Time, opts verifiersvc.Options, vopts ...verifier.Option) *env {
	tb.Helper()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ear.NewSigner(keys, ear.WithClock(func() time.Time { return now }))
	if err != nil {
		tb.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
		return col, srcErr
	})
	vopts = append(vopts, verifier.WithClock(func() time.Time { return now }))
	var refs refvalue.Store
	if opts.RefValues != nil {
		refs = opts.RefValues
	}
	v, err := verifier.New(src, refs, signer, vopts...)
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := keys.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { return jwks }, opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(svc)
	srv.Config = svc.Server()
	srv.Start()
	tb.Cleanup(srv.Close)
	return &env{srv: srv, keys: keys, now: now}
}

// fixtureEnv is a service over a dcaptest fixture; mutate changes it first.
func fixtureEnv(tb testing.TB, mutate func(*dcaptest.Fixture), srcErr error) (*env, []byte) {
	tb.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	if mutate != nil {
		mutate(f)
	}
	q, err := f.BuildQuote()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		tb.Fatal(err)
	}
	return newEnv(tb, c, srcErr, f.Now, verifiersvc.Options{RefValues: pinned(tb, q.Raw)}, verifier.WithTrustedRoot(f.PKI.Root.Certificate)), q.Raw
}

// pinned is a reference-value store pinning the MRTD and RTMR0–2 of each
// piece of evidence (a raw quote or dstack evidence): without reference
// values a result is at most warning.
func pinned(tb testing.TB, evidence ...[]byte) *refvalue.MemoryStore {
	tb.Helper()
	refs := refvalue.NewMemoryStore()
	for _, ev := range evidence {
		q, err := quote.Parse(ev)
		if err != nil {
			de, derr := dstack.ParseEvidence(ev)
			if derr != nil {
				tb.Fatalf("pinned: neither a quote (%v) nor dstack evidence (%v)", err, derr)
			}
			q = de.Quote
		}
		if q.TD == nil {
			continue
		}
		for _, v := range refvalue.ForTD(q.TD.MRTD, q.TD.RTMRs, refvalue.Provenance{Source: "test"}) {
			if _, err := refs.Add(context.Background(), v); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return refs
}

type response struct {
	status int
	ctype  string
	body   []byte
}

func (e *env) post(tb testing.TB, path string, body []byte) response {
	tb.Helper()
	resp, err := e.srv.Client().Post(e.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

func (e *env) get(tb testing.TB, path string) response {
	tb.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// native posts to /v1/verify and decodes a 200.
func (e *env) native(t *testing.T, req map[string]any) (verifiersvc.NativeResponse, map[string]any) {
	t.Helper()
	r := e.post(t, "/v1/verify", mustJSON(t, req))
	if r.status != http.StatusOK || r.ctype != verifier.MediaType {
		t.Fatalf("status %d %s: %s", r.status, r.ctype, r.body)
	}
	var out verifiersvc.NativeResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	return out, raw
}

// verifyToken checks the token against the service's published JWKS.
func (e *env) verifyToken(t *testing.T, token, nonce string) *ear.Claims {
	t.Helper()
	r := e.get(t, "/.well-known/jwks.json")
	if r.status != http.StatusOK {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	pub, err := ear.ParseJWKS(r.body)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ear.Verify(token, pub, ear.VerifyOptions{Now: func() time.Time { return e.now }, ExpectedNonce: nonce})
	if err != nil {
		t.Fatalf("ear.Verify: %v", err)
	}
	return c
}

// problemOf decodes a problem document and checks status and code.
func problemOf(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status || r.ctype != verifiersvc.ProblemMediaType {
		t.Fatalf("status %d %q, want %d problem: %s", r.status, r.ctype, status, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p["code"] != code || p["status"] != float64(status) || p["title"] == "" {
		t.Fatalf("problem %v, want code %q", p, code)
	}
	return p
}

func TestNativeFixture(t *testing.T) {
	t.Parallel()
	nonce := []byte("relying-party-nonce")
	e, q := fixtureEnv(t, func(f *dcaptest.Fixture) { copy(f.QuoteSpec.TD.ReportData[:], nonce) }, nil)
	for _, enc := range []string{hex.EncodeToString(q), "0x" + hex.EncodeToString(q), base64.StdEncoding.EncodeToString(q)} {
		out, raw := e.native(t, map[string]any{"quote": enc, "nonce": hex.EncodeToString(nonce)})
		r := out.Result
		if out.MediaType != verifier.MediaType || !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming || out.Token == "" {
			t.Fatalf("result %+v", r)
		}
		if _, ok := raw["result"].(map[string]any)["appraisal"]; !ok {
			t.Errorf("no appraisal in %v", raw["result"])
		}
		c := e.verifyToken(t, out.Token, verifier.NonceClaim(nonce))
		if c.Nonce != verifier.NonceClaim(nonce) {
			t.Errorf("eat_nonce %q", c.Nonce)
		}
	}
	// A nonce that is not in REPORTDATA is a 200 rejection.
	out, _ := e.native(t, map[string]any{"quote": hex.EncodeToString(q), "nonce": "00ff"})
	if !out.Result.Authentic || out.Result.Allow || out.Result.Status != ear.StatusContraindicated {
		t.Errorf("wrong nonce: %+v", out.Result)
	}
	e.verifyToken(t, out.Token, verifier.NonceClaim([]byte{0, 0xff}))
}

func TestNativeRejectedAndNotAuthentic(t *testing.T) {
	t.Parallel()
	debug, q := fixtureEnv(t, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }, nil)
	out, _ := debug.native(t, map[string]any{"quote": hex.EncodeToString(q)})
	if !out.Result.Authentic || out.Result.Allow || out.Result.Status != ear.StatusContraindicated {
		t.Errorf("debug TD: %+v", out.Result)
	}
	// A flipped signature byte: not authentic, still 200.
	e, q := fixtureEnv(t, nil, nil)
	bad := slices.Clone(q)
	bad[len(bad)-1] ^= 1
	bad[700] ^= 1
	r := e.post(t, "/v1/verify", mustJSON(t, map[string]any{"quote": hex.EncodeToString(bad)}))
	if r.status >= 500 {
		t.Fatalf("tampered quote: %d %s", r.status, r.body)
	}
	if r.status == http.StatusOK {
		var out verifiersvc.NativeResponse
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		if out.Result.Authentic || out.Result.Allow || out.Result.Reason == "" {
			t.Errorf("tampered quote: %+v", out.Result)
		}
		e.verifyToken(t, out.Token, "")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e, q := fixtureEnv(t, nil, nil)
	hq := hex.EncodeToString(q)
	cases := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
	}{
		{"syntax", "/v1/verify", `{"quote":`, 400, "malformed_request"},
		{"not an object", "/v1/verify", `[1,2]`, 400, "malformed_request"},
		{"quote number", "/v1/verify", `{"quote": 12}`, 400, "malformed_request"},
		{"nonce number", "/v1/verify", `{"quote": "` + hq + `", "nonce": 5}`, 400, "malformed_request"},
		{"policy object", "/v1/verify", `{"quote": "` + hq + `", "policy_id": {}}`, 400, "malformed_request"},
		{"dstack number", "/v1/verify", `{"dstack": 5}`, 400, "malformed_request"},
		{"unknown member", "/v1/verify", `{"quote": "` + hq + `", "quoet": 1}`, 400, "malformed_request"},
		{"trailing data", "/v1/verify", `{"quote": "` + hq + `"} {}`, 400, "malformed_request"},
		{"empty", "/v1/verify", ``, 400, "malformed_request"},
		{"no evidence", "/v1/verify", `{}`, 400, "malformed_evidence"},
		{"both", "/v1/verify", `{"quote": "` + hq + `", "dstack": {"quote": "00"}}`, 400, "malformed_evidence"},
		{"not hex or base64", "/v1/verify", `{"quote": "zz!!"}`, 400, "malformed_evidence"},
		{"truncated quote", "/v1/verify", `{"quote": "` + hq[:len(hq)/2] + `"}`, 400, "malformed_evidence"},
		{"short quote", "/v1/verify", `{"quote": "0400"}`, 400, "malformed_evidence"},
		{"bad nonce", "/v1/verify", `{"quote": "` + hq + `", "nonce": "xyz"}`, 400, "malformed_request"},
		{"long nonce", "/v1/verify", `{"quote": "` + hq + `", "nonce": "` + strings.Repeat("00", 65) + `"}`, 400, "malformed_evidence"},
		{"bad dstack", "/v1/verify", `{"dstack": {"quote": "0400", "event_log": "[]"}}`, 400, "malformed_evidence"},
		{"unknown policy", "/v1/verify", `{"quote": "` + hq + `", "policy_id": "nope"}`, 404, "unknown_policy"},
		{"dstack syntax", "/verify", `{"quote"`, 400, "malformed_request"},
		{"dstack types", "/verify", `{"quote": 1}`, 400, "malformed_request"},
		{"no route", "/v2/verify", `{}`, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := problemOf(t, e.post(t, c.path, []byte(c.body)), c.status, c.code)
			if _, ok := p["details"].(map[string]any); c.path == "/verify" && (p["is_valid"] != false || p["reason"] == nil || !ok) {
				t.Errorf("dstack problem without is_valid/details/reason: %v", p)
			}
		})
	}
	r := e.get(t, "/v1/verify")
	problemOf(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e, _ := fixtureEnv(t, nil, nil)
	big := `{"quote": "` + strings.Repeat("00", 5<<20) + `"}` // 10 MiB
	for _, path := range []string{"/v1/verify", "/verify"} {
		r := e.post(t, path, []byte(big))
		problemOf(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
	}
}

func TestCollateralOutage(t *testing.T) {
	t.Parallel()
	e, q := fixtureEnv(t, nil, errors.New("upstream down"))
	problemOf(t, e.post(t, "/v1/verify", mustJSON(t, map[string]any{"quote": hex.EncodeToString(q)})), 503, "collateral_unavailable")
}

// dstackVector is the shared dstack vector with its collateral.
func dstackVector(t *testing.T) (*env, []byte) {
	t.Helper()
	data := testvectors.ReadFile(t, "dstack", "quote-report.json")
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, c, nil, time.Unix(1774003274, 0), verifiersvc.Options{RefValues: pinned(t, data)}, afterReadyAllowed(t)), data
}

// afterReadyAllowed is the default policy with
// allow_events_after_system_ready_unsafe: quote-report.json's log has an
// event (LIUM_MINER_HOTKEY) after system-ready, which the default policy
// rejects (TestDstackVectorDefaultPolicy).
func afterReadyAllowed(tb testing.TB) verifier.Option {
	p, err := policy.FromRules(policy.DefaultID, "after-ready", policy.Rules{AllowEventsAfterSystemReadyUnsafe: true})
	if err != nil {
		tb.Fatal(err)
	}
	return verifier.WithPolicyResolver(func(context.Context, string) (*policy.Policy, error) { return p, nil })
}

// TestDstackVectorDefaultPolicy: under the default policy the event after
// system-ready makes quote-report.json contraindicated, with the rule
// named in both endpoints.
func TestDstackVectorDefaultPolicy(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "dstack", "quote-report.json")
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, c, nil, time.Unix(1774003274, 0), verifiersvc.Options{})
	out, _ := e.native(t, map[string]any{"dstack": json.RawMessage(data)})
	r := out.Result
	if !r.Authentic || r.Allow || r.Status != ear.StatusContraindicated || len(r.Appraisal.Failed) != 1 || r.Appraisal.Failed[0].Rule != policy.RuleEventsAfterSystemReady {
		t.Fatalf("/v1/verify: authentic %v allow %v status %v failed %v", r.Authentic, r.Allow, r.Status, r.Appraisal.Failed)
	}
	resp := e.post(t, "/verify", data)
	var raw map[string]any
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	if reason, _ := raw["reason"].(string); raw["is_valid"] != false || !strings.Contains(reason, policy.RuleEventsAfterSystemReady) {
		t.Errorf("/verify: is_valid %v reason %v", raw["is_valid"], raw["reason"])
	}
}

func TestDstackVectorNative(t *testing.T) {
	t.Parallel()
	e, data := dstackVector(t)
	for name, dv := range map[string]any{"object": json.RawMessage(data), "base64": base64.StdEncoding.EncodeToString(data)} {
		out, _ := e.native(t, map[string]any{"dstack": dv})
		r := out.Result
		if !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming || r.Dstack == nil {
			t.Fatalf("%s: %+v", name, r)
		}
		if id, ok := r.Claims.String("dstack.app_id"); !ok || id == "" {
			t.Errorf("%s: no dstack.app_id", name)
		}
		e.verifyToken(t, out.Token, "")
	}
}

// dstackVerifierDetails is dstack-verifier's details member set (dstack.md
// §1.5, without the debug-only acpi_tables and rtmr_debug).
var dstackVerifierDetails = []string{
	"acpi_tables_verified", "advisory_ids", "app_info", "boot_info", "event_log_verified",
	"key_provider", "os_image_hash_verified", "os_image_is_dev", "os_image_version",
	"quote_verified", "report_data", "tcb_status", "tee_variant",
}

func keysOf(m map[string]any) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func TestDstackVectorCompat(t *testing.T) {
	t.Parallel()
	e, data := dstackVector(t)
	r := e.post(t, "/verify", data)
	if r.status != http.StatusOK || !strings.HasPrefix(r.ctype, "application/json") {
		t.Fatalf("status %d %s: %s", r.status, r.ctype, r.body)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(raw); !slices.Equal(got, []string{"details", "is_valid", "reason"}) {
		t.Errorf("members %v", got)
	}
	if raw["is_valid"] != true || raw["reason"] != nil {
		t.Fatalf("is_valid %v reason %v", raw["is_valid"], raw["reason"])
	}
	d := raw["details"].(map[string]any)
	if got := keysOf(d); !slices.Equal(got, dstackVerifierDetails) {
		t.Errorf("details members %v,\nwant %v", got, dstackVerifierDetails)
	}
	if d["quote_verified"] != true || d["event_log_verified"] != true || d["tcb_status"] != "UpToDate" {
		t.Errorf("details %v", d)
	}
	app := d["app_info"].(map[string]any)
	for _, k := range []string{"app_id", "compose_hash", "instance_id", "device_id", "mr_system", "mr_aggregated", "os_image_hash", "key_provider_info", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"} {
		if _, ok := app[k]; !ok {
			t.Errorf("app_info lacks %s", k)
		}
	}
	if app["app_id"] == "" || len(d["report_data"].(string)) != 128 {
		t.Errorf("app_id %v report_data %v", app["app_id"], d["report_data"])
	}
	boot := d["boot_info"].(map[string]any)
	if got := keysOf(boot); !slices.Equal(got, []string{"advisoryIds", "appId", "composeHash", "deviceId", "instanceId", "keyProviderInfo", "mrAggregated", "mrSystem", "osImageHash", "tcbStatus", "teeVariant"}) {
		t.Errorf("boot_info members %v", got)
	}

	// A tampered event log: 200, is_valid false with dstack's reason prefix.
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	el := m["event_log"].(string)
	i := strings.Index(el, `"compose-hash"`)
	if i < 0 {
		t.Skip("vector has no compose-hash event")
	}
	j := strings.Index(el[i:], `"event_payload":"`) + i + len(`"event_payload":"`)
	c := el[j]
	if c == '0' {
		c = '1'
	} else {
		c = '0'
	}
	m["event_log"] = el[:j] + string(c) + el[j+1:]
	r = e.post(t, "/verify", mustJSON(t, m))
	if r.status != http.StatusOK {
		t.Fatalf("tampered: %d %s", r.status, r.body)
	}
	var resp verifiersvc.DstackResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.IsValid || resp.Reason == nil || !strings.HasPrefix(*resp.Reason, "Event log verification failed:") {
		t.Errorf("tampered: %+v reason %s", resp, *resp.Reason)
	}
}

// TestDCAPVectors posts every shared DCAP vector to both endpoints.
func TestDCAPVectors(t *testing.T) {
	t.Parallel()
	vectors := []struct {
		dir       string
		at        int64
		authentic bool
	}{
		{"tdx-v4-b0c06f", 1752919234, true},
		{"sgx-v3-00a067", 1752919277, true},
		{"tdx-v5-90c06f", 1774003274, false},
		{"tdx-v4-90c06f-dstack", 1774003274, true},
		{"tdx-v4-50806f-pcs", 1688173200, false},
	}
	for _, v := range vectors {
		t.Run(v.dir, func(t *testing.T) {
			base := testvectors.Path(t, "dcap", v.dir)
			raw, err := os.ReadFile(filepath.Join(base, "quote.bin"))
			if err != nil {
				t.Fatal(err)
			}
			q, err := quote.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			var c *collateral.Collateral
			if js, err := os.ReadFile(filepath.Join(base, "collateral.json")); err == nil {
				c, err = collateral.ParseQVLJSON(js)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				tee := "sgx"
				if q.IsTDX() {
					tee = "tdx"
				}
				if c, err = collateral.ReadPCSDir(os.DirFS(filepath.Join(base, "pcs")), collateral.PCSSelector{TEE: tee}); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnv(t, c, nil, time.Unix(v.at, 0), verifiersvc.Options{})
			out, _ := e.native(t, map[string]any{"quote": base64.StdEncoding.EncodeToString(raw)})
			if out.Result.Authentic != v.authentic {
				t.Errorf("authentic %v, want %v (reason %q)", out.Result.Authentic, v.authentic, out.Result.Reason)
			}
			e.verifyToken(t, out.Token, "")
			// The compatible endpoint wants dstack evidence: a bare quote
			// without an event log is answered, never with a 5xx.
			r := e.post(t, "/verify", mustJSON(t, map[string]any{"quote": hex.EncodeToString(raw), "event_log": "[]"}))
			if r.status >= 500 {
				t.Fatalf("/verify: %d %s", r.status, r.body)
			}
			if r.status == http.StatusOK {
				var resp verifiersvc.DstackResponse
				if err := json.Unmarshal(r.body, &resp); err != nil {
					t.Fatal(err)
				}
				if resp.IsValid != (resp.Reason == nil) {
					t.Errorf("/verify: %+v", resp)
				}
			}
		})
	}
}

func TestHealthReadyJWKSMetrics(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var readyErr error
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, c, nil, f.Now, verifiersvc.Options{RefValues: pinned(t, q.Raw), Ready: func() error {
		mu.Lock()
		defer mu.Unlock()
		return readyErr
	}}, verifier.WithTrustedRoot(f.PKI.Root.Certificate))
	if r := e.get(t, "/healthz"); r.status != 200 {
		t.Errorf("healthz %d", r.status)
	}
	if r := e.get(t, "/readyz"); r.status != 200 {
		t.Errorf("readyz %d", r.status)
	}
	mu.Lock()
	readyErr = errors.New("database is down")
	mu.Unlock()
	problemOf(t, e.get(t, "/readyz"), 503, "not_ready")
	r := e.get(t, "/.well-known/jwks.json")
	if r.status != 200 || r.ctype != "application/jwk-set+json" {
		t.Errorf("jwks %d %s", r.status, r.ctype)
	}
	if ks, err := ear.ParseJWKS(r.body); err != nil || len(ks.Keys()) != 1 {
		t.Errorf("jwks: %v", err)
	}
	e.native(t, map[string]any{"quote": hex.EncodeToString(q.Raw)})
	e.post(t, "/v1/verify", []byte(`{`))
	r = e.get(t, "/metrics")
	m := string(r.body)
	for _, want := range []string{
		`tdproof_verifications_total{outcome="affirming",route="/v1/verify"} 1`,
		`tdproof_verifications_total{outcome="malformed_request",route="/v1/verify"} 1`,
		`tdproof_verification_duration_seconds_bucket{route="/v1/verify",le="+Inf"} 2`,
		`tdproof_verification_duration_seconds_count{route="/v1/verify"} 2`,
		"# TYPE tdproof_verification_duration_seconds histogram",
		// Every request, by route pattern, method and status.
		`tdproof_http_request_duration_seconds_count{code="200",method="POST",route="/v1/verify"} 1`,
		`tdproof_http_request_duration_seconds_count{code="400",method="POST",route="/v1/verify"} 1`,
		`tdproof_http_request_duration_seconds_count{code="503",method="GET",route="/readyz"} 1`,
		// The Go runtime and process collectors.
		"# TYPE go_goroutines gauge", "# TYPE go_memstats_heap_alloc_bytes gauge",
		"# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestSlowClient: a client that stops sending is cut off by the server's
// timeouts, without a 5xx.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, c, nil, f.Now, verifiersvc.Options{
		ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, WriteTimeout: time.Second,
	}, verifier.WithTrustedRoot(f.PKI.Root.Certificate))
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	for name, partial := range map[string]string{
		"headers": "POST /v1/verify HTTP/1.1\r\nHost: x\r\n",
		"body":    "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"quote\": \"04",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, partial); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("status %d: %s", resp.StatusCode, b)
				}
				// Then the connection is closed.
				if _, err := conn.Read(make([]byte, 1)); err == nil {
					t.Error("connection still open")
				}
			} else if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("the server did not cut the connection: %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("cut after %v", d)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	e, q := fixtureEnv(t, nil, nil)
	body := mustJSON(t, map[string]any{"quote": hex.EncodeToString(q)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				resp, err := e.srv.Client().Post(e.srv.URL+"/v1/verify", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
}

func TestServeShutdown(t *testing.T) {
	t.Parallel()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ear.GenerateKey(nil)
	keys, _ := ear.NewKeySet(k)
	signer, _ := ear.NewSigner(keys)
	v, err := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return c, nil }), nil, signer)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { b, _ := keys.JWKS(); return b }, verifiersvc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}
