package tdsim_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/tsm"
)

var at = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)

func newSim(t *testing.T, cfg tdsim.Config) *tdsim.Sim {
	t.Helper()
	s, err := tdsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quoteOf(t *testing.T, s *tdsim.Sim, rd [64]byte) *quote.Quote {
	t.Helper()
	raw, err := s.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	q, err := quote.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestQuoteVerifiesWithSimRoot(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	if _, err := s.Emit("app-id", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	rd := [64]byte{0: 0xAA, 63: 0xBB}
	q := quoteOf(t, s, rd)
	col, err := s.Collateral(at)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dcap.Verify(q, col, dcap.Options{TrustedRoot: s.TrustRoot(), Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != collateral.UpToDate {
		t.Fatalf("status %v, want UpToDate", res.Status)
	}
	if q.Header.Version != 4 || q.TD == nil || q.TD.TD15 {
		t.Fatalf("not a TDX v4 TD 1.0 quote: version %d", q.Header.Version)
	}
	if q.TD.ReportData != rd || q.TD.MRTD != s.MRTD() {
		t.Fatal("report data or MRTD differ")
	}
	if !q.TD.SEPTVEDisable() || q.TD.Debug() {
		t.Fatalf("attributes %#x: want SEPT_VE_DISABLE, not DEBUG", q.TD.Attributes())
	}
}

func TestIntelRootRejectsSim(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	q := quoteOf(t, s, [64]byte{})
	col, err := s.Collateral(at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dcap.Verify(q, col, dcap.Options{Now: at}); !errors.Is(err, dcap.ErrChain) {
		t.Fatalf("default options: err = %v, want ErrChain", err)
	}
	// Another simulator's root does not accept it either.
	other := newSim(t, tdsim.Config{})
	if _, err := dcap.Verify(q, col, dcap.Options{TrustedRoot: other.TrustRoot(), Now: at}); !errors.Is(err, dcap.ErrChain) {
		t.Fatalf("other sim root: err = %v, want ErrChain", err)
	}
}

func TestDebug(t *testing.T) {
	s := newSim(t, tdsim.Config{Debug: true})
	q := quoteOf(t, s, [64]byte{})
	if !q.TD.Debug() || !q.TD.SEPTVEDisable() {
		t.Fatalf("attributes %#x: want DEBUG and SEPT_VE_DISABLE", q.TD.Attributes())
	}
}

func TestRTMR3IsReplayOfRuntimeEvents(t *testing.T) {
	for _, version := range []uint32{1, 2} {
		s := newSim(t, tdsim.Config{RuntimeEventVersion: version})
		q0 := quoteOf(t, s, [64]byte{})
		if q0.TD.RTMRs[3] != ([48]byte{}) {
			t.Fatal("RTMR3 does not start at zero")
		}
		for _, name := range []string{"system-preparing", "app-id", "compose-hash", "system-ready"} {
			if _, err := s.Emit(name, []byte(name+" payload")); err != nil {
				t.Fatal(err)
			}
		}
		ev, err := s.Extend(eventlog.Event{Name: "extra", Payload: []byte{9}, Version: 1, Digest: []byte("ignored")})
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := eventlog.RuntimeDigest("extra", []byte{9}, 1); !bytes.Equal(ev.Digest, want[:]) {
			t.Fatal("Extend did not recompute the digest")
		}
		q := quoteOf(t, s, [64]byte{})
		runtime := s.RuntimeEvents()
		if len(runtime) != 5 {
			t.Fatalf("%d runtime events", len(runtime))
		}
		r3, err := eventlog.ReplayRTMR(runtime, 3)
		if err != nil {
			t.Fatal(err)
		}
		if r3 != q.TD.RTMRs[3] {
			t.Fatalf("v%d: RTMR3 %x, replay %x", version, q.TD.RTMRs[3], r3)
		}
		// The whole log, through its JSON form, replays to all four RTMRs.
		parsed, err := eventlog.ParseJSON(eventlog.MarshalEvents(s.EventLog()))
		if err != nil {
			t.Fatal(err)
		}
		all, err := eventlog.Replay(parsed)
		if err != nil {
			t.Fatal(err)
		}
		if all != eventlog.RTMRs(q.TD.RTMRs) {
			t.Fatal("event log replay differs from the quote")
		}
	}
}

func TestExtendRTMR(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	d := sha512.Sum384([]byte("raw"))
	if err := s.ExtendRTMR(3, d); err != nil {
		t.Fatal(err)
	}
	if got := s.RTMRs()[3]; got != eventlog.ReplayDigests(d) {
		t.Fatal("RTMR3 not extended")
	}
	if len(s.RuntimeEvents()) != 0 {
		t.Fatal("raw extend recorded an event")
	}
	if err := s.ExtendRTMR(0, d); !errors.Is(err, tsm.ErrRTMRIndex) {
		t.Fatalf("RTMR0: err = %v", err)
	}
}

func TestCCELReplaysToQuote(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	if _, err := s.Emit("app-id", []byte{1}); err != nil {
		t.Fatal(err)
	}
	q := quoteOf(t, s, [64]byte{})
	raw, err := s.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != tdsim.CCELRegionSize || raw[len(raw)-1] != 0xFF {
		t.Fatalf("CCEL is %d bytes, want %d padded with 0xFF", len(raw), tdsim.CCELRegionSize)
	}
	c, err := eventlog.ParseCCEL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SpecID.Algorithms) != 1 || c.SpecID.Algorithms[0].Alg != eventlog.AlgSHA384 {
		t.Fatalf("algorithms %v, want SHA-384 only", c.SpecID.Algorithms)
	}
	events, err := c.TDXEvents()
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(s.BootEvents()) {
		t.Fatalf("%d CCEL events, want %d", len(events), len(s.BootEvents()))
	}
	r, err := eventlog.Replay(events)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r[i] != q.TD.RTMRs[i] {
			t.Fatalf("RTMR%d: CCEL replay %x, quote %x", i, r[i], q.TD.RTMRs[i])
		}
	}
	if r[3] != ([48]byte{}) {
		t.Fatal("runtime events leaked into the CCEL")
	}
}

func TestMarshalCCELErrors(t *testing.T) {
	if _, err := tdsim.MarshalCCEL([]eventlog.Event{{IMR: 0, Digest: []byte{1}}}, 0); err == nil {
		t.Fatal("short digest accepted")
	}
	if _, err := tdsim.MarshalCCEL([]eventlog.Event{{IMR: 4, Digest: make([]byte, 48)}}, 0); err == nil {
		t.Fatal("imr 4 accepted")
	}
	// Unpadded: parses too, ending at the end of the input.
	raw, err := tdsim.MarshalCCEL(tdsim.SyntheticBootEvents(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := eventlog.ParseCCEL(raw); err != nil || len(c.Events) != 6 {
		t.Fatalf("unpadded CCEL: %v", err)
	}
}

func TestConfiguredBootEvents(t *testing.T) {
	d := sha512.Sum384([]byte("kernel"))
	boot := []eventlog.Event{{IMR: 1, Type: eventlog.EvEFIBootServicesApplication, Digest: d[:], Payload: []byte("kernel")}}
	mrtd := sha512.Sum384([]byte("mrtd"))
	s := newSim(t, tdsim.Config{MRTD: mrtd, BootEvents: boot, MROwner: [48]byte{1}})
	q := quoteOf(t, s, [64]byte{})
	if q.TD.MRTD != mrtd || q.TD.MROwner != ([48]byte{1}) {
		t.Fatal("configured MRTD/MROWNER not in the quote")
	}
	if q.TD.RTMRs[1] != eventlog.ReplayDigests(d) || q.TD.RTMRs[0] != ([48]byte{}) {
		t.Fatal("RTMRs are not the replay of the configured events")
	}
	for _, bad := range []tdsim.Config{
		{BootEvents: []eventlog.Event{{IMR: 3, Digest: d[:]}}},
		{BootEvents: []eventlog.Event{{IMR: 0, Digest: d[:10]}}},
		{RuntimeEventVersion: 3},
	} {
		if _, err := tdsim.New(bad); !errors.Is(err, tdsim.ErrConfig) {
			t.Fatalf("config %+v: err = %v, want ErrConfig", bad, err)
		}
	}
}

func TestSharedPKI(t *testing.T) {
	a := newSim(t, tdsim.Config{})
	b := newSim(t, tdsim.Config{PKI: a.PKI()})
	q := quoteOf(t, b, [64]byte{})
	col, err := b.Collateral(at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dcap.Verify(q, col, dcap.Options{TrustedRoot: a.TrustRoot(), Now: at}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := s.Emit("e", []byte{byte(i)}); err != nil {
				t.Error(err)
			}
			if _, err := s.Quote(context.Background(), [64]byte{byte(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	r3, err := eventlog.ReplayRTMR(s.RuntimeEvents(), 3)
	if err != nil || r3 != s.RTMRs()[3] {
		t.Fatal("RTMR3 differs from the replay after concurrent emits")
	}
}

func TestQuoteCanceled(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Quote(ctx, [64]byte{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigFromMeasurement(t *testing.T) {
	d0, d2 := sha512.Sum384([]byte("hob")), sha512.Sum384([]byte("cmdline"))
	m := &measure.Measurement{MRTD: sha512.Sum384([]byte("m"))}
	m.RTMRs[0] = measure.Register{Index: 0, Events: []measure.Event{{Type: eventlog.EvEFIHandoffTables2, Digest: d0, Description: "TD HOB"}}}
	m.RTMRs[1] = measure.Register{Index: 1}
	m.RTMRs[2] = measure.Register{Index: 2, Events: []measure.Event{{Type: eventlog.EvEventTag, Digest: d2, Description: "cmdline"}}}
	cfg, err := tdsim.ConfigFromMeasurement(m)
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, cfg)
	r := s.RTMRs()
	if s.MRTD() != m.MRTD || r[0] != eventlog.ReplayDigests(d0) || r[2] != eventlog.ReplayDigests(d2) {
		t.Fatal("sim registers differ from the measurement")
	}
	m.RTMRs[1].Incomplete = "kernel digest is unknown"
	if _, err := tdsim.ConfigFromMeasurement(m); !errors.Is(err, tdsim.ErrConfig) {
		t.Fatalf("incomplete register: err = %v", err)
	}
}
