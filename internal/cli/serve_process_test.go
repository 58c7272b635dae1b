package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// serveArgsEnv carries the JSON-encoded arguments of a tdproof run in a
// re-executed test binary (TestHelperServeProcess). It is deliberately not
// a TDPROOF_* name: TestMain clears those.
const serveArgsEnv = "GO_TEST_TDPROOF_SERVE_ARGS"

// TestHelperServeProcess is not a test: in a test binary re-executed by
// startServeProcess it runs tdproof with the arguments in serveArgsEnv
// and exits with its exit code. SIGTERM or SIGINT stop it gracefully.
func TestHelperServeProcess(*testing.T) {
	enc, ok := os.LookupEnv(serveArgsEnv)
	if !ok {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(enc), &args); err != nil {
		os.Stderr.WriteString("helper: bad " + serveArgsEnv + ": " + err.Error() + "\n")
		os.Exit(exitInternal)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, args, bytes.NewReader(nil), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// serveProcess is one tdproof serve running as an OS process.
type serveProcess struct {
	url    string
	stderr *syncBuffer
	cmd    *exec.Cmd
	done   chan error // Wait's result
}

// startServeProcess runs "tdproof serve --listen 127.0.0.1:0 args…" in a
// re-executed test binary and returns once it listens (its first stdout
// line names the address). The process is killed when the test ends.
func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn", "--role", "verifier"}, args...)
	enc, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServeProcess$", "-test.count=1", "-test.timeout=10m")
	env := []string{serveArgsEnv + "=" + string(enc)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvPrefix) && !strings.HasPrefix(kv, serveArgsEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stdout := newSyncBuffer()
	p := &serveProcess{stderr: newSyncBuffer(), cmd: cmd, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = stdout, p.stderr
	cmd.WaitDelay = 5 * time.Second // bounds Wait if the pipes stay open
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", os.Args[0], err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill(t) })
	select {
	case line := <-stdout.first:
		addr, _, _ := strings.Cut(strings.TrimPrefix(line, "serve: listening on "), " ")
		if !strings.HasPrefix(addr, "http://127.0.0.1:") && !strings.HasPrefix(addr, "https://127.0.0.1:") {
			t.Fatalf("tdproof %s: unexpected first line %q", strings.Join(args, " "), line)
		}
		p.url = addr
	case err := <-p.done:
		p.done <- err
		t.Fatalf("tdproof %s exited before listening (%v):\n%s", strings.Join(args, " "), err, p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("tdproof %s did not listen within 60s:\n%s", strings.Join(args, " "), p.stderr.String())
	}
	return p
}

// kill kills the process and waits for it (bounded); it may be called
// more than once.
func (p *serveProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(15 * time.Second):
		t.Errorf("process %d did not exit within 15s of SIGKILL", p.cmd.Process.Pid)
	}
}

// processPostgresSchemaDSN returns a fresh PostgreSQL schema (storetest;
// it reads TDPROOF_TEST_POSTGRES_DSN before TestMain clears TDPROOF_*).
func processPostgresSchemaDSN(t *testing.T) string { return storetest.PostgresDSN(t) }

// do sends one request with a bounded timeout and returns status and body.
func (p *serveProcess) do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, p.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver stderr:\n%s", method, path, err, p.stderr.String())
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// TestServeProcessesSharePostgres: two tdproof serve OS processes on one
// PostgreSQL database see each other's policy changes (a policy created
// and activated through A's admin API flips B's decision on an OutOfDate
// quote from deny to allow) and publish the same EAR key, whose tokens
// from either process verify against either's JWKS.
func TestServeProcessesSharePostgres(t *testing.T) {
	t.Parallel()
	dsn := processPostgresSchemaDSN(t)
	p := newPCSFixture(t, dcaptest.TDXQuoteV4)
	// The collateral does not depend on the QE's ISVSVN: a QE at level 2
	// makes the same platform OutOfDate.
	p.f.QuoteSpec.QEReport.ISVSVN = 2
	q, err := p.f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, p.at)
	if err != nil {
		t.Fatal(err)
	}
	// An offline bundle from the fake PCS: the processes never fetch.
	bundle := filepath.Join(t.TempDir(), "bundle")
	fetch := []string{"collateral", "fetch", p.quote, "-o", bundle, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at, "--pcs-retries", "0"}
	invoke(t, nil, fetch...).wantCode(t, exitOK, fetch...)

	const token = "process-test-admin-token"
	args := []string{"--db", dsn, "--admin-token", token, "--collateral-dir", bundle, "--offline", "--trusted-root", p.root, "--at", p.at}
	a := startServeProcess(t, args...)
	b := startServeProcess(t, args...)
	if a.url == b.url {
		t.Fatalf("both processes listen on %s", a.url)
	}

	// No nonce: the dcaptest quote's report_data is fixed, and a nonce
	// the policy cannot match would deny for the wrong reason.
	verify := func(s *serveProcess) verifiersvc.NativeResponse {
		t.Helper()
		code, body := s.do(t, http.MethodPost, "/v1/verify", "", map[string]any{"quote": hex.EncodeToString(q.Raw)})
		if code != http.StatusOK {
			t.Fatalf("%s/v1/verify: %d %s", s.url, code, body)
		}
		var out verifiersvc.NativeResponse
		if err := json.Unmarshal(body, &out); err != nil || out.Result == nil {
			t.Fatalf("%s/v1/verify: %v: %s", s.url, err, body)
		}
		if !out.Result.Authentic {
			t.Fatalf("%s: not authentic: %s", s.url, out.Result.Reason)
		}
		return out
	}

	// Before: the built-in default policy denies OutOfDate on both.
	for _, s := range []*serveProcess{a, b} {
		out := verify(s)
		if out.Result.Allow {
			t.Fatalf("%s allowed an OutOfDate quote under the default policy", s.url)
		}
		if failed := fmt.Sprint(out.Result.Appraisal.Failed); !strings.Contains(failed, "OutOfDate") {
			t.Fatalf("%s denied, but not for the TCB status: %s", s.url, failed)
		}
	}
	// A creates a policy: not active yet, B still denies.
	code, body := a.do(t, http.MethodPost, "/admin/v1/policies", token, map[string]any{"id": "default", "kind": "yaml",
		"body": "accepted_tcb_statuses: [UpToDate, OutOfDate]\n"})
	if code != http.StatusCreated {
		t.Fatalf("A create policy: %d %s", code, body)
	}
	if out := verify(b); out.Result.Allow {
		t.Fatal("B allowed before A activated the policy")
	}
	// B's admin API lists A's version.
	if code, body := b.do(t, http.MethodGet, "/admin/v1/policies", token, nil); code != http.StatusOK || !strings.Contains(string(body), "OutOfDate") {
		t.Errorf("B list policies: %d %s", code, body)
	}
	if code, body := a.do(t, http.MethodPost, "/admin/v1/policies/default/versions/1/activate", token, nil); code != http.StatusOK {
		t.Fatalf("A activate: %d %s", code, body)
	}
	// The processes serve policies from memory and converge within 1 s
	// (docs/service.md).
	converged := func(what string, s *serveProcess, ok func(verifiersvc.NativeResponse) bool) verifiersvc.NativeResponse {
		t.Helper()
		start := time.Now()
		for {
			out := verify(s)
			if ok(out) {
				t.Logf("%s: after %v", what, time.Since(start).Round(time.Millisecond))
				return out
			}
			if time.Since(start) > time.Second {
				return out
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	outB := converged("B applies A's activation", b, func(o verifiersvc.NativeResponse) bool {
		return o.Result.Allow && o.Result.Appraisal.PolicyVersion == "1"
	})
	if !outB.Result.Allow || outB.Result.Appraisal.PolicyVersion != "1" {
		t.Fatalf("B 1 s after A's activation: allow %v, policy version %q, failed %v", outB.Result.Allow, outB.Result.Appraisal.PolicyVersion, outB.Result.Appraisal.Failed)
	}
	// And back: B activates a stricter version 2, A denies again.
	code, body = b.do(t, http.MethodPost, "/admin/v1/policies", token, map[string]any{"id": "default", "kind": "yaml", "activate": true,
		"body": "accepted_tcb_statuses: [UpToDate]\n"})
	if code != http.StatusCreated {
		t.Fatalf("B create policy: %d %s", code, body)
	}
	outA := converged("A applies B's version 2", a, func(o verifiersvc.NativeResponse) bool {
		return !o.Result.Allow && o.Result.Appraisal.PolicyVersion == "2"
	})
	if outA.Result.Allow || outA.Result.Appraisal.PolicyVersion != "2" {
		t.Fatalf("A 1 s after B's version 2: allow %v, policy version %q", outA.Result.Allow, outA.Result.Appraisal.PolicyVersion)
	}

	// One EAR key in the store: the same JWKS from both processes, and
	// each one's token verifies with the other's key set.
	code, jwksA := a.do(t, http.MethodGet, "/.well-known/jwks.json", "", nil)
	codeB, jwksB := b.do(t, http.MethodGet, "/.well-known/jwks.json", "", nil)
	if code != http.StatusOK || codeB != http.StatusOK || !bytes.Equal(jwksA, jwksB) {
		t.Fatalf("JWKS differ: A %d %s\nB %d %s", code, jwksA, codeB, jwksB)
	}
	setA, err := ear.ParseJWKS(jwksA)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(setA.Keys()); n != 1 {
		t.Errorf("JWKS has %d keys, want 1", n)
	}
	setB, err := ear.ParseJWKS(jwksB)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return at }
	if _, err := ear.Verify(outB.Token, setA, ear.VerifyOptions{Now: now}); err != nil {
		t.Errorf("B's token with A's JWKS: %v", err)
	}
	if _, err := ear.Verify(outA.Token, setB, ear.VerifyOptions{Now: now}); err != nil {
		t.Errorf("A's token with B's JWKS: %v", err)
	}

	for _, s := range []*serveProcess{a, b} {
		s.kill(t)
	}
}
