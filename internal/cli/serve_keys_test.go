package cli

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

const keysAdminToken = "keys-admin-token"

// adminCall sends an admin request with the test token and returns the
// status, Content-Type and body.
func adminCall(t *testing.T, method, url string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+keysAdminToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func wantKeyProblem(t *testing.T, status int, ctype string, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var p struct{ Code string }
	_ = json.Unmarshal(body, &p)
	if status != wantStatus || ctype != verifiersvc.ProblemMediaType || p.Code != wantCode {
		t.Fatalf("%d %s %s, want %d problem %s", status, ctype, body, wantStatus, wantCode)
	}
}

// tokenKID returns the "kid" of a compact JWS.
func tokenKID(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Kid string }
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

// keysServe starts serve with the admin API on a fixture and returns it
// with a function that verifies the quote and returns the EAR token.
func keysServe(t *testing.T, args ...string) (*serving, func() string, time.Time) {
	t.Helper()
	p := newPCSFixture(t, dcaptest.TDXQuoteV4)
	raw, err := os.ReadFile(p.quote)
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, p.at)
	if err != nil {
		at = p.f.Now
	}
	args = append([]string{"--data-dir", filepath.Join(t.TempDir(), "data"), "--pccs-url", p.url, "--trusted-root", p.root,
		"--at", p.at, "--pcs-retries", "0", "--admin-token", keysAdminToken}, args...)
	s := startServe(t, args...)
	token := func() string {
		t.Helper()
		code, body := postJSON(t, s.url+"/v1/verify", map[string]any{"quote": hex.EncodeToString(raw)})
		if code != http.StatusOK {
			t.Fatalf("/v1/verify: %d %s", code, body)
		}
		var out verifiersvc.NativeResponse
		if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
			t.Fatalf("/v1/verify: %v %s", err, body)
		}
		return out.Token
	}
	return s, token, at
}

// servedVerify verifies tok against the JWKS s serves now.
func servedVerify(t *testing.T, s *serving, tok string, at time.Time) error {
	t.Helper()
	pub, err := ear.ParseJWKS([]byte(httpGet(t, s.url+"/.well-known/jwks.json")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ear.Verify(tok, pub, ear.VerifyOptions{Now: func() time.Time { return at }})
	return err
}

// TestServeKeyRotation: rotation through the admin API makes new tokens
// carry the new kid; old tokens verify with the served JWKS until their
// key is removed, then fail with ear.ErrUnknownKey; the active key cannot
// be removed.
func TestServeKeyRotation(t *testing.T) {
	t.Parallel()
	s, token, at := keysServe(t)
	old := token()
	oldKID := tokenKID(t, old)

	code, _, body := adminCall(t, http.MethodPost, s.url+"/admin/v1/keys/rotate")
	if code != http.StatusCreated {
		t.Fatalf("rotate: %d %s", code, body)
	}
	var nk verifiersvc.KeyInfo
	if err := json.Unmarshal(body, &nk); err != nil || nk.State != "active" || nk.KID == "" || nk.KID == oldKID {
		t.Fatalf("rotate: %v %s", err, body)
	}
	fresh := token()
	if got := tokenKID(t, fresh); got != nk.KID {
		t.Fatalf("new token kid %s, want %s", got, nk.KID)
	}
	for _, tok := range []string{old, fresh} {
		if err := servedVerify(t, s, tok, at); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}

	code, _, body = adminCall(t, http.MethodGet, s.url+"/admin/v1/keys")
	var list struct{ Keys []verifiersvc.KeyInfo }
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.Keys) != 2 {
		t.Fatalf("list: %d %v %s", code, err, body)
	}
	states := map[string]string{}
	for _, k := range list.Keys {
		states[k.KID] = k.State
		if k.CreatedAt.IsZero() || (k.State == "retired") != (k.RetiredAt != nil) {
			t.Errorf("key %+v", k)
		}
	}
	if states[oldKID] != "retired" || states[nk.KID] != "active" {
		t.Fatalf("states %v", states)
	}

	code, ctype, body := adminCall(t, http.MethodDelete, s.url+"/admin/v1/keys/"+nk.KID)
	wantKeyProblem(t, code, ctype, body, http.StatusConflict, "active_key")
	code, ctype, body = adminCall(t, http.MethodDelete, s.url+"/admin/v1/keys/no-such-kid")
	wantKeyProblem(t, code, ctype, body, http.StatusNotFound, "unknown_key")

	if code, _, body := adminCall(t, http.MethodDelete, s.url+"/admin/v1/keys/"+oldKID); code != http.StatusNoContent {
		t.Fatalf("remove %s: %d %s", oldKID, code, body)
	}
	if err := servedVerify(t, s, old, at); !errors.Is(err, ear.ErrUnknownKey) {
		t.Fatalf("old token after removal: %v, want ErrUnknownKey", err)
	}
	if err := servedVerify(t, s, fresh, at); err != nil {
		t.Fatalf("new token after removal: %v", err)
	}
	if tokenKID(t, token()) != nk.KID {
		t.Fatal("signing key changed by the removal")
	}
}

// TestServeKeyFile: with --ear-key-file that key alone signs and is
// published, and the rotation routes answer 409 keys_from_file.
func TestServeKeyFile(t *testing.T) {
	t.Parallel()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ear-key.pem")
	if err := os.WriteFile(file, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	s, token, at := keysServe(t, "--ear-key-file", file)
	tok := token()
	if got := tokenKID(t, tok); got != k.ID() {
		t.Fatalf("token kid %s, want the file's %s", got, k.ID())
	}
	pub, err := ear.ParseJWKS([]byte(httpGet(t, s.url+"/.well-known/jwks.json")))
	if err != nil {
		t.Fatal(err)
	}
	if ks := pub.Keys(); len(ks) != 1 || ks[0].ID() != k.ID() {
		t.Fatalf("JWKS %v, want only %s", ks, k.ID())
	}
	if err := servedVerify(t, s, tok, at); err != nil {
		t.Fatal(err)
	}
	code, ctype, body := adminCall(t, http.MethodPost, s.url+"/admin/v1/keys/rotate")
	wantKeyProblem(t, code, ctype, body, http.StatusConflict, "keys_from_file")
	code, ctype, body = adminCall(t, http.MethodDelete, s.url+"/admin/v1/keys/"+k.ID())
	wantKeyProblem(t, code, ctype, body, http.StatusConflict, "keys_from_file")
	code, _, body = adminCall(t, http.MethodGet, s.url+"/admin/v1/keys")
	var list struct{ Keys []verifiersvc.KeyInfo }
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.Keys) != 1 ||
		list.Keys[0].KID != k.ID() || list.Keys[0].State != "active" {
		t.Fatalf("list: %d %v %s", code, err, body)
	}

	// Unusable key files are usage errors.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		args := []string{"serve", "--data-dir", t.TempDir(), "--ear-key-file", f}
		invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	}
	args := []string{"serve", "--data-dir", t.TempDir(), "--key-reload-interval", "0s"}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}

// TestEARKeysReplicas: two replicas' key sets on one store (a shared
// SQLite file; PostgreSQL too when TDPROOF_TEST_POSTGRES_DSN is set): a
// rotation and a removal through A reach B's JWKS and signing on B's next
// reload, driven here by an injected tick.
func TestEARKeysReplicas(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testEARKeysReplicas(t, "sqlite://"+filepath.Join(t.TempDir(), "tdproof.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testEARKeysReplicas(t, processPostgresSchemaDSN(t))
	})
}

func testEARKeysReplicas(t *testing.T, dsn string) {
	log := slog.New(slog.DiscardHandler)
	replica := func() *earKeys {
		st, err := store.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		k, err := openEARKeys(t.Context(), st, "", log)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := replica(), replica()
	tick, reloaded := make(chan time.Time), make(chan error)
	go func() { _ = b.run(t.Context(), tick, func(err error) { reloaded <- err }) }()
	reloadB := func() {
		t.Helper()
		tick <- time.Now()
		if err := <-reloaded; err != nil {
			t.Fatalf("B reload: %v", err)
		}
	}
	signB, err := ear.NewSigner(b.ks)
	if err != nil {
		t.Fatal(err)
	}
	kidOfB := func() string {
		t.Helper()
		tok, _, err := signB.Sign(ear.Claims{Submods: map[string]ear.Appraisal{ear.SubmodTDX: {Status: ear.StatusAffirming}}})
		if err != nil {
			t.Fatal(err)
		}
		return tokenKID(t, tok)
	}
	jwksOfB := func() map[string]bool {
		t.Helper()
		pub, err := ear.ParseJWKS(b.jwks())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range pub.Keys() {
			out[k.ID()] = true
		}
		return out
	}
	first := a.ks.Active().ID()
	if kidOfB() != first {
		t.Fatal("replicas start with different keys")
	}
	nk, err := a.RotateKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a.ks.Active().ID() != nk.KID {
		t.Fatal("A does not sign with its new key")
	}
	if kidOfB() != first {
		t.Fatal("B changed before its reload")
	}
	reloadB()
	if kidOfB() != nk.KID {
		t.Fatalf("B signs with %s after reload, want %s", kidOfB(), nk.KID)
	}
	if j := jwksOfB(); len(j) != 2 || !j[first] || !j[nk.KID] {
		t.Fatalf("B's JWKS after rotation: %v", j)
	}
	if err := a.RemoveKey(t.Context(), nk.KID); !errors.Is(err, verifiersvc.ErrActiveKey) {
		t.Fatalf("remove the active key: %v", err)
	}
	if err := a.RemoveKey(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	reloadB()
	if j := jwksOfB(); len(j) != 1 || !j[nk.KID] {
		t.Fatalf("B's JWKS after removal: %v", j)
	}
}
