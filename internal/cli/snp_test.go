package cli

import (
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

func snpFixtureFiles(t *testing.T) (report, ask, vcek, evidence string) {
	t.Helper()
	evidence = testvectors.Path(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
	ask = testvectors.Path(t, "multitee", "dstack", "dstack-attest__tests__sev_snp_ask.pem")
	vcek = testvectors.Path(t, "multitee", "dstack", "dstack-attest__tests__sev_snp_vcek.pem")
	b, err := os.ReadFile(evidence)
	if err != nil {
		t.Fatal(err)
	}
	var req struct{ Attestation string }
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(req.Attestation)
	n := int(uint16(raw[2])|uint16(raw[3])<<8) >> 2
	report = writeFile(t, t.TempDir(), "report.bin", raw[4:4+n])
	return
}

func TestSNPVerifyFixture(t *testing.T) {
	report, ask, vcek, _ := snpFixtureFiles(t)
	at := "2026-06-18T00:00:00Z"
	args := []string{"snp", "verify", report, "--vcek", vcek, "--ask", ask, "--at", at, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, 0, args...)
	var out struct {
		MediaType string `json:"media_type"`
		Verified  bool   `json:"verified"`
		Accepted  bool   `json:"accepted"`
		Result    struct {
			Product   string `json:"product"`
			TCBStatus string `json:"tcb_status"`
			Report    struct {
				Measurement string `json:"measurement"`
			} `json:"report"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !out.Verified || !out.Accepted || out.Result.TCBStatus != "OutOfDate" || out.Result.Product != "Milan" ||
		out.Result.Report.Measurement != "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d" {
		t.Errorf("%+v", out)
	}
	// Hex input and the embedded ASK.
	raw, _ := os.ReadFile(report)
	hexFile := writeFile(t, t.TempDir(), "report.hex", []byte(hex.EncodeToString(raw)+"\n"))
	args = []string{"snp", "verify", hexFile, "--vcek", vcek, "--at", at}
	o = invoke(t, nil, args...)
	o.wantCode(t, 0, args...)
	if !strings.HasPrefix(o.stdout, "WARNING: SEV-SNP report verified (Milan, OutOfDate)") {
		t.Errorf("%s", o.stdout)
	}
	// --certs DIR with ask.pem and vcek.pem.
	dir := t.TempDir()
	for name, src := range map[string]string{"ask.pem": ask, "vcek.pem": vcek} {
		b, _ := os.ReadFile(src)
		writeFile(t, dir, name, b)
	}
	args = []string{"snp", "verify", report, "--certs", dir, "--at", at}
	invoke(t, nil, args...).wantCode(t, 0, args...)
	// Refusals: tampered report (4), expired VCEK (4), policy (5), v3 under
	// dstack-compat passes.
	bad := append([]byte(nil), raw...)
	bad[0x90] ^= 1
	badFile := writeFile(t, t.TempDir(), "bad.bin", bad)
	args = []string{"snp", "verify", badFile, "--vcek", vcek, "--at", at}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	args = []string{"snp", "verify", report, "--vcek", vcek, "--at", "2034-01-01T00:00:00Z"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	args = []string{"snp", "verify", report, "--vcek", vcek, "--at", at, "--require-up-to-date"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitRejected, args...)
	if !strings.HasPrefix(o.stdout, "REJECTED:") {
		t.Errorf("%s", o.stdout)
	}
	args = []string{"snp", "verify", report, "--vcek", vcek, "--at", at, "--dstack-compat"}
	invoke(t, nil, args...).wantCode(t, 0, args...)
	args = []string{"snp", "verify", writeFile(t, t.TempDir(), "short.bin", raw[:100]), "--vcek", vcek}
	invoke(t, nil, args...).wantCode(t, exitMalformed, args...)
}

func TestDstackVerifySNPFixture(t *testing.T) {
	_, _, _, evidence := snpFixtureFiles(t)
	// The default policy, as the service's, refuses the fixture's
	// OutOfDate TCB (rule tcb_status) and, offline without a bundle, the
	// lack of an AMD CRL (rule crl_checked; no AMD-signed CRL is among the
	// test data, so none can be supplied).
	args := []string{"dstack", "verify", evidence, "--at", "2026-06-18T00:00:00Z", "--dstack-compat", "--offline"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitRejected, args...)
	if !strings.HasPrefix(o.stdout, "REJECTED: tcb_status") || !strings.Contains(o.stdout, "crl_checked (snp.crl_checked)") {
		t.Errorf("default policy: %s", o.stdout)
	}
	// accepted_tcb_statuses alone still refuses: no CRL was checked.
	pol := writeFile(t, t.TempDir(), "p.yaml", []byte("accepted_tcb_statuses: [UpToDate, OutOfDate]\n"))
	args = []string{"dstack", "verify", evidence, "--at", "2026-06-18T00:00:00Z", "--dstack-compat", "--offline", "--policy", pol}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitRejected, args...)
	if !strings.HasPrefix(o.stdout, "REJECTED: crl_checked") {
		t.Errorf("OutOfDate accepted, no CRL: %s", o.stdout)
	}
	// dstack's own acceptance (OutOfDate, no CRL) allows it; no reference
	// value pins it, so it is a warning.
	pol = writeFile(t, t.TempDir(), "p.yaml", []byte("accepted_tcb_statuses: [UpToDate, OutOfDate]\nallow_unchecked_crl_unsafe: true\n"))
	args = []string{"dstack", "verify", evidence, "--at", "2026-06-18T00:00:00Z", "--dstack-compat", "--offline", "--policy", pol, "--format", "json"}
	o = invoke(t, nil, args...)
	o.wantCode(t, 0, args...)
	if !strings.Contains(o.stdout, `"verdict": "WARNING"`) {
		t.Errorf("output lacks the WARNING verdict:\n%s", o.stdout)
	}
	for _, want := range []string{`"tee_variant": "dstack-amd-sev-snp"`, `"os_image_hash_verified": true`, `"acpi_tables_verified": false`,
		`"device_id": "310f86e9970d2b625f8a1024f05ea59d540743de63e9017c8c4c0f50a14a10a6"`, `"tcb_status": "OutOfDate"`} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	args = []string{"dstack", "verify", evidence, "--at", "2026-06-18T00:00:00Z", "--report-data", "01", "--offline"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
}

// TestCollateralFetchSNP fetches from a KDS double into a bundle and
// verifies offline from it.
func TestCollateralFetchSNP(t *testing.T) {
	// The bundle must carry the pinned ARK, so snpsim material cannot be
	// served; serve the fixture's real Milan chain and VCEK instead.
	report, ask, vcek, evidence := snpFixtureFiles(t)
	askPEM, _ := os.ReadFile(ask)
	vcekPEM, _ := os.ReadFile(vcek)
	blk, _ := pem.Decode(vcekPEM)
	chain := append(askPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: snp.ARK(snp.ProductMilan).Raw})...)
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	// A CRL signed by a test key does not verify against the pinned ARK:
	// the fetch stores it, the verification refuses it.
	crl, err := g.PKI.ForgedCRL(snp.ARK(snp.ProductMilan), snpsim.Now.Add(-time.Hour), snpsim.Now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/vcek/v1/Milan/cert_chain":
			w.Write(chain)
		case r.URL.Path == "/vcek/v1/Milan/crl":
			w.Write(crl)
		case strings.HasPrefix(r.URL.Path, "/vcek/v1/Milan/38d17458") && r.URL.Query().Get("snpSPL") == "23":
			w.Write(blk.Bytes)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	out := t.TempDir()
	args := []string{"collateral", "fetch", "--platform", "snp", evidence, "--amd-kds-url", srv.URL + "/vcek/v1", "-o", out, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, 0, args...)
	if _, err := os.Stat(filepath.Join(out, "Milan", "cert_chain.pem")); err != nil {
		t.Fatal(err)
	}
	args = []string{"snp", "verify", report, "--certs", out, "--at", "2026-06-18T00:00:00Z"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stdout, "CRL") {
		t.Errorf("%s", o.stdout)
	}
	os.Remove(filepath.Join(out, "Milan", "crl.der"))
	invoke(t, nil, args...).wantCode(t, 0, args...)
	args = []string{"collateral", "fetch", "--platform", "snp", "--product", "Genoa", "--amd-kds-url", srv.URL + "/vcek/v1", "-o", out}
	invoke(t, nil, args...).wantCode(t, exitCollateralUnavailable, args...)
	args = []string{"collateral", "fetch", "--platform", "sev", "-o", out, "--product", "Milan"}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}

func TestMeasureSNP(t *testing.T) {
	_, _, _, evidence := snpFixtureFiles(t)
	const want = "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"
	args := []string{"measure", "snp", "--evidence", evidence, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, 0, args...)
	var out struct {
		Measurement string `json:"measurement"`
		Match       *bool  `json:"match"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &out); err != nil || out.Measurement != want || out.Match == nil || !*out.Match {
		t.Fatalf("%v %s", err, o.stdout)
	}
	ev, err := dstack.ParseEvidence(mustRead(t, evidence))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", []byte(ev.Config))
	bad := writeFile(t, dir, "bad.json", []byte(strings.Replace(ev.Config, `\"vcpus\":2`, `\"vcpus\":3`, 1)))
	args = []string{"measure", "snp", "--vm-config", bad, "--expect", want, "--reference", good}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stdout, "DIFFERS") || !strings.Contains(o.stdout, "differing inputs       vcpus") {
		t.Errorf("%s", o.stdout)
	}
	args = []string{"measure", "snp", "--vm-config", good, "--expect", want}
	invoke(t, nil, args...).wantCode(t, 0, args...)
	args = []string{"measure", "snp"}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSNPSourceFlags: serve's and dstack verify's SEV-SNP material comes
// from the offline bundle (--collateral-dir alone or with --offline,
// read as it is), an on-disk cache of AMD KDS (--collateral-dir with
// --amd-kds-url or --pccs-url), AMD KDS itself, or nothing (--offline
// alone); the AMD CRL of a report is read from the bundle.
func TestSNPSourceFlags(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crl, err := g.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := (amdkds.Bundle{Dir: dir}).PutCRL(snp.ProductGenoa, crl); err != nil {
		t.Fatal(err)
	}
	raw, _ := g.Attest([64]byte{})
	rep, _ := snp.ParseReport(raw)
	now := func() time.Time { return snpsim.Now }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--collateral-dir", dir}, "amdkds.Bundle"},
		{[]string{"--collateral-dir", dir, "--offline", "--amd-kds-url", "http://x"}, "amdkds.Bundle"},
		{[]string{"--collateral-dir", dir, "--amd-kds-url", "http://127.0.0.1:1"}, "*amdkds.Memory"},
		{nil, "*amdkds.Memory"},
		{[]string{"--offline"}, "cli.noSNPSource"},
	} {
		var s sourceFlags
		fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
		s.register(fl, "dir", true)
		s.registerAMDKDS(fl)
		if err := fl.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		src := s.snpSource(fl, now)
		if got := fmt.Sprintf("%T", src); got != c.want {
			t.Errorf("%v: source %s, want %s", c.args, got, c.want)
			continue
		}
		if c.want == "*amdkds.Memory" && len(c.args) == 0 {
			continue // AMD KDS itself: not asked in tests
		}
		crls, err := snpCRLs(src)(t.Context(), rep)
		if (err == nil) != (len(c.args) > 0 && c.args[0] == "--collateral-dir") || err == nil && string(crls[0]) != string(crl) {
			t.Errorf("%v: CRLs %d, %v", c.args, len(crls), err)
		}
	}
	// serve offline warns at start about missing and stale CRLs.
	var s sourceFlags
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	s.register(fl, "dir", true)
	s.registerAMDKDS(fl)
	if err := fl.Parse([]string{"--collateral-dir", dir}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at    time.Time
		stale bool
	}{{snpsim.Now, false}, {snpsim.Now.Add(2 * snpsim.CRLValidity), true}} {
		var buf strings.Builder
		s.warnSNPCRLs(fl, slog.New(slog.NewTextHandler(&buf, nil)), func() time.Time { return c.at })
		out := buf.String()
		if !strings.Contains(out, "products=Milan,Turin") || strings.Contains(out, "past its nextUpdate") != c.stale {
			t.Errorf("at %s: start warnings:\n%s", c.at, out)
		}
	}
}
