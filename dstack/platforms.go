package dstack

import (
	"encoding/binary"
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
)

// Platform kinds of VersionedAttestation beyond TDX (multi-tee.md §1.1):
// the version 1 platform.kind strings. Attestation.Platform is empty for
// TDX.
const (
	PlatformGCPTDX       = "gcp-tdx"
	PlatformNitroEnclave = "nitro-enclave"
	PlatformAWSNitroTPM  = "aws-nitro-tpm"
)

// tee_variant strings (multi-tee.md, TeeVariant).
const (
	TEEVariantGCPTDX       = "dstack-gcp-tdx"
	TEEVariantNitroEnclave = "dstack-nitro-enclave"
	TEEVariantAWSNitroTPM  = "dstack-aws-nitro-tpm"
)

// SCALE AttestationQuote discriminants of the other variants.
const (
	scaleDstackGcpTdx       = 1
	scaleDstackNitroEnclave = 2
	scaleDstackAwsNitroTpm  = 4
)

// TPMQuote is dstack's TpmQuote (multi-tee.md §1.2), carried by the
// gcp-tdx platform.
type TPMQuote struct {
	// Message is the marshalled TPMS_ATTEST; Signature the marshalled
	// TPMT_SIGNATURE over it.
	Message   []byte
	Signature []byte
	PCRValues []TPMPCRValue
	// AKCert is the DER AK certificate.
	AKCert []byte
	// Platform is the TpmPlatform enum byte (0 dstack, 1 gcp, 2
	// nitroenclave, 3 aws-ec2).
	Platform byte
	// EventLog holds the (PCR, SHA-256 digest) pairs of the TCG log.
	EventLog []TPMEvent
}

// TPMPCRValue is one quoted PCR.
type TPMPCRValue struct {
	Index     uint32
	Algorithm string
	Value     []byte
}

// TPMEvent is one (PCR, digest) pair of the TCG event log.
type TPMEvent struct {
	PCRIndex uint32
	Digest   []byte
}

// tpmPlatformNames are the serde names of TpmPlatform.
var tpmPlatformNames = []string{"dstack", "gcp", "nitroenclave", "aws-ec2"}

// TEEVariant returns the tee_variant of the attestation's platform.
func (a *Attestation) TEEVariant() string {
	if a.SNP != nil {
		return TEEVariantSEVSNP
	}
	switch a.Platform {
	case PlatformGCPTDX:
		return TEEVariantGCPTDX
	case PlatformNitroEnclave:
		return TEEVariantNitroEnclave
	case PlatformAWSNitroTPM:
		return TEEVariantAWSNitroTPM
	}
	return TEEVariant
}

// platformQuote decodes the version 0 AttestationQuote payload of kind.
func (r *scaleReader) platformQuote(kind byte, a *Attestation) error {
	var err error
	switch kind {
	case scaleDstackTdx:
		return r.tdxQuote(a)
	case scaleDstackGcpTdx:
		a.Platform = PlatformGCPTDX
		if err := r.tdxQuote(a); err != nil {
			return err
		}
		a.TPMQuote, err = r.tpmQuote()
		return err
	case scaleDstackAmdSevSnp:
		a.SNP, err = r.snpQuote()
		return err
	case scaleDstackNitroEnclave:
		a.Platform = PlatformNitroEnclave
		a.NSMQuote, err = r.bytes("quote.nsm_quote")
		return err
	case scaleDstackAwsNitroTpm:
		a.Platform = PlatformAWSNitroTPM
		a.NitroTPMDocument, err = r.bytes("quote.attestation_doc")
		return err
	}
	if kind <= scaleMaxKind {
		return unsupported("quote", 1, "attestation quote kind %d is not supported", kind)
	}
	return malformed("quote", 1, "unknown attestation quote kind %d", kind)
}

// tdxQuote decodes quote and event_log (DstackTdx, and the TdxQuote of
// DstackGcpTdx).
func (r *scaleReader) tdxQuote(a *Attestation) error {
	var err error
	if a.Quote, err = r.bytes("quote.quote"); err != nil {
		return err
	}
	n, err := r.length("quote.event_log", 8+1+1+1)
	if err != nil {
		return err
	}
	if n > MaxEvents {
		return malformed("quote.event_log", r.off, "%d events exceed the limit of %d", n, MaxEvents)
	}
	a.EventLog = make([]eventlog.Event, n)
	for i := range a.EventLog {
		if err := r.tdxEvent(fmt.Sprintf("quote.event_log[%d]", i), &a.EventLog[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *scaleReader) tpmQuote() (*TPMQuote, error) {
	const f = "quote.tpm_quote"
	q := &TPMQuote{}
	var err error
	if q.Message, err = r.bytes(f + ".message"); err != nil {
		return nil, err
	}
	if q.Signature, err = r.bytes(f + ".signature"); err != nil {
		return nil, err
	}
	n, err := r.length(f+".pcr_values", 4+1+1)
	if err != nil {
		return nil, err
	}
	if n > 64 {
		return nil, malformed(f+".pcr_values", r.off, "%d PCR values", n)
	}
	for i := 0; i < n; i++ {
		var v TPMPCRValue
		g := fmt.Sprintf("%s.pcr_values[%d]", f, i)
		if v.Index, err = r.u32(g + ".index"); err != nil {
			return nil, err
		}
		if v.Algorithm, err = r.str(g + ".algorithm"); err != nil {
			return nil, err
		}
		if v.Value, err = r.bytes(g + ".value"); err != nil {
			return nil, err
		}
		q.PCRValues = append(q.PCRValues, v)
	}
	if q.AKCert, err = r.bytes(f + ".ak_cert"); err != nil {
		return nil, err
	}
	if q.Platform, err = r.u8(f + ".platform"); err != nil {
		return nil, err
	}
	if int(q.Platform) >= len(tpmPlatformNames) {
		return nil, malformed(f+".platform", r.off-1, "unknown TPM platform %d", q.Platform)
	}
	if n, err = r.length(f+".event_log", 4+1); err != nil {
		return nil, err
	}
	if n > MaxEvents {
		return nil, malformed(f+".event_log", r.off, "%d events exceed the limit of %d", n, MaxEvents)
	}
	for i := 0; i < n; i++ {
		var e TPMEvent
		g := fmt.Sprintf("%s.event_log[%d]", f, i)
		if e.PCRIndex, err = r.u32(g + ".pcr_index"); err != nil {
			return nil, err
		}
		if e.Digest, err = r.bytes(g + ".digest"); err != nil {
			return nil, err
		}
		q.EventLog = append(q.EventLog, e)
	}
	return q, nil
}

// appendPlatformSCALE appends the version 0 AttestationQuote of a.
func (a *Attestation) appendPlatformSCALE(b []byte) ([]byte, error) {
	if a.SNP != nil {
		return a.appendSNPQuoteSCALE(b)
	}
	switch a.Platform {
	case "", PlatformTDX:
		b = append(b, scaleDstackTdx)
		return a.appendTDXQuoteSCALE(b)
	case PlatformGCPTDX:
		if a.TPMQuote == nil {
			return nil, fmt.Errorf("%w: gcp-tdx attestation without a TPM quote", ErrMalformed)
		}
		b = append(b, scaleDstackGcpTdx)
		b, err := a.appendTDXQuoteSCALE(b)
		if err != nil {
			return nil, err
		}
		q := a.TPMQuote
		b = appendSCALEBytes(b, q.Message)
		b = appendSCALEBytes(b, q.Signature)
		b = appendCompact(b, uint64(len(q.PCRValues)))
		for _, v := range q.PCRValues {
			b = binary.LittleEndian.AppendUint32(b, v.Index)
			b = appendSCALEBytes(b, []byte(v.Algorithm))
			b = appendSCALEBytes(b, v.Value)
		}
		b = appendSCALEBytes(b, q.AKCert)
		b = append(b, q.Platform)
		b = appendCompact(b, uint64(len(q.EventLog)))
		for _, e := range q.EventLog {
			b = binary.LittleEndian.AppendUint32(b, e.PCRIndex)
			b = appendSCALEBytes(b, e.Digest)
		}
		return b, nil
	case PlatformNitroEnclave:
		return appendSCALEBytes(append(b, scaleDstackNitroEnclave), a.NSMQuote), nil
	case PlatformAWSNitroTPM:
		return appendSCALEBytes(append(b, scaleDstackAwsNitroTpm), a.NitroTPMDocument), nil
	}
	return nil, fmt.Errorf("%w: platform %q", ErrUnsupported, a.Platform)
}

func (a *Attestation) appendTDXQuoteSCALE(b []byte) ([]byte, error) {
	b = appendSCALEBytes(b, a.Quote)
	b = appendCompact(b, uint64(len(a.EventLog)))
	for i, e := range a.EventLog {
		if e.Version != 0 || e.Preimage != nil {
			return nil, fmt.Errorf("%w: version 0 attestation cannot carry the version or preimage of event %d", ErrUnsupported, i)
		}
		b = binary.LittleEndian.AppendUint32(b, e.IMR)
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Type))
		b = appendSCALEBytes(b, e.Digest)
		b = appendSCALEBytes(b, []byte(e.Name))
		b = appendSCALEBytes(b, e.Payload)
	}
	return b, nil
}

// otherPlatform decodes the version 1 platform.data of the non-TDX kinds.
// It reports false for kinds it does not know.
func (d *mpReader) otherPlatform(kind string, a *Attestation, off int) (bool, error) {
	switch kind {
	case PlatformSEVSNP:
		return true, d.snpPlatform(a, d, off)
	case PlatformNitroEnclave, PlatformAWSNitroTPM:
		a.Platform = kind
		key := "nsm_quote"
		dst := &a.NSMQuote
		if kind == PlatformAWSNitroTPM {
			key, dst = "attestation_doc", &a.NitroTPMDocument
		}
		seen, err := d.fields("platform.data", func(k string) (bool, error) {
			if k != key {
				return false, nil
			}
			var err error
			*dst, a.ByteArrays, err = d.binary("platform.data." + key)
			return true, err
		})
		if err != nil {
			return true, err
		}
		return true, d.require("platform.data", off, seen, key)
	case PlatformGCPTDX:
		a.Platform = kind
		seen, err := d.fields("platform.data", func(k string) (bool, error) {
			var err error
			switch k {
			case "quote":
				a.Quote, a.ByteArrays, err = d.binary("platform.data.quote")
			case "event_log":
				err = d.eventLog(a)
			case "tpm_quote":
				a.TPMQuote, err = d.tpmQuote()
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return true, err
		}
		return true, d.require("platform.data", off, seen, "quote", "event_log", "tpm_quote")
	}
	return false, nil
}

func (m *mpReader) tpmQuote() (*TPMQuote, error) {
	const f = "platform.data.tpm_quote"
	off := m.off()
	q := &TPMQuote{}
	seen, err := m.fields(f, func(k string) (bool, error) {
		var err error
		switch k {
		case "message":
			q.Message, _, err = m.binary(f + ".message")
		case "signature":
			q.Signature, _, err = m.binary(f + ".signature")
		case "ak_cert":
			q.AKCert, _, err = m.binary(f + ".ak_cert")
		case "platform":
			var s string
			if s, err = m.str(f + ".platform"); err == nil {
				err = malformed(f+".platform", off, "unknown TPM platform %q", s)
				for i, n := range tpmPlatformNames {
					if n == s {
						q.Platform, err = byte(i), nil
					}
				}
			}
		case "pcr_values":
			var n int
			if n, err = m.arrayLen(f + ".pcr_values"); err != nil || n > 64 {
				if err == nil {
					err = malformed(f+".pcr_values", off, "%d PCR values", n)
				}
				return true, err
			}
			for i := 0; i < n && err == nil; i++ {
				var v TPMPCRValue
				g := fmt.Sprintf("%s.pcr_values[%d]", f, i)
				var s map[string]bool
				s, err = m.fields(g, func(k string) (bool, error) {
					var err error
					switch k {
					case "index":
						var u uint64
						u, err = m.uint(g+".index", 1<<31)
						v.Index = uint32(u)
					case "algorithm":
						v.Algorithm, err = m.str(g + ".algorithm")
					case "value":
						v.Value, _, err = m.binary(g + ".value")
					default:
						return false, nil
					}
					return true, err
				})
				if err == nil {
					err = m.require(g, off, s, "index", "algorithm", "value")
				}
				q.PCRValues = append(q.PCRValues, v)
			}
		case "event_log":
			var n int
			if n, err = m.arrayLen(f + ".event_log"); err != nil || n > MaxEvents {
				if err == nil {
					err = malformed(f+".event_log", off, "%d events", n)
				}
				return true, err
			}
			for i := 0; i < n && err == nil; i++ {
				var e TPMEvent
				g := fmt.Sprintf("%s.event_log[%d]", f, i)
				var s map[string]bool
				s, err = m.fields(g, func(k string) (bool, error) {
					var err error
					switch k {
					case "pcr_index":
						var u uint64
						u, err = m.uint(g+".pcr_index", 1<<31)
						e.PCRIndex = uint32(u)
					case "digest":
						e.Digest, _, err = m.binary(g + ".digest")
					default:
						return false, nil
					}
					return true, err
				})
				if err == nil {
					err = m.require(g, off, s, "pcr_index", "digest")
				}
				q.EventLog = append(q.EventLog, e)
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	if err := m.require(f, off, seen, "message", "signature", "pcr_values", "ak_cert", "platform", "event_log"); err != nil {
		return nil, err
	}
	return q, nil
}

// writePlatform writes the version 1 "platform" member.
func (a *Attestation) writePlatform(w *mpWriter) error {
	if a.SNP != nil {
		w.str("platform")
		a.SNP.writeMsgpack(w, a.ByteArrays)
		return nil
	}
	kind := a.Platform
	if kind == "" {
		kind = PlatformTDX
	}
	w.str("platform")
	w.mapLen(2)
	w.str("kind")
	w.str(kind)
	w.str("data")
	switch kind {
	case PlatformTDX:
		w.mapLen(2)
		a.writeTDXData(w)
	case PlatformGCPTDX:
		q := a.TPMQuote
		if q == nil {
			return fmt.Errorf("%w: gcp-tdx attestation without a TPM quote", ErrMalformed)
		}
		if int(q.Platform) >= len(tpmPlatformNames) {
			return fmt.Errorf("%w: TPM platform %d", ErrMalformed, q.Platform)
		}
		w.mapLen(3)
		a.writeTDXData(w)
		w.str("tpm_quote")
		w.mapLen(6)
		w.str("message")
		w.bytes(q.Message, false)
		w.str("signature")
		w.bytes(q.Signature, false)
		w.str("pcr_values")
		w.arrayLen(len(q.PCRValues))
		for _, v := range q.PCRValues {
			w.mapLen(3)
			w.str("index")
			w.uint(uint64(v.Index))
			w.str("algorithm")
			w.str(v.Algorithm)
			w.str("value")
			w.bytes(v.Value, false)
		}
		w.str("ak_cert")
		w.bytes(q.AKCert, false)
		w.str("platform")
		w.str(tpmPlatformNames[q.Platform])
		w.str("event_log")
		w.arrayLen(len(q.EventLog))
		for _, e := range q.EventLog {
			w.mapLen(2)
			w.str("pcr_index")
			w.uint(uint64(e.PCRIndex))
			w.str("digest")
			w.bytes(e.Digest, false)
		}
	case PlatformNitroEnclave:
		w.mapLen(1)
		w.str("nsm_quote")
		w.bytes(a.NSMQuote, a.ByteArrays)
	case PlatformAWSNitroTPM:
		w.mapLen(1)
		w.str("attestation_doc")
		w.bytes(a.NitroTPMDocument, a.ByteArrays)
	default:
		return fmt.Errorf("%w: platform %q", ErrUnsupported, a.Platform)
	}
	return nil
}
