package quote

import (
	"bytes"
	"fmt"
)

// CertificationType is the type of a certification data block.
type CertificationType uint16

// Certification data types (dcap.md §1.6).
const (
	CertPPIDCleartext    CertificationType = 1
	CertPPIDRSA2048      CertificationType = 2
	CertPPIDRSA3072      CertificationType = 3
	CertPCKLeaf          CertificationType = 4
	CertPCKChain         CertificationType = 5
	CertQEReport         CertificationType = 6
	CertPlatformManifest CertificationType = 7
)

func (t CertificationType) String() string {
	switch t {
	case CertPPIDCleartext:
		return "PPID cleartext"
	case CertPPIDRSA2048:
		return "PPID RSA-2048-OAEP"
	case CertPPIDRSA3072:
		return "PPID RSA-3072-OAEP"
	case CertPCKLeaf:
		return "PCK leaf certificate"
	case CertPCKChain:
		return "PCK certificate chain"
	case CertQEReport:
		return "QE report certification data"
	case CertPlatformManifest:
		return "platform manifest"
	}
	return fmt.Sprintf("CertificationType(%d)", uint16(t))
}

// EncryptedPPID is the body of certification data types 2 and 3: the
// PPID encrypted to Intel's key plus the platform TCB needed to fetch the
// PCK certificate from the PCS.
type EncryptedPPID struct {
	// PPID is 256 bytes (type 2) or 384 bytes (type 3); aliases the input.
	PPID   []byte
	CPUSVN [16]byte
	PCESVN uint16
	PCEID  [2]byte
}

// CertificationData is one certification data block.
type CertificationData struct {
	Type CertificationType
	// Data is the block's payload as it appears in the quote (aliases the
	// input).
	Data []byte
	// PCKChain is, for type 5, the PEM chain (leaf first) with any
	// trailing NUL bytes removed; it aliases Data.
	PCKChain []byte
	// EncryptedPPID is set for types 2 and 3.
	EncryptedPPID *EncryptedPPID
}

// SignatureData is the ECDSA quote signature data. For v3 quotes the QE
// report fields appear directly; for v4 and v5 they come from the outer
// certification data of type 6 (QE report certification data) and
// Certification is its inner block.
type SignatureData struct {
	Signature      [SignatureSize]byte
	AttestationKey [PublicKeySize]byte
	// OuterType is CertQEReport for v4/v5 quotes and 0 for v3.
	OuterType         CertificationType
	QEReport          EnclaveReport
	QEReportSignature [SignatureSize]byte
	// QEAuthData aliases the input.
	QEAuthData []byte
	// Certification is the PCK certification data (types 1–5).
	Certification CertificationData
	// Raw is the signature data (after its 4-byte length) as it appears
	// in the quote (aliases the input).
	Raw []byte
}

const maxCertificationDataSize = 1 << 20

// parseSigData parses the signature data region r (without its length
// prefix) of a quote of the given version. base is r's offset in the quote.
func parseSigData(r []byte, base int, version uint16) (*SignatureData, error) {
	c := cursor{b: r, base: base}
	sd := &SignatureData{Raw: r}
	if err := c.array("signature", sd.Signature[:]); err != nil {
		return nil, err
	}
	if err := c.array("attestation_key", sd.AttestationKey[:]); err != nil {
		return nil, err
	}
	if version == 3 {
		if err := parseQEReportCertData(&c, sd); err != nil {
			return nil, err
		}
	} else {
		typ, data, off, err := c.certData("certification_data")
		if err != nil {
			return nil, err
		}
		if typ != CertQEReport {
			return nil, perrf("certification_data.type", off, ErrCertificationType, "outer certification data type %d, want 6 (QE report)", uint16(typ))
		}
		sd.OuterType = typ
		inner := cursor{b: data, base: off + 6}
		if err := parseQEReportCertData(&inner, sd); err != nil {
			return nil, err
		}
		if err := inner.end("qe_report_certification_data"); err != nil {
			return nil, err
		}
	}
	if err := c.end("signature_data"); err != nil {
		return nil, err
	}
	return sd, nil
}

// parseQEReportCertData parses QE report, its signature, the QE
// authentication data and the PCK certification data.
func parseQEReportCertData(c *cursor, sd *SignatureData) error {
	raw, err := c.take("qe_report", EnclaveReportSize)
	if err != nil {
		return err
	}
	decodeEnclaveReport(raw, &sd.QEReport)
	if err := c.array("qe_report_signature", sd.QEReportSignature[:]); err != nil {
		return err
	}
	n, err := c.u16("qe_auth_data.size")
	if err != nil {
		return err
	}
	if sd.QEAuthData, err = c.take("qe_auth_data", int(n)); err != nil {
		return err
	}
	typ, data, doff, err := c.certData("pck_certification_data")
	if err != nil {
		return err
	}
	if typ < CertPPIDCleartext || typ > CertPCKChain {
		return perrf("pck_certification_data.type", doff, ErrCertificationType, "certification data type %d inside QE report certification data", uint16(typ))
	}
	cd := CertificationData{Type: typ, Data: data}
	switch typ {
	case CertPCKChain:
		cd.PCKChain = bytes.TrimRight(data, "\x00")
		if len(cd.PCKChain) == 0 {
			return perrf("pck_certification_data", doff+6, ErrMalformed, "empty PCK certificate chain")
		}
	case CertPPIDRSA2048, CertPPIDRSA3072:
		n := 256
		if typ == CertPPIDRSA3072 {
			n = 384
		}
		ec := cursor{b: data, base: doff + 6}
		e := &EncryptedPPID{}
		if e.PPID, err = ec.take("encrypted_ppid", n); err != nil {
			return err
		}
		if err := ec.array("cpusvn", e.CPUSVN[:]); err != nil {
			return err
		}
		if e.PCESVN, err = ec.u16("pcesvn"); err != nil {
			return err
		}
		if err := ec.array("pceid", e.PCEID[:]); err != nil {
			return err
		}
		if err := ec.end("encrypted_ppid_data"); err != nil {
			return err
		}
		cd.EncryptedPPID = e
	}
	sd.Certification = cd
	return nil
}
