package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/verifier"
)

// startServe runs "tdproof serve --listen 127.0.0.1:0 args…" and returns
// once it listens.
func startServe(t *testing.T, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &serving{stdout: newSyncBuffer(), stderr: newSyncBuffer()}
	done := make(chan int, 1)
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn", "--role", "verifier"}, args...)
	go func() {
		done <- run(ctx, args, func(string) (string, bool) { return "", false }, bytes.NewReader(nil), s.stdout, s.stderr)
	}()
	select {
	case line := <-s.stdout.first:
		addr, _, _ := strings.Cut(strings.TrimPrefix(line, "serve: listening on "), " ")
		s.url = addr
	case code := <-done:
		cancel()
		t.Fatalf("tdproof %s exited %d:\n%s", strings.Join(args, " "), code, s.stderr.String())
	}
	var once sync.Once
	code := -1
	s.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func postJSON(t *testing.T, url string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// TestServeEndToEnd: tdproof serve on a fresh data directory with the fake
// PCS verifies a dcaptest quote (token verifying with the served JWKS),
// stops gracefully, and restarts offline on the collateral it cached with
// the same EAR key.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	p := newPCSFixture(t, dcaptest.TDXQuoteV4)
	raw, err := os.ReadFile(p.quote)
	if err != nil {
		t.Fatal(err)
	}
	data, cdir := filepath.Join(t.TempDir(), "data"), t.TempDir()
	at, err := time.Parse(time.RFC3339, p.at)
	if err != nil {
		at = p.f.Now
	}
	verify := func(s *serving) string {
		t.Helper()
		code, body := postJSON(t, s.url+"/v1/verify", map[string]any{"quote": hex.EncodeToString(raw), "nonce": "00"})
		if code != http.StatusOK {
			t.Fatalf("/v1/verify: %d %s", code, body)
		}
		var out verifiersvc.NativeResponse
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		if !out.Result.Authentic {
			t.Fatalf("not authentic: %s", out.Result.Reason)
		}
		pub, err := ear.ParseJWKS([]byte(httpGet(t, s.url+"/.well-known/jwks.json")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ear.Verify(out.Token, pub, ear.VerifyOptions{Now: func() time.Time { return at }, ExpectedNonce: verifier.NonceClaim([]byte{0})}); err != nil {
			t.Fatalf("token: %v", err)
		}
		return httpGet(t, s.url+"/.well-known/jwks.json")
	}
	s := startServe(t, "--data-dir", data, "--collateral-dir", cdir, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at, "--pcs-retries", "0")
	jwks := verify(s)
	if !strings.Contains(httpGet(t, s.url+"/healthz"), `"ok"`) || !strings.Contains(httpGet(t, s.url+"/readyz"), `"ready"`) {
		t.Error("healthz/readyz")
	}
	if code, body := postJSON(t, s.url+"/v1/verify", map[string]any{"quote": hex.EncodeToString(raw), "policy_id": "nope"}); code != http.StatusNotFound {
		t.Errorf("unknown policy: %d %s", code, body)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, s.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(data, "tdproof.db")); err != nil {
		t.Errorf("database: %v", err)
	}
	s = startServe(t, "--data-dir", data, "--collateral-dir", cdir, "--offline", "--trusted-root", p.root, "--at", p.at)
	if got := verify(s); got != jwks {
		t.Errorf("the EAR keys changed across a restart:\n%s\n%s", jwks, got)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("offline serve exited %d:\n%s", code, s.stderr.String())
	}
	for _, args := range [][]string{
		{"serve", "--offline", "--data-dir", t.TempDir()},
		{"serve", "--listen", "not-an-address", "--data-dir", t.TempDir()},
		{"serve", "--max-body", "0"},
	} {
		invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	}
}
