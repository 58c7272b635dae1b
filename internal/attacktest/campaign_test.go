package attacktest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// minCombinations is the least number of combinations a backend's
// campaign must try (issue 12).
const minCombinations = 500

// td is one simulated TD of the campaign and what it presents.
type td struct {
	name     string
	sim      *tdsim.Sim
	key      *ecdsa.PrivateKey // its RA-TLS certificate key
	vmConfig string
	// parts is its dstack evidence over verifyReportData; cert its
	// evidence over the RA-TLS report data of key.
	parts, cert tdsim.DstackParts
}

// verifyReportData is the REPORTDATA of the quotes sent to /v1/verify
// and /verify.
var verifyReportData = [64]byte{0: 'a', 1: 't', 2: 't', 3: 'a', 4: 'c', 5: 'k', 63: 1}

// fleet is the campaign's TDs: A is the one the store pins.
type fleet struct {
	a, b, c, d *td
	all        []*td
	col        *collateral.Collateral
	root       *tdsim.Sim // any Sim: they share the PKI and its root
	now        time.Time
	snp        *snpFleet
	// nitro is the AWS Nitro evidence (nitro_test.go).
	nitro *nitroFleet
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	ctx := t.Context()
	pki, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image2 := image2Boot()
	mrtd2 := sha512.Sum384([]byte("attacktest image 2 MRTD"))
	mk := func(name string, cfg tdsim.Config, compose string) *td {
		cfg.PKI = pki
		s, err := tdsim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		bootApp(t, s, compose)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		image := "image-1"
		if cfg.MRTD != ([48]byte{}) {
			image = "image-2"
		}
		h := sha256.Sum256([]byte(image))
		d := &td{name: name, sim: s, key: key,
			vmConfig: fmt.Sprintf(`{"os_image_hash":"%x","cpu_count":2,"memory_size":2147483648}`, h)}
		if d.parts, err = s.Dstack(ctx, verifyReportData, d.vmConfig); err != nil {
			t.Fatal(err)
		}
		rd, err := tdsim.RATLSReportData(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if d.cert, err = s.Dstack(ctx, rd, d.vmConfig); err != nil {
			t.Fatal(err)
		}
		return d
	}
	const app1 = "services:\n  app:\n    image: app-one@sha256:1111\n"
	const app2 = "services:\n  app:\n    image: app-two@sha256:2222\n"
	f := &fleet{
		a: mk("A", tdsim.Config{}, app1),
		b: mk("B", tdsim.Config{}, app2),
		c: mk("C", tdsim.Config{MRTD: mrtd2, BootEvents: image2}, app1),
		d: mk("D", tdsim.Config{Debug: true}, app1),
	}
	f.all = []*td{f.a, f.b, f.c, f.d}
	f.root = f.a.sim
	f.now = time.Now().UTC().Truncate(time.Second)
	if f.col, err = f.a.sim.Collateral(f.now); err != nil {
		t.Fatal(err)
	}
	f.nitro = newNitroFleet(t, f.now)
	// The fleet is what the campaign says it is: two apps on one image,
	// two images, one debug TD.
	ra, rb, rc := f.a.sim.RTMRs(), f.b.sim.RTMRs(), f.c.sim.RTMRs()
	if f.a.sim.MRTD() != f.b.sim.MRTD() || ra[0] != rb[0] || ra[1] != rb[1] || ra[2] != rb[2] || ra[3] == rb[3] {
		t.Fatal("A and B are not two apps on one image")
	}
	if f.a.sim.MRTD() == f.c.sim.MRTD() || ra[0] == rc[0] || ra[3] == rc[3] {
		t.Fatal("A and C are not two images")
	}
	if !f.d.sim.Debug() || f.a.sim.Debug() || f.d.sim.MRTD() != f.a.sim.MRTD() {
		t.Fatal("D is not A's image in debug mode")
	}
	f.snp = newSNPFleet(t, f)
	return f
}

// image2Boot is the boot log of the second image: tdsim's synthetic
// events with other payloads.
func image2Boot() []eventlog.Event {
	evs := tdsim.SyntheticBootEvents()
	for i := range evs {
		if evs[i].Type == eventlog.EvEFIAction {
			evs[i].Payload = append([]byte("image 2 "), evs[i].Payload...)
			d := sha512.Sum384(evs[i].Payload)
			evs[i].Digest = d[:]
		}
	}
	return evs
}

// bootApp records a dstack app identity in dstack's order: app-id,
// compose-hash, instance-id (random), key-provider, system-ready.
func bootApp(t *testing.T, s *tdsim.Sim, compose string) {
	t.Helper()
	ch := dstack.ComposeHash([]byte(compose))
	appID := dstack.DefaultAppID(ch)
	inst := make([]byte, 20)
	_, _ = rand.Read(inst)
	for _, e := range []struct {
		name    string
		payload []byte
	}{
		{dstack.EventSystemPreparing, nil},
		{dstack.EventAppID, appID[:]},
		{dstack.EventComposeHash, ch[:]},
		{dstack.EventInstanceID, inst},
		{dstack.EventBootMRDone, nil},
		{dstack.EventKeyProvider, []byte(`{"name":"none","id":""}`)},
		{dstack.EventSystemReady, nil},
	} {
		if _, err := s.Emit(e.name, e.payload); err != nil {
			t.Fatal(err)
		}
	}
}

// scenario is what the store pins of TD A.
type scenario int

const (
	// pinDstack: tdx.mr_td, tdx.rtmr_0..2, dstack.compose_hash and
	// dstack.app_id. No quote without its event log can satisfy it.
	pinDstack scenario = iota
	// pinRegisters: tdx.mr_td and tdx.rtmr_0..3, for the forms without
	// an event log.
	pinRegisters
)

func (s scenario) String() string {
	if s == pinDstack {
		return "pin-dstack"
	}
	return "pin-registers"
}

func (f *fleet) referenceValues(s scenario) []refvalue.Value {
	prov := refvalue.Provenance{Source: "attacktest"}
	vals := f.a.sim.ReferenceValues()
	r := f.a.sim.RTMRs()
	switch s {
	case pinDstack:
		ch, id := identity(f.a.sim)
		vals = append(vals,
			refvalue.Value{Name: "dstack.compose_hash", Values: []string{hex.EncodeToString(ch)}, Provenance: prov},
			refvalue.Value{Name: "dstack.app_id", Values: []string{hex.EncodeToString(id)}, Provenance: prov})
		vals = append(vals, f.snp.snpRefValues()...)
	case pinRegisters:
		vals = append(vals, refvalue.Value{Name: "tdx.rtmr_3", Values: []string{hex.EncodeToString(r[3][:])}, Provenance: prov})
		// The Nitro pins apply to no TDX evidence (claims.MeasurementApplies).
		vals = append(vals, f.nitro.referenceValues()...)
	}
	return vals
}

// identity returns the compose hash and app id a Sim recorded.
func identity(s *tdsim.Sim) (composeHash, appID []byte) {
	id := dstack.ReadIdentity(s.RuntimeEvents())
	return id.ComposeHash, id.AppID
}

// env is the verification service and the key broker over one store
// pinning TD A.
type env struct {
	svc     http.Handler
	broker  http.Handler
	secret  []byte
	res     protocol.ResourceID
	teeKey  crypto.PrivateKey
	teeJWK  protocol.JWK
	scen    scenario
	results *tally
	// snpCRL is the AMD CRL the verifier obtains for SEV-SNP evidence
	// (nil: none).
	snpCRL [][]byte
}

func newEnv(t *testing.T, f *fleet, dsn string, s scenario) *env {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, rv := range f.referenceValues(s) {
		if _, err := st.RefValues().Add(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return f.now }
	signer, err := ear.NewSigner(keys, ear.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return f.col, nil })
	e := &env{}
	v, err := verifier.New(src, st.RefValues(), signer, append([]verifier.Option{verifier.WithClock(clock), verifier.WithTrustedRoot(f.root.TrustRoot()),
		verifier.WithNitroRoot(f.nitro.ca.Root)},
		f.snp.snpOptions(e)...)...)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { return jwks }, verifiersvc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	b, err := kbs.New(kbs.Config{Store: st, Verifier: v, TokenKeys: keys, KEK: kek, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	*e = env{svc: svc, broker: b, secret: []byte("attacktest: TD A's secret " + s.String()),
		res: protocol.ResourceID{Repository: "default", Type: "key", Tag: "a"}, scen: s, results: &tally{}}
	if err := b.PutResource(ctx, e.res, e.secret); err != nil {
		t.Fatal(err)
	}
	if e.teeKey, e.teeJWK, err = protocol.GenerateKey(0); err != nil {
		t.Fatal(err)
	}
	return e
}

// tally counts the combinations of one environment.
type tally struct {
	tried, accepted, controls int
	byForm                    map[string]int
	failures                  []string
}

// record checks one combination's outcome: a control (TD A's own
// evidence) must be accepted, anything else refused.
func (e *env) record(t *testing.T, form, combo string, control, accepted bool, detail string) {
	t.Helper()
	r := e.results
	if r.byForm == nil {
		r.byForm = map[string]int{}
	}
	r.tried++
	r.byForm[form]++
	if control {
		r.controls++
		if !accepted {
			r.failures = append(r.failures, fmt.Sprintf("%s %s [%s]: TD A's own evidence refused: %s", e.scen, form, combo, detail))
		}
		return
	}
	if accepted {
		r.accepted++
		r.failures = append(r.failures, fmt.Sprintf("%s %s [%s]: ACCEPTED: %s", e.scen, form, combo, detail))
	}
}

func (e *env) do(t *testing.T, h http.Handler, method, path string, body []byte, cookie *http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// native posts req to /v1/verify: accepted means ear_status affirming.
func (e *env) native(t *testing.T, req map[string]any) (bool, string) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	w := e.do(t, e.svc, http.MethodPost, "/v1/verify", body, nil)
	var r struct {
		Result struct {
			Status    string `json:"ear_status"`
			Reason    string `json:"reason"`
			Appraisal struct {
				Failed []struct{ Rule, Claim string } `json:"failed"`
			} `json:"appraisal"`
		} `json:"result"`
	}
	if w.Code != http.StatusOK {
		return false, fmt.Sprintf("HTTP %d %s", w.Code, trim(w.Body.String()))
	}
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("/v1/verify: %v: %s", err, w.Body)
	}
	return r.Result.Status == "affirming", fmt.Sprintf("%s %s %v", r.Result.Status, trim(r.Result.Reason), r.Result.Appraisal.Failed)
}

// dstackVerify posts req to the dstack-compatible /verify: accepted
// means is_valid true.
func (e *env) dstackVerify(t *testing.T, req map[string]any) (bool, string) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	w := e.do(t, e.svc, http.MethodPost, "/verify", body, nil)
	var r struct {
		IsValid bool    `json:"is_valid"`
		Reason  *string `json:"reason"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("/verify: HTTP %d %v: %s", w.Code, err, w.Body)
	}
	reason := ""
	if r.Reason != nil {
		reason = *r.Reason
	}
	if r.IsValid && w.Code != http.StatusOK {
		t.Fatalf("/verify: is_valid true with HTTP %d", w.Code)
	}
	return r.IsValid, fmt.Sprintf("HTTP %d %s", w.Code, trim(reason))
}

// kbsAttempt runs the Trustee handshake with the primary evidence
// evidence(nonce) returns: accepted means the secret was released.
func (e *env) kbsAttempt(t *testing.T, evidence func(reportData [64]byte) []byte) (bool, string) {
	t.Helper()
	return e.kbsAttemptTEE(t, protocol.TeeTdx, evidence)
}

// kbsAttemptTEE is kbsAttempt for a session of TEE tee.
func (e *env) kbsAttemptTEE(t *testing.T, tee protocol.Tee, evidence func(reportData [64]byte) []byte) (bool, string) {
	t.Helper()
	authBody, _ := json.Marshal(protocol.NewRequest(tee))
	w := e.do(t, e.broker, http.MethodPost, protocol.PathAuth, authBody, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("auth: %d %s", w.Code, w.Body)
	}
	ch, err := protocol.ParseChallenge(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == protocol.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("auth: no session cookie")
	}
	rd, err := protocol.ReportData(ch.Nonce, e.teeJWK, "")
	if err != nil {
		t.Fatal(err)
	}
	att, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: ch.Nonce, TeePubKey: e.teeJWK},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: evidence(rd)},
	})
	if err != nil {
		t.Fatal(err)
	}
	w = e.do(t, e.broker, http.MethodPost, protocol.PathAttest, att, cookie)
	if w.Code != http.StatusOK {
		return false, fmt.Sprintf("attest HTTP %d %s", w.Code, trim(w.Body.String()))
	}
	path, err := e.res.Path()
	if err != nil {
		t.Fatal(err)
	}
	w = e.do(t, e.broker, http.MethodGet, path, nil, cookie)
	if w.Code != http.StatusOK {
		return false, fmt.Sprintf("resource HTTP %d %s", w.Code, trim(w.Body.String()))
	}
	pt, err := protocol.DecryptResource(w.Body.Bytes(), e.teeKey)
	if err != nil {
		t.Fatalf("resource: 200 but does not decrypt: %v", err)
	}
	if !bytes.Equal(pt, e.secret) {
		t.Fatalf("resource: 200 with %q", pt)
	}
	return true, "released"
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// choice is one value of an evidence part: its label, whether it is TD
// A's own (or an omission or unsigned part that cannot change the
// verdict), and the value.
type choice struct {
	label string
	own   bool
	v     any
}

type slot struct {
	name    string
	choices []choice
}

// product calls f with every combination of one choice per slot.
func product(slots []slot, f func(picks []choice)) {
	picks := make([]choice, len(slots))
	var rec func(i int)
	rec = func(i int) {
		if i == len(slots) {
			f(picks)
			return
		}
		for _, c := range slots[i].choices {
			picks[i] = c
			rec(i + 1)
		}
	}
	rec(0)
}

func describe(slots []slot, picks []choice) (string, bool) {
	var parts []string
	own := true
	for i, p := range picks {
		parts = append(parts, slots[i].name+"="+p.label)
		own = own && p.own
	}
	return strings.Join(parts, " "), own
}

func reversed(evs []eventlog.Event) []eventlog.Event {
	out := slices.Clone(evs)
	slices.Reverse(out)
	return out
}

func concat(lists ...[]eventlog.Event) []eventlog.Event {
	out := []eventlog.Event{}
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// mustCCEL encodes a CCEL without the region's 0xFF padding (64 KiB of
// hex in JSON would make the campaign slow, and the padding is not
// evidence).
func mustCCEL(t *testing.T, evs []eventlog.Event) []byte {
	t.Helper()
	b, err := tdsim.MarshalCCEL(evs, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quoteSlot is the quote of each TD (A's own).
func (f *fleet) quoteSlot(get func(*td) []byte) slot {
	s := slot{name: "quote"}
	for _, d := range f.all {
		s.choices = append(s.choices, choice{label: d.name, own: d == f.a, v: get(d)})
	}
	return s
}

// tags are runtime events as a CCEL records them: digests only.
func tags(evs []eventlog.Event) []eventlog.Event {
	out := make([]eventlog.Event, len(evs))
	for i, e := range evs {
		out[i] = asTag(e)
	}
	return out
}

// ccelSlot: TD A's CCEL, the other image's, A's reordered or truncated,
// and A's with runtime events (its own, or B's) in RTMR3.
func (f *fleet) ccelSlot(t *testing.T) slot {
	bootA, bootC := f.a.sim.BootEvents(), f.c.sim.BootEvents()
	rtA, rtB := f.a.sim.RuntimeEvents(), f.b.sim.RuntimeEvents()
	return slot{name: "ccel", choices: []choice{
		{"A", true, mustCCEL(t, bootA)},
		{"C", false, mustCCEL(t, bootC)},
		{"A-reversed", false, mustCCEL(t, reversed(bootA))},
		{"A-truncated", false, mustCCEL(t, bootA[:len(bootA)-1])},
		{"A+A-runtime", true, mustCCEL(t, concat(bootA, tags(rtA)))},
		{"A+B-runtime", false, mustCCEL(t, concat(bootA, tags(rtB)))},
	}}
}

// runtimeSlot: TD A's runtime events, another app's on the same image
// (B), the same app's on another image (C), none, A's reversed, A's
// without system-ready, and A's followed by B's compose-hash.
func (f *fleet) runtimeSlot() slot {
	rtA := f.a.sim.RuntimeEvents()
	rtB := f.b.sim.RuntimeEvents()
	bCompose := rtB[slices.IndexFunc(rtB, func(e eventlog.Event) bool { return e.Name == dstack.EventComposeHash })]
	return slot{name: "runtime", choices: []choice{
		{"A", true, rtA},
		{"B", false, rtB},
		{"C", false, f.c.sim.RuntimeEvents()},
		{"omitted", false, []eventlog.Event(nil)},
		{"A-reversed", false, reversed(rtA)},
		{"A-truncated", false, rtA[:len(rtA)-1]},
		{"A+B-compose", false, concat(rtA, []eventlog.Event{bCompose})},
		{"A+B-compose-as-tag", false, concat(rtA, []eventlog.Event{asTag(bCompose)})},
	}}
}

// asTag is e logged as a firmware event (EV_EVENT_TAG) in RTMR3: not a
// runtime event, so not replayed by a verifier that selects runtime
// events by type.
func asTag(e eventlog.Event) eventlog.Event {
	e.Type = eventlog.EvEventTag
	e.Version, e.Preimage = 0, nil
	return e
}

// TestCampaign runs the campaign on SQLite and PostgreSQL (skipped
// without TDPROOF_TEST_POSTGRES_DSN unless required), each scenario on a
// fresh database.
func TestCampaign(t *testing.T) {
	f := newFleet(t)
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		runCampaign(t, f, storetest.SQLiteDSN)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		runCampaign(t, f, storetest.PostgresDSN)
	})
}

func runCampaign(t *testing.T, f *fleet, newDSN func(testing.TB) string) {
	start := time.Now()
	total := &tally{byForm: map[string]int{}}
	for _, s := range []scenario{pinDstack, pinRegisters} {
		e := newEnv(t, f, newDSN(t), s)
		campaignQuote(t, f, e)
		campaignCCEL(t, f, e)
		campaignKBS(t, f, e)
		if s == pinRegisters {
			campaignNitro(t, f, e)
		}
		if s == pinDstack {
			campaignGetQuote(t, f, e)
			campaignAttestation(t, f, e)
			campaignRATLS(t, f, e)
			campaignMixedJSON(t, f, e)
			campaignSNP(t, f.snp, e)
		}
		r := e.results
		total.tried += r.tried
		total.accepted += r.accepted
		total.controls += r.controls
		for k, v := range r.byForm {
			total.byForm[s.String()+"/"+k] = v
		}
		total.failures = append(total.failures, r.failures...)
	}
	forms := slices.Sorted(func(yield func(string) bool) {
		for k := range total.byForm {
			if !yield(k) {
				return
			}
		}
	})
	var per []string
	for _, k := range forms {
		per = append(per, fmt.Sprintf("%s %d", k, total.byForm[k]))
	}
	t.Logf("campaign: %d combinations tried (%d controls of TD A's own evidence, %d attacks), %d attacks accepted, in %v",
		total.tried, total.controls, total.tried-total.controls, total.accepted, time.Since(start).Round(time.Millisecond))
	t.Logf("campaign: per form: %s", strings.Join(per, ", "))
	for i, msg := range total.failures {
		if i == 50 {
			t.Errorf("… and %d more", len(total.failures)-50)
			break
		}
		t.Error(msg)
	}
	if total.tried-total.controls < minCombinations {
		t.Errorf("campaign tried %d attack combinations, want at least %d", total.tried-total.controls, minCombinations)
	}
	if total.controls == 0 {
		t.Error("campaign ran no control")
	}
}

// campaignQuote: a quote alone, with and without a nonce.
func campaignQuote(t *testing.T, f *fleet, e *env) {
	slots := []slot{
		f.quoteSlot(func(d *td) []byte { return d.parts.Quote }),
		{name: "nonce", choices: []choice{{"none", true, ""}, {"prefix", true, hex.EncodeToString(verifyReportData[:16])}, {"other", false, "00112233"}}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		req := map[string]any{"quote": hex.EncodeToString(p[0].v.([]byte))}
		if n := p[1].v.(string); n != "" {
			req["nonce"] = n
		}
		ok, detail := e.native(t, req)
		e.record(t, "quote", combo, own && e.scen == pinRegisters, ok, detail)
	})
}

// campaignCCEL: a quote with a CCEL.
func campaignCCEL(t *testing.T, f *fleet, e *env) {
	slots := []slot{
		f.quoteSlot(func(d *td) []byte { return d.parts.Quote }),
		f.ccelSlot(t),
		{name: "nonce", choices: []choice{{"none", true, ""}, {"other", false, "00112233"}}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		req := map[string]any{"quote": hex.EncodeToString(p[0].v.([]byte)), "cc_eventlog": hex.EncodeToString(p[1].v.([]byte))}
		if n := p[2].v.(string); n != "" {
			req["nonce"] = n
		}
		ok, detail := e.native(t, req)
		e.record(t, "quote+ccel", combo, own && e.scen == pinRegisters, ok, detail)
	})
}

// campaignGetQuote: dstack GetQuote JSON on /v1/verify and /verify.
func campaignGetQuote(t *testing.T, f *fleet, e *env) {
	bootA := f.a.sim.BootEvents()
	// The same app on another image (C) is refused as B is: left out.
	runtime := f.runtimeSlot()
	runtime.choices = slices.DeleteFunc(runtime.choices, func(c choice) bool { return c.label == "C" })
	otherRD := verifyReportData
	otherRD[0] ^= 0xff
	slots := []slot{
		f.quoteSlot(func(d *td) []byte { return d.parts.Quote }),
		{name: "boot", choices: []choice{{"A", true, bootA}, {"omitted", true, []eventlog.Event(nil)}, {"C", false, f.c.sim.BootEvents()}}},
		runtime,
		{name: "tail", choices: []choice{
			{"A", true, [2]any{&verifyReportData, f.a.vmConfig}},
			{"omitted", true, [2]any{(*[64]byte)(nil), ""}},
			{"other-report_data", false, [2]any{&otherRD, f.a.vmConfig}},
		}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		tail := p[3].v.([2]any)
		parts := tdsim.DstackParts{Quote: p[0].v.([]byte), ReportData: tail[0].(*[64]byte), VMConfig: tail[1].(string)}
		boot, rt := p[1].v.([]eventlog.Event), p[2].v.([]eventlog.Event)
		if boot != nil || rt != nil {
			parts.EventLog = concat(boot, rt)
		}
		raw, err := parts.GetQuoteJSON()
		if err != nil {
			t.Fatal(err)
		}
		var req map[string]any
		if err := json.Unmarshal(raw, &req); err != nil {
			t.Fatal(err)
		}
		ok, detail := e.native(t, map[string]any{"dstack": json.RawMessage(raw)})
		e.record(t, "getquote /v1/verify", combo, own, ok, detail)
		ok, detail = e.dstackVerify(t, req)
		e.record(t, "getquote /verify", combo, own, ok, detail)
	})
}

// campaignAttestation: VersionedAttestation V0 and V1 on /v1/verify and
// /verify.
func campaignAttestation(t *testing.T, f *fleet, e *env) {
	bootA, rtB := f.a.sim.BootEvents(), f.b.sim.RuntimeEvents()
	rt := f.runtimeSlot()
	bCompose := rt.choices[6].v.([]eventlog.Event)[len(f.a.sim.RuntimeEvents())]
	otherRD := verifyReportData
	otherRD[0] ^= 0xff
	for _, version := range []int{0, 1} {
		slots := []slot{
			f.quoteSlot(func(d *td) []byte { return d.parts.Quote }),
			{name: "event_log", choices: []choice{
				{"A", true, f.a.sim.EventLog()},
				{"omitted", true, []eventlog.Event{}},
				{"A-boot+B-runtime", false, concat(bootA, rtB)},
				{"A+B-compose-as-tag", false, concat(f.a.sim.EventLog(), []eventlog.Event{asTag(bCompose)})},
			}},
			{name: "runtime", choices: []choice{rt.choices[0], rt.choices[1], rt.choices[4]}},
			{name: "tail", choices: []choice{
				{"A", true, [2]any{verifyReportData, f.a.vmConfig}},
				// vm_config is not signed: another image's changes nothing.
				{"C-config", true, [2]any{verifyReportData, f.c.vmConfig}},
				{"other-report_data", false, [2]any{otherRD, f.a.vmConfig}},
			}},
		}
		product(slots, func(p []choice) {
			combo, own := describe(slots, p)
			tail := p[3].v.([2]any)
			rd := tail[0].([64]byte)
			parts := tdsim.DstackParts{Quote: p[0].v.([]byte), EventLog: p[1].v.([]eventlog.Event), RuntimeEvents: p[2].v.([]eventlog.Event),
				ReportData: &rd, VMConfig: tail[1].(string)}
			raw, err := parts.Attestation(version)
			if err != nil {
				t.Fatalf("%s: %v", combo, err)
			}
			form := fmt.Sprintf("attestation-v%d", version)
			ok, detail := e.native(t, map[string]any{"dstack": hex.EncodeToString(raw)})
			e.record(t, form+" /v1/verify", combo, own, ok, detail)
			ok, detail = e.dstackVerify(t, map[string]any{"attestation": hex.EncodeToString(raw)})
			e.record(t, form+" /verify", combo, own, ok, detail)
		})
	}
}

// campaignRATLS: RA-TLS certificates on /v1/verify: the certificate key,
// the evidence extension (attestation .1.8 of each TD, A's legacy
// quote and event log, none) and a legacy extension beside .1.8.
func campaignRATLS(t *testing.T, f *fleet, e *env) {
	attOf := func(d *td, v int) []byte {
		b, err := d.cert.Attestation(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	logOf := func(d *td) []byte { return eventlog.MarshalEvents(d.cert.EventLog) }
	type exts = tdsim.RATLSExtensions
	evidence := []choice{
		{"A-v1", true, exts{Attestation: attOf(f.a, 1)}},
		{"A-v0", true, exts{Attestation: attOf(f.a, 0)}},
		{"A-legacy", true, exts{Quote: f.a.cert.Quote, EventLog: logOf(f.a)}},
		{"B-v1", false, exts{Attestation: attOf(f.b, 1)}},
		{"C-v1", false, exts{Attestation: attOf(f.c, 1)}},
		{"D-v1", false, exts{Attestation: attOf(f.d, 1)}},
		{"B-legacy", false, exts{Quote: f.b.cert.Quote, EventLog: logOf(f.b)}},
		{"none", false, exts{}},
	}
	beside := []choice{
		{"none", true, exts{}},
		{"A-same-quote", true, exts{Quote: f.a.cert.Quote}},
		{"A-same-log", true, exts{EventLog: logOf(f.a)}},
		{"B-quote", false, exts{Quote: f.b.cert.Quote}},
		{"A-other-quote", false, exts{Quote: f.a.parts.Quote}},
		{"B-log", false, exts{EventLog: logOf(f.b)}},
	}
	keys := []choice{{"A", true, f.a.key}, {"B", false, f.b.key}}
	for _, k := range keys {
		for _, ev := range evidence {
			x := ev.v.(exts)
			for _, b := range beside {
				bx := b.v.(exts)
				if x.Attestation == nil && (bx.Quote != nil || bx.EventLog != nil) {
					continue // beside: only next to an attestation
				}
				x := x
				if bx.Quote != nil {
					x.Quote = bx.Quote
				}
				if bx.EventLog != nil {
					x.EventLog = bx.EventLog
				}
				// "A-same-*" are the same evidence only beside A's own
				// attestation.
				own := k.own && ev.own && b.own
				der, err := tdsim.RATLSCertificate(k.v.(*ecdsa.PrivateKey), x)
				if err != nil {
					t.Fatal(err)
				}
				combo := fmt.Sprintf("key=%s evidence=%s beside=%s", k.label, ev.label, b.label)
				ok, detail := e.native(t, map[string]any{"dstack": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))})
				e.record(t, "ratls /v1/verify", combo, own, ok, detail)
			}
		}
	}
}

// campaignKBS: the Trustee handshake, with a quote made for the session
// (by each TD, or A's made for another session), a CCEL and the dstack
// event log extension.
func campaignKBS(t *testing.T, f *fleet, e *env) {
	ctx := t.Context()
	stale, err := f.a.sim.Quote(ctx, [64]byte{0: 's', 1: 't', 2: 'a', 3: 'l', 4: 'e'})
	if err != nil {
		t.Fatal(err)
	}
	quotes := slot{name: "quote"}
	for _, d := range f.all {
		quotes.choices = append(quotes.choices, choice{label: d.name, own: d == f.a, v: d})
	}
	quotes.choices = append(quotes.choices, choice{label: "A-other-session", own: false, v: stale})
	ccel := f.ccelSlot(t)
	ccel.choices = append([]choice{{"omitted", true, []byte(nil)}}, ccel.choices[0], ccel.choices[1], ccel.choices[5])
	rtA := f.a.sim.RuntimeEvents()
	bootA := f.a.sim.BootEvents()
	logs := slot{name: "event_log", choices: []choice{
		{"A", true, f.a.sim.EventLog()},
		{"omitted", e.scen == pinRegisters, []eventlog.Event(nil)},
		{"B", false, f.b.sim.EventLog()},
		{"C", false, f.c.sim.EventLog()},
		{"A-boot", false, bootA},
		{"A-runtime-reversed", false, concat(bootA, reversed(rtA))},
		{"A+B-compose-as-tag", false, concat(bootA, f.runtimeSlot().choices[7].v.([]eventlog.Event))},
	}}
	if e.scen == pinRegisters {
		// The dstack forms are the pin-dstack scenario's: here the log
		// is there or not, or another TD's.
		logs.choices = []choice{logs.choices[0], logs.choices[1], logs.choices[2], logs.choices[6]}
	}
	slots := []slot{quotes, ccel, logs}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		ok, detail := e.kbsAttempt(t, func(rd [64]byte) []byte {
			var q []byte
			switch v := p[0].v.(type) {
			case *td:
				var err error
				if q, err = v.sim.Quote(ctx, rd); err != nil {
					t.Fatal(err)
				}
			case []byte:
				q = v
			}
			ev, err := tdsim.KBSEvidence(q, p[1].v.([]byte), p[2].v.([]eventlog.Event), f.a.vmConfig)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		})
		e.record(t, "kbs", combo, own, ok, detail)
	})
}

// campaignMixedJSON: one JSON object carrying an attestation and
// GetQuote members (quote, event_log) of the same or another TD, on
// /v1/verify and /verify.
func campaignMixedJSON(t *testing.T, f *fleet, e *env) {
	attOf := func(d *td) []byte {
		b, err := d.parts.Attestation(1)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	slots := []slot{
		{name: "attestation", choices: []choice{{"A", true, attOf(f.a)}, {"B", false, attOf(f.b)}}},
		{name: "quote", choices: []choice{{"omitted", true, []byte(nil)}, {"A", true, f.a.parts.Quote}, {"B", false, f.b.parts.Quote}}},
		{name: "event_log", choices: []choice{{"omitted", true, []eventlog.Event(nil)}, {"A", true, f.a.parts.EventLog}, {"B", false, f.b.parts.EventLog}}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		req := map[string]any{"attestation": hex.EncodeToString(p[0].v.([]byte))}
		if q := p[1].v.([]byte); q != nil {
			req["quote"] = hex.EncodeToString(q)
		}
		if l := p[2].v.([]eventlog.Event); l != nil {
			req["event_log"] = string(eventlog.MarshalEvents(l))
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		ok, detail := e.native(t, map[string]any{"dstack": json.RawMessage(body)})
		e.record(t, "mixed-json /v1/verify", combo, own, ok, detail)
		ok, detail = e.dstackVerify(t, req)
		e.record(t, "mixed-json /verify", combo, own, ok, detail)
	})
}
