package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/policy"
)

// TestAppraisalFlags checks the policy and reference-value flags of the
// verify commands: conflicts are usage errors, unreadable or malformed
// files are malformed input, and a policy file decides.
func TestAppraisalFlags(t *testing.T) {
	base := testvectors.Path(t, "dcap", "tdx-v4-b0c06f")
	q := filepath.Join(base, "quote.bin")
	dir := t.TempDir()
	verify := []string{"quote", "verify", q, "--collateral", base, "--at", "1752919234"}
	yaml := writeFile(t, dir, "p.yaml", []byte("id: strict\nversion: \"7\"\ntees: [sgx]\n"))
	// A Rego module without the .rego extension is recognised by its package.
	regoSrc := "package tdproof.policy\n\ndefault allow := false\n\nallow if input.tee == \"tdx\"\n"
	regoFile := writeFile(t, dir, "allow-tdx.txt", []byte(regoSrc))
	emptyRefs := writeFile(t, dir, "refs.json", []byte(`{"media_type":"`+RefValuesMediaType+`","values":[]}`))
	for _, tc := range []struct {
		name  string
		extra []string
		exit  int
		first string
	}{
		{"yaml policy denies", []string{"--policy", yaml}, exitRejected, "REJECTED: tee (tee): expected sgx, got tdx"},
		{"rego policy allows", []string{"--policy", regoFile}, exitOK, "WARNING: allowed, not affirming (EAR status warning, TCB UpToDate, policy allow-tdx@file)"},
		{"policy id names the file's policy", []string{"--policy", yaml, "--policy-id", "strict"}, exitRejected, "REJECTED: tee"},
		{"policy id differs from the document", []string{"--policy", yaml, "--policy-id", "other"}, exitMalformed, ""},
		{"unknown policy id", []string{"--policy-id", "production"}, exitUsage, ""},
		{"default policy id", []string{"--policy-id", policy.DefaultID}, exitOK, "WARNING: "},
		{"switch with a policy", []string{"--policy", yaml, "--accept-status", "OutOfDate"}, exitUsage, ""},
		{"refvalues with db", []string{"--refvalues", emptyRefs, "--db", filepath.Join(dir, "x.db")}, exitUsage, ""},
		{"empty refvalues", []string{"--refvalues", emptyRefs}, exitOK, "WARNING: "},
		{"refvalues of another format", []string{"--refvalues", yaml}, exitMalformed, ""},
		{"refvalues media type unknown", []string{"--refvalues", writeFile(t, dir, "x.json", []byte(`{"media_type":"x"}`))}, exitMalformed, ""},
		{"malformed policy", []string{"--policy", writeFile(t, dir, "bad.yaml", []byte("accepted_tcb_statuses: [Fine]\n"))}, exitMalformed, ""},
		{"policy file missing", []string{"--policy", filepath.Join(dir, "none.yaml")}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, verify...), tc.extra...)
			o := invoke(t, nil, args...)
			o.wantCode(t, tc.exit, args...)
			if !strings.HasPrefix(firstLine(o.stdout), tc.first) {
				t.Errorf("first line %q, want prefix %q", firstLine(o.stdout), tc.first)
			}
		})
	}
}

// TestAppraisalEnvironment: --policy and --policy-id cannot come from the
// environment (a policy replaces every rule); a TDPROOF_COLLATERAL left
// for quote verify does not break a plain eventlog replay.
func TestAppraisalEnvironment(t *testing.T) {
	base := testvectors.Path(t, "dcap", "tdx-v4-b0c06f")
	q := filepath.Join(base, "quote.bin")
	permissive := writeFile(t, t.TempDir(), "p.yaml", []byte("accepted_tcb_statuses: [UpToDate]\nallow_expired_collateral_unsafe: true\n"))
	// At the collateral's expiry: the default policy rejects.
	args := []string{"quote", "verify", q, "--collateral", base, "--at", "1852919234"}
	o := invokeEnv(t, map[string]string{"TDPROOF_POLICY": permissive, "TDPROOF_POLICY_ID": "x"}, args...)
	o.wantCode(t, exitRejected, args...)
	invoke(t, nil, append(args, "--policy", permissive)...).wantCode(t, exitOK)

	ccel := testvectors.Path(t, "dstack", "ccel.bin")
	args = []string{"eventlog", "replay", ccel}
	invokeEnv(t, map[string]string{"TDPROOF_COLLATERAL": base, "TDPROOF_DB": filepath.Join(t.TempDir(), "x.db")}, args...).wantCode(t, exitOK, args...)
	args = append(args, "--collateral", base)
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}
