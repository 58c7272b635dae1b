package verifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
	"github.com/tdproof/tdproof/verifier/pcsource"
)

// TestDetailsDstackVector: with Details, the result of the dstack vector
// names the PCK chain (leaf, PCK CA, Intel root) and lists the event log
// with the system-ready cut-off and the event after it; without Details
// neither is present.
func TestDetailsDstackVector(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "dstack", "quote-report.json")
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1774003274, 0)
	_, signer := newSigner(t, at)
	ev, err := dstack.ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := pcsource.NewVerifier(memSource{c: c}, pinned(t, ev.Quote), signer, verifier.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	o, err := v.Verify(t.Context(), verifier.Evidence{Dstack: data})
	if err != nil {
		t.Fatal(err)
	}
	if o.Result.Chain != nil || o.Result.EventLog != nil {
		t.Fatalf("details without asking: chain %d events %d", len(o.Result.Chain), len(o.Result.EventLog))
	}
	o, err = v.Verify(t.Context(), verifier.Evidence{Dstack: data, Details: true})
	if err != nil {
		t.Fatal(err)
	}
	r := o.Result
	if len(r.Chain) != 3 {
		t.Fatalf("chain of %d certificates, want 3", len(r.Chain))
	}
	for i, want := range []string{verifier.RolePCK, verifier.RolePCKCA, verifier.RoleRootCA} {
		cc := r.Chain[i]
		if cc.Role != want || cc.Subject == "" || !cc.NotBefore.Before(at) || !cc.NotAfter.After(at) || len(cc.SHA256) != 64 {
			t.Errorf("chain[%d] = %+v, want role %s valid at %v", i, cc, want, at)
		}
	}
	if r.Chain[2].SHA256 != r.DCAP.TrustedRootSHA256 || r.Chain[2].Revocation != verifier.TrustAnchor {
		t.Errorf("root %s %s, want the trusted root %s", r.Chain[2].SHA256, r.Chain[2].Revocation, r.DCAP.TrustedRootSHA256)
	}
	if r.Chain[0].Revocation != verifier.NotRevoked || r.Chain[0].CRL != "pck_crl" || r.Chain[0].CRLNumber != r.DCAP.Collateral.PCKCRL.Number {
		t.Errorf("leaf revocation %+v", r.Chain[0])
	}
	var boot, runtime, ready, after int
	for _, e := range r.EventLog {
		switch {
		case !e.Runtime:
			boot++
			if e.IMR > 2 || e.Description == "" {
				t.Errorf("boot event %+v", e)
			}
		case e.SystemReady:
			ready++
			if e.Name != dstack.EventSystemReady || after > 0 {
				t.Errorf("system-ready %+v after %d flagged events", e, after)
			}
		case e.AfterSystemReady:
			after++
		}
		if e.Runtime {
			runtime++
			if e.IMR != 3 || len(e.Digest) != 96 {
				t.Errorf("runtime event %+v", e)
			}
		}
	}
	if boot == 0 || runtime != len(r.Dstack.RuntimeEvents) || ready != 1 || after != 1 {
		t.Errorf("event log: %d boot, %d runtime (dstack %d), %d system-ready, %d after it", boot, runtime, len(r.Dstack.RuntimeEvents), ready, after)
	}
}

// TestDetailsCCEL: a quote with its CCEL lists the CCEL's events.
func TestDetailsCCEL(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, signer := newSigner(t, now)
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return sim.Collateral(now) })
	v, err := verifier.New(src, nil, signer, verifier.WithTrustedRoot(sim.TrustRoot()), verifier.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	q, err := sim.Quote(t.Context(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	ccel, err := sim.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	o, err := v.Verify(t.Context(), verifier.Evidence{Quote: q, CCEL: ccel, Details: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(o.Result.EventLog), len(sim.BootEvents()); got != want || !o.Result.Authentic {
		t.Errorf("%d events (authentic %v), want %d", got, o.Result.Authentic, want)
	}
	if len(o.Result.Chain) != 3 || o.Result.Chain[2].SHA256 != o.Result.DCAP.TrustedRootSHA256 {
		t.Errorf("chain %+v", o.Result.Chain)
	}
}
