package cli

import (
	"strings"
	"testing"

	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tdsim"
)

// withSimulatedTD makes --simulate quote with sim for the test.
func withSimulatedTD(t *testing.T, sim *tdsim.Sim) {
	old := newSimulatedTD
	newSimulatedTD = func() (*tdsim.Sim, error) { return sim, nil }
	t.Cleanup(func() { newSimulatedTD = old })
}

func TestKBSGetResource(t *testing.T) {
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := startSimKBS(t.Context(), t.TempDir(), sim, simRefValues(sim))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.close)
	secret := "image key 0123456789abcdef"
	if err := k.broker.PutResource(t.Context(), protocol.ResourceID{Repository: "default", Type: "key", Tag: "1"}, []byte(secret)); err != nil {
		t.Fatal(err)
	}

	t.Run("released", func(t *testing.T) {
		withSimulatedTD(t, sim)
		args := []string{"kbs", "get-resource", "default/key/1", "--kbs-url", k.url, "--simulate"}
		o := invoke(t, nil, args...)
		o.wantCode(t, exitOK, args...)
		if o.stdout != secret {
			t.Errorf("stdout = %q, want %q", o.stdout, secret)
		}
		if !strings.Contains(o.stderr, "SIMULATED TD") {
			t.Errorf("no simulator warning on stderr: %q", o.stderr)
		}
	})
	t.Run("unknown resource", func(t *testing.T) {
		withSimulatedTD(t, sim)
		args := []string{"kbs", "get-resource", "default/key/2", "--kbs-url", k.url, "--simulate"}
		o := invoke(t, nil, args...)
		o.wantCode(t, exitInternal, args...)
		if o.stdout != "" || !strings.Contains(o.stderr, "KBS refused") {
			t.Errorf("stdout %q stderr %q", o.stdout, o.stderr)
		}
	})
	t.Run("untrusted simulator root", func(t *testing.T) {
		other, err := tdsim.New(tdsim.Config{})
		if err != nil {
			t.Fatal(err)
		}
		withSimulatedTD(t, other)
		args := []string{"kbs", "get-resource", "default/key/1", "--kbs-url", k.url, "--simulate"}
		o := invoke(t, nil, args...)
		o.wantCode(t, exitInternal, args...)
		if o.stdout != "" || !strings.Contains(o.stderr, "AttestationError") {
			t.Errorf("stdout %q stderr %q", o.stdout, o.stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"kbs", "get-resource", "default/key/1"},
			{"kbs", "get-resource", "no-slashes", "--kbs-url", k.url},
		} {
			invoke(t, nil, args...).wantCode(t, exitUsage, args...)
		}
	})
}
