package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/tdsim"
)

// runAgentUntilReady runs "tdproof agent args…" in process (as a separate
// OS process would: nothing shared but the files) until it serves, and
// returns a function stopping it.
func runAgentUntilReady(t *testing.T, args ...string) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	args = append([]string{"agent"}, args...)
	go func() {
		done <- run(ctx, args, func(string) (string, bool) { return "", false }, bytes.NewReader(nil), stdout, stderr)
	}()
	select {
	case line := <-stdout.first:
		if !strings.HasPrefix(line, "agent: serving on ") {
			cancel()
			t.Fatalf("agent: first line %q", line)
		}
	case code := <-done:
		cancel()
		t.Fatalf("agent exited %d:\n%s", code, stderr.String())
	}
	code := -1
	stopped := false
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestTDSimCLIOnlyFlow: the simulated TD shared through a state directory
// by separate command invocations — tdsim init, tdsim export, refvalue
// add, serve (offline on the exported collateral, trusting only the
// exported simulator root), agent --simulate (writing the runtime event
// log) and kbs get-resource --simulate — releases the secret; another
// state directory is a TD the server does not trust.
func TestTDSimCLIOnlyFlow(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "tdp-sim-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	state, exp := filepath.Join(dir, "sim"), filepath.Join(dir, "export")

	invoke(t, nil, "tdsim", "init", "--simulator-state", state).wantCode(t, exitOK)
	o := invoke(t, nil, "tdsim", "export", "--simulator-state", state, "--out", exp, "--format", "json")
	o.wantCode(t, exitOK)
	if !strings.Contains(o.stderr, "SIMULATOR root CA") {
		t.Errorf("no simulator warning on stderr: %q", o.stderr)
	}
	out := decodeOut[tdsimOutput](t, o)
	if out.Root != filepath.Join(exp, "root.pem") || out.CollateralDir != filepath.Join(exp, "collateral") || out.FromMeasure || out.MeasureFile != "" {
		t.Fatalf("export output %+v", out)
	}
	// The same state in a fresh invocation: the same root, and exporting
	// again into the same directory is fine.
	o2 := invoke(t, nil, "tdsim", "export", "--simulator-state", state, "--out", exp, "--format", "json")
	o2.wantCode(t, exitOK)
	if again := decodeOut[tdsimOutput](t, o2); again.RootSHA256 != out.RootSHA256 {
		t.Fatalf("root changed across invocations: %s, %s", out.RootSHA256, again.RootSHA256)
	}
	root, err := os.ReadFile(out.Root)
	if err != nil {
		t.Fatal(err)
	}

	// Reference values as export printed them, and the app's compose hash.
	dsn := filepath.Join(dir, "tdproof.db")
	for name, v := range out.ReferenceValues {
		invoke(t, nil, "refvalue", "add", "--db", dsn, name, v, "--source", "tdsim").wantCode(t, exitOK)
	}
	ch := sha256.Sum256([]byte(e2eAppCompose))
	invoke(t, nil, "refvalue", "add", "--db", dsn, "dstack.compose_hash", hex.EncodeToString(ch[:])).wantCode(t, exitOK)

	kek := filepath.Join(dir, "kek")
	if err := os.WriteFile(kek, []byte(strings.Repeat("5a", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &kbsE2E{adminToken: "tdsim-admin-token"}
	e.srv = startServe(t, "--role", "all", "--db", dsn, "--collateral-dir", out.CollateralDir, "--offline",
		"--trusted-root", out.Root, "--kek-file", kek, "--admin-token", e.adminToken)
	secret := "tdsim flow: the model key"
	e.admin(t, http.MethodPost, "/kbs/v0/resource/default/key/1", []byte(secret), http.StatusOK)

	get := func(t *testing.T, state string, extra ...string) outcome {
		t.Helper()
		args := append([]string{"kbs", "get-resource", "default/key/1", "--kbs-url", e.srv.url, "--simulate", "--simulator-state", state, "--timeout", "30s"}, extra...)
		return invoke(t, nil, args...)
	}

	t.Run("plain TDX evidence without the runtime log", func(t *testing.T) {
		// A compose hash is pinned: evidence that omits the event log has
		// no dstack.compose_hash claim, and a missing claim fails.
		o := get(t, state, "--runtime-log=")
		o.wantCode(t, exitInternal)
		if o.stdout != "" || !strings.Contains(o.stderr, "PolicyDeny") {
			t.Fatalf("no runtime log: stdout %q stderr %q\nserver: %s", o.stdout, o.stderr, e.srv.stderr.String())
		}
	})

	t.Run("agent runtime log", func(t *testing.T) {
		compose, logf := filepath.Join(dir, "app-compose.json"), filepath.Join(dir, "events.log")
		if err := os.WriteFile(compose, []byte(e2eAppCompose), 0o600); err != nil {
			t.Fatal(err)
		}
		stop := runAgentUntilReady(t, "--simulate", "--simulator-state", state, "--socket", filepath.Join(dir, "a.sock"), "--log", logf, "--app-compose", compose)
		if code := stop(); code != exitOK {
			t.Fatalf("agent exited %d", code)
		}
		o := get(t, state, "--runtime-log", logf)
		o.wantCode(t, exitOK)
		if o.stdout != secret {
			t.Fatalf("released %q, want %q", o.stdout, secret)
		}
		// A log of another app: the quote still agrees with the log (RTMR3
		// is its replay), but the compose hash is not a reference value.
		other := filepath.Join(dir, "other.log")
		evil := filepath.Join(dir, "evil-compose.json")
		if err := os.WriteFile(evil, []byte(strings.Replace(e2eAppCompose, "nginx", "evil", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		stop = runAgentUntilReady(t, "--simulate", "--simulator-state", state, "--socket", filepath.Join(dir, "b.sock"), "--log", other, "--app-compose", evil)
		stop()
		o = get(t, state, "--runtime-log", other)
		o.wantCode(t, exitInternal)
		if o.stdout != "" || !strings.Contains(o.stderr, "PolicyDeny") {
			t.Fatalf("another app's log: stdout %q stderr %q", o.stdout, o.stderr)
		}
	})

	t.Run("another state directory", func(t *testing.T) {
		o := get(t, filepath.Join(dir, "other-sim"), "--runtime-log=")
		o.wantCode(t, exitInternal)
		if o.stdout != "" || !strings.Contains(o.stderr, "AttestationError") || !strings.Contains(o.stderr, "created simulator state") {
			t.Fatalf("stdout %q stderr %q", o.stdout, o.stderr)
		}
		// Its export refuses to mix roots in one directory.
		invoke(t, nil, "tdsim", "export", "--simulator-state", filepath.Join(dir, "other-sim"), "--out", exp).wantCode(t, exitUsage)
		if b, err := os.ReadFile(out.Root); err != nil || !bytes.Equal(b, root) {
			t.Fatal("root.pem was replaced")
		}
	})
}

// TestTDSimMeasurement: a state created from tdproof measure output
// boots exactly those registers, export hands the measure file back for
// refvalue add --from-measure, and a different measurement for the same
// state is refused.
func TestTDSimMeasurement(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := writeTestImage(t)
	acpi := t.TempDir()
	for name, b := range map[string][]byte{"tables": acpiTablesBlob(), "rsdp": []byte("RSD PTR blob"), "table-loader": []byte("loader")} {
		if err := os.WriteFile(filepath.Join(acpi, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := invoke(t, nil, "measure", "--image", img, "--memory", "2G", "--cpus", "2", "--acpi-dir", acpi, "--format", "json")
	m.wantCode(t, exitOK)
	mfile := filepath.Join(dir, "m.json")
	if err := os.WriteFile(mfile, []byte(m.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	mo := decodeOut[measureOutput](t, m)
	state := filepath.Join(dir, "sim")
	o := invoke(t, nil, "tdsim", "init", "--simulator-state", state, "--simulator-measurement", mfile, "--debug", "--format", "json")
	o.wantCode(t, exitOK)
	out := decodeOut[tdsimOutput](t, o)
	if !out.FromMeasure || !out.Debug || out.ReferenceValues["tdx.mr_td"] != mo.MRTD {
		t.Fatalf("init output %+v", out)
	}
	for _, r := range mo.RTMRs {
		if got := out.ReferenceValues["tdx.rtmr_"+string(rune('0'+r.Index))]; got != r.Value {
			t.Errorf("RTMR%d %s, measure says %s", r.Index, got, r.Value)
		}
	}
	sim, err := tdsim.Load(state)
	if err != nil || !sim.Debug() || !bytes.Equal(sim.Measurement(), []byte(m.stdout)) {
		t.Fatalf("load: %v", err)
	}
	exp := filepath.Join(dir, "export")
	o = invoke(t, nil, "tdsim", "export", "--simulator-state", state, "--out", exp)
	o.wantCode(t, exitOK)
	if !strings.Contains(o.stdout, "refvalue add --from-measure "+filepath.Join(exp, "measure.json")) {
		t.Errorf("export output lacks the refvalue command:\n%s", o.stdout)
	}
	invoke(t, nil, "refvalue", "add", "--db", filepath.Join(dir, "db"), "--from-measure", filepath.Join(exp, "measure.json")).wantCode(t, exitOK)

	// init never overwrites; a state is not re-created from another
	// measurement.
	invoke(t, nil, "tdsim", "init", "--simulator-state", state).wantCode(t, exitUsage)
	other := strings.Replace(m.stdout, mo.MRTD, strings.Repeat("ab", 48), 1)
	ofile := filepath.Join(dir, "other.json")
	if err := os.WriteFile(ofile, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	invoke(t, nil, "kbs", "get-resource", "default/key/1", "--kbs-url", "http://127.0.0.1:1", "--simulate",
		"--simulator-state", state, "--simulator-measurement", ofile, "--runtime-log=").wantCode(t, exitUsage)
}

func TestTDSimUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	invoke(t, nil, "tdsim", "init", "--simulator-state", corrupt).wantCode(t, exitOK)
	if err := os.WriteFile(filepath.Join(corrupt, tdsim.PKIFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	notMeasure := filepath.Join(dir, "x.json")
	if err := os.WriteFile(notMeasure, []byte(`{"media_type":"something else"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		code int
		args []string
	}{
		{exitUsage, []string{"tdsim"}},
		{exitUsage, []string{"tdsim", "init"}},
		{exitUsage, []string{"tdsim", "export", "--simulator-state", filepath.Join(dir, "missing"), "--out", filepath.Join(dir, "o")}},
		{exitUsage, []string{"tdsim", "export", "--simulator-state", corrupt}},
		{exitMalformed, []string{"tdsim", "export", "--simulator-state", corrupt, "--out", filepath.Join(dir, "o")}},
		{exitMalformed, []string{"tdsim", "init", "--simulator-state", filepath.Join(dir, "m"), "--simulator-measurement", notMeasure}},
		{exitUsage, []string{"kbs", "get-resource", "default/key/1", "--kbs-url", "http://127.0.0.1:1", "--simulator-state", corrupt}},
		{exitUsage, []string{"kbs", "get-resource", "default/key/1", "--kbs-url", "http://127.0.0.1:1", "--simulate", "--simulator-measurement", notMeasure}},
		{exitMalformed, []string{"kbs", "get-resource", "default/key/1", "--kbs-url", "http://127.0.0.1:1", "--simulate", "--simulator-state", corrupt, "--runtime-log="}},
		{exitUsage, []string{"agent", "--socket", filepath.Join(dir, "s"), "--log", filepath.Join(dir, "l"), "--app-compose", notMeasure, "--simulator-state", corrupt}},
	} {
		o := invoke(t, nil, c.args...)
		o.wantCode(t, c.code, c.args...)
	}
}
