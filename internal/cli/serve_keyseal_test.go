package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/internal/store"
)

// TestServeSealsEARKeys: serve without a KEK stores its EAR key in plain
// text and says so loudly; started again with a KEK (even --role
// verifier) it seals that row, and then refuses to start without the KEK
// rather than create a new key.
func TestServeSealsEARKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	kek := filepath.Join(dir, "kek.hex")
	if err := os.WriteFile(kek, []byte(strings.Repeat("5a", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := func() (plain []string, all []store.Key) {
		t.Helper()
		st, err := store.Open(t.Context(), filepath.Join(data, "tdproof.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if plain, err = st.PlaintextEARKeys(t.Context()); err != nil {
			t.Fatal(err)
		}
		if all, err = st.ListKeys(t.Context()); err != nil {
			t.Fatal(err)
		}
		return plain, all
	}

	s := startServe(t, "--data-dir", data)
	s.stop()
	if !strings.Contains(s.stderr.String(), "UNENCRYPTED") {
		t.Errorf("no warning about plaintext keys:\n%s", s.stderr.String())
	}
	plain, all := keys()
	if len(plain) != 1 || len(all) != 1 {
		t.Fatalf("without a KEK: %d plaintext of %d keys, want 1 of 1", len(plain), len(all))
	}

	s = startServe(t, "--data-dir", data, "--kek-file", kek)
	s.stop()
	if strings.Contains(s.stderr.String(), "UNENCRYPTED") {
		t.Errorf("plaintext warning with a KEK:\n%s", s.stderr.String())
	}
	plain, after := keys()
	if len(plain) != 0 || len(after) != 1 || after[0].KID != all[0].KID {
		t.Fatalf("with a KEK: plaintext %v, keys %v; want the same key, sealed", plain, after)
	}

	args := []string{"serve", "--listen", "127.0.0.1:0", "--role", "verifier", "--data-dir", data}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitInternal, args...)
	if !strings.Contains(o.stderr, "encrypted with a key-encryption key") {
		t.Errorf("stderr %q does not say the keys are sealed", o.stderr)
	}
	if _, n := keys(); len(n) != 1 {
		t.Errorf("%d keys after the refused start, want 1", len(n))
	}
}
