package dstack

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/nitro"
)

// NitroOptions configure [VerifyNitro].
type NitroOptions struct {
	// Time is the verification time (zero: now); NSM documents are valid
	// for at most an hour after their timestamp.
	Time time.Time
	// MaxAge replaces nitro.DefaultMaxAge.
	MaxAge time.Duration
	// Root replaces the pinned AWS Nitro Enclaves Root-G1.
	Root *x509.Certificate
	// ReportData, when set, must equal the attested report data.
	ReportData *[64]byte
	// Revocation, when set, checks the document's verified chain against
	// the CRLs it returns (nitro.Options.Revocation).
	Revocation func(chain []*x509.Certificate) ([]*x509.RevocationList, error)
}

// NitroFacts is what a verified Nitro document says, kept on the result.
type NitroFacts struct {
	Kind      nitro.Kind       `json:"kind"`
	ModuleID  string           `json:"module_id"`
	Timestamp time.Time        `json:"timestamp"`
	PCRs      map[int]HexBytes `json:"pcrs"`
	Debug     bool             `json:"debug"`
	// DstackDeviceID is the device_id dstack's /verify reports for an
	// enclave: SHA-256 of module_id up to its first '-' (always
	// SHA-256("i"); multi-tee.md §3.4). AppInfo.DeviceID is SHA-256 of
	// the whole module_id instead.
	DstackDeviceID HexBytes `json:"dstack_device_id"`
	// PCR14Replayed is the SHA-384 replay of the runtime events
	// (NitroTPM only).
	PCR14Replayed HexBytes `json:"pcr14_replayed,omitempty"`
	// BootPCRDigest is SHA-256(PCR4||PCR7||PCR12) (NitroTPM only).
	BootPCRDigest HexBytes `json:"boot_pcr_digest,omitempty"`
}

func (a *Attestation) nitroEvidence() (*Evidence, error) {
	rt, err := a.runtimeEvents()
	if err != nil {
		return nil, err
	}
	rd := a.ReportData
	ev := &Evidence{Format: FormatAttestation, RuntimeEvents: rt, ReportData: &rd, Attestation: a}
	if err := ev.setConfig([]byte(a.Config)); err != nil {
		return nil, err
	}
	return ev, nil
}

// VerifyNitro verifies a dstack-nitro-enclave or dstack-aws-nitro-tpm
// attestation (multi-tee.md §3, §4): the document with package nitro
// (user_data must equal the attested report data, which must in turn
// match an RA-TLS certificate's key, a dstack-pod payload and
// NitroOptions.ReportData), then for NitroTPM the
// SHA-384 replay of every runtime event into PCR14, then the OS image:
// for an enclave SHA-256(PCR0||PCR1||PCR2) must equal the vm_config's
// os_image_hash and a debug enclave (PCR0–2 zero) is rejected; for
// NitroTPM the aws_measurement checksum file must hash to os_image_hash,
// list SHA-256 of the measurement document, whose boot_pcr_digest must
// equal SHA-256(PCR4||PCR7||PCR12). It then derives the identity.
func VerifyNitro(ev *Evidence, opts NitroOptions) (*Result, error) {
	a := ev.Attestation
	if a == nil || (a.Platform != PlatformNitroEnclave && a.Platform != PlatformAWSNitroTPM) {
		return nil, fmt.Errorf("%w: not a Nitro attestation", ErrUnsupported)
	}
	kind, doc := nitro.KindEnclave, a.NSMQuote
	if a.Platform == PlatformAWSNitroTPM {
		kind, doc = nitro.KindNitroTPM, a.NitroTPMDocument
	}
	res, err := nitro.Verify(doc, nitro.Options{Time: opts.Time, MaxAge: opts.MaxAge, Root: opts.Root, Kind: kind,
		UserData: a.ReportData[:], AllowDebug: true, Revocation: opts.Revocation})
	if errors.Is(err, nitro.ErrUserData) {
		return nil, fmt.Errorf("%w: NSM user_data does not match report_data: %w", ErrReportData, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	// user_data (hardware-signed) is the attestation's report data: check
	// every binding the evidence implies against it (RA-TLS certificate
	// key, dstack-pod payload) and the caller's expectation.
	checks, err := checkReportData(ev, a.ReportData, Options{ReportData: opts.ReportData})
	if err != nil {
		return nil, err
	}
	r := &Result{
		MediaType: MediaType, TEEVariant: a.TEEVariant(), EvidenceFormat: ev.Format,
		QuoteVerified: true, ReportData: HexBytes(bytes.Clone(a.ReportData[:])),
		ReportDataChecks: checks, AdvisoryIDs: []string{}, VMConfig: ev.VMConfig,
	}
	facts := &NitroFacts{Kind: res.Kind, ModuleID: res.ModuleID, Timestamp: res.Timestamp(), PCRs: map[int]HexBytes{}, Debug: res.Debug()}
	for i, v := range res.PCRs {
		facts.PCRs[i] = HexBytes(v)
	}
	r.Nitro = facts
	moduleSum := sha256.Sum256([]byte(res.ModuleID))
	first, _, _ := strings.Cut(res.ModuleID, "-")
	dstackSum := sha256.Sum256([]byte(first))
	facts.DstackDeviceID = HexBytes(dstackSum[:])
	id := ReadIdentity(ev.RuntimeEvents)
	r.Identity = id
	var osHash HexBytes
	if ev.VMConfig != nil {
		osHash = ev.VMConfig.OSImageHash
	}
	ai := AppInfo{AppID: id.AppID, DeviceID: HexBytes(moduleSum[:]), OSImageHash: osHash, InitScriptHashes: []HexBytes{}}
	if kind == nitro.KindEnclave {
		h := sha256.New()
		for i := 0; i < 3; i++ {
			h.Write(res.PCR(i))
		}
		mr := HexBytes(h.Sum(nil))
		if res.Debug() {
			return nil, fmt.Errorf("%w: OS image hash verification failed: %w", ErrTDRejected, nitro.ErrDebug)
		}
		if len(osHash) == 0 || !bytes.Equal(osHash, mr) {
			return nil, fmt.Errorf("%w: SHA-256(PCR0||PCR1||PCR2) is %x, vm_config os_image_hash %x", ErrOSImageHash, []byte(mr), []byte(osHash))
		}
		ai.ComposeHash, ai.MRSystem, ai.MRAggregated = osHash, mr, mr
		ai.InstanceID, ai.KeyProviderInfo = HexBytes{}, HexBytes{}
	} else {
		if err := nitroTPMChecks(ev, res, facts, &ai, id); err != nil {
			return nil, err
		}
		r.TCBStatus = "UpToDate"
	}
	r.OSImageHashVerified, r.EventLogVerified = true, true
	r.AppInfo = ai
	r.KeyProvider, _ = ParseKeyProvider(ai.KeyProviderInfo)
	r.BootInfo = BootInfo{TEEVariant: r.TEEVariant, MRAggregated: ai.MRAggregated, OSImageHash: ai.OSImageHash, MRSystem: ai.MRSystem,
		AppID: ai.AppID, ComposeHash: ai.ComposeHash, InstanceID: ai.InstanceID, DeviceID: ai.DeviceID,
		KeyProviderInfo: ai.KeyProviderInfo, TCBStatus: r.TCBStatus, AdvisoryIDs: []string{}}
	return r, nil
}

func nitroTPMChecks(ev *Evidence, res *nitro.Result, facts *NitroFacts, ai *AppInfo, id *Identity) error {
	digests := make([][48]byte, len(ev.RuntimeEvents))
	for i := range ev.RuntimeEvents {
		e := &ev.RuntimeEvents[i]
		d, err := eventlog.RuntimeDigest(e.Name, e.Payload, e.Version)
		if err != nil {
			return fmt.Errorf("%w: runtime event %d: %w", ErrEventLog, i, err)
		}
		digests[i] = d
	}
	pcr14 := eventlog.ReplayDigests(digests...)
	facts.PCR14Replayed = HexBytes(bytes.Clone(pcr14[:]))
	if q := res.PCR(14); q == nil {
		return fmt.Errorf("%w: PCR14 not found", ErrEventLog)
	} else if !bytes.Equal(q, pcr14[:]) {
		return fmt.Errorf("%w: PCR14 mismatch, quoted: %x, replayed: %x", ErrEventLog, q, pcr14)
	}
	var boot []byte
	for _, i := range []int{4, 7, 12} {
		v := res.PCR(i)
		if v == nil {
			return fmt.Errorf("%w: PCR%d not found", ErrMeasurement, i)
		}
		boot = append(boot, v...)
	}
	bootDigest := sha256.Sum256(boot)
	facts.BootPCRDigest = HexBytes(bootDigest[:])
	if ev.VMConfig == nil {
		return fmt.Errorf("%w: no vm_config", ErrOSImageHash)
	}
	var cfg struct {
		AWS *TDXMeasurement `json:"aws_measurement"`
	}
	if err := json.Unmarshal(ev.VMConfig.Raw, &cfg); err != nil || cfg.AWS == nil {
		return fmt.Errorf("%w: vm_config has no aws_measurement", ErrOSImageHash)
	}
	doc, err := boundMeasurement(cfg.AWS, ev.VMConfig.OSImageHash, "measurement.aws.cbor")
	if err != nil {
		return err
	}
	var m struct {
		BootPCRDigest []byte `cbor:"boot_pcr_digest"`
	}
	if err := strictCBOR.Unmarshal(doc, &m); err != nil || len(m.BootPCRDigest) != 32 {
		return fmt.Errorf("%w: measurement.aws.cbor: not {boot_pcr_digest: bytes(32)}", ErrOSImageHash)
	}
	if !bytes.Equal(m.BootPCRDigest, bootDigest[:]) {
		return fmt.Errorf("%w: AWS boot_pcr_digest mismatch: document %x, SHA-256(PCR4||PCR7||PCR12) %x", ErrMeasurement, m.BootPCRDigest, bootDigest)
	}
	mrKP := mrKeyProvider(id.KeyProviderInfo)
	sys := sha256.Sum256(append(bytes.Clone(boot), mrKP[:]...))
	agg := sha256.Sum256(append(bytes.Clone(boot), pcr14[:]...))
	ai.MRSystem, ai.MRAggregated = HexBytes(sys[:]), HexBytes(agg[:])
	ai.ComposeHash, ai.InstanceID, ai.KeyProviderInfo = id.ComposeHash, id.InstanceID, id.KeyProviderInfo
	ai.InitScriptHashes = id.InitScriptHashes
	return nil
}

// mrKeyProvider is dstack's mr_key_provider (as in [MRSystem]): 32 zero
// bytes when info is empty, else SHA-256(info).
func mrKeyProvider(info []byte) [32]byte {
	if len(info) == 0 {
		return [32]byte{}
	}
	return sha256.Sum256(info)
}

var strictCBOR = mustStrictCBOR()

func mustStrictCBOR() cbor.DecMode {
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden,
		TagsMd: cbor.TagsForbidden, ExtraReturnErrors: cbor.ExtraDecErrorUnknownField}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

// boundMeasurement checks that SHA-256(checksum_file) is osImageHash and
// that the checksum file lists SHA-256 of the measurement document under
// name; it returns the document.
func boundMeasurement(m *TDXMeasurement, osImageHash []byte, name string) ([]byte, error) {
	sum := sha256.Sum256(m.ChecksumFile)
	if len(osImageHash) == 0 || !bytes.Equal(sum[:], osImageHash) {
		return nil, fmt.Errorf("%w: SHA-256(checksum_file) %x is not os_image_hash %x", ErrOSImageHash, sum, osImageHash)
	}
	docSum := sha256.Sum256(m.Measurement)
	for _, line := range strings.Split(string(m.ChecksumFile), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.TrimPrefix(f[1], "*") == name {
			if f[0] != hex.EncodeToString(docSum[:]) {
				return nil, fmt.Errorf("%w: checksum file lists %s as %s, document hashes to %x", ErrOSImageHash, name, f[0], docSum)
			}
			return m.Measurement, nil
		}
	}
	return nil, fmt.Errorf("%w: checksum file does not list %s", ErrOSImageHash, name)
}
