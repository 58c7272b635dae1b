package dstack_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

type gcpParts struct {
	pcr0        []byte
	pcr2Events  [][]byte
	uki         []byte
	extraData   func(raw []byte) []byte
	runtime     []eventlog.Event
	pcr14Extra  bool
	version     uint64
	platform    byte
	noGCP       bool
	firmwareRef []string
}

func newGCPParts() *gcpParts {
	uki := sha256.Sum256([]byte("uki"))
	gpt := sha256.Sum256([]byte("gpt"))
	kernel := sha256.Sum256([]byte("kernel"))
	sep := sha256.Sum256([]byte{0, 0, 0, 0})
	p0, _ := hex.DecodeString(dstack.DefaultGCPFirmwarePCR0)
	return &gcpParts{pcr0: p0, pcr2Events: [][]byte{sep[:], gpt[:], uki[:], kernel[:]}, uki: uki[:],
		extraData: func(raw []byte) []byte { s := sha256.Sum256(raw); return s[:] }, runtime: syntheticEvents(), version: 1, platform: 1}
}

func (p *gcpParts) evidence(t *testing.T, s *tpmsim.Signer) (*dstack.Evidence, dstack.Options, *collateral.Collateral) {
	t.Helper()
	var rd [64]byte
	rd[0] = 7
	sg := newSigned(t, dcaptest.TDXQuoteV4, p.runtime, rd, nil)
	// PCR2 from its events, PCR14 from the runtime events (SHA-256).
	var pcr2 [32]byte
	var tevs []dstack.TPMEvent
	for _, d := range p.pcr2Events {
		pcr2 = tpm.Extend(pcr2, d)
		tevs = append(tevs, dstack.TPMEvent{PCRIndex: 2, Digest: d})
	}
	pcr14, err := tpm.RuntimeReplay(p.runtime)
	if err != nil {
		t.Fatal(err)
	}
	if p.pcr14Extra {
		pcr14 = tpm.Extend(pcr14, make([]byte, 32))
	}
	pcrs := []tpm.PCRValue{{Index: 0, Value: p.pcr0}, {Index: 2, Value: pcr2[:]}, {Index: 14, Value: pcr14[:]}}
	msg := tpmsim.Attest(p.extraData(sg.quote.Raw), pcrs)
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	tq := &dstack.TPMQuote{Message: msg, Signature: sig, AKCert: s.AKCert.Raw, Platform: p.platform, EventLog: tevs}
	for _, v := range pcrs {
		tq.PCRValues = append(tq.PCRValues, dstack.TPMPCRValue{Index: uint32(v.Index), Algorithm: "sha256", Value: v.Value})
	}
	doc, _ := nitrosim.Encode(map[string]any{"version": p.version, "uki_auth": p.uki})
	ds := sha256.Sum256(doc)
	checksum := []byte(fmt.Sprintf("%x  measurement.gcp.cbor\n", ds))
	oh := sha256.Sum256(checksum)
	cfg := map[string]any{"os_image_hash": hex.EncodeToString(oh[:])}
	if !p.noGCP {
		cfg["gcp_measurement"] = map[string]string{"checksum_file": base64.StdEncoding.EncodeToString(checksum), "measurement": base64.StdEncoding.EncodeToString(doc)}
	}
	cj, _ := json.Marshal(cfg)
	var rts []dstack.RuntimeEvent
	for _, e := range p.runtime {
		rts = append(rts, dstack.RuntimeEvent{Name: e.Name, Payload: e.Payload, Version: e.Version})
	}
	a := &dstack.Attestation{Version: 0, Platform: dstack.PlatformGCPTDX, Quote: sg.quote.Raw, TPMQuote: tq,
		ReportData: rd, Config: string(cj)}
	for _, e := range rts {
		if e.Version == 2 {
			// Version 0 cannot carry event versions: keep V1 events.
			e.Version = 0
		}
		a.RuntimeEvents = append(a.RuntimeEvents, e)
	}
	ev := marshalEvidence(t, a)
	o := sg.options()
	o.GCP = dstack.GCPOptions{TPMRoot: s.Root, TPMIntermediates: []*x509.Certificate{s.Intermediate}, FirmwarePCR0: p.firmwareRef}
	return ev, o, sg.collateral
}

func TestGCPSimulated(t *testing.T) {
	s, err := tpmsim.New(dcaptestNow(t), false)
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, p *gcpParts) (*dstack.Result, error) {
		ev, o, c := p.evidence(t, s)
		return dstack.Verify(ev, c, o)
	}
	p := newGCPParts()
	p.runtime = v1Only(p.runtime)
	r, err := run(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.TEEVariant != "dstack-gcp-tdx" || r.BootInfo.TEEVariant != "dstack-gcp-tdx" || !r.OSImageHashVerified || r.GCP == nil ||
		!bytes.Equal(r.GCP.UKIAuth, p.uki) {
		t.Fatalf("%+v", r)
	}
	neg := []struct {
		name string
		mut  func(*gcpParts)
		want error
	}{
		{"extraData not bound to the TDX quote", func(p *gcpParts) { p.extraData = func([]byte) []byte { return make([]byte, 32) } }, dstack.ErrReportData},
		{"PCR14 not the runtime replay", func(p *gcpParts) { p.pcr14Extra = true }, dstack.ErrEventLog},
		{"PCR0 not an accepted firmware", func(p *gcpParts) { p.pcr0 = make([]byte, 32) }, dstack.ErrMeasurement},
		{"firmware reference replaced", func(p *gcpParts) { p.firmwareRef = []string{"00"} }, dstack.ErrMeasurement},
		{"UKI not in PCR2", func(p *gcpParts) { p.uki = make([]byte, 32) }, dstack.ErrMeasurement},
		{"UKI after an extra boot application", func(p *gcpParts) {
			x := sha256.Sum256([]byte("loader"))
			p.pcr2Events = append([][]byte{p.pcr2Events[0], p.pcr2Events[1], x[:]}, p.pcr2Events[2:]...)
		}, dstack.ErrMeasurement},
		{"measurement version 2", func(p *gcpParts) { p.version = 2 }, dstack.ErrUnsupported},
		{"gcp_measurement absent", func(p *gcpParts) { p.noGCP = true }, dstack.ErrOSImageHash},
		{"TPM platform not gcp", func(p *gcpParts) { p.platform = 3 }, dstack.ErrQuote},
	}
	for _, c := range neg {
		t.Run(c.name, func(t *testing.T) {
			p := newGCPParts()
			p.runtime = v1Only(p.runtime)
			c.mut(p)
			r, err := run(t, p)
			if !errors.Is(err, c.want) || r != nil {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// v1Only drops digest versions (a version 0 attestation carries none).
func v1Only(evs []eventlog.Event) []eventlog.Event {
	out := cloneEvents(evs)
	for i := range out {
		if out[i].Version == 2 {
			out[i] = runtimeEvent(out[i].Name, out[i].Payload, 0)
		}
	}
	return out
}

func dcaptestNow(t *testing.T) time.Time {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f.Now
}

// TestGCPVersion1RoundTrip: a gcp-tdx attestation survives version 1
// encoding (tpm_quote with its platform name) unchanged.
func TestGCPVersion1RoundTrip(t *testing.T) {
	s, err := tpmsim.New(dcaptestNow(t), false)
	if err != nil {
		t.Fatal(err)
	}
	p := newGCPParts()
	p.runtime = v1Only(p.runtime)
	ev, o, c := p.evidence(t, s)
	a := *ev.Attestation
	a.Version, a.Stack = 1, dstack.StackDstack
	raw, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ev1, err := dstack.ParseEvidence(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\xa3gcp")) || ev1.Attestation.TPMQuote == nil || ev1.Attestation.TPMQuote.Platform != 1 {
		t.Fatal("tpm_quote platform lost")
	}
	r, err := dstack.Verify(ev1, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.TEEVariant != dstack.TEEVariantGCPTDX {
		t.Fatal(r.TEEVariant)
	}
}
