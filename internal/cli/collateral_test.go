package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/quote"
)

// TestFetchThenVerifyOffline: collateral fetch writes a bundle from the
// real PCS responses; quote verify --collateral-dir then verifies the
// real quote without touching the network, and so do --collateral and
// collateral show.
func TestFetchThenVerifyOffline(t *testing.T) {
	t.Parallel()
	srv, url, quote := realPCS(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	args := []string{"collateral", "fetch", quote, "-o", dir, "--pccs-url", url, "--at", realPCSTime, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var fo fetchOutput
	decodeJSON(t, o, &fo)
	if fo.Fetched != 4 || fo.Failed != 0 || len(fo.Items) != 4 {
		t.Fatalf("fetch output %+v, want 4 items fetched", fo)
	}
	for _, name := range []string{"IntelSGXRootCA.der.body", "sgx-pckcrl-platform-der.body", "sgx-pckcrl-platform-der.headers.json",
		"tdx-qe-identity.body", "tdx-qe-identity.headers.json", "tdx-tcb-fmspc-50806f000000.body", "tdx-tcb-fmspc-50806f000000.headers.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("bundle lacks %s", name)
		}
	}
	requests := srv.Requests("")
	for _, args := range [][]string{
		{"quote", "verify", quote, "--collateral-dir", dir, "--at", realPCSTime},
		{"quote", "verify", quote, "--collateral-dir", dir, "--offline", "--pccs-url", url, "--at", realPCSTime},
		{"quote", "verify", quote, "--collateral", dir, "--at", realPCSTime},
	} {
		o := invoke(t, nil, args...)
		o.wantCode(t, exitRejected, args...)
		if !strings.HasPrefix(o.stdout, "REJECTED: ") || !strings.Contains(o.stderr, "TCB not supported") {
			t.Errorf("tdproof %s:\nstdout %s\nstderr %s", strings.Join(args, " "), o.stdout, o.stderr)
		}
	}
	if n := srv.Requests(""); n != requests {
		t.Errorf("offline verification made %d requests", n-requests)
	}
	// A second fetch keeps what is still valid.
	args = []string{"collateral", "fetch", quote, "-o", dir, "--pccs-url", url, "--at", realPCSTime}
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
	if n := srv.Requests(""); n != requests {
		t.Errorf("refetching a valid bundle made %d requests", n-requests)
	}

	// collateral show, human and JSON.
	args = []string{"collateral", "show", dir, "--at", realPCSTime}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	for _, want := range []string{
		"tdx tcb info for FMSPC 50806F000000 (standard update)",
		"  FMSPC                50806F000000\n",
		"  evaluation data      15 (standard update)\n",
		"  issued               2023-06-18T08:42:58Z\n",
		"  next update          2023-07-18T08:42:58Z (valid at 2023-07-01T01:00:00Z)\n",
		"  signature            verified up to the Intel SGX Root CA\n",
		"tdx qe identity (standard update)",
		"pck crl of the platform CA",
		"UpToDate",
	} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("collateral show lacks %q:\n%s", want, o.stdout)
		}
	}
	// Expired: the note names the expiry, not the check time.
	args = []string{"collateral", "show", dir, "--at", "1700000000"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if want := "  next update          2023-07-18T08:42:58Z (expired at 2023-07-18T08:42:58Z, checked at 2023-11-14T22:13:20Z)\n"; !strings.Contains(o.stdout, want) {
		t.Errorf("collateral show lacks %q:\n%s", want, o.stdout)
	}
	args = []string{"collateral", "show", filepath.Join(dir, "tdx-tcb-fmspc-50806f000000.body"), "--format", "json"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...) // expired now: reported, not failed
	var so showOutput
	decodeJSON(t, o, &so)
	if len(so.Items) != 1 || so.Items[0].FMSPC != "50806F000000" || so.Items[0].EvalNumber != 15 || so.Items[0].Validity != "expired" ||
		!so.Items[0].Verified || len(so.Items[0].TCBLevels) != 2 {
		t.Errorf("show file: %+v", so.Items)
	}
}

// TestOfflineMiss: an offline verification names the missing item and
// says how to fetch it; --offline without a directory is a usage error.
func TestOfflineMiss(t *testing.T) {
	t.Parallel()
	p := newPCSFixture(t, dcaptest.TDXQuoteV4)
	empty := t.TempDir()
	args := []string{"quote", "verify", p.quote, "--collateral-dir", empty, "--trusted-root", p.root, "--at", p.at}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitCollateralUnavailable, args...)
	for _, want := range []string{"offline", "FMSPC 90C06F000000", "not cached", "tdproof: hint: add it to the bundle with \"tdproof collateral fetch QUOTE (or --fmspc 90C06F000000) -o " + empty} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if n := p.srv.Requests(""); n != 0 {
		t.Errorf("%d requests while offline", n)
	}
	args = []string{"quote", "verify", p.quote, "--offline"}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	// --collateral-dir with --pccs-url is a cache in front of the PCCS.
	args = []string{"quote", "verify", p.quote, "--collateral-dir", empty, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at, "--format", "json"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out verifyOutput
	decodeJSON(t, o, &out)
	if out.Collateral.Kind != "pccs" || out.Collateral.Cache != empty {
		t.Errorf("collateral_source %+v, want pccs with cache %s", out.Collateral, empty)
	}
	args = []string{"quote", "verify", p.quote, "--collateral-dir", empty, "--trusted-root", p.root, "--at", p.at}
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
}

// TestFetchFMSPCs: --fmspc and --all fetch per TEE; TCB info a TEE does
// not have is skipped; --tee makes it required.
func TestFetchFMSPCs(t *testing.T) {
	t.Parallel()
	p := newPCSFixture(t, dcaptest.TDXQuoteV4)
	sgx := newFixture(t, dcaptest.SGXQuoteV3)
	sgx.PKI = p.f.PKI
	// Serve SGX collateral of the same PKI for another FMSPC.
	sgxPlat, err := p.f.PKI.NewPlatform(dcaptest.DefaultSGXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := p.f.PKI.RawCollateral(dcaptest.DefaultSGXCollateralSpec(sgxPlat, p.f.Now))
	if err != nil {
		t.Fatal(err)
	}
	sgxKey := pcs.Key{TEE: pcs.TEESGX, FMSPC: sgxPlat.Spec.FMSPC, CA: sgxPlat.Spec.CA}
	p.srv.AddCollateral(sgxKey, rc)
	p.srv.SetFMSPCs([]pcs.FMSPCEntry{{FMSPC: p.key.FMSPC, Platform: "E5"}, {FMSPC: sgxKey.FMSPC, Platform: "E3"}})

	dir := t.TempDir()
	args := []string{"collateral", "fetch", "--all", "-o", dir, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at, "--pcs-retries", "0"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	// qe identity ×2, pck crl ×2, root crl, tcb info: 90C06F tdx ok, sgx skipped; 00A067 sgx ok, tdx skipped.
	if !strings.Contains(o.stdout, "7 fetched, 2 skipped, 0 failed into "+dir) {
		t.Errorf("fetch --all:\n%s", o.stdout)
	}
	if !strings.Contains(o.stdout, "skipped  sgx-tcb-fmspc-90c06f000000") {
		t.Errorf("fetch --all does not report the skipped SGX TCB info:\n%s", o.stdout)
	}
	// Both quotes verify offline from the bundle.
	args = []string{"quote", "verify", p.quote, "--collateral-dir", dir, "--trusted-root", p.root, "--at", p.at}
	invoke(t, nil, args...).wantCode(t, exitOK, args...)

	// An explicit --tee makes missing TCB info a failure (exit 6).
	args = []string{"collateral", "fetch", "--fmspc", "00a067110000", "--tee", "tdx", "-o", t.TempDir(), "--pccs-url", p.url,
		"--trusted-root", p.root, "--at", p.at, "--pcs-retries", "0"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitCollateralUnavailable, args...)
	if !strings.Contains(o.stdout, "failed   tdx-tcb-fmspc-00a067110000") || !strings.Contains(o.stderr, "1 of 5 items could not be fetched") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
	}
	// Usage errors.
	for _, args := range [][]string{
		{"collateral", "fetch", "--fmspc", "50806F000000"},
		{"collateral", "fetch", "-o", dir},
		{"collateral", "fetch", "--fmspc", "5080", "-o", dir, "--pccs-url", p.url},
		{"collateral", "fetch", "--all", "--tee", "sev", "-o", dir},
		{"collateral", "fetch", "--all", "--update", "early", "--tcb-eval-num", "17", "-o", dir},
		{"collateral"},
		{"collateral", "show"},
	} {
		invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	}
}

// TestFetchEarlyAndPinned: --update early and --tcb-eval-num write the
// channel's TCB info and QE identity under early/ and eval-N/, and quote
// verify reads them back offline with the same flags.
func TestFetchEarlyAndPinned(t *testing.T) {
	t.Parallel()
	p := newPCSFixture(t, dcaptest.SGXQuoteV3)
	for _, ch := range []struct {
		flags []string
		key   pcs.Key
		sub   string
	}{
		{[]string{"--update", "early"}, pcs.Key{Update: pcs.UpdateEarly}, "early"},
		{[]string{"--tcb-eval-num", "17"}, pcs.Key{EvalNumber: 17}, "eval-17"},
	} {
		k := p.key
		k.Update, k.EvalNumber = ch.key.Update, ch.key.EvalNumber
		p.srv.AddCollateral(k, p.rc)
		dir := t.TempDir()
		args := append([]string{"collateral", "fetch", p.quote, "-o", dir, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at}, ch.flags...)
		invoke(t, nil, args...).wantCode(t, exitOK, args...)
		if _, err := os.Stat(filepath.Join(dir, ch.sub, "sgx-qe-identity.body")); err != nil {
			t.Errorf("%v: %v", ch.flags, err)
		}
		args = append([]string{"quote", "verify", p.quote, "--collateral-dir", dir, "--trusted-root", p.root, "--at", p.at}, ch.flags...)
		invoke(t, nil, args...).wantCode(t, exitOK, args...)
		// The standard channel is not in this bundle.
		args = []string{"quote", "verify", p.quote, "--collateral-dir", dir, "--trusted-root", p.root, "--at", p.at}
		invoke(t, nil, args...).wantCode(t, exitCollateralUnavailable, args...)
	}
}

// TestShowQVLAndTrust: collateral show reads QuoteCollateralV3 JSON;
// without the fake root the signatures do not verify (exit 6), with it
// they do.
func TestShowQVLAndTrust(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.TDXQuoteV4)
	e := writeFixture(t, f)
	args := []string{"collateral", "show", e.collateral, "--trusted-root", e.rootPEM, "--at", e.at, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var so showOutput
	decodeJSON(t, o, &so)
	if len(so.Items) != 4 {
		t.Fatalf("%d items, want 4", len(so.Items))
	}
	for _, it := range so.Items {
		if !it.Verified || it.Validity != "valid" {
			t.Errorf("%s: verified %v, validity %s", it.Item, it.Verified, it.Validity)
		}
	}
	args = []string{"collateral", "show", e.collateral, "--at", e.at}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitCollateralUnavailable, args...)
	if !strings.Contains(o.stdout, "NOT VERIFIED: ") || !strings.Contains(o.stdout, "module TDX_01") {
		t.Errorf("collateral show without the root:\n%s", o.stdout)
	}
}

// TestEncryptedPPIDBundle: for a quote carrying an encrypted PPID, fetch
// gets the PCK certificate (with the subscription key) into the bundle,
// and the quote then verifies offline.
func TestEncryptedPPIDBundle(t *testing.T) {
	t.Parallel()
	p := newPCSFixture(t, dcaptest.TDXQuoteV4)
	cd, err := p.f.Platform.EncryptedPPIDCertification(quote.CertPPIDRSA2048)
	if err != nil {
		t.Fatal(err)
	}
	p.f.QuoteSpec.Certification = &cd
	q, err := p.f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	p.quote = writeFile(t, t.TempDir(), "quote.bin", q.Raw)
	p.srv.AddPCKCert(q.Parsed.Signature.Certification.EncryptedPPID.PPID, p.f.Platform)
	dir := t.TempDir()
	args := []string{"collateral", "fetch", p.quote, "-o", dir, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at, "--subscription-key", "k"}
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
	if n := p.srv.Requests("/sgx/certification/v4/pckcert"); n != 1 {
		t.Errorf("%d pckcert requests, want 1", n)
	}
	args = []string{"quote", "verify", p.quote, "--collateral-dir", dir, "--trusted-root", p.root, "--at", p.at}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	// Without the bundle's PCK certificate the offline miss names it.
	if err := os.RemoveAll(filepath.Join(dir, "pckcert")); err != nil {
		t.Fatal(err)
	}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitCollateralUnavailable, args...)
	if !strings.Contains(o.stderr, "pck certificate") || !strings.Contains(o.stderr, "offline") {
		t.Errorf("stderr %q, want the missing pck certificate named", o.stderr)
	}
}
