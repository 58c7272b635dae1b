// Package tdsim is a software TD: it holds TDX measurement registers,
// extends RTMR3 as runtime events are emitted, writes a CCEL for its boot
// events and produces TDX v4 quotes signed through a fake Intel PKI
// (package dcaptest). It implements [tsm.Quoter], [tsm.RTMRExtender] and
// [tsm.EventLogReader], so the agent can run on machines without TDX
// (its --simulate backend) and tests can drive the whole attestation
// flow.
//
// # Security
//
// A Sim's quotes are forged evidence: they chain to a root CA generated in
// memory ([Sim.TrustRoot]), not to Intel's; [Sim.Save] and [Load] keep that
// root and its private keys in a state directory so that other processes
// can be the same TD. Nothing may accept that root
// by default; a verifier accepts a Sim's quotes only when explicitly
// configured with its root, and must say so in every result.
package tdsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tsm"
)

var (
	_ tsm.Quoter         = (*Sim)(nil)
	_ tsm.RTMRExtender   = (*Sim)(nil)
	_ tsm.EventLogReader = (*Sim)(nil)
)

// ErrConfig means an invalid [Config].
var ErrConfig = errors.New("tdsim: invalid configuration")

// Config describes the simulated TD. The zero value is a valid,
// non-debug TD with a fixed MRTD and synthetic boot events.
type Config struct {
	// MRTD is the build-time measurement. Zero means SHA-384("tdsim MRTD").
	MRTD [48]byte
	// MRConfigID, MROwner and MROwnerConfig are copied into quotes.
	MRConfigID, MROwner, MROwnerConfig [48]byte
	// BootEvents are the firmware events of RTMR0–2 (IMR 0–2, each with
	// a 48-byte Digest), in extend order. RTMR0–2 are their replay: a Sim
	// cannot hold register values its log does not explain. Nil means
	// [SyntheticBootEvents]; use [ConfigFromMeasurement] to start from a
	// `tdproof measure` result.
	BootEvents []eventlog.Event
	// Debug sets the DEBUG TD attribute (bit 0). SEPT_VE_DISABLE (bit 28)
	// is always set.
	Debug bool
	// RuntimeEventVersion is the dstack runtime event digest version of
	// [Sim.Emit] (0 or 1: the legacy digest; 2: canonical JSON).
	RuntimeEventVersion uint32
	// PKI is the fake Intel PKI signing quotes; nil creates a new one.
	// Sims sharing a PKI share a trust root.
	PKI *dcaptest.PKI
	// Measurement is an optional opaque document the configuration was
	// built from (tdproof measure --format json output). The Sim keeps it
	// and [Sim.Save] stores it with the state (measurement.json), so the
	// reference values of the simulated TD can be exported later.
	Measurement []byte
}

// SyntheticBootEvents returns deterministic boot events for RTMR0–2: for
// each register an EV_EFI_ACTION "tdsim RTMRn boot" and an EV_SEPARATOR
// of four zero bytes, each digest the SHA-384 of its payload.
func SyntheticBootEvents() []eventlog.Event {
	var out []eventlog.Event
	for i := range uint32(3) {
		for _, e := range []struct {
			typ     eventlog.EventType
			payload []byte
		}{
			{eventlog.EvEFIAction, fmt.Appendf(nil, "tdsim RTMR%d boot", i)},
			{eventlog.EvSeparator, []byte{0, 0, 0, 0}},
		} {
			d := sha512.Sum384(e.payload)
			out = append(out, eventlog.Event{IMR: i, Type: e.typ, Digest: d[:], Payload: e.payload})
		}
	}
	return out
}

// ConfigFromMeasurement returns a Config whose MRTD and boot events come
// from a measure result: every RTMR0–2 event of m becomes a boot event
// with its digest and, as payload, its description. The Sim's RTMR0–2
// then equal m's registers. It fails if a register is incomplete (an
// unknown digest).
func ConfigFromMeasurement(m *measure.Measurement) (Config, error) {
	c := Config{MRTD: m.MRTD}
	for _, r := range m.RTMRs {
		if r.Incomplete != "" {
			return Config{}, fmt.Errorf("%w: RTMR%d is incomplete: %s", ErrConfig, r.Index, r.Incomplete)
		}
		for _, e := range r.Events {
			c.BootEvents = append(c.BootEvents, eventlog.Event{
				IMR: uint32(r.Index), Type: e.Type, Digest: slices.Clone(e.Digest[:]), Payload: []byte(e.Description),
			})
		}
	}
	return c, nil
}

// Sim is a software TD. It is safe for concurrent use.
type Sim struct {
	cfg      Config
	pki      *dcaptest.PKI
	platform *dcaptest.Platform
	ak       *ecdsa.PrivateKey

	mu      sync.Mutex
	qeSig   *[quote.SignatureSize]byte // the QE report signature of the first quote
	rtmrs   eventlog.RTMRs
	boot    []eventlog.Event
	runtime []eventlog.Event
}

// New starts a TD: RTMR0–2 are the replay of the boot events, RTMR3 is
// zero. It creates the PKI if cfg has none, a TDX platform (PCK
// certificate) and the quoting attestation key.
func New(cfg Config) (*Sim, error) {
	cfg, rtmrs, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	boot := cfg.BootEvents
	pki := cfg.PKI
	if pki == nil {
		if pki, err = dcaptest.NewPKI(dcaptest.PKIOptions{}); err != nil {
			return nil, fmt.Errorf("tdsim: %w", err)
		}
	}
	platform, err := pki.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
	if err != nil {
		return nil, fmt.Errorf("tdsim: %w", err)
	}
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tdsim: %w", err)
	}
	cfg.PKI = pki
	cfg.Measurement = slices.Clone(cfg.Measurement)
	return &Sim{cfg: cfg, pki: pki, platform: platform, ak: ak, rtmrs: rtmrs, boot: boot}, nil
}

// checkConfig resolves the defaults of cfg, validates it and returns it
// with a private copy of its boot events and their replay.
func checkConfig(cfg Config) (Config, eventlog.RTMRs, error) {
	if cfg.MRTD == ([48]byte{}) {
		cfg.MRTD = sha512.Sum384([]byte("tdsim MRTD"))
	}
	if cfg.BootEvents == nil {
		cfg.BootEvents = SyntheticBootEvents()
	}
	if cfg.RuntimeEventVersion > 2 {
		return Config{}, eventlog.RTMRs{}, fmt.Errorf("%w: runtime event version %d", ErrConfig, cfg.RuntimeEventVersion)
	}
	boot := make([]eventlog.Event, len(cfg.BootEvents))
	for i, e := range cfg.BootEvents {
		if e.IMR > 2 || e.IsRuntime() {
			return Config{}, eventlog.RTMRs{}, fmt.Errorf("%w: boot event %d: imr %d type %s (want RTMR0–2 firmware events)", ErrConfig, i, e.IMR, e.Type)
		}
		if len(e.Digest) != 48 {
			return Config{}, eventlog.RTMRs{}, fmt.Errorf("%w: boot event %d: digest is %d bytes, want 48", ErrConfig, i, len(e.Digest))
		}
		e.Digest = slices.Clone(e.Digest)
		e.Payload = slices.Clone(e.Payload)
		boot[i] = e
	}
	cfg.BootEvents = boot
	rtmrs, err := eventlog.Replay(boot)
	if err != nil {
		return Config{}, eventlog.RTMRs{}, fmt.Errorf("%w: boot events: %w", ErrConfig, err)
	}
	return cfg, rtmrs, nil
}

// Quote returns a TDX v4 quote (TD 1.0 body) over the TD's current
// state: MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG and RTMR0–3 from the
// Sim, REPORTDATA as given, TDATTRIBUTES with SEPT_VE_DISABLE and, if
// configured, DEBUG; TCB values are dcaptest's defaults, UpToDate under
// [Sim.Collateral]. The quote chains to [Sim.TrustRoot] only.
func (s *Sim) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	spec := s.platform.DefaultQuoteSpec(dcaptest.TDXQuoteV4)
	spec.AttestationKey = s.ak
	td := spec.TD
	td.MRTD = s.cfg.MRTD
	td.MRConfigID = s.cfg.MRConfigID
	td.MROwner = s.cfg.MROwner
	td.MROwnerConfig = s.cfg.MROwnerConfig
	td.ReportData = reportData
	td.TDAttributes = [8]byte{}
	td.TDAttributes[3] = 0x10 // SEPT_VE_DISABLE (bit 28)
	if s.cfg.Debug {
		td.TDAttributes[0] |= 0x01 // DEBUG (bit 0)
	}
	s.mu.Lock()
	td.RTMRs = s.rtmrs
	qeSig := s.qeSig
	s.mu.Unlock()
	if qeSig != nil {
		// The QE report is the same for every quote of this attestation
		// key: reuse its first signature, as a real QE signs it once per
		// key (verifiers cache the platform part by these bytes).
		spec.MutateAfterSign = func(q *quote.Quote) { q.Signature.QEReportSignature = *qeSig }
	}
	q, err := s.platform.BuildQuote(spec)
	if err != nil {
		return nil, fmt.Errorf("tdsim: quote: %w", err)
	}
	if q.ParseErr != nil {
		return nil, fmt.Errorf("tdsim: quote: %w", q.ParseErr)
	}
	if qeSig == nil {
		sig := q.Parsed.Signature.QEReportSignature
		s.mu.Lock()
		if s.qeSig == nil {
			s.qeSig = &sig
		}
		s.mu.Unlock()
	}
	return q.Raw, nil
}

// ExtendRTMR extends a register with a raw digest, as the kernel's
// rtmrN:sha384 attribute does: no event is recorded (the caller keeps
// its own log, as dstack's agent does). Only RTMR3 may be extended; RTMR0–2
// belong to the firmware.
func (s *Sim) ExtendRTMR(index int, digest [48]byte) error {
	if index != 3 {
		return fmt.Errorf("%w: tdsim extends only RTMR3, not %d", tsm.ErrRTMRIndex, index)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rtmrs[3] = eventlog.Extend(s.rtmrs[3], digest)
	return nil
}

// Extend records a dstack runtime event and extends RTMR3 with its
// digest, which is recomputed from Name, Payload and Version
// ([eventlog.RuntimeDigest]) whatever ev.Digest says. IMR is set to 3 and
// Type to [eventlog.EvDstackRuntime]. It returns the recorded event.
func (s *Sim) Extend(ev eventlog.Event) (eventlog.Event, error) {
	d, err := eventlog.RuntimeDigest(ev.Name, ev.Payload, ev.Version)
	if err != nil {
		return eventlog.Event{}, fmt.Errorf("tdsim: %w", err)
	}
	ev.IMR = 3
	ev.Type = eventlog.EvDstackRuntime
	ev.Digest = d[:]
	ev.Payload = slices.Clone(ev.Payload)
	ev.Preimage = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rtmrs[3] = eventlog.Extend(s.rtmrs[3], d)
	s.runtime = append(s.runtime, ev)
	return ev, nil
}

// Emit is Extend of a runtime event with the configured version.
func (s *Sim) Emit(name string, payload []byte) (eventlog.Event, error) {
	return s.Extend(eventlog.Event{Name: name, Payload: payload, Version: s.cfg.RuntimeEventVersion})
}

// ReferenceValues returns reference values pinning this TD's code: its
// MRTD and RTMR0–2 (refvalue.ForTD), provenance source "tdsim". With them
// in the verifier's store the default policy can affirm the TD; without
// them it is at most warning.
func (s *Sim) ReferenceValues() []refvalue.Value {
	r := s.RTMRs()
	return refvalue.ForTD(s.cfg.MRTD, r, refvalue.Provenance{Source: "tdsim"})
}

// MRTD returns the build-time measurement.
func (s *Sim) MRTD() [48]byte { return s.cfg.MRTD }

// RTMRs returns the current RTMR0–3.
func (s *Sim) RTMRs() eventlog.RTMRs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rtmrs
}

// BootEvents returns a copy of the RTMR0–2 events.
func (s *Sim) BootEvents() []eventlog.Event { return cloneEvents(s.boot) }

// RuntimeEvents returns a copy of the runtime events recorded by
// [Sim.Extend] and [Sim.Emit], in order.
func (s *Sim) RuntimeEvents() []eventlog.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneEvents(s.runtime)
}

// EventLog returns boot then runtime events: the dstack event log of the
// TD, whose replay equals [Sim.RTMRs] unless ExtendRTMR was used directly.
func (s *Sim) EventLog() []eventlog.Event {
	return append(s.BootEvents(), s.RuntimeEvents()...)
}

// ReadCCEL returns the TD's CCEL: its boot events as [MarshalCCEL]
// writes them, padded to [CCELRegionSize]. Runtime events are not in the
// CCEL, as on dstack.
func (s *Sim) ReadCCEL() ([]byte, error) { return MarshalCCEL(s.boot, CCELRegionSize) }

// TrustRoot returns the root CA certificate the Sim's quotes chain to.
//
// WARNING: this is a fake "Intel SGX Root CA" generated in memory by
// package dcaptest; anyone can produce quotes under such a root. It must
// NEVER be accepted by default: pass it to a verifier (for example
// dcap.Options.TrustedRoot) only when the operator explicitly asked for
// the simulator, and report that in every result.
func (s *Sim) TrustRoot() *x509.Certificate { return s.pki.Root.Certificate }

// TrustRootPEM returns [Sim.TrustRoot] PEM-encoded. The same warning
// applies: never accept this root by default.
func (s *Sim) TrustRootPEM() []byte { return s.pki.RootPEM() }

// CollateralSpec returns the collateral spec matching the Sim's platform
// and quotes (dcaptest.DefaultTDXCollateralSpec): quotes verify as
// UpToDate against it at at.
func (s *Sim) CollateralSpec(at time.Time) dcaptest.CollateralSpec {
	return dcaptest.DefaultTDXCollateralSpec(s.platform, at)
}

// Collateral returns signed collateral for the Sim's quotes, valid at at
// (issued a day before, next update 29 days after), signed under
// [Sim.TrustRoot] — never a trusted root by default.
func (s *Sim) Collateral(at time.Time) (*collateral.Collateral, error) {
	return s.pki.Collateral(s.CollateralSpec(at))
}

// RawCollateral returns the same collateral as bytes, as a PCS serves it.
func (s *Sim) RawCollateral(at time.Time) (*dcaptest.RawCollateral, error) {
	return s.pki.RawCollateral(s.CollateralSpec(at))
}

// PKI returns the fake Intel PKI; Platform the simulated platform (PCK
// certificate, FMSPC, TCB).
func (s *Sim) PKI() *dcaptest.PKI { return s.pki }

// Platform returns the simulated platform.
func (s *Sim) Platform() *dcaptest.Platform { return s.platform }

// Debug reports whether the TD is a debug TD.
func (s *Sim) Debug() bool { return s.cfg.Debug }

func cloneEvents(in []eventlog.Event) []eventlog.Event {
	out := make([]eventlog.Event, len(in))
	for i, e := range in {
		e.Digest = slices.Clone(e.Digest)
		e.Payload = slices.Clone(e.Payload)
		e.Preimage = slices.Clone(e.Preimage)
		out[i] = e
	}
	return out
}
