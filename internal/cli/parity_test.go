package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// parityVector is one piece of shared evidence, as the CLI takes it and
// as the service takes it.
type parityVector struct {
	name string
	// kind is the CLI command: "quote" (quote verify), "dstack" (dstack
	// verify) or "eventlog" (eventlog replay --quote).
	kind string
	// file is the CLI's evidence file (the event log for "eventlog");
	// quoteFile the --quote of "eventlog".
	file, quoteFile string
	// quote is the raw quote (for the collateral and the pins).
	quote []byte
	// collateral is the --collateral path, at the verification time.
	collateral string
	at         time.Time
	// native is the POST /v1/verify body; dstackBody, for dstack
	// evidence, the POST /verify body.
	native     map[string]any
	dstackBody []byte
}

// paritySetup is one appraisal configuration, given to both sides.
type paritySetup struct {
	name string
	// shift moves the verification time of every vector.
	shift time.Duration
	// pins are reference values (name → values) in the store, and in the
	// --refvalues file the CLI gets (the output of tdproof refvalue list
	// --format json) unless viaDB.
	pins map[string][]string
	// policy, kind: a policy stored as the active "default" for the
	// service and given to the CLI with --policy (YAML or Rego file).
	policy, kind string
	// policyID: the policy is stored under this id (not as "default"),
	// the service's request names it and the CLI gets --db and
	// --policy-id; the dstack-compatible /verify (which cannot name a
	// policy) is then not compared.
	policyID string
	// viaDB: the CLI reads the service's database (--db) instead of
	// files.
	viaDB bool
	// quoteFlags: the CLI's quote verify switches, equivalent to policy
	// (the CLI then gets the switches, not the file, for quote verify).
	quoteFlags []string
	// text: also run the human output and check its first line (the JSON
	// output is checked in every setup).
	text bool
}

// TestCLIAgreesWithService runs every quote, dstack and event-log vector of
// the shared test data through the CLI (quote verify, dstack verify,
// eventlog replay --quote, in-process) and through the service (POST
// /v1/verify and, for dstack evidence, POST /verify, through httptest with
// the same store, reference values, policy and verification time), under
// several setups, and requires the same allow/refuse decision and, when
// both reach a verdict, the same EAR status (docs/security-model.md, "CLI").
func TestCLIAgreesWithService(t *testing.T) {
	vectors := parityVectors(t)
	lite := expectedDstack(t, "tdx-lite-getquote.expected.json")
	// Pins: the code of every TDX vector (several values per name).
	pins := map[string][]string{}
	for _, v := range vectors {
		q, err := quote.Parse(v.quote)
		if err != nil || q.TD == nil {
			continue
		}
		add := func(name string, b []byte) {
			h := hex.EncodeToString(b)
			if !slices.Contains(pins[name], h) {
				pins[name] = append(pins[name], h)
			}
		}
		add("tdx.mr_td", q.TD.MRTD[:])
		for i := range 3 {
			add("tdx.rtmr_"+strconv.Itoa(i), q.TD.RTMRs[i][:])
		}
	}
	with := func(extra map[string][]string) map[string][]string {
		m := map[string][]string{}
		for k, v := range pins {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	twinYAML, err := os.ReadFile(filepath.Join("..", "..", "policy", "testdata", "twin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	twinRego, err := os.ReadFile(filepath.Join("..", "..", "policy", "testdata", "twin.rego"))
	if err != nil {
		t.Fatal(err)
	}
	const permissive = `accepted_tcb_statuses: [UpToDate, SWHardeningNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate]
allow_expired_collateral_unsafe: true
allow_events_after_system_ready_unsafe: true
allow_unpinned_unsafe: true
`
	setups := []paritySetup{
		{name: "default", text: true},
		{name: "pinned", pins: pins, text: true},
		{name: "pinned-compose-hash", pins: with(map[string][]string{"dstack.compose_hash": {lite["compose_hash"].(string)}}), text: true},
		{name: "wrong-pin", pins: map[string][]string{"tdx.mr_td": {strings.Repeat("00", 48)}}},
		{name: "expired", shift: 400 * 24 * time.Hour, pins: pins, text: true},
		{name: "before-validity", shift: -5 * 365 * 24 * time.Hour},
		{name: "policy-permissive", policy: permissive, kind: "yaml"},
		// quote verify's switches against the same rules as a policy.
		{name: "switches", shift: 400 * 24 * time.Hour, pins: pins,
			policy: "accepted_tcb_statuses: [UpToDate, ConfigurationAndSWHardeningNeeded]\nallow_expired_collateral_unsafe: true\n", kind: "yaml",
			quoteFlags: []string{"--accept-status", "UpToDate,ConfigurationAndSWHardeningNeeded", "--allow-expired-collateral-unsafe"}},
		{name: "policy-permissive-expired", shift: 400 * 24 * time.Hour, policy: permissive, kind: "yaml"},
		{name: "policy-twin-yaml", policy: string(twinYAML), kind: "yaml", policyID: "twin", pins: pins},
		{name: "policy-twin-rego", policy: string(twinRego), kind: "rego", pins: pins},
		{name: "db-default", pins: with(map[string][]string{"dstack.app_id": {lite["app_id"].(string)}}), viaDB: true},
		{name: "db-policy-id", policy: "tees: [sgx]\nallow_unpinned_unsafe: true\n", kind: "yaml", policyID: "sgx-only", viaDB: true},
	}

	// Anchors: what both sides must decide (issue 12, items 1 and 7), so
	// that agreement cannot come from both being wrong the same way.
	anchors := map[string]string{
		"default/dstack/quote-report.json":                                        "refuse", // RTMR3 event after system-ready
		"default/dstack/tdx-lite-getquote.json":                                   "warning",
		"default/quote/tdx-v4-b0c06f":                                             "warning",
		"default/quote/sgx-v3-00a067":                                             "refuse", // ConfigurationAndSWHardeningNeeded
		"default/quote/tdx-v5-90c06f":                                             "refuse", // TCB not supported
		"default/eventlog/ccel+tdx-v4-b0c06f":                                     "refuse", // another machine's CCEL
		"pinned/quote/tdx-v4-b0c06f":                                              "affirming",
		"pinned/dstack/tdx-lite-getquote.json":                                    "affirming",
		"pinned-compose-hash/dstack/tdx-lite-getquote.json":                       "affirming",
		"pinned-compose-hash/quote-only/tdx-lite-getquote.json":                   "refuse", // event log omitted: claim missing
		"pinned-compose-hash/dstack/quote-report.json":                            "refuse",
		"wrong-pin/quote/tdx-v4-b0c06f":                                           "refuse",
		"expired/quote/tdx-v4-b0c06f":                                             "refuse", // collateral expired
		"switches/quote/tdx-v4-b0c06f":                                            "affirming",
		"switches/quote/sgx-v3-00a067":                                            "warning",
		"policy-permissive/dstack/quote-report.json":                              "affirming",
		"db-default/quote-only/tdx-lite-getquote.json":                            "refuse",  // dstack.app_id pinned, log omitted
		"db-policy-id/quote/tdx-v4-b0c06f":                                        "refuse",  // tees: [sgx]
		"default/dstack/multitee/dstack-attest__tests__nitro_attestation.bin":     "warning", // PCR0-2 unpinned
		"default/dstack/multitee/dstack-attest__tests__nitro_attestation_dbg.bin": "refuse",  // debug enclave
		"expired/dstack/multitee/dstack-attest__tests__nitro_attestation.bin":     "refuse",  // stale document
		"policy-permissive/dstack/multitee/nsm-qvl__tests__nitro_attestation.bin": "affirming",
	}
	var cases, allowed, refused, dstackCompared int
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			env := newParityEnv(t, s)
			for _, v := range vectors {
				t.Run(v.name, func(t *testing.T) {
					cli := env.runCLI(t, v)
					native := env.runNative(t, v)
					cases++
					if cli.allow {
						allowed++
					} else {
						refused++
					}
					if cli.allow != native.allow {
						t.Fatalf("CLI %s (exit %d, %q) but POST /v1/verify %s (%s)", decision(cli.allow), cli.code, cli.first, decision(native.allow), native.detail)
					}
					if cli.status != "" && native.status != "" && cli.status != native.status {
						t.Errorf("EAR status: CLI %s, service %s", cli.status, native.status)
					}
					if want, ok := anchors[s.name+"/"+v.name]; ok {
						delete(anchors, s.name+"/"+v.name)
						got := "refuse"
						if cli.allow {
							got = cli.status
						}
						if got != want {
							t.Errorf("both %s (%q), want %s", got, cli.first, want)
						}
					}
					if v.dstackBody != nil && s.policyID == "" {
						d := env.runDstack(t, v)
						dstackCompared++
						if d.allow != cli.allow {
							t.Fatalf("CLI %s (exit %d, %q) but POST /verify %s (%s)", decision(cli.allow), cli.code, cli.first, decision(d.allow), d.detail)
						}
					}
				})
			}
		})
	}
	for k := range anchors {
		t.Errorf("anchor %s: no such case", k)
	}
	t.Logf("%d vectors × %d setups: %d cases (%d allowed, %d refused), %d also through POST /verify", len(vectors), len(setups), cases, allowed, refused, dstackCompared)
	if allowed == 0 || refused == 0 {
		t.Errorf("the table never allows or never refuses (%d allowed, %d refused): it proves nothing", allowed, refused)
	}
}

func decision(allow bool) string {
	if allow {
		return "allows"
	}
	return "refuses"
}

// parityVectors lists the shared vectors (../shared/testdata/README.md):
// every DCAP quote, every dstack evidence file (with its own quote only as
// well), and event logs with matching and foreign quotes.
func parityVectors(t *testing.T) []parityVector {
	t.Helper()
	dir := testvectors.Dir(t)
	coll90 := filepath.Join(dir, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	at90 := time.Unix(1774003274, 0).UTC()
	tmp := t.TempDir()
	var out []parityVector
	quoteVector := func(name, file string, raw []byte, coll string, at time.Time) parityVector {
		return parityVector{name: name, kind: "quote", file: file, quote: raw, collateral: coll, at: at,
			native: map[string]any{"quote": hex.EncodeToString(raw)}}
	}
	read := func(elem ...string) []byte {
		b, err := os.ReadFile(filepath.Join(append([]string{dir}, elem...)...))
		if err != nil {
			t.Fatalf("shared vector: %v", err)
		}
		return b
	}
	// DCAP quotes with their collateral and time.
	dcapVectors := []struct {
		dir, coll string
		at        int64
	}{
		{"tdx-v4-b0c06f", "collateral.json", 1752919234},
		{"sgx-v3-00a067", "collateral.json", 1752919277},
		{"tdx-v5-90c06f", "collateral.json", 1774003274},
		{"tdx-v4-90c06f-dstack", "collateral.json", 1774003274},
		{"tdx-v4-50806f-pcs", "pcs", 1688173200},
	}
	for _, d := range dcapVectors {
		p := filepath.Join(dir, "dcap", d.dir, "quote.bin")
		out = append(out, quoteVector("quote/"+d.dir, p, read("dcap", d.dir, "quote.bin"), filepath.Join(dir, "dcap", d.dir, d.coll), time.Unix(d.at, 0).UTC()))
	}
	// Parse-only quotes: no collateral of their own; the nearest one.
	entries, err := os.ReadDir(filepath.Join(dir, "dcap", "parse-only"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := quote.DecodeInput(read("dcap", "parse-only", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := writeFile(t, tmp, e.Name()+".bin", raw)
		out = append(out, quoteVector("quote/parse-only/"+e.Name(), p, raw, filepath.Join(dir, "dcap", "tdx-v4-b0c06f", "collateral.json"), time.Unix(1752919234, 0).UTC()))
	}
	// dstack evidence, and each one's quote sent alone (its event log
	// omitted).
	var dstackFiles []string
	for _, f := range []string{"quote-report.json", "tdx-lite-getquote.json", "tdx-lite-attestation.json"} {
		dstackFiles = append(dstackFiles, filepath.Join(dir, "dstack", f))
	}
	for _, f := range []string{"verifier__fixtures__tdx-lite-getquote.json", "verifier__fixtures__tdx-lite-attestation.json"} {
		if p := filepath.Join(dir, "multitee", "dstack", f); fileExists(p) {
			dstackFiles = append(dstackFiles, p)
		}
	}
	for _, p := range dstackFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dstack.ParseEvidence(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		name := strings.TrimPrefix(filepath.Base(p), "verifier__fixtures__")
		if strings.Contains(p, "multitee") {
			name = "multitee/" + name
		}
		var obj json.RawMessage = bytes.TrimSpace(data)
		out = append(out, parityVector{name: "dstack/" + name, kind: "dstack", file: p, quote: ev.Quote.Raw, collateral: coll90, at: at90,
			native: map[string]any{"dstack": obj}, dstackBody: data})
		qp := writeFile(t, tmp, strings.ReplaceAll(name, "/", "_")+".quote.bin", ev.Quote.Raw)
		out = append(out, quoteVector("quote-only/"+name, qp, ev.Quote.Raw, coll90, at90))
	}
	// dstack SEV-SNP evidence: no quote; the service appraises it too.
	if p := filepath.Join(dir, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json"); fileExists(p) {
		data := read("multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
		var obj json.RawMessage = bytes.TrimSpace(data)
		out = append(out, parityVector{name: "dstack/multitee/sev-snp-attestation.json", kind: "dstack", file: p, collateral: coll90,
			at: time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC), native: map[string]any{"dstack": obj}})
	}
	// dstack Nitro Enclave captures at their pinned times (the debug one
	// is refused by both): no quote either.
	for _, n := range []struct {
		file string
		ms   int64
	}{
		{"dstack-attest__tests__nitro_attestation.bin", 1766678659346},
		{"nsm-qvl__tests__nitro_attestation.bin", 1766668537578},
		{"dstack-attest__tests__nitro_attestation_dbg.bin", 1766650846577},
	} {
		p := filepath.Join(dir, "multitee", "dstack", n.file)
		if !fileExists(p) {
			continue
		}
		body := []byte(`{"attestation":"` + hex.EncodeToString(read("multitee", "dstack", n.file)) + `"}`)
		out = append(out, parityVector{name: "dstack/multitee/" + n.file, kind: "dstack", file: p, collateral: coll90,
			at: time.UnixMilli(n.ms).UTC(), native: map[string]any{"dstack": json.RawMessage(body)}, dstackBody: body})
	}
	// Event logs: the CCEL with each TDX quote (as cc_eventlog), and the
	// JSON logs with their own quote and a foreign one (as dstack
	// evidence).
	ccel := filepath.Join(dir, "dstack", "ccel.bin")
	ccelRaw := read("dstack", "ccel.bin")
	for _, d := range []struct {
		dir string
		at  int64
	}{{"tdx-v4-b0c06f", 1752919234}, {"tdx-v4-90c06f-dstack", 1774003274}, {"tdx-v5-90c06f", 1774003274}} {
		raw := read("dcap", d.dir, "quote.bin")
		out = append(out, parityVector{name: "eventlog/ccel+" + d.dir, kind: "eventlog", file: ccel, quoteFile: filepath.Join(dir, "dcap", d.dir, "quote.bin"),
			quote: raw, collateral: filepath.Join(dir, "dcap", d.dir, "collateral.json"), at: time.Unix(d.at, 0).UTC(),
			native: map[string]any{"quote": hex.EncodeToString(raw), "cc_eventlog": base64.StdEncoding.EncodeToString(ccelRaw)}})
	}
	b0 := read("dcap", "tdx-v4-b0c06f", "quote.bin")
	for _, f := range []string{"quote-report.json", "tdx-lite-getquote.json"} {
		data := read("dstack", f)
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		own, err := hex.DecodeString(obj["quote"].(string))
		if err != nil {
			t.Fatal(err)
		}
		getquote := func(q []byte) map[string]any {
			m := map[string]any{}
			for k, v := range obj {
				m[k] = v
			}
			m["quote"] = hex.EncodeToString(q)
			return m
		}
		ownPath := writeFile(t, tmp, f+".quote.bin", own)
		p := filepath.Join(dir, "dstack", f)
		out = append(out,
			parityVector{name: "eventlog/" + f, kind: "eventlog", file: p, quoteFile: ownPath, quote: own, collateral: coll90, at: at90,
				native: map[string]any{"dstack": getquote(own)}},
			parityVector{name: "eventlog/" + f + "+tdx-v4-b0c06f", kind: "eventlog", file: p, quoteFile: filepath.Join(dir, "dcap", "tdx-v4-b0c06f", "quote.bin"),
				quote: b0, collateral: filepath.Join(dir, "dcap", "tdx-v4-b0c06f", "collateral.json"), at: time.Unix(1752919234, 0).UTC(),
				native: map[string]any{"dstack": getquote(b0)}})
		// The bare JSON event array (source "json").
		arr := writeFile(t, tmp, f+".events.json", []byte(obj["event_log"].(string)))
		out = append(out, parityVector{name: "eventlog/" + f + ".events", kind: "eventlog", file: arr, quoteFile: ownPath, quote: own, collateral: coll90, at: at90,
			native: map[string]any{"dstack": map[string]any{"quote": hex.EncodeToString(own), "event_log": obj["event_log"]}}})
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// parityEnv is one setup's service state and CLI flags.
type parityEnv struct {
	setup  paritySetup
	st     *store.Store
	dsn    string
	signer *ear.Signer
	// refFlags and policyFlags are the CLI's appraisal flags.
	refFlags, policyFlags []string
}

func newParityEnv(t *testing.T, s paritySetup) *parityEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "tdproof.db")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for name, vals := range s.pins {
		if _, err := st.RefValues().Add(ctx, refvalue.Value{Name: name, Values: vals, Provenance: refvalue.Provenance{Source: "parity test"}}); err != nil {
			t.Fatal(err)
		}
	}
	env := &parityEnv{setup: s, st: st, dsn: dsn}
	if s.policy != "" {
		id := s.policyID
		if id == "" {
			id = "default"
		}
		if _, err := st.CreatePolicy(ctx, store.Policy{ID: id, Kind: store.PolicyKind(s.kind), Body: s.policy, Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	switch {
	case s.viaDB:
		env.refFlags = []string{"--db", dsn}
		if s.policyID != "" {
			env.policyFlags = []string{"--policy-id", s.policyID}
		}
	default:
		if len(s.pins) > 0 {
			// The reference values as tdproof refvalue list writes them.
			o := invoke(t, nil, "refvalue", "list", "--db", dsn, "--format", "json")
			o.wantCode(t, exitOK)
			env.refFlags = []string{"--refvalues", writeFile(t, dir, "refvalues.json", []byte(o.stdout))}
		}
		if s.policy != "" {
			env.policyFlags = []string{"--policy", writeFile(t, dir, "policy."+s.kind, []byte(s.policy))}
		}
	}
	key, err := ear.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ear.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	if env.signer, err = ear.NewSigner(ks); err != nil {
		t.Fatal(err)
	}
	return env
}

// verdictOut is one side's decision.
type verdictOut struct {
	allow  bool
	status string // EAR status, "" without a verdict
	code   int
	first  string
	detail string
}

// runCLI runs the vector's CLI command in-process.
func (e *parityEnv) runCLI(t *testing.T, v parityVector) verdictOut {
	t.Helper()
	at := v.at.Add(e.setup.shift).Format(time.RFC3339)
	var args []string
	switch v.kind {
	case "quote":
		args = []string{"quote", "verify", v.file}
	case "dstack":
		args = []string{"dstack", "verify", v.file}
	case "eventlog":
		args = []string{"eventlog", "replay", v.file, "--quote", v.quoteFile}
	}
	args = append(args, "--collateral", v.collateral, "--at", at)
	args = append(args, e.refFlags...)
	if v.kind == "quote" && e.setup.quoteFlags != nil {
		args = append(args, e.setup.quoteFlags...)
	} else {
		args = append(args, e.policyFlags...)
	}
	j := invoke(t, nil, append(args, "--format", "json")...)
	out := verdictOut{code: j.code, allow: j.code == exitOK}
	if j.code == exitUsage || j.code == exitInternal {
		t.Fatalf("tdproof %s: exit %d\n%s%s", strings.Join(args, " "), j.code, j.stdout, j.stderr)
	}
	var res struct {
		Verdict string `json:"verdict"`
		Result  *struct {
			Status string `json:"ear_status"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(j.stdout), &res); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, j.stdout)
	}
	if res.Result != nil {
		out.status = res.Result.Status
	}
	// The verdict: OK or WARNING exactly when the exit status is 0.
	okWord := res.Verdict == verdictOK || res.Verdict == verdictWarning
	if out.allow != okWord {
		t.Errorf("exit %d with verdict %q", j.code, res.Verdict)
	}
	out.first = res.Verdict
	if e.setup.text {
		o := invoke(t, nil, args...)
		out.first = firstLine(o.stdout)
		if o.code != j.code {
			t.Errorf("text exit %d, --format json exit %d", o.code, j.code)
		}
		if word, _, _ := strings.Cut(out.first, ":"); word != res.Verdict {
			t.Errorf("first line %q, JSON verdict %q", out.first, res.Verdict)
		}
	}
	return out
}

// service builds the service for one vector: the same pipeline as tdproof
// serve (store policies with the built-in default, the store's reference
// values), the vector's collateral and verification time.
func (e *parityEnv) service(t *testing.T, v parityVector) *verifiersvc.Service {
	t.Helper()
	at := v.at.Add(e.setup.shift)
	src := verifier.CollateralFunc(func(_ context.Context, q *quote.Quote) (*collateral.Collateral, error) {
		pck, _ := pckFromQuote(q)
		c, _, err := loadCollateral(v.collateral, q, pck)
		return c, err
	})
	vf, err := verifier.New(src, e.st.RefValues(), e.signer, verifier.WithClock(func() time.Time { return at }),
		verifier.WithPolicyResolver(verifiersvc.DryRunResolver(verifiersvc.StorePolicyResolver(e.st))))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verifiersvc.New(vf, func() []byte { return []byte(`{"keys":[]}`) }, verifiersvc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (e *parityEnv) post(t *testing.T, v parityVector, path string, body []byte) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.service(t, v).ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// runNative posts the vector to /v1/verify.
func (e *parityEnv) runNative(t *testing.T, v parityVector) verdictOut {
	t.Helper()
	req := map[string]any{}
	for k, val := range v.native {
		req[k] = val
	}
	if e.setup.policyID != "" {
		req["policy_id"] = e.setup.policyID
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	code, resp := e.post(t, v, "/v1/verify", body)
	if code != http.StatusOK {
		return verdictOut{detail: fmt.Sprintf("HTTP %d %s", code, bytes.TrimSpace(resp))}
	}
	var r verifiersvc.NativeResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatal(err)
	}
	detail := r.Result.Status.String()
	if r.Result.Appraisal != nil {
		detail += fmt.Sprint(" ", r.Result.Reason, r.Result.Appraisal.Failed)
	}
	return verdictOut{allow: r.Result.Allow, status: r.Result.Status.String(), detail: detail}
}

// runDstack posts dstack evidence to the dstack-compatible /verify.
func (e *parityEnv) runDstack(t *testing.T, v parityVector) verdictOut {
	t.Helper()
	body := v.dstackBody
	code, resp := e.post(t, v, "/verify", body)
	var r verifiersvc.DstackResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatalf("/verify: HTTP %d %s", code, resp)
	}
	detail := fmt.Sprintf("HTTP %d", code)
	if r.Reason != nil {
		detail += " " + *r.Reason
	}
	return verdictOut{allow: code == http.StatusOK && r.IsValid, detail: detail}
}
