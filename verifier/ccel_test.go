package verifier_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// TestCCEL: a TDX quote with its own CCEL is authentic and carries the
// replayed RTMR0–2; another TD's CCEL makes it not authentic
// (ErrEventLog); a CCEL that does not parse, or one without a TDX quote,
// is malformed evidence.
func TestCCEL(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := tdsim.New(tdsim.Config{BootEvents: tdsim.SyntheticBootEvents()[:3], PKI: sim.PKI()})
	if err != nil {
		t.Fatal(err)
	}
	_, signer := newSigner(t, now)
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return sim.Collateral(now) })
	q, err := sim.Quote(t.Context(), [64]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	pq, err := quote.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(src, pinned(t, pq), signer, verifier.WithTrustedRoot(sim.TrustRoot()), verifier.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	own, err := sim.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}

	o, err := v.Verify(t.Context(), verifier.Evidence{Quote: q, CCEL: own})
	if err != nil {
		t.Fatal(err)
	}
	r := o.Result
	rt := sim.RTMRs()
	if !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming {
		t.Fatalf("own CCEL: authentic %v allow %v status %v reason %q", r.Authentic, r.Allow, r.Status, r.Reason)
	}
	if m, _ := r.Claims.Bool("tdx.eventlog.rtmrs_match"); !m {
		t.Error("tdx.eventlog.rtmrs_match is not true")
	}
	if got, _ := r.Claims.String("tdx.eventlog.rtmr_1"); got != hex.EncodeToString(rt[1][:]) {
		t.Errorf("tdx.eventlog.rtmr_1 %s, want %s", got, hex.EncodeToString(rt[1][:]))
	}

	o, err = v.Verify(t.Context(), verifier.Evidence{Quote: q, CCEL: foreign})
	if err != nil {
		t.Fatal(err)
	}
	if r := o.Result; r.Authentic || r.Allow || r.Status != ear.StatusContraindicated || !strings.Contains(r.Reason, verifier.ErrEventLog.Error()) || !strings.Contains(r.Reason, "RTMR1 ") {
		t.Errorf("foreign CCEL: authentic %v allow %v status %v reason %q", r.Authentic, r.Allow, r.Status, r.Reason)
	}

	for name, ev := range map[string]verifier.Evidence{
		"garbage CCEL":     {Quote: q, CCEL: []byte("not a CCEL")},
		"CCEL with dstack": {Dstack: []byte(`{"quote":"00"}`), CCEL: own},
	} {
		if _, err := v.Verify(t.Context(), ev); !errors.Is(err, verifier.ErrMalformedEvidence) {
			t.Errorf("%s: %v, want ErrMalformedEvidence", name, err)
		}
	}
}

// TestCCELRTMR3: a CCEL that records RTMR3 events must replay to the
// quote's RTMR3 too: the CCEL of the pinned image carrying another app's
// runtime events is not authentic, the same CCEL with the TD's own
// runtime events is, and so is a CCEL without RTMR3 events (RTMR3 is then
// the runtime log's business).
func TestCCELRTMR3(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := tdsim.New(tdsim.Config{PKI: sim.PKI()})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		s   *tdsim.Sim
		app string
	}{{sim, "app-a"}, {other, "app-b"}} {
		if _, err := e.s.Emit("compose-hash", []byte(e.app)); err != nil {
			t.Fatal(err)
		}
	}
	_, signer := newSigner(t, now)
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return sim.Collateral(now) })
	q, err := sim.Quote(t.Context(), [64]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	pq, err := quote.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(src, pinned(t, pq), signer, verifier.WithTrustedRoot(sim.TrustRoot()), verifier.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	// A CCEL carries digests, not dstack event names: RTMR3 events are
	// recorded as EV_EVENT_TAG with the runtime event's digest.
	ccel := func(runtime []eventlog.Event) []byte {
		evs := sim.BootEvents()
		for _, e := range runtime {
			evs = append(evs, eventlog.Event{IMR: 3, Type: eventlog.EvEventTag, Digest: e.Digest, Payload: e.Payload})
		}
		b, err := tdsim.MarshalCCEL(evs, tdsim.CCELRegionSize)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name      string
		ccel      []byte
		authentic bool
	}{
		{"boot events only", ccel(nil), true},
		{"own runtime events", ccel(sim.RuntimeEvents()), true},
		{"another app's runtime events", ccel(other.RuntimeEvents()), false},
	} {
		o, err := v.Verify(t.Context(), verifier.Evidence{Quote: q, CCEL: c.ccel})
		if err != nil {
			t.Fatal(err)
		}
		r := o.Result
		if c.authentic {
			if !r.Authentic || r.Status != ear.StatusAffirming {
				t.Errorf("%s: authentic %v status %v reason %q", c.name, r.Authentic, r.Status, r.Reason)
			}
			continue
		}
		if r.Authentic || r.Allow || r.Status != ear.StatusContraindicated || !strings.Contains(r.Reason, verifier.ErrEventLog.Error()) || !strings.Contains(r.Reason, "RTMR3 ") {
			t.Errorf("%s: authentic %v allow %v status %v reason %q", c.name, r.Authentic, r.Allow, r.Status, r.Reason)
		}
	}
}
