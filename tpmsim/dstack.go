package tpmsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tpm"
)

// GCPOptions describe a simulated dstack-gcp-tdx attestation: a TDX
// quote (signed by a dcaptest fixture) whose RTMR3 is the SHA-384 replay
// of Events and whose REPORTDATA is ReportData, and a vTPM quote over the
// SHA-256 PCR0, PCR2 and PCR14 whose extraData is SHA-256 of the raw TDX
// quote, PCR14 being the SHA-256 replay of Events.
type GCPOptions struct {
	ReportData [64]byte
	// Events are the runtime events (digest version 1: a version 0
	// attestation carries no version).
	Events []dstack.RuntimeEvent
	// PCR0 is the firmware PCR0; nil means dstack.DefaultGCPFirmwarePCR0.
	PCR0 []byte
	// PCR2Events are the PCR2 digests; nil means separator, GPT, UKI,
	// kernel with UKI = SHA-256("uki").
	PCR2Events [][]byte
	// UKI is the measurement document's uki_auth; nil means the UKI of
	// the default PCR2 events.
	UKI []byte
	// TD, if set, changes the TD report before the TDX quote is signed.
	TD func(*quote.TDReport)
	// ExtraData, if set, replaces the binding to the TDX quote.
	ExtraData func(rawQuote []byte) []byte
	// PCRs, if set, changes the quoted PCR values before the TPM quote
	// is signed (after the vm_config was derived).
	PCRs func([]tpm.PCRValue)
}

// DefaultUKI is the UKI Authenticode hash of the default PCR2 events.
var DefaultUKI = sha256.Sum256([]byte("uki"))

// DefaultPCR2Events are separator, GPT, UKI (DefaultUKI) and kernel.
func DefaultPCR2Events() [][]byte {
	sep := sha256.Sum256([]byte{0, 0, 0, 0})
	gpt := sha256.Sum256([]byte("gpt"))
	kernel := sha256.Sum256([]byte("kernel"))
	return [][]byte{sep[:], gpt[:], DefaultUKI[:], kernel[:]}
}

// DstackGCP returns a dstack-gcp-tdx attestation (version 0) signed by f
// (the TDX quote) and s (the vTPM quote), and f's collateral. s must be
// valid at f.Now.
func (s *Signer) DstackGCP(f *dcaptest.Fixture, o GCPOptions) ([]byte, *collateral.Collateral, error) {
	evs := make([]eventlog.Event, len(o.Events))
	digests := make([][48]byte, len(o.Events))
	for i, e := range o.Events {
		d, err := eventlog.RuntimeDigest(e.Name, e.Payload, e.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("tpmsim: event %d: %w", i, err)
		}
		digests[i] = d
		evs[i] = eventlog.Event{Name: e.Name, Payload: e.Payload, Version: e.Version}
	}
	td := f.QuoteSpec.TD
	td.RTMRs[3] = eventlog.ReplayDigests(digests...)
	td.ReportData = o.ReportData
	if o.TD != nil {
		o.TD(td)
	}
	q, err := f.BuildQuote()
	if err != nil {
		return nil, nil, err
	}
	col, err := f.BuildCollateral()
	if err != nil {
		return nil, nil, err
	}
	pcr0 := o.PCR0
	if pcr0 == nil {
		pcr0, _ = hex.DecodeString(dstack.DefaultGCPFirmwarePCR0)
	}
	pcr2Events := o.PCR2Events
	if pcr2Events == nil {
		pcr2Events = DefaultPCR2Events()
	}
	uki := o.UKI
	if uki == nil {
		uki = DefaultUKI[:]
	}
	var pcr2 [32]byte
	var tevs []dstack.TPMEvent
	for _, d := range pcr2Events {
		pcr2 = tpm.Extend(pcr2, d)
		tevs = append(tevs, dstack.TPMEvent{PCRIndex: 2, Digest: d})
	}
	pcr14, err := tpm.RuntimeReplay(evs)
	if err != nil {
		return nil, nil, err
	}
	pcrs := []tpm.PCRValue{{Index: 0, Value: pcr0}, {Index: 2, Value: pcr2[:]}, {Index: 14, Value: pcr14[:]}}
	if o.PCRs != nil {
		o.PCRs(pcrs)
	}
	bind := sha256.Sum256(q.Raw)
	extra := bind[:]
	if o.ExtraData != nil {
		extra = o.ExtraData(q.Raw)
	}
	msg := Attest(extra, pcrs)
	sig, err := s.Sign(msg)
	if err != nil {
		return nil, nil, err
	}
	tq := &dstack.TPMQuote{Message: msg, Signature: sig, AKCert: s.AKCert.Raw, Platform: 1, EventLog: tevs}
	for _, v := range pcrs {
		tq.PCRValues = append(tq.PCRValues, dstack.TPMPCRValue{Index: uint32(v.Index), Algorithm: "sha256", Value: v.Value})
	}
	cfg, err := GCPConfig(uki)
	if err != nil {
		return nil, nil, err
	}
	a := &dstack.Attestation{Platform: dstack.PlatformGCPTDX, Quote: q.Raw, TPMQuote: tq, RuntimeEvents: o.Events,
		ReportData: o.ReportData, Config: cfg}
	raw, err := a.Marshal()
	return raw, col, err
}

// GCPConfig returns the vm_config JSON of a GCP image whose UKI
// Authenticode hash is uki: os_image_hash = SHA-256 of a checksum file
// listing measurement.gcp.cbor, the CBOR document {version: 1, uki_auth}.
func GCPConfig(uki []byte) (string, error) {
	doc, err := nitrosim.Encode(map[string]any{"version": uint64(1), "uki_auth": uki})
	if err != nil {
		return "", err
	}
	ds := sha256.Sum256(doc)
	checksum := []byte(fmt.Sprintf("%x  measurement.gcp.cbor\n", ds))
	oh := sha256.Sum256(checksum)
	cfg, err := json.Marshal(map[string]any{
		"os_image_hash": hex.EncodeToString(oh[:]),
		"gcp_measurement": map[string]string{
			"checksum_file": base64.StdEncoding.EncodeToString(checksum),
			"measurement":   base64.StdEncoding.EncodeToString(doc),
		},
	})
	return string(cfg), err
}
