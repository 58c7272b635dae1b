package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// verifyVectors is the DCAP table of ../shared/testdata/README.md.
var verifyVectors = []struct {
	dir string
	at  int64
	// collateral paths relative to the vector directory; "" is the
	// directory itself.
	collateral []string
	status     collateral.TCBStatus
	advisories []string
	module     string
	exit       int
	code       string
}{
	{"tdx-v4-b0c06f", 1752919234, []string{"", "collateral.json"}, collateral.UpToDate, nil, "TDX_01", exitOK, ""},
	{"sgx-v3-00a067", 1752919277, []string{"", "collateral.json"}, collateral.ConfigurationAndSWHardeningNeeded,
		[]string{"INTEL-SA-00289", "INTEL-SA-00615"}, "", exitRejected, codeRejected},
	{"tdx-v5-90c06f", 1774003274, []string{"", "collateral.json"}, 0, nil, "", exitRejected, codeTCBNotSupported},
	{"tdx-v4-90c06f-dstack", 1774003274, []string{"", "collateral.json"}, collateral.UpToDate, nil, "", exitOK, ""},
	{"tdx-v4-50806f-pcs", 1688173200, []string{"", "pcs"}, 0, nil, "", exitRejected, codeTCBNotSupported},
}

func TestVerifyVectors(t *testing.T) {
	t.Parallel()
	for _, v := range verifyVectors {
		for _, rel := range v.collateral {
			t.Run(v.dir+"/"+rel, func(t *testing.T) {
				t.Parallel()
				base := testvectors.Path(t, "dcap", v.dir)
				quotePath, colPath := filepath.Join(base, "quote.bin"), filepath.Join(base, rel)
				at := time.Unix(v.at, 0).UTC()

				// Human output, --at in unix seconds.
				args := []string{"quote", "verify", quotePath, "--collateral", colPath, "--at", strconv.FormatInt(v.at, 10)}
				o := invoke(t, nil, args...)
				o.wantCode(t, v.exit, args...)
				checkHumanVerify(t, o, v.status, v.advisories, v.module, v.code, at)

				// JSON output, --at in RFC 3339.
				args = []string{"quote", "verify", quotePath, "--collateral", colPath, "--at", at.Format(time.RFC3339), "--format", "json"}
				o = invoke(t, nil, args...)
				o.wantCode(t, v.exit, args...)
				var out verifyOutput
				decodeJSON(t, o, &out)
				checkJSONVerify(t, &out, v.status, v.advisories, v.module, v.code, at)
			})
		}
	}
}

func checkHumanVerify(t *testing.T, o outcome, status collateral.TCBStatus, advisories []string, module, code string, at time.Time) {
	t.Helper()
	first := firstLine(o.stdout)
	switch code {
	case "":
		// Nothing pins the vectors' code: allowed, at most warning (as the
		// service's default policy).
		if !strings.HasPrefix(first, "WARNING: allowed, not affirming (EAR status warning, TCB "+status.String()+", policy default@1): unpinned") {
			t.Errorf("verdict = %q, want WARNING … TCB %s … unpinned", first, status)
		}
		if o.stderr != "" {
			t.Errorf("stderr = %q, want empty", o.stderr)
		}
	case codeRejected:
		if want := "REJECTED: tcb_status (" + teeOfStatus(o.stdout) + ".tcb_status): expected one of [UpToDate], got " + status.String(); first != want {
			t.Errorf("verdict = %q, want %q", first, want)
		}
		if !strings.Contains(o.stderr, "tdproof: hint: to accept TCB status "+status.String()) {
			t.Errorf("stderr lacks the --accept-status hint: %q", o.stderr)
		}
	case codeTCBNotSupported:
		if !strings.HasPrefix(first, "REJECTED: ") || !strings.Contains(first, "TCB not supported") {
			t.Errorf("verdict = %q, want REJECTED: … TCB not supported", first)
		}
		if strings.Contains(o.stdout, "status                 ") {
			t.Errorf("stdout = %q, want no DCAP result", o.stdout)
		}
		return
	}
	if !strings.HasPrefix(o.stderr, "tdproof: error: ") && code != "" {
		t.Errorf("stderr = %q, want a tdproof: error: line", o.stderr)
	}
	want := []string{
		"status                 " + status.String(),
		"advisory IDs           " + listOrNone(advisories),
		"TCB date", "FMSPC", "PCK CA", "TCB info", "QE identity", "PCK CRL", "root CA CRL", "evaluation data number",
		"earliest expiration", "(not expired)",
		"verification time      " + at.Format(time.RFC3339),
		"trusted root           Intel SGX Root CA (sha256 " + dcap.IntelRootSHA256 + ")",
	}
	if module != "" {
		want = append(want, "TDX module           UpToDate ("+module)
	}
	for _, w := range want {
		if !strings.Contains(o.stdout, w) {
			t.Errorf("human output lacks %q:\n%s", w, o.stdout)
		}
	}
	if strings.Contains(o.stdout, "NON-INTEL") {
		t.Errorf("human output with the Intel root has the NON-INTEL warning")
	}
}

// teeOfStatus guesses the TEE of a human verify output (MRENCLAVE lines
// are SGX).
func teeOfStatus(stdout string) string {
	if strings.Contains(stdout, "MRENCLAVE") {
		return "sgx"
	}
	return "tdx"
}

func checkJSONVerify(t *testing.T, out *verifyOutput, status collateral.TCBStatus, advisories []string, module, code string, at time.Time) {
	t.Helper()
	if out.MediaType != VerifyMediaType {
		t.Errorf("media_type = %q", out.MediaType)
	}
	if !out.VerificationTime.Equal(at) {
		t.Errorf("verification_time = %v, want %v", out.VerificationTime, at)
	}
	if !out.IntelRoot || out.TrustedRootSHA256 != dcap.IntelRootSHA256 {
		t.Errorf("intel_root = %v, trusted_root_sha256 = %s; want the Intel root", out.IntelRoot, out.TrustedRootSHA256)
	}
	if code == codeTCBNotSupported {
		if out.Verified || out.Accepted || out.Verdict != verdictRejected || out.Result == nil || out.Result.Authentic ||
			out.Result.DCAP != nil || out.Result.Status != ear.StatusContraindicated || out.Error == nil || out.Error.Code != codeTCBNotSupported {
			t.Errorf("JSON = verified %v accepted %v verdict %s result %+v error %+v; want tcb_not_supported", out.Verified, out.Accepted, out.Verdict, out.Result, out.Error)
		}
		return
	}
	if out.Result == nil || out.Result.MediaType != "application/vnd.tdproof.verification-result.v1+json" {
		t.Fatalf("JSON: result = %+v, want the service's result", out.Result)
	}
	r := out.Result.DCAP
	if !out.Verified || r == nil {
		t.Fatalf("JSON: verified = %v, result = %v, error = %+v", out.Verified, r, out.Error)
	}
	if r.Status != status {
		t.Errorf("result.status = %v, want %v", r.Status, status)
	}
	if want := advisories; !slices.Equal(r.AdvisoryIDs, want) && !(len(want) == 0 && len(r.AdvisoryIDs) == 0) {
		t.Errorf("result.advisory_ids = %v, want %v", r.AdvisoryIDs, want)
	}
	if module != "" && r.TDXModuleIdentity != module {
		t.Errorf("result.tdx_module_identity = %q, want %q", r.TDXModuleIdentity, module)
	}
	if !r.IntelRoot || r.TrustedRootSHA256 != dcap.IntelRootSHA256 || r.MediaType != dcap.MediaType {
		t.Errorf("result: intel_root %v, trusted_root_sha256 %s, media_type %s", r.IntelRoot, r.TrustedRootSHA256, r.MediaType)
	}
	failed := out.Result.Appraisal.Failed
	switch code {
	case "":
		if !out.Accepted || out.Verdict != verdictWarning || out.Error != nil || len(failed) != 0 || out.Result.Status != ear.StatusWarning {
			t.Errorf("JSON: accepted %v, verdict %s, error %+v, failed %v; want accepted with a warning", out.Accepted, out.Verdict, out.Error, failed)
		}
	case codeRejected:
		if out.Accepted || out.Verdict != verdictRejected || out.Error == nil || out.Error.Code != codeRejected || len(failed) != 1 || failed[0].Rule != "tcb_status" {
			t.Errorf("JSON: accepted %v, error %+v, failed %v; want rejected on tcb_status", out.Accepted, out.Error, failed)
		}
	}
}

func TestVerifyAcceptStatus(t *testing.T) {
	t.Parallel()
	base := testvectors.Path(t, "dcap", "sgx-v3-00a067")
	common := []string{"quote", "verify", filepath.Join(base, "quote.bin"), "--collateral", base, "--at", "1752919277"}
	for _, extra := range [][]string{
		{"--accept-status", "ConfigurationAndSWHardeningNeeded"},
		{"--accept-status", "UpToDate,ConfigurationAndSWHardeningNeeded"},
		{"--accept-status", "UpToDate", "--accept-status", "ConfigurationAndSWHardeningNeeded"},
	} {
		args := append(slices.Clone(common), extra...)
		o := invoke(t, nil, args...)
		o.wantCode(t, exitOK, args...)
		if first := firstLine(o.stdout); !strings.HasPrefix(first, "WARNING: allowed, not affirming (EAR status warning, TCB ConfigurationAndSWHardeningNeeded, policy command-line@1): ") ||
			!strings.Contains(first, "TCB status ConfigurationAndSWHardeningNeeded is accepted but not UpToDate") {
			t.Errorf("verdict = %q", first)
		}
		if !strings.Contains(o.stdout, "INTEL-SA-00289, INTEL-SA-00615") {
			t.Errorf("advisories missing:\n%s", o.stdout)
		}
		o = invoke(t, nil, append(args, "--format", "json")...)
		o.wantCode(t, exitOK)
		var out verifyOutput
		decodeJSON(t, o, &out)
		if !out.Accepted || out.Result.Appraisal.PolicyID != cliPolicyID {
			t.Errorf("JSON: accepted %v, appraisal %+v", out.Accepted, out.Result.Appraisal)
		}
	}
	// Through the environment.
	o := invokeEnv(t, map[string]string{"TDPROOF_ACCEPT_STATUS": "UpToDate,ConfigurationAndSWHardeningNeeded"}, common...)
	o.wantCode(t, exitOK, common...)
	// Accepting another status still rejects this one.
	args := append(slices.Clone(common), "--accept-status", "SWHardeningNeeded")
	invoke(t, nil, args...).wantCode(t, exitRejected, args...)
}

func TestVerifyExpiry(t *testing.T) {
	t.Parallel()
	base := testvectors.Path(t, "dcap", "tdx-v4-b0c06f")
	quotePath := filepath.Join(base, "quote.bin")
	verify := func(t *testing.T, want int, extra ...string) (outcome, verifyOutput) {
		t.Helper()
		args := append([]string{"quote", "verify", quotePath, "--collateral", base, "--format", "json"}, extra...)
		o := invoke(t, nil, args...)
		o.wantCode(t, want, args...)
		var out verifyOutput
		decodeJSON(t, o, &out)
		return o, out
	}
	_, out := verify(t, exitOK, "--at", "1752919234")
	if out.Result.DCAP.CollateralExpired {
		t.Fatalf("collateral expired at the vector's time")
	}
	// Strict at the vector's time: everything is valid.
	verify(t, exitOK, "--at", "1752919234", "--strict")

	// Expired collateral is a flag in Intel's semantics; the service's
	// default policy rejects it, and so does the CLI.
	expiry := out.Result.DCAP.EarliestExpiration.UTC().Format(time.RFC3339)
	_, out = verify(t, exitRejected, "--at", expiry)
	if !out.Result.DCAP.CollateralExpired || out.Accepted || len(out.Result.Appraisal.Failed) != 1 || out.Result.Appraisal.Failed[0].Rule != "collateral_expired" {
		t.Errorf("--at %s: collateral_expired = %v, accepted = %v, failed %v; want expired and rejected", expiry, out.Result.DCAP.CollateralExpired, out.Accepted, out.Result.Appraisal.Failed)
	}
	o := invoke(t, nil, "quote", "verify", quotePath, "--collateral", base, "--at", expiry)
	o.wantCode(t, exitRejected)
	if !strings.Contains(o.stdout, "(EXPIRED)") || firstLine(o.stdout) != "REJECTED: collateral_expired (tdx.collateral.expired): expected false, got true" {
		t.Errorf("human output does not reject expiry:\n%s", o.stdout)
	}
	_, out = verify(t, exitOK, "--at", expiry, "--allow-expired-collateral-unsafe")
	if !out.Accepted {
		t.Errorf("--allow-expired-collateral-unsafe: not accepted")
	}
	o = invoke(t, nil, "quote", "verify", quotePath, "--collateral", base, "--at", expiry, "--allow-expired-collateral-unsafe")
	o.wantCode(t, exitOK)
	if !strings.Contains(firstLine(o.stdout), "collateral EXPIRED at "+expiry) {
		t.Errorf("human output does not report expiry:\n%s", o.stdout)
	}

	o, out = verify(t, exitNotAuthentic, "--at", expiry, "--strict")
	if out.Verified || out.Error == nil || out.Error.Code != codeExpired {
		t.Errorf("--strict at expiry: verified %v, error %+v; want expired", out.Verified, out.Error)
	}
	if !strings.Contains(o.stderr, "tdproof: hint: without --strict") {
		t.Errorf("stderr lacks the --strict hint: %q", o.stderr)
	}
	o = invoke(t, nil, "quote", "verify", quotePath, "--collateral", base, "--at", expiry, "--strict")
	o.wantCode(t, exitNotAuthentic)
	if !strings.HasPrefix(o.stdout, "REJECTED: not authentic: ") {
		t.Errorf("verdict = %q, want REJECTED: not authentic", firstLine(o.stdout))
	}

	_, out = verify(t, exitRejected, "--at", expiry, "--reject-expired-collateral")
	if f := out.Result.Appraisal.Failed; len(f) != 1 || f[0].Rule != "collateral_expired" {
		t.Errorf("--reject-expired-collateral: failed %v", f)
	}
	_, out = verify(t, exitRejected, "--at", "1752919234", "--max-collateral-age", "1h")
	if f := out.Result.Appraisal.Failed; len(f) == 0 || f[0].Rule != "collateral_age" {
		t.Errorf("--max-collateral-age 1h: failed %v", f)
	}
	verify(t, exitOK, "--at", "1752919234", "--max-collateral-age", "31d")
}

func TestVerifyFailures(t *testing.T) {
	t.Parallel()
	raw, q := readVectorQuote(t, "tdx-v4-b0c06f")
	base := testvectors.Path(t, "dcap", "tdx-v4-b0c06f")
	otherCollateral := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	pcsDir := testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs", "pcs")
	raw50, _ := readVectorQuote(t, "tdx-v4-50806f-pcs")
	tmp := t.TempDir()
	badJSON := writeFile(t, tmp, "bad.json", []byte(`{"tcb_info": 1}`))
	noTCB := filepath.Join(tmp, "pcs-no-tcb")
	copyDir(t, pcsDir, noTCB, "tdx-tcb-fmspc-")
	emptyDir := filepath.Join(tmp, "empty")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		stdin      []byte
		collateral string
		at         string
		exit       int
		code       string
		verdict    string
	}{
		{"truncated quote", raw[:200], base, "1752919234", exitMalformed, codeMalformed, ""},
		{"unsupported version", append([]byte{7, 0}, raw[2:]...), base, "1752919234", exitMalformed, codeUnsupported, ""},
		{"flipped quote signature", flipByte(raw, len(q.Signed())+4+7), base, "1752919234", exitNotAuthentic, codeNotAuthentic, "REJECTED: not authentic: "},
		{"flipped body byte", flipByte(raw, 48+200), base, "1752919234", exitNotAuthentic, codeNotAuthentic, "REJECTED: not authentic: "},
		{"collateral of another platform", raw, otherCollateral, "1752919234", exitNotAuthentic, codeCollateralInvalid, "REJECTED: not authentic: "},
		{"missing collateral dir", raw, filepath.Join(tmp, "nonexistent"), "1752919234", exitCollateralUnavailable, codeCollateralUnavailable, ""},
		{"empty collateral dir", raw, emptyDir, "1752919234", exitCollateralUnavailable, codeCollateralUnavailable, ""},
		{"pcs dir without tcb info", raw50, noTCB, "1688173200", exitCollateralUnavailable, codeCollateralUnavailable, ""},
		{"pcs dir of another platform", raw, pcsDir, "1752919234", exitCollateralUnavailable, codeCollateralUnavailable, ""},
		{"malformed collateral json", raw, badJSON, "1752919234", exitMalformed, codeCollateralMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"quote", "verify", "-", "--collateral", tc.collateral, "--at", tc.at}
			o := invoke(t, tc.stdin, args...)
			o.wantCode(t, tc.exit, args...)
			if !strings.HasPrefix(o.stderr, "tdproof: error: ") {
				t.Errorf("stderr = %q, want a tdproof: error: line", o.stderr)
			}
			if tc.verdict != "" && !strings.HasPrefix(o.stdout, tc.verdict) {
				t.Errorf("stdout = %q, want verdict %q", o.stdout, tc.verdict)
			}
			if tc.verdict == "" && o.stdout != "" {
				t.Errorf("stdout = %q, want empty", o.stdout)
			}
			o = invoke(t, tc.stdin, append(args, "--format", "json")...)
			o.wantCode(t, tc.exit, args...)
			var out verifyOutput
			decodeJSON(t, o, &out)
			if out.Verified || out.Accepted || (out.Result != nil && (out.Result.Authentic || out.Result.Allow)) || out.Error == nil || out.Error.Code != tc.code {
				t.Errorf("JSON: verified %v accepted %v result %+v error %+v; want code %s", out.Verified, out.Accepted, out.Result, out.Error, tc.code)
			}
			if (tc.verdict != "") != (out.Verdict == verdictRejected) || (tc.verdict != "") != (out.Result != nil) {
				t.Errorf("JSON: verdict %q, result %v; want a REJECTED verdict exactly when the service would give one", out.Verdict, out.Result != nil)
			}
		})
	}
}

// copyDir copies the regular files of src to a new dst, leaving out names
// starting with skip.
func copyDir(tb testing.TB, src, dst, skip string) {
	tb.Helper()
	if err := os.Mkdir(dst, 0o700); err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), skip) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, dst, e.Name(), b)
	}
}
