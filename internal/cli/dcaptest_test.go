package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// fakeEvidence is dcaptest evidence written to files.
type fakeEvidence struct {
	quote, collateral, rootPEM, rootDER string
	rootSHA256                          string
	at                                  string
}

// writeFixture builds f's quote and collateral and writes them, with the
// fake root, to a temporary directory.
func writeFixture(t *testing.T, f *dcaptest.Fixture) fakeEvidence {
	t.Helper()
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.BuildRawCollateral()
	if err != nil {
		t.Fatal(err)
	}
	js, err := rc.QVLJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum := sha256.Sum256(f.PKI.Root.DER)
	return fakeEvidence{
		quote:      writeFile(t, dir, "quote.bin", q.Raw),
		collateral: writeFile(t, dir, "collateral.json", js),
		rootPEM:    writeFile(t, dir, "root.pem", f.PKI.Root.PEM()),
		rootDER:    writeFile(t, dir, "root.der", f.PKI.Root.DER),
		rootSHA256: hex.EncodeToString(sum[:]),
		at:         f.Now.UTC().Format(time.RFC3339),
	}
}

func newFixture(t *testing.T, kind dcaptest.QuoteKind) *dcaptest.Fixture {
	t.Helper()
	f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTrustedRootWarning(t *testing.T) {
	t.Parallel()
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.TDXQuoteV5TD15, dcaptest.SGXQuoteV3} {
		t.Run(strings.ReplaceAll(kindName(kind), " ", "_"), func(t *testing.T) {
			t.Parallel()
			e := writeFixture(t, newFixture(t, kind))
			warning := "WARNING: verified against a NON-INTEL trusted root (sha256 " + e.rootSHA256 + "); this result proves nothing about Intel hardware"
			for _, root := range []string{e.rootPEM, e.rootDER} {
				args := []string{"quote", "verify", e.quote, "--collateral", e.collateral, "--at", e.at, "--trusted-root", root}
				o := invoke(t, nil, args...)
				o.wantCode(t, exitOK, args...)
				lines := strings.SplitN(o.stdout, "\n", 3)
				if len(lines) < 3 || !strings.HasPrefix(lines[0], "WARNING: allowed, not affirming (EAR status warning, TCB UpToDate") || lines[1] != warning {
					t.Errorf("human output starts %q, want the verdict then the NON-INTEL warning", lines[:min(2, len(lines))])
				}
				if !strings.Contains(o.stdout, "trusted root           NON-INTEL (sha256 "+e.rootSHA256+")") {
					t.Errorf("human output lacks the NON-INTEL trusted root line")
				}

				o = invoke(t, nil, append(args, "--format", "json")...)
				o.wantCode(t, exitOK)
				var out verifyOutput
				decodeJSON(t, o, &out)
				if out.IntelRoot || out.TrustedRootSHA256 != e.rootSHA256 {
					t.Errorf("JSON: intel_root %v, trusted_root_sha256 %s; want false and the fake root's hash", out.IntelRoot, out.TrustedRootSHA256)
				}
				if out.Result == nil || out.Result.DCAP == nil || out.Result.DCAP.IntelRoot || out.Result.DCAP.TrustedRootSHA256 != e.rootSHA256 {
					t.Errorf("JSON result: %+v, want intel_root false and the fake root's hash", out.Result)
				}
				var raw struct {
					Result struct {
						DCAP map[string]any `json:"dcap"`
					} `json:"result"`
				}
				if err := json.Unmarshal([]byte(o.stdout), &raw); err != nil || raw.Result.DCAP["intel_root"] != false {
					t.Errorf(`JSON lacks "intel_root": false (%v)`, err)
				}

				o = invoke(t, nil, "quote", "inspect", "--trusted-root", root, e.quote)
				o.wantCode(t, exitOK)
				if !strings.HasPrefix(o.stdout, "WARNING: verified against a NON-INTEL trusted root") ||
					!strings.Contains(o.stdout, "valid up to a NON-INTEL trusted root") {
					t.Errorf("inspect --trusted-root output:\n%s", o.stdout)
				}
			}
			// Without --trusted-root the fake chain does not lead to Intel.
			o := invoke(t, nil, "quote", "verify", e.quote, "--collateral", e.collateral, "--at", e.at)
			o.wantCode(t, exitNotAuthentic)
			o = invoke(t, nil, "quote", "inspect", e.quote)
			o.wantCode(t, exitNotAuthentic)
			// A real Intel quote does not chain to the fake root; the
			// warning still comes first.
			vec := testvectors.Path(t, "dcap", "tdx-v4-b0c06f")
			o = invoke(t, nil, "quote", "verify", filepath.Join(vec, "quote.bin"), "--collateral", vec, "--at", "1752919234", "--trusted-root", e.rootPEM)
			o.wantCode(t, exitNotAuthentic)
			if lines := strings.SplitN(o.stdout, "\n", 3); len(lines) < 2 || lines[1] != warning || !strings.HasPrefix(lines[0], "REJECTED: not authentic: ") {
				t.Errorf("real quote with a fake root: stdout = %q", o.stdout)
			}
		})
	}
}

func kindName(k dcaptest.QuoteKind) string {
	switch k {
	case dcaptest.SGXQuoteV3:
		return "sgx-v3"
	case dcaptest.TDXQuoteV4:
		return "tdx-v4"
	case dcaptest.TDXQuoteV5TD15:
		return "tdx-v5-td15"
	}
	return "other"
}

// TestVerifyFixtureMutations runs one-field mutations of a dcaptest
// fixture through quote verify.
func TestVerifyFixtureMutations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		kind   dcaptest.QuoteKind
		mutate func(*dcaptest.Fixture)
		flags  []string
		exit   int
		code   string
		rule   string
	}{
		{"default", dcaptest.TDXQuoteV4, func(*dcaptest.Fixture) {}, nil, exitOK, "", ""},
		{"debug TD", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }, nil, exitRejected, codeRejected, "debug"},
		{"debug TD allowed", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }, []string{"--allow-debug-unsafe"}, exitOK, "", ""},
		{"no SEPT_VE_DISABLE", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[3] &^= 0x10 }, nil, exitRejected, codeRejected, "sept_ve_disable"},
		{"no SEPT_VE_DISABLE allowed", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[3] &^= 0x10 },
			[]string{"--allow-missing-sept-ve-disable-unsafe"}, exitOK, "", ""},
		{"service TD", dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.MRServiceTD[0] = 1 }, nil, exitRejected, codeRejected, "mr_servicetd"},
		{"service TD allowed", dcaptest.TDXQuoteV5TD15, func(f *dcaptest.Fixture) { f.QuoteSpec.TD.MRServiceTD[0] = 1 },
			[]string{"--allow-service-td-unsafe"}, exitOK, "", ""},
		{"debug enclave", dcaptest.SGXQuoteV3, func(f *dcaptest.Fixture) { f.QuoteSpec.Enclave.Attributes[0] |= 2 }, nil, exitRejected, codeRejected, "debug"},
		{"revoked PCK", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
			f.CollateralSpec.PCKCRL.Revoked = []*big.Int{f.Platform.PCK.Certificate.SerialNumber}
		}, nil, exitNotAuthentic, codeRevoked, ""},
		{"tampered TCB info", dcaptest.TDXQuoteV4, func(f *dcaptest.Fixture) {
			f.CollateralSpec.MutateTCBInfoAfterSign = func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`, 1))
			}
		}, nil, exitNotAuthentic, codeCollateralInvalid, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.kind)
			tc.mutate(f)
			e := writeFixture(t, f)
			args := append([]string{"quote", "verify", e.quote, "--collateral", e.collateral, "--at", e.at, "--trusted-root", e.rootPEM, "--format", "json"}, tc.flags...)
			o := invoke(t, nil, args...)
			o.wantCode(t, tc.exit, args...)
			var out verifyOutput
			decodeJSON(t, o, &out)
			if got := codeOf(out.Error); got != tc.code {
				t.Errorf("error code = %q, want %q (%+v)", got, tc.code, out.Error)
			}
			if tc.rule != "" && (out.Result == nil || len(out.Result.Appraisal.Failed) != 1 || out.Result.Appraisal.Failed[0].Rule != tc.rule) {
				t.Errorf("result = %+v, want one failed rule %s", out.Result, tc.rule)
			}
		})
	}
}

func codeOf(e *errorJSON) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// TestVerifyFixturePCSDir writes dcaptest collateral as raw PCS responses,
// with a decoy TCB info of another FMSPC, and checks that the quote's PCK
// certificate selects the right one.
func TestVerifyFixturePCSDir(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.TDXQuoteV4)
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.BuildRawCollateral()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	headers := func(name, value string) []byte {
		b, err := json.Marshal(map[string]string{name: url.PathEscape(value)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fmspc := hex.EncodeToString(f.Platform.Spec.FMSPC[:])
	writeFile(t, dir, "IntelSGXRootCA.der.body", rc.RootCACRL)
	writeFile(t, dir, "sgx-pckcrl-platform-der.body", rc.PCKCRL)
	writeFile(t, dir, "sgx-pckcrl-platform-der.headers.json", headers("SGX-PCK-CRL-Issuer-Chain", rc.PCKCRLIssuerChain))
	writeFile(t, dir, "tdx-tcb-fmspc-"+fmspc+".body", rc.TCBInfoResponse())
	writeFile(t, dir, "tdx-tcb-fmspc-"+fmspc+".headers.json", headers("TCB-Info-Issuer-Chain", rc.TCBInfoIssuerChain))
	writeFile(t, dir, "tdx-tcb-fmspc-ffffffffffff.body", []byte("decoy"))
	writeFile(t, dir, "tdx-qe-identity.body", rc.QEIdentityResponse())
	writeFile(t, dir, "tdx-qe-identity.headers.json", headers("SGX-Enclave-Identity-Issuer-Chain", rc.QEIdentityIssuerChain))
	quotePath := writeFile(t, t.TempDir(), "quote.bin", q.Raw)
	root := writeFile(t, t.TempDir(), "root.pem", f.PKI.Root.PEM())

	args := []string{"quote", "verify", quotePath, "--collateral", dir, "--at", f.Now.Format(time.RFC3339), "--trusted-root", root, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out verifyOutput
	decodeJSON(t, o, &out)
	if out.Collateral == nil || out.Collateral.Kind != "pcs-dir" || out.Result.DCAP.FMSPC != fmspc {
		t.Errorf("collateral_source %+v, fmspc %s; want pcs-dir and %s", out.Collateral, out.Result.DCAP.FMSPC, fmspc)
	}
	if out.Result.DCAP.IntelRoot {
		t.Errorf("intel_root = true with a dcaptest root")
	}
	if dcap.IntelRootSHA256 == out.Result.DCAP.TrustedRootSHA256 {
		t.Errorf("trusted_root_sha256 is Intel's")
	}

}

// TestUnsafeSwitchesIgnoreEnvironment checks that the trust anchor and the
// *-unsafe switches cannot be turned on from the environment.
func TestUnsafeSwitchesIgnoreEnvironment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.TDXQuoteV4)
	f.QuoteSpec.TD.TDAttributes[0] |= 1 // DEBUG
	e := writeFixture(t, f)
	env := map[string]string{
		"TDPROOF_ALLOW_DEBUG_UNSAFE":                   "true",
		"TDPROOF_ALLOW_MISSING_SEPT_VE_DISABLE_UNSAFE": "true",
		"TDPROOF_ALLOW_SERVICE_TD_UNSAFE":              "true",
		"TDPROOF_TRUSTED_ROOT":                         e.rootPEM,
	}
	args := []string{"quote", "verify", e.quote, "--collateral", e.collateral, "--at", e.at}
	// TDPROOF_TRUSTED_ROOT is ignored: the fake chain does not lead to Intel.
	invokeEnv(t, env, args...).wantCode(t, exitNotAuthentic, args...)
	// TDPROOF_ALLOW_DEBUG_UNSAFE is ignored: the DEBUG TD is rejected.
	args = append(args, "--trusted-root", e.rootPEM)
	invokeEnv(t, env, args...).wantCode(t, exitRejected, args...)
	args = append(args, "--allow-debug-unsafe")
	invokeEnv(t, env, args...).wantCode(t, exitOK, args...)

	o := invoke(t, nil, "quote", "verify", "--help")
	for _, want := range []string{"--allow-debug-unsafe", "(command line only)"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("quote verify --help lacks %q", want)
		}
	}
	if strings.Contains(o.stdout, "TDPROOF_ALLOW_DEBUG_UNSAFE") || strings.Contains(o.stdout, "TDPROOF_TRUSTED_ROOT") {
		t.Errorf("quote verify --help advertises an environment fallback for an unsafe switch")
	}
}
