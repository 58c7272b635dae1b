package dstack

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tdproof/tdproof/tpm"
)

// DefaultGCPFirmwarePCR0 is the SHA-256 PCR0 of the GCP OVMF build dstack
// accepts ("GCP OVMF v2", multi-tee.md §5.2). It is a reference value,
// not a constant of the protocol: Options.GCPFirmwarePCR0 replaces it
// when GCP ships new firmware.
const DefaultGCPFirmwarePCR0 = "0cca9ec161b09288802e5a112255d21340ed5b797f5fe29cecccfd8f67b9f802"

// gcpSeparator is SHA-256 of the EV_SEPARATOR data 00000000.
var gcpSeparator = sha256.Sum256([]byte{0, 0, 0, 0})

// GCPOptions are the GCP vTPM settings of [Options].
type GCPOptions struct {
	// FirmwarePCR0 lists the accepted vTPM PCR0 values (hex); nil means
	// [DefaultGCPFirmwarePCR0] only.
	FirmwarePCR0 []string
	// TPMRoot and TPMIntermediates replace Google's pinned EK/AK CA.
	TPMRoot          *x509.Certificate
	TPMIntermediates []*x509.Certificate
	// Revocation, when set, checks the verified AK chain against the CRLs
	// it returns (tpm.Options.Revocation).
	Revocation func(chain []*x509.Certificate) ([]*x509.RevocationList, error)
}

// GCPFacts is what the verified vTPM quote says.
type GCPFacts struct {
	// PCRs are the quoted SHA-256 PCRs.
	PCRs map[int]HexBytes `json:"pcrs"`
	// ReplayedPCRs are the PCRs whose event-log digests replayed.
	ReplayedPCRs []int `json:"replayed_pcrs"`
	// PCR14Replayed is the SHA-256 replay of the runtime events.
	PCR14Replayed HexBytes `json:"pcr14_replayed"`
	// UKIAuth is the measurement document's UKI Authenticode hash, found
	// among the PCR2 events.
	UKIAuth HexBytes `json:"uki_auth"`
	// AKSubject is the AK certificate's subject.
	AKSubject string `json:"ak_subject"`
}

// checkGCP verifies the vTPM half of a dstack-gcp-tdx attestation after
// the TDX half passed (multi-tee.md §5.2 steps 2–5, §5.3): the TPM quote
// (AK chain, signature, PCR digest, event replay), its binding to the TDX
// quote (extraData = SHA-256 of the raw TDX quote), PCR14 = SHA-256
// replay of the runtime events, and the OS image: gcp_measurement bound
// to os_image_hash, PCR0 an accepted firmware value, the UKI hash among
// the PCR2 events. It rewrites tee_variant and the identity.
func checkGCP(ev *Evidence, res *Result, opts Options) error {
	a := ev.Attestation
	q := a.TPMQuote
	if q == nil {
		return fmt.Errorf("%w: gcp-tdx attestation without a TPM quote", ErrMalformed)
	}
	if int(q.Platform) != 1 {
		return fmt.Errorf("%w: TPM quote platform %d, want gcp", ErrQuote, q.Platform)
	}
	tq := &tpm.Quote{Message: q.Message, Signature: q.Signature, AKCert: q.AKCert}
	for _, v := range q.PCRValues {
		if !strings.EqualFold(v.Algorithm, "sha256") {
			return fmt.Errorf("%w: PCR%d algorithm %q, want sha256", ErrQuote, v.Index, v.Algorithm)
		}
		tq.PCRs = append(tq.PCRs, tpm.PCRValue{Index: int(v.Index), Value: v.Value})
	}
	for _, e := range q.EventLog {
		tq.Events = append(tq.Events, tpm.Event{PCR: int(e.PCRIndex), Digest: e.Digest})
	}
	bind := sha256.Sum256(a.Quote)
	tr, err := tpm.Verify(tq, tpm.Options{Time: opts.Now, Root: opts.GCP.TPMRoot, Intermediates: opts.GCP.TPMIntermediates, ExtraData: bind[:],
		Revocation: opts.GCP.Revocation})
	if errors.Is(err, tpm.ErrExtraData) {
		return fmt.Errorf("%w: tpm qualified_data mismatch: %w", ErrReportData, err)
	}
	if err != nil {
		return fmt.Errorf("%w: TPM quote: %w", ErrQuote, err)
	}
	facts := &GCPFacts{PCRs: map[int]HexBytes{}, ReplayedPCRs: tr.Replayed, AKSubject: tr.Chain[0].Subject.String()}
	for i, v := range tr.PCRs {
		facts.PCRs[i] = HexBytes(v)
	}
	pcr14, err := tpm.RuntimeReplay(ev.RuntimeEvents)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEventLog, err)
	}
	facts.PCR14Replayed = HexBytes(bytes.Clone(pcr14[:]))
	if v := tr.PCRs[14]; v == nil || !bytes.Equal(v, pcr14[:]) {
		return fmt.Errorf("%w: PCR14 mismatch, quoted: %x, replayed: %x", ErrEventLog, v, pcr14)
	}
	pcr0, pcr2 := tr.PCRs[0], tr.PCRs[2]
	if pcr0 == nil || pcr2 == nil {
		return fmt.Errorf("%w: the TPM quote does not cover PCR0 and PCR2", ErrQuote)
	}
	if !slices.Contains(tr.Replayed, 2) {
		return fmt.Errorf("%w: no PCR2 events to find the UKI in", ErrEventLog)
	}
	if ev.VMConfig == nil {
		return fmt.Errorf("%w: no vm_config", ErrOSImageHash)
	}
	var cfg struct {
		GCP *TDXMeasurement `json:"gcp_measurement"`
	}
	if err := json.Unmarshal(ev.VMConfig.Raw, &cfg); err != nil || cfg.GCP == nil {
		return fmt.Errorf("%w: vm_config has no gcp_measurement", ErrOSImageHash)
	}
	doc, err := boundMeasurement(cfg.GCP, ev.VMConfig.OSImageHash, "measurement.gcp.cbor")
	if err != nil {
		return err
	}
	var m struct {
		Version uint64 `cbor:"version"`
		UKIAuth []byte `cbor:"uki_auth"`
	}
	if err := strictCBOR.Unmarshal(doc, &m); err != nil || len(m.UKIAuth) != 32 {
		return fmt.Errorf("%w: measurement.gcp.cbor: not {version, uki_auth: bytes(32)}", ErrOSImageHash)
	}
	if m.Version != 1 {
		return fmt.Errorf("%w: measurement.gcp.cbor version %d", ErrUnsupported, m.Version)
	}
	facts.UKIAuth = HexBytes(m.UKIAuth)
	refs := opts.GCP.FirmwarePCR0
	if refs == nil {
		refs = []string{DefaultGCPFirmwarePCR0}
	}
	if !slices.Contains(refs, hex.EncodeToString(pcr0)) {
		return fmt.Errorf("%w: PCR 0 %x is not an accepted GCP firmware value", ErrMeasurement, pcr0)
	}
	if err := findUKI(tq.Events, m.UKIAuth); err != nil {
		return err
	}
	res.GCP = facts
	res.TEEVariant = TEEVariantGCPTDX
	res.OSImageHashVerified = true
	res.ACPITablesVerified = false
	mrKP := mrKeyProvider(res.AppInfo.KeyProviderInfo)
	sys := sha256.Sum256(append(bytes.Clone(ev.VMConfig.OSImageHash), mrKP[:]...))
	agg := sha256.Sum256(append(append(bytes.Clone(pcr0), pcr2...), pcr14[:]...))
	res.AppInfo.MRSystem, res.AppInfo.MRAggregated = HexBytes(sys[:]), HexBytes(agg[:])
	res.BootInfo.TEEVariant = TEEVariantGCPTDX
	res.BootInfo.MRSystem, res.BootInfo.MRAggregated = res.AppInfo.MRSystem, res.AppInfo.MRAggregated
	return nil
}

// findUKI requires uki among the PCR2 digests. dstack's TpmQuote carries
// (PCR, digest) pairs only, so the event type is not available: the UKI
// is found by its digest, and at most one PCR2 event other than the
// separator (the GPT event) may precede it, so that no other boot
// application ran before it. Errors wrap ErrMeasurement.
func findUKI(events []tpm.Event, uki []byte) error {
	before := 0
	for _, e := range events {
		if e.PCR != 2 {
			continue
		}
		if bytes.Equal(e.Digest, uki) {
			if before > 1 {
				return fmt.Errorf("%w: UKI hash found after %d other PCR2 events", ErrMeasurement, before)
			}
			return nil
		}
		if !bytes.Equal(e.Digest, gcpSeparator[:]) {
			before++
		}
	}
	return fmt.Errorf("%w: UKI hash mismatch: uki_auth %x is not among the PCR2 events", ErrMeasurement, uki)
}
