package tdsim_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/tdsim"
)

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	cfg := tdsim.Config{Debug: true, RuntimeEventVersion: 2, Measurement: []byte(`{"media_type":"x"}`)}
	cfg.MROwner[0] = 7
	a := newSim(t, cfg)
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, tdsim.PKIFile): 0o600, filepath.Join(dir, tdsim.StateFile): 0o600, filepath.Join(dir, tdsim.AttestationKeyFile): 0o600} {
		st, err := os.Stat(name)
		if err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, st.Mode(), err, want)
		}
	}
	b, err := tdsim.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.TrustRoot().Raw, b.TrustRoot().Raw) || !bytes.Equal(a.Platform().PCK.DER, b.Platform().PCK.DER) {
		t.Fatal("loaded state has another root or PCK certificate")
	}
	if a.MRTD() != b.MRTD() || a.RTMRs() != b.RTMRs() || !b.Debug() || !bytes.Equal(b.Measurement(), cfg.Measurement) {
		t.Fatal("loaded TD differs")
	}
	// Quotes of the loaded TD verify under the first TD's root and
	// collateral, with the same attestation key.
	qa, qb := quoteOf(t, a, [64]byte{1}), quoteOf(t, b, [64]byte{1})
	if qa.Signature.AttestationKey != qb.Signature.AttestationKey {
		t.Error("attestation keys differ")
	}
	col, err := a.Collateral(at)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dcap.Verify(qb, col, dcap.Options{TrustedRoot: a.TrustRoot(), Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != collateral.UpToDate || qb.TD.MROwner != cfg.MROwner || !qb.TD.Debug() {
		t.Fatalf("status %v, owner %x, debug %v", res.Status, qb.TD.MROwner, qb.TD.Debug())
	}
	// Never overwritten.
	if err := newSim(t, tdsim.Config{}).Save(dir); !errors.Is(err, tdsim.ErrStateExists) {
		t.Fatalf("second save: %v", err)
	}
	c, created, err := tdsim.Open(dir, tdsim.Config{})
	if err != nil || created || !bytes.Equal(c.TrustRoot().Raw, a.TrustRoot().Raw) {
		t.Fatalf("open existing: created %v, %v", created, err)
	}
}

func TestOpenCreatesOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "state")
	var wg sync.WaitGroup
	roots := make([][]byte, 4)
	errs := make([]error, 4)
	for i := range roots {
		wg.Go(func() {
			s, _, err := tdsim.Open(dir, tdsim.Config{})
			errs[i] = err
			if err == nil {
				roots[i] = s.TrustRoot().Raw
			}
		})
	}
	wg.Wait()
	for i := range roots {
		if errs[i] != nil || !bytes.Equal(roots[i], roots[0]) {
			t.Fatalf("open %d: %v (roots differ: %v)", i, errs[i], !bytes.Equal(roots[i], roots[0]))
		}
	}
	// An empty existing directory is a place to create a state.
	empty := t.TempDir()
	if _, created, err := tdsim.Open(empty, tdsim.Config{}); err != nil || !created {
		t.Fatalf("open empty dir: created %v, %v", created, err)
	}
}

func TestStateCorrupt(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "state")
	if err := newSim(t, tdsim.Config{}).Save(src); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := newSim(t, tdsim.Config{}).Save(other); err != nil {
		t.Fatal(err)
	}
	copyState := func(t *testing.T) string {
		dst := t.TempDir()
		for _, n := range []string{tdsim.StateFile, tdsim.PKIFile, tdsim.PlatformFile, tdsim.AttestationKeyFile} {
			b, err := os.ReadFile(filepath.Join(src, n))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dst
	}
	replace := func(name string, f func([]byte) []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), f(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	fromOther := func(name string) func(t *testing.T, dir string) {
		return replace(name, func([]byte) []byte {
			b, err := os.ReadFile(filepath.Join(other, name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	}
	for name, mutate := range map[string]func(t *testing.T, dir string){
		"state not JSON":      replace(tdsim.StateFile, func(b []byte) []byte { return b[:len(b)/2] }),
		"foreign format":      replace(tdsim.StateFile, func(b []byte) []byte { return bytes.Replace(b, []byte(tdsim.StateFormat), []byte("other"), 1) }),
		"future version":      replace(tdsim.StateFile, func(b []byte) []byte { return bytes.Replace(b, []byte(`"version": 1`), []byte(`"version": 2`), 1) }),
		"PKI truncated":       replace(tdsim.PKIFile, func(b []byte) []byte { return b[:len(b)-40] }),
		"PKI of another":      fromOther(tdsim.PKIFile),
		"platform of another": fromOther(tdsim.PlatformFile),
		"key not PEM":         replace(tdsim.AttestationKeyFile, func([]byte) []byte { return []byte("nope") }),
		"missing platform":    func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, tdsim.PlatformFile)) },
		"missing state":       func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, tdsim.StateFile)) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyState(t)
			mutate(t, dir)
			_, err := tdsim.Load(dir)
			if !errors.Is(err, tdsim.ErrState) {
				t.Fatalf("load: %v, want ErrState", err)
			}
			// Never overwritten by Open either.
			if _, _, err := tdsim.Open(dir, tdsim.Config{}); !errors.Is(err, tdsim.ErrState) {
				t.Fatalf("open: %v, want ErrState", err)
			}
		})
	}
	if _, err := tdsim.Load(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, tdsim.ErrNoState) {
		t.Fatalf("missing dir: %v", err)
	}
	// A non-empty directory that is not a state is not written into.
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newSim(t, tdsim.Config{}).Save(foreign); !errors.Is(err, tdsim.ErrState) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("save into a foreign dir: %v", err)
	}
}

func TestReplayRuntime(t *testing.T) {
	t.Parallel()
	a := newSim(t, tdsim.Config{RuntimeEventVersion: 2})
	for _, n := range []string{"system-preparing", "app-id", "system-ready"} {
		if _, err := a.Emit(n, []byte(n+" payload")); err != nil {
			t.Fatal(err)
		}
	}
	b := newSim(t, tdsim.Config{})
	before := b.RTMRs()
	if _, err := b.Emit("stale", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.ReplayRuntime(a.RuntimeEvents()); err != nil {
		t.Fatal(err)
	}
	got := b.RTMRs()
	if got[3] != a.RTMRs()[3] || got[0] != before[0] || got[1] != before[1] || got[2] != before[2] {
		t.Fatal("RTMR3 is not the replay, or RTMR0–2 changed")
	}
	if len(b.RuntimeEvents()) != 3 {
		t.Fatalf("%d runtime events recorded", len(b.RuntimeEvents()))
	}
	if r3, err := eventlog.ReplayRTMR(b.EventLog(), 3); err != nil || r3 != got[3] {
		t.Fatalf("event log replay %x, %v", r3, err)
	}
	// Bad events change nothing.
	bad := a.RuntimeEvents()
	bad[1].Payload = []byte("tampered")
	if err := b.ReplayRuntime(bad); err == nil {
		t.Fatal("tampered event replayed")
	}
	if err := b.ReplayRuntime(b.BootEvents()); err == nil {
		t.Fatal("boot events replayed into RTMR3")
	}
	if b.RTMRs() != got {
		t.Fatal("a failed replay changed the registers")
	}
	if err := b.ReplayRuntime(nil); err != nil || b.RTMRs()[3] != ([48]byte{}) {
		t.Fatalf("empty replay: %v", err)
	}
}
