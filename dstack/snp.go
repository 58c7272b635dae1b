package dstack

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// AMD SEV-SNP evidence (multi-tee.md §1.1, §2.1).
const (
	// PlatformSEVSNP is the version 1 platform kind of SEV-SNP evidence;
	// version 0 calls it DstackAmdSevSnp (quote index 3).
	PlatformSEVSNP = "sev-snp"
	// TEEVariantSEVSNP is the tee_variant dstack reports for it.
	TEEVariantSEVSNP = "dstack-amd-sev-snp"

	scaleDstackAmdSevSnp = 3
	// maxCertChain bounds cert_chain entries (real ones have 0–2).
	maxCertChain = 16
)

// SNPQuote is the platform part of SEV-SNP evidence: the raw
// ATTESTATION_REPORT (1184 bytes), the certificate chain as carried ([],
// [ASK, VCEK] in PEM or DER, or [certificate table]) and the MrConfigV3
// document whose hash is HOST_DATA.
type SNPQuote struct {
	Report    []byte
	CertChain [][]byte
	MRConfig  string
}

// snpQuote decodes the version 0 DstackAmdSevSnp quote payload.
func (r *scaleReader) snpQuote() (*SNPQuote, error) {
	q := &SNPQuote{}
	var err error
	if q.Report, err = r.bytes("quote.report"); err != nil {
		return nil, err
	}
	n, err := r.length("quote.cert_chain", 1)
	if err != nil {
		return nil, err
	}
	if n > maxCertChain {
		return nil, malformed("quote.cert_chain", r.off, "%d certificates exceed the limit of %d", n, maxCertChain)
	}
	for i := range n {
		c, err := r.bytes(fmt.Sprintf("quote.cert_chain[%d]", i))
		if err != nil {
			return nil, err
		}
		q.CertChain = append(q.CertChain, c)
	}
	if q.MRConfig, err = r.str("quote.mr_config"); err != nil {
		return nil, err
	}
	return q, nil
}

// appendSNPQuoteSCALE appends the version 0 DstackAmdSevSnp quote.
func (a *Attestation) appendSNPQuoteSCALE(b []byte) ([]byte, error) {
	if len(a.Quote) != 0 || len(a.EventLog) != 0 {
		return nil, fmt.Errorf("%w: SEV-SNP attestation with a TDX quote or event log", ErrMalformed)
	}
	if len(a.SNP.CertChain) > maxCertChain {
		return nil, fmt.Errorf("%w: %d certificates exceed the limit of %d", ErrMalformed, len(a.SNP.CertChain), maxCertChain)
	}
	b = append(b, scaleDstackAmdSevSnp)
	b = appendSCALEBytes(b, a.SNP.Report)
	b = appendCompact(b, uint64(len(a.SNP.CertChain)))
	for _, c := range a.SNP.CertChain {
		b = appendSCALEBytes(b, c)
	}
	return appendSCALEBytes(b, []byte(a.SNP.MRConfig)), nil
}

func (m *mpReader) snpPlatform(a *Attestation, d *mpReader, off int) error {
	if d == nil {
		return malformed("platform", off, "missing field \"data\"")
	}
	q := &SNPQuote{}
	seen, err := d.fields("platform.data", func(k string) (bool, error) {
		var err error
		switch k {
		case "report":
			q.Report, a.ByteArrays, err = d.binary("platform.data.report")
		case "cert_chain":
			var n int
			if n, err = d.arrayLen("platform.data.cert_chain"); err != nil {
				return true, err
			}
			if n > maxCertChain {
				return true, malformed("platform.data.cert_chain", d.off(), "%d certificates exceed the limit of %d", n, maxCertChain)
			}
			for i := range n {
				var c []byte
				if c, _, err = d.binary(fmt.Sprintf("platform.data.cert_chain[%d]", i)); err != nil {
					return true, err
				}
				q.CertChain = append(q.CertChain, c)
			}
		case "mr_config":
			q.MRConfig, err = d.str("platform.data.mr_config")
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	if err := d.require("platform.data", off, seen, "report", "cert_chain", "mr_config"); err != nil {
		return err
	}
	a.SNP = q
	return nil
}

func (q *SNPQuote) writeMsgpack(w *mpWriter, asArray bool) {
	w.mapLen(2)
	w.str("kind")
	w.str(PlatformSEVSNP)
	w.str("data")
	w.mapLen(3)
	w.str("report")
	w.bytes(q.Report, asArray)
	w.str("cert_chain")
	w.arrayLen(len(q.CertChain))
	for _, c := range q.CertChain {
		w.bytes(c, asArray)
	}
	w.str("mr_config")
	w.str(q.MRConfig)
}

// snpEvidence is Evidence for an SEV-SNP attestation: no TDX quote (so
// the TDX Verify refuses it), the report data, the config and the
// attestation itself; VerifySNP verifies it. SEV-SNP runtime events are
// carried by older attesters and ignored, as dstack does.
func (a *Attestation) snpEvidence() (*Evidence, error) {
	if len(a.Quote) != 0 || len(a.EventLog) != 0 {
		return nil, malformed("attestation", -1, "SEV-SNP attestation with a TDX quote or event log")
	}
	rd := a.ReportData
	ev := &Evidence{Format: FormatAttestation, ReportData: &rd, Attestation: a}
	if err := ev.setConfig([]byte(a.Config)); err != nil {
		return nil, err
	}
	return ev, nil
}

// Certificate table GUIDs (RFC 4122 byte order, as the table stores
// them).
var (
	guidASK  = mustGUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
	guidVCEK = mustGUID("63da758d-e664-4564-adc5-f4b93be8accd")
	guidVLEK = mustGUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
)

func mustGUID(s string) [16]byte {
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte("-"), nil)))
	if err != nil || len(b) != 16 {
		panic("dstack: bad GUID " + s)
	}
	return [16]byte(b)
}

// SNPCertTable is the endorsement certificates found in a certificate
// table (the kernel/firmware auxiliary blob).
type SNPCertTable struct {
	ASK, VCEK, VLEK []byte
}

// ParseSNPCertTable parses a certificate table: 24-byte entries {GUID,
// offset u32 LE, length u32 LE} ended by an all-zero entry; each entry's
// data must lie after the table header (offset ≥ 24), inside the blob,
// and be non-empty; a GUID may appear once. Unknown GUIDs are skipped.
func ParseSNPCertTable(blob []byte) (*SNPCertTable, error) {
	t := &SNPCertTable{}
	seen := map[[16]byte]bool{}
	for off := 0; ; off += 24 {
		if len(blob)-off < 24 {
			return nil, malformed("cert_chain[0]", off, "certificate table has no terminator")
		}
		var g [16]byte
		copy(g[:], blob[off:])
		o := binary.LittleEndian.Uint32(blob[off+16:])
		n := binary.LittleEndian.Uint32(blob[off+20:])
		if g == ([16]byte{}) && o == 0 && n == 0 {
			break
		}
		if o < 24 || n == 0 || uint64(o)+uint64(n) > uint64(len(blob)) {
			return nil, malformed("cert_chain[0]", off, "certificate table entry offset %d length %d outside the %d-byte blob", o, n, len(blob))
		}
		if seen[g] {
			return nil, malformed("cert_chain[0]", off, "certificate table GUID repeated")
		}
		seen[g] = true
		data := blob[o : o+n]
		switch g {
		case guidASK:
			t.ASK = data
		case guidVCEK:
			t.VCEK = data
		case guidVLEK:
			t.VLEK = data
		}
	}
	return t, nil
}

// SNPCertTableBytes builds a certificate table from its entries (for
// tests and simulators); nil entries are left out.
func SNPCertTableBytes(t *SNPCertTable) []byte {
	type ent struct {
		g [16]byte
		d []byte
	}
	var es []ent
	for _, e := range []ent{{guidASK, t.ASK}, {guidVCEK, t.VCEK}, {guidVLEK, t.VLEK}} {
		if e.d != nil {
			es = append(es, e)
		}
	}
	hdr := 24 * (len(es) + 1)
	b := make([]byte, hdr)
	off := hdr
	for i, e := range es {
		copy(b[24*i:], e.g[:])
		binary.LittleEndian.PutUint32(b[24*i+16:], uint32(off))
		binary.LittleEndian.PutUint32(b[24*i+20:], uint32(len(e.d)))
		b = append(b, e.d...)
		off += len(e.d)
	}
	return b
}
