package nitrosim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
)

// DstackOptions describe a dstack attestation (version 0, SCALE) of a
// simulated Nitro document: the document's user_data is ReportData
// unless Doc or Tamper change it.
type DstackOptions struct {
	ReportData [64]byte
	// Events are the runtime events: an enclave's app-id, or NitroTPM's
	// dstack event list (replayed into PCR14).
	Events []dstack.RuntimeEvent
	// Doc, if set, changes the document before the vm_config is derived
	// from it: a consistent attestation of another enclave or instance.
	Doc func(*Doc)
	// Tamper, if set, changes the document after the vm_config was
	// derived: the attestation no longer holds together.
	Tamper func(*Doc)
}

// DstackEnclave returns a dstack-nitro-enclave attestation of a non-debug
// enclave at at whose vm_config os_image_hash is SHA-256(PCR0||PCR1||PCR2)
// of the document, as dstack's /verify requires.
func (ca *CA) DstackEnclave(at time.Time, o DstackOptions) ([]byte, error) {
	d := Enclave(at, o.ReportData[:])
	if o.Doc != nil {
		o.Doc(&d)
	}
	h := sha256.New()
	for i := 0; i < 3; i++ {
		h.Write(d.PCRs[i])
	}
	cfg, err := json.Marshal(map[string]string{"os_image_hash": hex.EncodeToString(h.Sum(nil))})
	if err != nil {
		return nil, err
	}
	return ca.dstack(dstack.PlatformNitroEnclave, d, o, string(cfg))
}

// DstackNitroTPM returns a dstack-aws-nitro-tpm attestation of an
// instance at at: PCR14 is the SHA-384 replay of o.Events and the
// vm_config's aws_measurement binds SHA-256(PCR4||PCR7||PCR12) to its
// os_image_hash, as dstack's /verify requires.
func (ca *CA) DstackNitroTPM(at time.Time, o DstackOptions) ([]byte, error) {
	digests := make([][48]byte, len(o.Events))
	for i, e := range o.Events {
		d, err := eventlog.RuntimeDigest(e.Name, e.Payload, e.Version)
		if err != nil {
			return nil, fmt.Errorf("nitrosim: event %d: %w", i, err)
		}
		digests[i] = d
	}
	pcr14 := eventlog.ReplayDigests(digests...)
	d := NitroTPM(at, o.ReportData[:], map[int][]byte{14: pcr14[:]})
	if o.Doc != nil {
		o.Doc(&d)
	}
	cfg, err := AWSConfig(d)
	if err != nil {
		return nil, err
	}
	return ca.dstack(dstack.PlatformAWSNitroTPM, d, o, cfg)
}

// AWSConfig returns the vm_config JSON dstack writes for a NitroTPM
// instance booted as d's PCR4, PCR7 and PCR12 say: os_image_hash =
// SHA-256 of a checksum file listing measurement.aws.cbor, the CBOR
// document {boot_pcr_digest: SHA-256(PCR4||PCR7||PCR12)}.
func AWSConfig(d Doc) (string, error) {
	var boot []byte
	for _, i := range []int{4, 7, 12} {
		boot = append(boot, d.PCRs[i]...)
	}
	bd := sha256.Sum256(boot)
	doc, err := Encode(map[string]any{"boot_pcr_digest": bd[:]})
	if err != nil {
		return "", err
	}
	ds := sha256.Sum256(doc)
	checksum := []byte(fmt.Sprintf("%x  measurement.aws.cbor\n", ds))
	oh := sha256.Sum256(checksum)
	cfg, err := json.Marshal(map[string]any{
		"os_image_hash": hex.EncodeToString(oh[:]),
		"aws_measurement": map[string]string{
			"checksum_file": base64.StdEncoding.EncodeToString(checksum),
			"measurement":   base64.StdEncoding.EncodeToString(doc),
		},
	})
	return string(cfg), err
}

func (ca *CA) dstack(platform string, d Doc, o DstackOptions, cfg string) ([]byte, error) {
	if o.Tamper != nil {
		o.Tamper(&d)
	}
	doc, err := ca.Sign(d)
	if err != nil {
		return nil, err
	}
	a := &dstack.Attestation{Platform: platform, RuntimeEvents: o.Events, ReportData: o.ReportData, Config: cfg}
	if platform == dstack.PlatformNitroEnclave {
		a.NSMQuote = doc
	} else {
		a.NitroTPMDocument = doc
	}
	return a.Marshal()
}
