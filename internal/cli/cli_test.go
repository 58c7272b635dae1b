package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/quote"
)

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		o := invoke(t, nil, args...)
		o.wantCode(t, exitOK, args...)
		for _, want := range []string{"USAGE", "tdproof COMMAND [flags]", "COMMANDS", "quote", "version", "EXIT CODES", "EXAMPLES",
			"  6  collateral unavailable", "tdproof quote verify quote.bin --collateral", "[$TDPROOF_FORMAT]"} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("tdproof %s: help lacks %q:\n%s", strings.Join(args, " "), want, o.stdout)
			}
		}
		if o.stderr != "" {
			t.Errorf("tdproof %s: stderr %q, want empty", strings.Join(args, " "), o.stderr)
		}
	}
	// The EXIT CODES section lists every code.
	o := invoke(t, nil, "help")
	_, codes, _ := strings.Cut(o.stdout, "EXIT CODES\n")
	for code := exitOK; code <= exitCollateralUnavailable; code++ {
		if !strings.Contains(codes, fmt.Sprintf("\n  %d  ", code)) && !strings.HasPrefix(codes, fmt.Sprintf("  %d  ", code)) {
			t.Errorf("root help EXIT CODES lacks code %d", code)
		}
	}
	for _, args := range [][]string{{"help", "quote", "verify"}, {"quote", "verify", "--help"}, {"quote", "inspect", "-h"}} {
		o := invoke(t, nil, args...)
		o.wantCode(t, exitOK, args...)
		for _, want := range []string{"USAGE", "FLAGS", "EXIT CODES", "EXAMPLES", "--trusted-root"} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("tdproof %s: help lacks %q", strings.Join(args, " "), want)
			}
		}
	}
	o = invoke(t, nil, "quote", "verify", "--help")
	for _, flag := range []string{"--collateral", "--at", "--strict", "--accept-status", "--max-collateral-age", "--reject-expired-collateral",
		"--allow-debug-unsafe", "--allow-missing-sept-ve-disable-unsafe", "--allow-service-td-unsafe", "--format", "[$TDPROOF_ACCEPT_STATUS]"} {
		if !strings.Contains(o.stdout, flag) {
			t.Errorf("quote verify --help lacks %s", flag)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	o := invoke(t, nil, "version")
	o.wantCode(t, exitOK, "version")
	if !strings.HasPrefix(o.stdout, "tdproof ") {
		t.Errorf("version = %q, want tdproof …", o.stdout)
	}
	o = invoke(t, nil, "version", "--format", "json")
	o.wantCode(t, exitOK, "version", "--format", "json")
	var v versionInfo
	decodeJSON(t, o, &v)
	if v.MediaType != VersionMediaType || v.Version == "" || v.GoVersion == "" {
		t.Errorf("version JSON = %+v", v)
	}
	o = invoke(t, nil, "--version")
	o.wantCode(t, exitOK, "--version")
	if !strings.HasPrefix(o.stdout, "tdproof ") {
		t.Errorf("--version = %q", o.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := "quote.bin" // never read: every case fails before
	tests := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"misspelt command", []string{"qoute", "inspect"}},
		{"noun without verb", []string{"quote"}},
		{"unknown verb", []string{"quote", "sign", q}},
		{"unknown flag", []string{"quote", "inspect", "--frob", q}},
		{"inspect without FILE", []string{"quote", "inspect"}},
		{"inspect with two FILEs", []string{"quote", "inspect", q, q}},
		{"verify without FILE", []string{"quote", "verify", "--collateral", dir}},
		{"bad format", []string{"quote", "inspect", "--format", "yaml", q}},
		{"bad at", []string{"quote", "verify", q, "--collateral", dir, "--at", "yesterday"}},
		{"negative at", []string{"quote", "verify", q, "--collateral", dir, "--at", "-5"}},
		{"bad status", []string{"quote", "verify", q, "--collateral", dir, "--accept-status", "Fine"}},
		{"bad age", []string{"quote", "verify", q, "--collateral", dir, "--max-collateral-age", "a week"}},
		{"bad bool", []string{"quote", "verify", q, "--collateral", dir, "--strict=maybe"}},
		{"missing quote file", []string{"quote", "inspect", dir + "/nonexistent.bin"}},
		{"quote file is a directory", []string{"quote", "verify", dir, "--collateral", dir}},
		{"missing trusted root", []string{"quote", "inspect", "--trusted-root", dir + "/nonexistent.pem", "-"}},
		{"version with argument", []string{"version", "now"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := invoke(t, nil, tc.args...)
			o.wantCode(t, exitUsage, tc.args...)
			if !strings.HasPrefix(o.stderr, "tdproof: error: ") {
				t.Errorf("stderr = %q, want a tdproof: error: line", o.stderr)
			}
			if !strings.Contains(o.stderr, "tdproof: hint: run \"tdproof") || !strings.Contains(o.stderr, "--help\" for usage") {
				t.Errorf("stderr = %q, want a hint to run --help", o.stderr)
			}
			if o.stdout != "" {
				t.Errorf("stdout = %q, want empty", o.stdout)
			}
		})
	}
	for args, want := range map[string]string{
		"qoute inspect": `tdproof: hint: did you mean "tdproof quote"?`,
		"quote inspekt": `tdproof: hint: did you mean "tdproof quote inspect"?`,
	} {
		o := invoke(t, nil, strings.Fields(args)...)
		if !strings.Contains(o.stderr, want) {
			t.Errorf("tdproof %s: stderr = %q, want %q", args, o.stderr, want)
		}
	}
}

func TestEnvFallback(t *testing.T) {
	t.Parallel()
	// TDPROOF_FORMAT selects JSON; a flag on the command line wins.
	o := invokeEnv(t, map[string]string{"TDPROOF_FORMAT": "json"}, "version")
	o.wantCode(t, exitOK, "version")
	if !strings.HasPrefix(o.stdout, "{") {
		t.Errorf("TDPROOF_FORMAT=json: stdout = %q, want JSON", o.stdout)
	}
	o = invokeEnv(t, map[string]string{"TDPROOF_FORMAT": "json"}, "version", "--format", "text")
	if !strings.HasPrefix(o.stdout, "tdproof ") {
		t.Errorf("--format text over TDPROOF_FORMAT=json: stdout = %q", o.stdout)
	}
	// A bad value in the environment is a usage error naming the variable.
	o = invokeEnv(t, map[string]string{"TDPROOF_AT": "soon"}, "quote", "verify", "q.bin", "--collateral", "c.json")
	o.wantCode(t, exitUsage)
	if !strings.Contains(o.stderr, "TDPROOF_AT") {
		t.Errorf("stderr = %q, want it to name TDPROOF_AT", o.stderr)
	}
	// TDPROOF_COLLATERAL satisfies --collateral (here: a missing path, exit 6).
	o = invokeEnv(t, map[string]string{"TDPROOF_COLLATERAL": t.TempDir() + "/none"}, "quote", "verify", "-")
	if o.code == exitUsage {
		t.Errorf("TDPROOF_COLLATERAL was not used: %s", o.stderr)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		exit int
		code string
	}{
		{nil, exitOK, ""},
		{&usageError{err: errors.New("x")}, exitUsage, codeUsage},
		{fmt.Errorf("%w: %w", errCollateralUnavailable, fs.ErrNotExist), exitCollateralUnavailable, codeCollateralUnavailable},
		{quote.ErrTruncated, exitMalformed, codeMalformed},
		{quote.ErrVersion, exitMalformed, codeUnsupported},
		{&dcap.VerifyError{Step: "quote", Err: quote.ErrMalformed}, exitMalformed, codeMalformed},
		{collateral.ErrMalformed, exitMalformed, codeCollateralMalformed},
		{errMalformedInput, exitMalformed, codeMalformed},
		{&dcap.PolicyError{}, exitRejected, codeRejected},
		{dcap.ErrTCBNotSupported, exitRejected, codeTCBNotSupported},
		{dcap.ErrRevoked, exitNotAuthentic, codeRevoked},
		{dcap.ErrExpired, exitNotAuthentic, codeExpired},
		{dcap.ErrNotYetValid, exitNotAuthentic, codeNotYetValid},
		{dcap.ErrCollateralSignature, exitNotAuthentic, codeCollateralInvalid},
		{dcap.ErrFMSPCMismatch, exitNotAuthentic, codeCollateralInvalid},
		{dcap.ErrQuoteSignature, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrQEReportSignature, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrChain, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrCRL, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrQEReportData, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrQEVendor, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrQEIdentity, exitNotAuthentic, codeNotAuthentic},
		{dcap.ErrTDXModuleMismatch, exitNotAuthentic, codeNotAuthentic},
		{errors.New("disk on fire"), exitInternal, codeInternal},
	}
	for _, tc := range tests {
		exit, code := classify(withHints(tc.err, "h"))
		if exit != tc.exit || code != tc.code {
			t.Errorf("classify(%v) = %d, %q; want %d, %q", tc.err, exit, code, tc.exit, tc.code)
		}
	}
}

func TestFlagValues(t *testing.T) {
	t.Parallel()
	var a ageValue
	for in, want := range map[string]string{"30d": "720h0m0s", "36h": "36h0m0s", "90m": "1h30m0s"} {
		if err := a.Set(in); err != nil || a.String() != want {
			t.Errorf("ageValue.Set(%q) = %v, String() = %q; want %q", in, err, a.String(), want)
		}
	}
	var tv timeValue
	for in, want := range map[string]string{"1752919234": "2025-07-19T10:00:34Z", "2025-07-19T12:00:34+02:00": "2025-07-19T10:00:34Z"} {
		if err := tv.Set(in); err != nil || tv.String() != want {
			t.Errorf("timeValue.Set(%q) = %v, String() = %q; want %q", in, err, tv.String(), want)
		}
	}
	s := statusListValue{list: []collateral.TCBStatus{collateral.UpToDate}}
	for _, in := range []string{"SWHardeningNeeded, OutOfDate", "SWHardeningNeeded", "UpToDate"} {
		if err := s.Set(in); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.String(); got != "SWHardeningNeeded,OutOfDate,UpToDate" {
		t.Errorf("statusListValue = %q", got)
	}
}
