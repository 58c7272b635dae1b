package verifiersvc_test

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// TestNativeCCEL: /v1/verify with a quote and its cc_eventlog returns the
// replayed RTMRs as claims; cc_eventlog without a quote, or not hex or
// base64, is a 400.
func TestNativeCCEL(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := sim.Collateral(now)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, col, nil, now, verifiersvc.Options{}, verifier.WithTrustedRoot(sim.TrustRoot()))
	q, err := sim.Quote(t.Context(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	ccel, err := sim.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := e.native(t, map[string]any{"quote": hex.EncodeToString(q), "cc_eventlog": base64.StdEncoding.EncodeToString(ccel)})
	r := out.Result
	if !r.Authentic || !r.Allow {
		t.Fatalf("authentic %v allow %v reason %q", r.Authentic, r.Allow, r.Reason)
	}
	if m, _ := r.Claims.Bool("tdx.eventlog.rtmrs_match"); !m {
		t.Errorf("claims %v", r.Claims.Names())
	}
	problemOf(t, e.post(t, "/v1/verify", mustJSON(t, map[string]any{"dstack": map[string]any{"quote": "00"}, "cc_eventlog": "00"})), 400, "malformed_evidence")
	problemOf(t, e.post(t, "/v1/verify", mustJSON(t, map[string]any{"quote": hex.EncodeToString(q), "cc_eventlog": "%%"})), 400, "malformed_evidence")
}
