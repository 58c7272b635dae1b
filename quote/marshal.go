package quote

import (
	"encoding/binary"
	"errors"
)

// Marshal encodes q from its fields (not from Raw): header, v5 body
// descriptor, body and signature data. It is the inverse of [Parse] for
// every quote Parse accepts, without trailing bytes. Builders of test
// quotes use it together with [SignedBytes].
func (q *Quote) Marshal() ([]byte, error) {
	signed, err := q.SignedBytes()
	if err != nil {
		return nil, err
	}
	sd, err := q.signatureDataBytes()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(signed)+4+len(sd))
	out = append(out, signed...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sd)))
	return append(out, sd...), nil
}

// SignedBytes encodes the region the quote signature covers (header, v5
// body descriptor and body) from q's fields.
func (q *Quote) SignedBytes() ([]byte, error) {
	h := q.Header
	out := make([]byte, 0, HeaderSize+BodyDescriptorSize+TDReport15Size)
	out = binary.LittleEndian.AppendUint16(out, h.Version)
	out = binary.LittleEndian.AppendUint16(out, uint16(h.AttestationKeyType))
	out = binary.LittleEndian.AppendUint32(out, uint32(h.TEEType))
	out = binary.LittleEndian.AppendUint16(out, h.QESVN)
	out = binary.LittleEndian.AppendUint16(out, h.PCESVN)
	out = append(out, h.QEVendorID[:]...)
	out = append(out, h.UserData[:]...)
	if h.Version == 5 {
		out = binary.LittleEndian.AppendUint16(out, uint16(q.BodyType))
		out = binary.LittleEndian.AppendUint32(out, uint32(q.BodyType.Size()))
	}
	switch {
	case q.Enclave != nil && q.TD == nil:
		out = AppendEnclaveReport(out, q.Enclave)
	case q.TD != nil && q.Enclave == nil:
		out = appendTDReport(out, q.TD)
	default:
		return nil, errors.New("quote: marshal: exactly one of Enclave and TD must be set")
	}
	return out, nil
}

func (q *Quote) signatureDataBytes() ([]byte, error) {
	s := q.Signature
	if s == nil {
		return nil, errors.New("quote: marshal: no signature data")
	}
	out := append([]byte(nil), s.Signature[:]...)
	out = append(out, s.AttestationKey[:]...)
	inner := AppendEnclaveReport(nil, &s.QEReport)
	inner = append(inner, s.QEReportSignature[:]...)
	inner = binary.LittleEndian.AppendUint16(inner, uint16(len(s.QEAuthData)))
	inner = append(inner, s.QEAuthData...)
	inner = appendCertData(inner, s.Certification.Type, s.Certification.Data)
	if q.Header.Version == 3 {
		return append(out, inner...), nil
	}
	return appendCertData(out, CertQEReport, inner), nil
}

func appendCertData(out []byte, t CertificationType, data []byte) []byte {
	out = binary.LittleEndian.AppendUint16(out, uint16(t))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	return append(out, data...)
}

// AppendEnclaveReport appends the 384-byte encoding of r's fields to out.
func AppendEnclaveReport(out []byte, r *EnclaveReport) []byte {
	out = append(out, r.CPUSVN[:]...)
	out = binary.LittleEndian.AppendUint32(out, r.MiscSelect)
	out = append(out, r.Reserved1[:]...)
	out = append(out, r.Attributes[:]...)
	out = append(out, r.MREnclave[:]...)
	out = append(out, r.Reserved2[:]...)
	out = append(out, r.MRSigner[:]...)
	out = append(out, r.Reserved3[:]...)
	out = binary.LittleEndian.AppendUint16(out, r.ISVProdID)
	out = binary.LittleEndian.AppendUint16(out, r.ISVSVN)
	out = append(out, r.Reserved4[:]...)
	return append(out, r.ReportData[:]...)
}

func appendTDReport(out []byte, r *TDReport) []byte {
	out = append(out, r.TEETCBSVN[:]...)
	out = append(out, r.MRSEAM[:]...)
	out = append(out, r.MRSignerSEAM[:]...)
	out = append(out, r.SEAMAttributes[:]...)
	out = append(out, r.TDAttributes[:]...)
	out = append(out, r.XFAM[:]...)
	out = append(out, r.MRTD[:]...)
	out = append(out, r.MRConfigID[:]...)
	out = append(out, r.MROwner[:]...)
	out = append(out, r.MROwnerConfig[:]...)
	for i := range r.RTMRs {
		out = append(out, r.RTMRs[i][:]...)
	}
	out = append(out, r.ReportData[:]...)
	if r.TD15 {
		out = append(out, r.TEETCBSVN2[:]...)
		out = append(out, r.MRServiceTD[:]...)
	}
	return out
}
