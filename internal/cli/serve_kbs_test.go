package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/agent"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// TestServeKBS: serve --role all with a KEK file releases a stored secret
// to a simulated TD trusted through --trusted-root; --role verifier serves
// no /kbs routes; a missing or malformed KEK is a usage error.
func TestServeKBS(t *testing.T) {
	t.Parallel()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pccsURL, root := simPCCS(t, sim)
	dir := t.TempDir()
	kek := bytes.Repeat([]byte{7}, 32)
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(hex.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// Store the secret directly, sealed under the same KEK.
	st, err := store.Open(t.Context(), filepath.Join(data, "tdproof.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range simRefValues(sim) {
		if _, err := st.RefValues().Add(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	id, err := protocol.ParseResourceID("default/key/1")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("serve kbs secret")
	// A broker on the same store seals the resource; serve opens it.
	sealer, err := newSealingBroker(t, st, sim, kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealer.PutResource(t.Context(), id, secret); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	args := []string{"--data-dir", data, "--pccs-url", pccsURL, "--trusted-root", root, "--pcs-retries", "0"}
	s := startServe(t, append(args, "--role", "all", "--kek-file", kekFile)...)
	c := &agent.Client{Quoter: sim, CCEL: sim, HTTP: &http.Client{Timeout: 30 * time.Second}}
	got, err := c.GetResource(t.Context(), s.url, id.String())
	if err != nil {
		t.Fatalf("get resource: %v\n%s", err, s.stderr.String())
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("released %q, want %q", got, secret)
	}
	if !strings.Contains(s.stderr.String(), "NOT Intel's SGX Root CA") {
		t.Errorf("serve trusted the simulator root without a warning:\n%s", s.stderr.String())
	}
	if code, body := postJSON(t, s.url+"/v1/verify", map[string]any{}); code == http.StatusNotFound {
		t.Errorf("--role all: /v1/verify is 404: %s", body)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, s.stderr.String())
	}

	// The EAR keys are sealed with the KEK now: --role verifier needs it
	// too (not for a broker).
	s = startServe(t, append(args, "--role", "verifier", "--kek-file", kekFile)...)
	if code, body := postJSON(t, s.url+protocol.PathAuth, map[string]any{"version": "0.4.0", "tee": "tdx"}); code != http.StatusNotFound {
		t.Errorf("--role verifier: /kbs/v0/auth answered %d %s", code, body)
	}
	s.stop()

	appRoot := filepath.Join(dir, "app-key-root")
	if err := os.WriteFile(appRoot, []byte(hex.EncodeToString(bytes.Repeat([]byte{9}, 48))), 0o600); err != nil {
		t.Fatal(err)
	}
	s = startServe(t, append(args, "--role", "kbs", "--kek-file", kekFile, "--admin-token", "kbs-admin-tok", "--app-key-root-file", appRoot)...)
	if code, _ := postJSON(t, s.url+"/v1/verify", map[string]any{}); code != http.StatusNotFound {
		t.Errorf("--role kbs: /v1/verify answered %d", code)
	}
	for _, tc := range []struct {
		bearer string
		want   int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"kbs-admin-tok", http.StatusOK}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url+protocol.PathResourcePolicy, nil)
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("--admin-token: GET resource-policy with bearer %q: %d, want %d", tc.bearer, resp.StatusCode, tc.want)
		}
	}
	if got := httpGet(t, s.url+"/healthz"); !bytes.Contains([]byte(got), []byte("ok")) {
		t.Errorf("--role kbs: /healthz %q", got)
	}
	s.stop()

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("0011"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, a := range [][]string{
		{"serve", "--data-dir", t.TempDir(), "--role", "all"},
		{"serve", "--data-dir", t.TempDir(), "--role", "kbs"},
		{"serve", "--data-dir", t.TempDir(), "--kek-file", bad},
		{"serve", "--data-dir", t.TempDir(), "--kek-file", kekFile, "--app-key-root-file", bad},
		{"serve", "--data-dir", t.TempDir(), "--kek-file", kekFile, "--app-key-root-file", filepath.Join(dir, "missing")},
		{"serve", "--data-dir", t.TempDir(), "--role", "nope"},
	} {
		invoke(t, nil, a...).wantCode(t, exitUsage, a...)
	}
}

// simPCCS serves sim's collateral from a fake PCS until the test ends and
// writes sim's root CA to a PEM file: the --pccs-url and --trusted-root
// of a serve that accepts sim's quotes.
func simPCCS(t *testing.T, sim *tdsim.Sim) (pccsURL, rootFile string) {
	t.Helper()
	rc, err := sim.RawCollateral(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	spec := sim.Platform().Spec
	srv := pcstest.New()
	srv.AddCollateral(pcs.Key{TEE: pcs.TEETDX, FMSPC: spec.FMSPC, CA: spec.CA}, rc)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	rootFile = filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(rootFile, sim.TrustRootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return ts.URL, rootFile
}

func TestParseKEK(t *testing.T) {
	t.Parallel()
	k := bytes.Repeat([]byte{0xab}, 32)
	for _, in := range []string{hex.EncodeToString(k), "  " + hex.EncodeToString(k) + "\n", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"} {
		got, err := parseKEK([]byte(in))
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("parseKEK(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "00", hex.EncodeToString(k[:31]), "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqw==", string(k)} {
		if _, err := parseKEK([]byte(in)); err == nil {
			t.Errorf("parseKEK(%q) accepted", in)
		}
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	k := bytes.Repeat([]byte{0xab}, 40)
	for _, in := range []string{hex.EncodeToString(k), " " + hex.EncodeToString(k) + "\n", base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
		got, err := parseSecret([]byte(in), 32, 0)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("parseSecret(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "00", hex.EncodeToString(k[:31]), base64.StdEncoding.EncodeToString(k[:31]), string(k)} {
		if _, err := parseSecret([]byte(in), 32, 0); err == nil {
			t.Errorf("parseSecret(%q) accepted", in)
		}
	}
}

// newSealingBroker returns a broker on st under kek, to seal resources.
func newSealingBroker(t *testing.T, st *store.Store, sim *tdsim.Sim, kek []byte) (*kbs.Broker, error) {
	t.Helper()
	key, err := ear.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	keys, err := ear.NewKeySet(key)
	if err != nil {
		return nil, err
	}
	signer, err := ear.NewSigner(keys)
	if err != nil {
		return nil, err
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
		return sim.Collateral(time.Now())
	})
	v, err := verifier.New(src, st.RefValues(), signer, verifier.WithTrustedRoot(sim.TrustRoot()))
	if err != nil {
		return nil, err
	}
	return kbs.New(kbs.Config{Store: st, Verifier: v, TokenKeys: keys, KEK: kek})
}

// TestServeDefaultRole: without a key-encryption key serve defaults to
// the verification service (the README's no-configuration start); with
// one it serves the key broker too.
func TestServeDefaultRole(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		kek  string
		want string
	}{
		{"nothing configured", nil, "", roleVerifier},
		{"kek file", nil, "kek.hex", roleAll},
		{"kek env", map[string]string{envKBSKEK: strings.Repeat("ab", 32)}, "", roleAll},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &app{lookupEnv: func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }}
			f := &serveKBSFlags{kekFile: c.kek}
			a.resolveRole(f)
			if f.role != c.want {
				t.Errorf("role %q, want %q", f.role, c.want)
			}
		})
	}
}
