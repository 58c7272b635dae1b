package cli

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/nitrosim"
)

// realNSM writes the nsm_quote of a shared dstack Nitro envelope (V0:
// 00 02, two-byte compact length) to a temporary file.
func realNSM(t *testing.T, file string) string {
	t.Helper()
	d := testvectors.ReadFile(t, "multitee", "dstack", file)
	n := int(uint16(d[2])|uint16(d[3])<<8) >> 2
	return writeFile(t, t.TempDir(), "doc.cose", d[4:4+n])
}

func TestNitroVerifyReal(t *testing.T) {
	doc := realNSM(t, "dstack-attest__tests__nitro_attestation.bin")
	args := []string{"nitro", "verify", doc, "--at", "2025-12-25T16:30:00Z", "--format", "json",
		"--user-data", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" + strings.Repeat("00", 32)}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out nitroOutput
	decodeJSON(t, o, &out)
	if !out.Verified || out.TEEVariant != "dstack-nitro-enclave" || out.ModuleID != "i-0827e799ec9232d44-enc019b5640fdf630d6" || len(out.Chain) != 5 {
		t.Fatalf("%+v", out)
	}
	// Outside the window: expired (exit 4).
	args = []string{"nitro", "verify", doc, "--at", "2025-12-25T17:05:00Z"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	// Wrong expected user data: not authentic.
	args = []string{"nitro", "verify", doc, "--at", "2025-12-25T16:30:00Z", "--user-data", "00"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
}

func TestNitroVerifyDebugRejected(t *testing.T) {
	doc := realNSM(t, "dstack-attest__tests__nitro_attestation_dbg.bin")
	args := []string{"nitro", "verify", doc, "--at", "2025-12-25T08:30:00Z"}
	invoke(t, nil, args...).wantCode(t, exitRejected, args...)
	args = append(args, "--allow-debug-unsafe")
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
}

func TestNitroVerifySimulated(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ca, err := nitrosim.New(at)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ca.Sign(nitrosim.NitroTPM(at, []byte("ud"), nil))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := writeFile(t, dir, "doc.hex", []byte(hex.EncodeToString(doc)+"\n"))
	root := writeFile(t, dir, "root.der", ca.Root.Raw)
	args := []string{"nitro", "verify", file, "--at", "2026-12-06T12:10:00Z", "--trusted-root", root, "--nitrotpm"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.Contains(o.stdout, "WARNING") || !strings.Contains(o.stdout, "dstack-aws-nitro-tpm") {
		t.Fatalf("stdout: %s", o.stdout)
	}
	// The pinned AWS root refuses it; trailing garbage is malformed.
	args = []string{"nitro", "verify", file, "--at", "2026-12-06T12:10:00Z"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	bad := writeFile(t, dir, "bad.bin", append(doc, 0))
	args = []string{"nitro", "verify", bad, "--at", "2026-12-06T12:10:00Z", "--trusted-root", root}
	invoke(t, nil, args...).wantCode(t, exitMalformed, args...)
}

// TestDstackVerifyNitroEnvelope: dstack verify takes its verdict on
// Nitro evidence from the service's pipeline: the real enclave capture
// is a WARNING (allowed, nothing pins PCR0-2) under the default policy,
// OK with PCR0-2 pinned by --refvalues, REJECTED when a pinned PCR
// differs or --report-data is not the document's user_data; a stale
// document is not authentic, a debug enclave rejected.
func TestDstackVerifyNitroEnvelope(t *testing.T) {
	file := testvectors.Path(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation.bin")
	args := []string{"dstack", "verify", file, "--at", "2025-12-25T16:30:00Z", "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out dstackOutput
	decodeJSON(t, o, &out)
	if !out.Verified || out.Verdict != verdictWarning || out.Result == nil || out.Result.TEEVariant != "dstack-nitro-enclave" || out.Result.Dstack == nil ||
		hex.EncodeToString(out.Result.Dstack.AppInfo.OSImageHash) != "1894b0b29e94a9db16e88a2914f0923e52bb16c08bf3bb484df786a147e2eb79" {
		t.Fatalf("%+v", out)
	}
	pcrs := map[string]string{}
	for _, i := range []string{"0", "1", "2"} {
		pcrs["nitro.pcr"+i], _ = out.Result.Claims.String("nitro.pcr" + i)
	}
	refs := func(m map[string]string) string {
		var vals []string
		for k, v := range m {
			vals = append(vals, `{"name":"`+k+`","values":["`+v+`"]}`)
		}
		return writeFile(t, t.TempDir(), "refs.json", []byte(`{"media_type":"`+RefValuesMediaType+`","values":[`+strings.Join(vals, ",")+`]}`))
	}
	args = []string{"dstack", "verify", file, "--at", "2025-12-25T16:30:00Z", "--refvalues", refs(pcrs)}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.HasPrefix(o.stdout, "OK: affirming") || !strings.Contains(o.stdout, "dstack device id") {
		t.Errorf("pinned: %s", o.stdout)
	}
	pcrs["nitro.pcr1"] = pcrs["nitro.pcr0"]
	args = []string{"dstack", "verify", file, "--at", "2025-12-25T16:30:00Z", "--refvalues", refs(pcrs)}
	invoke(t, nil, args...).wantCode(t, exitRejected, args...)
	args = []string{"dstack", "verify", file, "--at", "2025-12-25T16:30:00Z", "--report-data", "01"}
	invoke(t, nil, args...).wantCode(t, exitRejected, args...)
	args = []string{"dstack", "verify", file, "--at", "2025-12-25T18:00:00Z"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	dbg := testvectors.Path(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation_dbg.bin")
	args = []string{"dstack", "verify", dbg, "--at", "2025-12-25T08:30:00Z"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitRejected, args...) // a debug enclave is rejected (exit 5), as a DEBUG TD
	if !strings.Contains(o.stdout, "debug") {
		t.Errorf("debug: %s", o.stdout)
	}
}
