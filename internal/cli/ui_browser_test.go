package cli

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/internal/webui"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// The browser tests drive Debian's chromium (or $TDPROOF_CHROMIUM) with
// chromedp: the evidence page of tdproof serve on loopback, and the HTML
// of tdproof report opened with scripts disabled. Without a browser they
// skip, unless CI=true: then they fail.

// envChromium names the browser binary to use instead of looking for
// chromium on $PATH.
const envChromium = "TDPROOF_CHROMIUM"

// envArtifacts is the directory screenshots are written to (default: a
// temporary directory of the test; the paths are logged).
const envArtifacts = "TDPROOF_ARTIFACTS"

// browser starts a headless Chromium for the test and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv(envChromium)
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium found (apt-get install chromium, or set %s): the browser tests are mandatory in CI", envChromium)
		}
		t.Skipf("no Chromium found: install Debian's chromium (apt-get install chromium) or set %s to run the browser tests", envChromium)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return bctx
}

// tab opens a new tab recording every network request it makes.
type tab struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

func newTab(t *testing.T, b context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelT)
	tb := &tab{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request != nil {
			tb.mu.Lock()
			tb.urls = append(tb.urls, e.Request.URL)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// requests returns the URLs requested so far.
func (tb *tab) requests() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.urls)
}

// onlyFrom fails the test when the tab requested anything but origin
// (data: URLs are the page's own download links, never fetched here).
func (tb *tab) onlyFrom(t *testing.T, what, origin string) {
	t.Helper()
	reqs := tb.requests()
	if len(reqs) == 0 {
		t.Errorf("%s: no request recorded (is the recorder working?)", what)
	}
	for _, u := range reqs {
		if !strings.HasPrefix(u, origin) {
			t.Errorf("%s: request to %s, outside %s", what, u, origin)
		}
	}
}

// screenshot saves the page (full: all of it, else the viewport).
func (tb *tab) screenshot(t *testing.T, name string, full bool) {
	t.Helper()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(tb.ctx, shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// seen is what a rendered report shows, read from the DOM.
type seen struct {
	Error      string   `json:"error"`
	Verdict    string   `json:"verdict"`
	Sentence   string   `json:"sentence"`
	EAR        string   `json:"ear"`
	TCB        string   `json:"tcb"`
	Components []string `json:"components"`
	Rules      []string `json:"rules"`
	Mismatches []struct {
		Name  string `json:"name"`
		Marks int    `json:"marks"`
	} `json:"mismatches"`
	MarkBackground string `json:"markBackground"`
	SystemReady    bool   `json:"systemReady"`
	After          int    `json:"after"`
	Scripts        int    `json:"scripts"`
	Background     string `json:"background"`
}

const readReportJS = `(() => {
  const q = (s) => document.querySelector(s);
  const txt = (s) => (q(s) ? q(s).textContent.trim() : "");
  const out = {scripts: document.querySelectorAll("script").length,
    background: getComputedStyle(document.body).backgroundColor};
  const r = document.getElementById("report");
  if (!r) { out.error = txt("#error") || "no report"; return out; }
  out.verdict = r.dataset.verdict;
  out.sentence = txt("#verdict-sentence");
  out.ear = txt("#ear-status");
  out.tcb = txt("#tcb-status");
  out.components = [...document.querySelectorAll("table.components tbody tr .status")].map((e) => e.textContent.trim());
  out.rules = [...document.querySelectorAll("#failed-rules li")].map((e) => e.dataset.rule);
  out.mismatches = [...document.querySelectorAll(".measurement[data-outcome=mismatch]")].map((m) =>
    ({name: m.dataset.name, marks: m.querySelectorAll("mark.diff").length}));
  const mark = q(".measurement mark.diff");
  out.markBackground = mark ? getComputedStyle(mark).backgroundColor : "";
  out.systemReady = !!document.getElementById("system-ready-marker");
  out.after = document.querySelectorAll("#eventlog li.after-ready").length;
  return out;
})()`

func (tb *tab) read(t *testing.T) seen {
	t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[seen](readReportJS))
	if err != nil {
		t.Fatalf("reading the report: %v", err)
	}
	return s
}

// uiWant is what a case must render.
type uiWant struct {
	verdict string // data-verdict
	label   string // start of the verdict sentence
	tcb     string // overall TCB status ("" when not authentic)
	rules   []string
	// mismatch names the measurement whose differing bytes are marked.
	mismatch    string
	systemReady bool
	after       int
}

func (w uiWant) check(t *testing.T, what string, s seen) {
	t.Helper()
	if s.Error != "" {
		t.Fatalf("%s: no report: %s", what, s.Error)
	}
	if s.Verdict != w.verdict || !strings.HasPrefix(s.Sentence, w.label) {
		t.Errorf("%s: verdict %q %q, want %q %q…", what, s.Verdict, s.Sentence, w.verdict, w.label)
	}
	wantEAR := map[string]string{"affirming": "affirming", "warning": "warning", "contraindicated": "contraindicated", "not-authentic": "contraindicated"}[w.verdict]
	if s.EAR != wantEAR {
		t.Errorf("%s: EAR status %q, want %q", what, s.EAR, wantEAR)
	}
	if s.TCB != w.tcb {
		t.Errorf("%s: TCB status %q, want %q", what, s.TCB, w.tcb)
	}
	if w.tcb != "" && (len(s.Components) < 2 || !slices.Contains(s.Components, w.tcb)) {
		t.Errorf("%s: component statuses %v, want at least platform and QE, one %s", what, s.Components, w.tcb)
	}
	for _, r := range w.rules {
		if !slices.Contains(s.Rules, r) {
			t.Errorf("%s: failed rules %v, want %s", what, s.Rules, r)
		}
	}
	if w.mismatch != "" {
		ok := false
		for _, m := range s.Mismatches {
			// The quoted value's and the closest reference's bytes.
			ok = ok || (m.Name == w.mismatch && m.Marks >= 2)
		}
		if !ok {
			t.Errorf("%s: mismatches %+v, want %s with marked bytes", what, s.Mismatches, w.mismatch)
		}
		if s.MarkBackground == "" || s.MarkBackground == "rgba(0, 0, 0, 0)" {
			t.Errorf("%s: marked bytes are not highlighted (background %q)", what, s.MarkBackground)
		}
	} else if len(s.Mismatches) != 0 {
		t.Errorf("%s: mismatches %+v, want none", what, s.Mismatches)
	}
	if s.SystemReady != w.systemReady || s.After != w.after {
		t.Errorf("%s: system-ready marker %v with %d events after it, want %v with %d", what, s.SystemReady, s.After, w.systemReady, w.after)
	}
}

// uiCase is one piece of evidence for the page and the HTML report.
type uiCase struct {
	name string
	// file is the evidence file; paste sends its text through the text
	// area instead of the file input; ccel is a CCEL file to add.
	file, ccel string
	paste      bool
	refs       []refvalue.Value
	// source are tdproof report's collateral flags for the case.
	source []string
	want   uiWant
}

// submit loads the page at base, submits c's evidence and waits for the
// report (or an error).
func (tb *tab) submit(t *testing.T, base string, c uiCase) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("evidence-form"))); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	if c.paste {
		text, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(string(text))
		if err != nil {
			t.Fatal(err)
		}
		set := fmt.Sprintf(`(() => { const e = document.getElementById("evidence-text"); e.value = %s; e.dispatchEvent(new Event("input")); return true; })()`, js)
		if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](set)); err != nil {
			t.Fatalf("pasting: %v", err)
		}
	} else {
		if err := chromedp.Do(tb.ctx, chromedp.SetUploadFiles(chromedp.ID("evidence-file"), []string{c.file})); err != nil {
			t.Fatalf("choosing the file: %v", err)
		}
		if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`document.getElementById("file-status").textContent.startsWith("Evidence file")`,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("the page did not take the file: %v", err)
		}
	}
	if c.ccel != "" {
		if err := chromedp.Do(tb.ctx, chromedp.SetUploadFiles(chromedp.ID("ccel-file"), []string{c.ccel})); err != nil {
			t.Fatalf("choosing the CCEL: %v", err)
		}
		if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`document.getElementById("file-status").textContent.startsWith("CCEL")`,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("the page did not take the CCEL: %v", err)
		}
	}
	if err := chromedp.Do(tb.ctx, chromedp.Click(chromedp.ID("verify"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`!!(document.getElementById("report") || document.getElementById("error"))`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("no report: %v", err)
	}
}

// checkStaticReport runs tdproof report --html for c and checks the file
// in the browser (tab tb) with scripts disabled.
func checkStaticReport(t *testing.T, tb *tab, c uiCase) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.html")
	args := append([]string{"report", c.file, "--html", out}, c.source...)
	if c.ccel != "" {
		args = append(args, "--ccel", c.ccel)
	}
	for _, r := range c.refs {
		for _, v := range r.Values {
			args = append(args, "--reference-value", r.Name+"="+v)
		}
	}
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
	tb.mu.Lock()
	tb.urls = nil
	tb.mu.Unlock()
	if _, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: out}).String()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.ID("report"))); err != nil {
		t.Fatalf("opening %s: %v", out, err)
	}
	s := tb.read(t)
	c.want.check(t, "report --html", s)
	if s.Scripts != 0 {
		t.Errorf("report --html holds %d scripts", s.Scripts)
	}
	tb.onlyFrom(t, "report --html", u)
	tb.screenshot(t, "report-"+c.name, false)
}

// flip returns hex with the byte at index i changed.
func flip(t *testing.T, h string, i int) string {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	b[i] ^= 0x5a
	return hex.EncodeToString(b)
}

// pinned returns reference values pinning q's MRTD and RTMR0–2, with
// byte 7 of the register named off changed ("" changes nothing).
func pinnedTD(t *testing.T, q *quote.Quote, off string) []refvalue.Value {
	t.Helper()
	refs := refvalue.ForTD(q.TD.MRTD, q.TD.RTMRs, refvalue.Provenance{Source: "test"})
	for i := range refs {
		if refs[i].Name == off {
			refs[i].Values = []string{flip(t, refs[i].Values[0], 7)}
		}
	}
	return refs
}

func quoteOf(t *testing.T, file string) *quote.Quote {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := quote.DecodeInput(b); err == nil {
		if q, err := quote.Parse(raw); err == nil {
			return q
		}
	}
	de, err := dstack.ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	return de.Quote
}

// servePage serves the evidence page in front of a verification service
// whose collateral is col at time at, with refs: the handler stack of
// tdproof serve (webui.Handler around verifiersvc), on loopback.
func servePage(t *testing.T, col *collateral.Collateral, at time.Time, refs []refvalue.Value) string {
	t.Helper()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ear.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return at }
	signer, err := ear.NewSigner(ks, ear.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	store := refvalue.NewMemoryStore()
	for _, r := range refs {
		if _, err := store.Add(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil }),
		store, signer, verifier.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { return jwks }, verifiersvc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(webui.Handler(svc))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBrowserSharedVectors: every shared DCAP and dstack vector with
// collateral, through the page and through tdproof report --html.
func TestBrowserSharedVectors(t *testing.T) {
	dir := testvectors.Dir(t)
	b := browser(t)
	dcapDir := func(name string) string { return filepath.Join(dir, "dcap", name) }
	dstackColl := filepath.Join(dcapDir("tdx-v4-90c06f-dstack"), "collateral.json")
	type vec struct {
		c    uiCase
		coll string
		at   int64
	}
	q := func(name string) string { return filepath.Join(dcapDir(name), "quote.bin") }
	ds := func(name string) string { return filepath.Join(dir, "dstack", name) }
	notAuthentic := uiWant{verdict: "not-authentic", label: "Not authentic", rules: []string{"authentic"}}
	vecs := []vec{
		{uiCase{name: "tdx-v4-b0c06f-pinned", file: q("tdx-v4-b0c06f"),
			want: uiWant{verdict: "affirming", label: "Affirming", tcb: "UpToDate"}}, filepath.Join(dcapDir("tdx-v4-b0c06f"), "collateral.json"), 1752919234},
		{uiCase{name: "tdx-v4-b0c06f", file: q("tdx-v4-b0c06f"),
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate", rules: []string{"reference_value"}, mismatch: "tdx.rtmr_0"}}, filepath.Join(dcapDir("tdx-v4-b0c06f"), "collateral.json"), 1752919234},
		{uiCase{name: "sgx-v3-00a067", file: q("sgx-v3-00a067"),
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "ConfigurationAndSWHardeningNeeded", rules: []string{"tcb_status", "reference_value"}, mismatch: "sgx.mr_enclave"}}, filepath.Join(dcapDir("sgx-v3-00a067"), "collateral.json"), 1752919277},
		{uiCase{name: "tdx-v5-90c06f", file: q("tdx-v5-90c06f"), want: notAuthentic}, filepath.Join(dcapDir("tdx-v5-90c06f"), "collateral.json"), 1774003274},
		{uiCase{name: "tdx-v4-90c06f-dstack", file: q("tdx-v4-90c06f-dstack"),
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate", rules: []string{"reference_value"}, mismatch: "tdx.mr_td"}}, dstackColl, 1774003274},
		{uiCase{name: "tdx-v4-50806f-pcs", file: q("tdx-v4-50806f-pcs"), want: notAuthentic}, dcapDir("tdx-v4-50806f-pcs"), 1688173200},
		{uiCase{name: "dstack-quote-report", file: ds("quote-report.json"), paste: true,
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate", rules: []string{"events_after_system_ready", "reference_value"}, mismatch: "tdx.rtmr_1", systemReady: true, after: 1}}, dstackColl, 1774003274},
		{uiCase{name: "dstack-tdx-lite-getquote", file: ds("tdx-lite-getquote.json"),
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate", rules: []string{"reference_value"}, mismatch: "tdx.rtmr_2", systemReady: true}}, dstackColl, 1774003274},
		{uiCase{name: "dstack-tdx-lite-attestation", file: ds("tdx-lite-attestation.json"), paste: true,
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate", rules: []string{"reference_value"}, mismatch: "tdx.mr_td", systemReady: true}}, dstackColl, 1774003274},
	}
	for _, v := range vecs {
		t.Run(v.c.name, func(t *testing.T) {
			c := v.c
			if _, err := os.Stat(c.file); err != nil {
				t.Skipf("vector %s absent: %v", c.file, err)
			}
			pq := quoteOf(t, c.file)
			switch {
			case c.want.verdict == "not-authentic":
			case pq.TD != nil:
				c.refs = pinnedTD(t, pq, c.want.mismatch)
			default:
				c.refs = []refvalue.Value{{Name: "sgx.mr_enclave", Values: []string{flip(t, hex.EncodeToString(pq.Enclave.MREnclave[:]), 7)}}}
			}
			pck, _ := pckFromQuote(pq)
			col, _, err := loadCollateral(v.coll, pq, pck)
			if err != nil {
				t.Fatal(err)
			}
			base := servePage(t, col, time.Unix(v.at, 0), c.refs)
			tb := newTab(t, b)
			tb.submit(t, base, c)
			c.want.check(t, "page", tb.read(t))
			tb.onlyFrom(t, "page", base+"/")
			tb.screenshot(t, "page-"+c.name, true)
			if c.name == "dstack-quote-report" {
				// The README's pictures: the verdict, and a mismatch.
				if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.getElementById("verdict").scrollIntoView(); true`)); err != nil {
					t.Fatal(err)
				}
				tb.screenshot(t, "evidence-page", false)
				if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.querySelector(".measurement[data-outcome=mismatch]").scrollIntoView(); true`)); err != nil {
					t.Fatal(err)
				}
				tb.screenshot(t, "evidence-page-mismatch", false)
				checkPhoneAndDark(t, tb)
			}

			c.source = []string{"--collateral", v.coll, "--at", fmt.Sprint(v.at)}
			checkStaticReport(t, tb, c)
		})
	}
}

// checkPhoneAndDark: at a phone's width the report does not scroll
// sideways, and the dark scheme changes the colors.
func checkPhoneAndDark(t *testing.T, tb *tab) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	wide, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		t.Fatal(err)
	}
	if wide {
		over, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.parentElement.closest(".scroll")).slice(0, 12).map((e) => e.tagName + "." + e.className + "#" + e.id)`))
		t.Errorf("the report is wider than a 390 px phone screen: %v", over)
	}
	tb.screenshot(t, "page-phone", false)
	light := tb.read(t).Background
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	if dark := tb.read(t).Background; dark == light {
		t.Errorf("dark scheme: background %s, same as light", dark)
	}
	tb.screenshot(t, "page-phone-dark", false)
	if err := chromedp.Do(tb.ctx, chromedp.EmulateViewport(1000, 900)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}
}

// simGetQuote is dstack GetQuote JSON of sim: its quote, its event log
// (boot events stripped to digests, then the runtime events) and a VM
// configuration.
func simGetQuote(t *testing.T, sim *tdsim.Sim) []byte {
	t.Helper()
	q, err := sim.Quote(t.Context(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	log := eventlog.MarshalEvents(eventlog.Strip(append(sim.BootEvents(), sim.RuntimeEvents()...)))
	b, err := json.Marshal(map[string]any{"quote": hex.EncodeToString(q), "event_log": string(log),
		"vm_config": `{"os_image_hash":"` + strings.Repeat("ab", 32) + `","cpu_count":2,"memory_size":2147483648}`})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// emitApp records a dstack app's identity events, system-ready and then
// late events after it.
func emitApp(t *testing.T, sim *tdsim.Sim, late ...string) {
	t.Helper()
	for _, e := range []struct {
		name    string
		payload []byte
	}{
		{"app-id", bytes.Repeat([]byte{0xa1}, 20)},
		{"compose-hash", bytes.Repeat([]byte{0xc0}, 32)},
		{"instance-id", bytes.Repeat([]byte{0x1d}, 20)},
		{"key-provider", []byte(`{"name":"kms","id":"` + strings.Repeat("ee", 16) + `"}`)},
		{"system-ready", nil},
	} {
		if _, err := sim.Emit(e.name, e.payload); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range late {
		if _, err := sim.Emit(name, []byte("late")); err != nil {
			t.Fatal(err)
		}
	}
}

// bootWith returns the synthetic boot events with the RTMR imr action
// event's payload (and digest) replaced.
func bootWith(imr uint32, payload string) []eventlog.Event {
	evs := tdsim.SyntheticBootEvents()
	for i := range evs {
		if evs[i].IMR == imr && evs[i].Type == eventlog.EvEFIAction {
			evs[i].Payload = []byte(payload)
			d := sha512.Sum384(evs[i].Payload)
			evs[i].Digest = d[:]
		}
	}
	return evs
}

// TestBrowserTDSimRefused: tdproof serve (the command, on loopback) with
// reference values of a good simulated TD refuses three others through
// the page: one whose boot was tampered with, a debug TD booting another
// kernel command line, and the good TD's quote with the tampered TD's
// CCEL. The page sends only same-origin requests under a strict CSP;
// --no-ui turns it off.
func TestBrowserTDSimRefused(t *testing.T) {
	b := browser(t)
	good, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pki := good.PKI()
	tampered, err := tdsim.New(tdsim.Config{PKI: pki, BootEvents: bootWith(1, "tdsim RTMR1 boot, tampered")})
	if err != nil {
		t.Fatal(err)
	}
	debug, err := tdsim.New(tdsim.Config{PKI: pki, Debug: true, BootEvents: bootWith(2, "console=ttyS0 debug")})
	if err != nil {
		t.Fatal(err)
	}
	emitApp(t, tampered, "late-shell")
	emitApp(t, debug)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	q, err := good.Quote(t.Context(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tampered.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	pccsURL, root := simPCCS(t, good)
	refs := good.ReferenceValues()
	const token = "browser-admin-token"
	s := startServe(t, "--data-dir", filepath.Join(dir, "data"), "--pccs-url", pccsURL, "--pcs-retries", "0",
		"--trusted-root", root, "--admin-token", token)
	for _, r := range refs {
		body, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/admin/v1/refvalues", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("adding %s: %d", r.Name, resp.StatusCode)
		}
	}
	resp, err := http.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusOK || !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("GET /: %d, CSP %q", resp.StatusCode, csp)
	}

	source := []string{"--pccs-url", pccsURL, "--pcs-retries", "0", "--trusted-root", root}
	cases := []uiCase{
		{name: "tdsim-tampered-boot", file: write("tampered.json", simGetQuote(t, tampered)),
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate",
				rules: []string{"reference_value", "events_after_system_ready"}, mismatch: "tdx.rtmr_1", systemReady: true, after: 1}},
		{name: "tdsim-debug", file: write("debug.json", simGetQuote(t, debug)), paste: true,
			want: uiWant{verdict: "contraindicated", label: "Contraindicated", tcb: "UpToDate",
				rules: []string{"debug", "reference_value"}, mismatch: "tdx.rtmr_2", systemReady: true}},
		{name: "tdsim-foreign-ccel", file: write("quote.bin", q), ccel: write("foreign.ccel", foreign),
			// The quote itself verified: its TCB status is reported
			// next to the reason.
			want: uiWant{verdict: "not-authentic", label: "Not authentic", tcb: "UpToDate", rules: []string{"authentic"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTab(t, b)
			tb.submit(t, s.url, c)
			c.want.check(t, "page", tb.read(t))
			tb.onlyFrom(t, "page", s.url+"/")
			tb.screenshot(t, "page-"+c.name, true)
			c.refs, c.source = refs, source
			checkStaticReport(t, tb, c)
		})
	}

	off := startServe(t, "--data-dir", filepath.Join(dir, "data-no-ui"), "--pccs-url", pccsURL, "--pcs-retries", "0",
		"--trusted-root", root, "--no-ui")
	resp, err = http.Get(off.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("--no-ui: GET / answered %d", resp.StatusCode)
	}
}
