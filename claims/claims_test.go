package claims_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
)

// fixtureSet verifies a dcaptest quote of the given kind, after mutate
// changes its spec, and returns the claims and the parsed quote.
func fixtureSet(t testing.TB, kind dcaptest.QuoteKind, mutate func(*dcaptest.Fixture)) (claims.Set, *quote.Quote, *dcap.Result) {
	t.Helper()
	f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(f)
	}
	q, err := f.BuildQuote()
	if err != nil || q.Parsed == nil {
		t.Fatalf("BuildQuote: %v %v", err, q.ParseErr)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	r, err := dcap.Verify(q.Parsed, c, dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now})
	if err != nil {
		t.Fatalf("dcap.Verify: %v", err)
	}
	s, err := claims.New(claims.Input{DCAP: r, Quote: q.Parsed})
	if err != nil {
		t.Fatalf("claims.New: %v", err)
	}
	return s, q.Parsed, r
}

func TestTDXClaims(t *testing.T) {
	t.Parallel()
	s, q, r := fixtureSet(t, dcaptest.TDXQuoteV4, nil)
	td := q.TD
	want := map[string]any{
		"tee":                              "tdx",
		"tdx.quote.header.version":         "0400",
		"tdx.quote.header.tee_type":        "81000000",
		"tdx.quote.header.att_key_type":    "0200",
		"tdx.quote.header.vendor_id":       "939a7233f79c4ca9940a0db3957f0607",
		"tdx.quote.body.mr_td":             hex.EncodeToString(td.MRTD[:]),
		"tdx.quote.body.rtmr_3":            hex.EncodeToString(td.RTMRs[3][:]),
		"tdx.quote.body.report_data":       hex.EncodeToString(td.ReportData[:]),
		"tdx.quote.body.td_attributes":     hex.EncodeToString(td.TDAttributes[:]),
		"tdx.td_attributes.debug":          false,
		"tdx.td_attributes.septve_disable": td.SEPTVEDisable(),
		"tdx.mr_servicetd_zero":            true,
		"tdx.tcb_status":                   "UpToDate",
		"tdx.advisory_ids":                 []string{},
		"tdx.tcb_eval_num":                 int64(17),
		"tdx.collateral.tcb_eval_num":      int64(r.Collateral.QEIdentity.TCBEvaluationDataNumber),
		"tdx.collateral.expired":           false,
		"tdx.collateral_expiration_status": "0",
		"tdx.collateral.issue_date":        minTime(r.Collateral.TCBInfo.IssueDate, r.Collateral.QEIdentity.IssueDate).UTC().Format(time.RFC3339),
		"tdx.tcb_date":                     r.TCBDate.UTC().Format(time.RFC3339),
		"tdx.collateral.intel_root":        false,
	}
	for k, v := range want {
		if got, ok := s.Get(k); !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("claim %s = %#v (present %v), want %#v", k, got, ok, v)
		}
	}
	for _, k := range s.Names() {
		if strings.HasPrefix(k, "sgx.") || strings.HasPrefix(k, "dstack.") {
			t.Errorf("unexpected claim %s in a TDX set", k)
		}
	}
	// Every TDX measurement name maps to a claim the set has.
	for _, name := range claims.MeasurementNames() {
		c, _ := claims.MeasurementClaim(name)
		if _, ok := s.Get(c); strings.HasPrefix(name, "tdx.") && !ok {
			t.Errorf("measurement %s → claim %s absent", name, c)
		}
	}
}

func TestDebugAndTD15(t *testing.T) {
	t.Parallel()
	s, _, _ := fixtureSet(t, dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) {
		f.QuoteSpec.TD.TDAttributes[0] |= 1
		f.QuoteSpec.TD.MRServiceTD[0] = 1
	})
	if v, _ := s.Bool("tdx.td_attributes.debug"); !v {
		t.Error("debug = false, want true")
	}
	if v, _ := s.Bool("tdx.mr_servicetd_zero"); v {
		t.Error("mr_servicetd_zero = true, want false")
	}
	if v, _ := s.String("tdx.quote.body.mr_servicetd"); !strings.HasPrefix(v, "01") {
		t.Errorf("mr_servicetd = %q", v)
	}
	if v, _ := s.String("tdx.quote.header.version"); v != "0500" {
		t.Errorf("version = %q", v)
	}
}

func TestSGXClaims(t *testing.T) {
	t.Parallel()
	s, q, _ := fixtureSet(t, dcaptest.SGXQuoteV3, nil)
	if s.TEE() != claims.TEESGX {
		t.Fatalf("tee = %q", s.TEE())
	}
	if v, _ := s.String("sgx.quote.body.mr_enclave"); v != hex.EncodeToString(q.Enclave.MREnclave[:]) {
		t.Errorf("mr_enclave = %q", v)
	}
	if v, ok := s.Bool("sgx.debug"); !ok || v {
		t.Errorf("sgx.debug = %v, %v", v, ok)
	}
	if v, _ := s.String("sgx.tcb_status"); v != "UpToDate" {
		t.Errorf("sgx.tcb_status = %q", v)
	}
	for _, k := range s.Names() {
		if strings.HasPrefix(k, "tdx.") {
			t.Errorf("unexpected claim %s in an SGX set", k)
		}
	}
}

// TestAdvisoryClaims: <tee>.advisory_ids is Intel's sa_list (the platform
// level's IDs only); the per-component claims carry the platform's, the
// QE's and the module's.
func TestAdvisoryClaims(t *testing.T) {
	t.Parallel()
	platform := []string{"INTEL-SA-00615", "INTEL-SA-00289"}
	s, _, _ := fixtureSet(t, dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
		f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.SWHardeningNeeded
		f.CollateralSpec.TCBInfo.TCBLevels[0].AdvisoryIDs = platform
		f.QuoteSpec.TD.TEETCBSVN[0] = 2 // module TDX_01 OutOfDate: INTEL-SA-01036
		f.QuoteSpec.QEReport.ISVSVN = 3 // QE OutOfDate: INTEL-SA-00837
	})
	for name, want := range map[string][]string{
		"tdx.advisory_ids":          platform,
		"tdx.platform.advisory_ids": platform,
		"tdx.qe.advisory_ids":       {"INTEL-SA-00837"},
		"tdx.module.advisory_ids":   {"INTEL-SA-01036"},
	} {
		if got, ok := s.Strings(name); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q (present %v), want %q", name, got, ok, want)
		}
	}
	if v, _ := s.String("tdx.tcb_status"); v != "OutOfDate" {
		t.Errorf("tdx.tcb_status = %q", v)
	}
	// SGX: no module claim; empty lists are [] (not absent).
	s, _, _ = fixtureSet(t, dcaptest.SGXQuoteV3, nil)
	if _, ok := s.Get("sgx.module.advisory_ids"); ok {
		t.Error("sgx.module.advisory_ids present")
	}
	for _, name := range []string{"sgx.advisory_ids", "sgx.platform.advisory_ids", "sgx.qe.advisory_ids"} {
		if got, ok := s.Strings(name); !ok || got == nil || len(got) != 0 {
			t.Errorf("%s = %#v (present %v), want []", name, got, ok)
		}
	}
}

// TestCollateralNotYetValidClaims: collateral issued after the
// verification time reads as expired collateral.
func TestCollateralNotYetValidClaims(t *testing.T) {
	t.Parallel()
	s, _, r := fixtureSet(t, dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
		f.CollateralSpec.QEIdentity.IssueDate = f.Now.Add(time.Hour)
	})
	if v, _ := s.Bool("tdx.collateral.expired"); !v {
		t.Error("tdx.collateral.expired = false")
	}
	if v, _ := s.String("tdx.collateral_expiration_status"); v != "1" {
		t.Errorf("tdx.collateral_expiration_status = %q", v)
	}
	if !r.EarliestExpiration.After(r.VerificationTime) {
		t.Errorf("earliest expiration %v: the case must not expire anything", r.EarliestExpiration)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, kind := range dcaptest.QuoteKinds() {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			s, _, _ := fixtureSet(t, kind, nil)
			b1, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := json.Marshal(s)
			if !bytes.Equal(b1, b2) {
				t.Fatal("encoding is not deterministic")
			}
			var back claims.Set
			if err := json.Unmarshal(b1, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, s) {
				t.Errorf("round trip differs:\n got %v\nwant %v", back, s)
			}
			if len(back) != len(s) {
				t.Errorf("a claim name is a prefix of another: %d claims after round trip, want %d", len(back), len(s))
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	_, sq, sr := fixtureSet(t, dcaptest.SGXQuoteV3, nil)
	_, tq, tr := fixtureSet(t, dcaptest.TDXQuoteV4, nil)
	var rtmrs [4][48]byte
	for name, in := range map[string]claims.Input{
		"no DCAP":             {},
		"replay for SGX":      {DCAP: sr, Replayed: &rtmrs},
		"dstack for SGX":      {DCAP: sr, Dstack: &dstack.Result{}},
		"quote of other kind": {DCAP: tr, Quote: sq},
	} {
		if s, err := claims.New(in); !errors.Is(err, claims.ErrInvalid) || s != nil {
			t.Errorf("New(%s) = %v, %v; want ErrInvalid", name, s, err)
		}
	}
	s, err := claims.New(claims.Input{DCAP: tr, Quote: tq, Replayed: &tq.TD.RTMRs})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Bool("tdx.eventlog.rtmrs_match"); !v {
		t.Error("rtmrs_match = false for the quote's own RTMRs")
	}
	rtmrs = tq.TD.RTMRs
	rtmrs[1][0] ^= 1
	s, _ = claims.New(claims.Input{DCAP: tr, Replayed: &rtmrs})
	if v, _ := s.Bool("tdx.eventlog.rtmrs_match"); v {
		t.Error("rtmrs_match = true for a different RTMR1")
	}
}

// TestDocumented checks that every claim a set can hold is in the table
// of docs/claims.md.
func TestDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "claims.md"))
	if err != nil {
		t.Fatal(err)
	}
	var all []claims.Set
	for _, kind := range dcaptest.QuoteKinds() {
		s, q, r := fixtureSet(t, kind, nil)
		if q.IsTDX() {
			s, err = claims.New(claims.Input{DCAP: r, Quote: q, Replayed: &q.TD.RTMRs, Dstack: &dstack.Result{
				AppInfo: dstack.AppInfo{AppID: []byte{1}, ComposeHash: []byte{2}, InstanceID: []byte{3}, DeviceID: []byte{4},
					MRSystem: []byte{5}, MRAggregated: []byte{6}, OSImageHash: []byte{7}},
				KeyProvider: &dstack.KeyProvider{Name: "kms", ID: "ab"},
			}})
			if err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, s)
	}
	for _, s := range all {
		for _, k := range s.Names() {
			if !bytes.Contains(doc, []byte("`"+k+"`")) {
				t.Errorf("claim %s is not documented in docs/claims.md", k)
			}
		}
	}
	for _, name := range claims.MeasurementNames() {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("measurement name %s is not documented in docs/claims.md", name)
		}
	}
}

// realVectors are the shared DCAP vectors that verify (see
// ../shared/testdata/README.md and dcap/vectors_test.go).
var realVectors = []struct {
	dir    string
	at     int64
	status collateral.TCBStatus
}{
	{"tdx-v4-b0c06f", 1752919234, collateral.UpToDate},
	{"sgx-v3-00a067", 1752919277, collateral.ConfigurationAndSWHardeningNeeded},
	{"tdx-v4-90c06f-dstack", 1774003274, collateral.UpToDate},
}

func TestRealVectors(t *testing.T) {
	for _, v := range realVectors {
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
			js, err := os.ReadFile(filepath.Join(base, "collateral.json"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := collateral.ParseQVLJSON(js)
			if err != nil {
				t.Fatal(err)
			}
			r, err := dcap.Verify(q, c, dcap.Options{Now: time.Unix(v.at, 0)})
			if err != nil {
				t.Fatal(err)
			}
			s, err := claims.New(claims.Input{DCAP: r, Quote: q})
			if err != nil {
				t.Fatal(err)
			}
			tee := s.TEE()
			if st, _ := s.String(tee + ".tcb_status"); st != v.status.String() {
				t.Errorf("%s.tcb_status = %q, want %v", tee, st, v.status)
			}
			if id, _ := s.String(tee + ".quote.header.vendor_id"); id != "939a7233f79c4ca9940a0db3957f0607" {
				t.Errorf("vendor_id = %q", id)
			}
			if b, _ := s.Bool(tee + ".collateral.intel_root"); !b {
				t.Error("intel_root = false")
			}
		})
	}
}

func TestRealDstack(t *testing.T) {
	ev, err := dstack.ParseEvidence(testvectors.ReadFile(t, "dstack", "quote-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := dstack.Verify(ev, c, dstack.Options{Now: time.Unix(1774003274, 0)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := claims.New(claims.Input{Dstack: r})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"dstack.app_id", "dstack.compose_hash", "dstack.instance_id", "dstack.mr_aggregated"} {
		if v, _ := s.String(k); v == "" {
			t.Errorf("%s absent", k)
		}
	}
	if v, _ := s.String("dstack.compose_hash"); v != hex.EncodeToString(r.AppInfo.ComposeHash) {
		t.Errorf("compose_hash = %q", v)
	}
	// Legacy evidence without an image: nothing was recomputed.
	if v, ok := s.Get("dstack.cpu_count_verified"); !ok || v != false {
		t.Errorf("dstack.cpu_count_verified = %v, %v; want false", v, ok)
	}
	// The lite fixture: cpu_count is bound by the table loader's MADT size.
	ev, err = dstack.ParseEvidence(testvectors.ReadFile(t, "dstack", "tdx-lite-getquote.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err = dstack.Verify(ev, c, dstack.Options{Now: time.Unix(1774003274, 0)}); err != nil {
		t.Fatal(err)
	}
	if s, err = claims.New(claims.Input{Dstack: r}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("dstack.cpu_count_verified"); v != true {
		t.Errorf("lite: dstack.cpu_count_verified = %v", v)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// TestProvenanceDocumented checks the provenance table of docs/claims.md
// against ProvenanceOf: every claim listed in a row has that row's
// provenance.
func TestProvenanceDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "claims.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## Provenance")
	if !ok {
		t.Fatal("docs/claims.md has no Provenance section")
	}
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		prov := claims.Provenance(strings.Trim(strings.TrimSpace(cells[1]), "`"))
		for _, f := range strings.Split(cells[3], "`") {
			if !strings.Contains(f, ".") || strings.Contains(f, " ") || strings.HasSuffix(f, "*") {
				continue
			}
			rows++
			if got := claims.ProvenanceOf(f); got != prov {
				t.Errorf("docs/claims.md lists %s as %s; ProvenanceOf says %s", f, prov, got)
			}
		}
	}
	if rows < 15 {
		t.Errorf("only %d claims in the provenance table", rows)
	}
	for name, want := range map[string]claims.Provenance{
		"tdx.quote.body.mr_td": claims.Signed, "tee": claims.Signed, "dstack.device_id": claims.Signed,
		"tdx.eventlog.rtmr_1": claims.Replayed, "dstack.compose_hash": claims.Replayed,
		"dstack.os_image_hash": claims.Bound, "unverified.dstack.os_image_hash": claims.Unverified,
	} {
		if got := claims.ProvenanceOf(name); got != want {
			t.Errorf("ProvenanceOf(%s) = %s, want %s", name, got, want)
		}
		if claims.Matchable(name) != (want != claims.Unverified) {
			t.Errorf("Matchable(%s) = %v", name, claims.Matchable(name))
		}
	}
}

// TestUnverifiedOSImageHash checks that vm_config's os_image_hash is a
// claim under its own name only when it is bound to the quote.
func TestUnverifiedOSImageHash(t *testing.T) {
	t.Parallel()
	_, q, r := fixtureSet(t, dcaptest.TDXQuoteV4, nil)
	for _, verified := range []bool{false, true} {
		s, err := claims.New(claims.Input{DCAP: r, Quote: q, Dstack: &dstack.Result{
			AppInfo:             dstack.AppInfo{OSImageHash: []byte{0xaa}},
			OSImageHashVerified: verified,
		}})
		if err != nil {
			t.Fatal(err)
		}
		_, bound := s.String("dstack.os_image_hash")
		_, unv := s.String("unverified.dstack.os_image_hash")
		if bound != verified || unv == verified {
			t.Errorf("verified=%v: dstack.os_image_hash present %v, unverified.dstack.os_image_hash present %v", verified, bound, unv)
		}
	}
}
