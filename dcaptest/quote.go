package dcaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/quote"
)

// QuoteKind selects the quote format of [Platform.DefaultQuoteSpec].
type QuoteKind int

// Quote kinds.
const (
	// SGXQuoteV3 is an SGX v3 quote (the only SGX version all verifiers
	// accept).
	SGXQuoteV3 QuoteKind = iota + 1
	// SGXQuoteV4 is an SGX v4 quote (certification data type 6 wrapping
	// type 5).
	SGXQuoteV4
	// SGXQuoteV5 is an SGX v5 quote with body type 1.
	SGXQuoteV5
	// TDXQuoteV4 is a TDX v4 quote with a TD 1.0 body.
	TDXQuoteV4
	// TDXQuoteV5TD10 is a TDX v5 quote with body type 2 (TD 1.0).
	TDXQuoteV5TD10
	// TDXQuoteV5TD15 is a TDX v5 quote with body type 3 (TD 1.5).
	TDXQuoteV5TD15
)

// String returns the kind's Go name.
func (k QuoteKind) String() string {
	switch k {
	case SGXQuoteV3:
		return "SGXQuoteV3"
	case SGXQuoteV4:
		return "SGXQuoteV4"
	case SGXQuoteV5:
		return "SGXQuoteV5"
	case TDXQuoteV4:
		return "TDXQuoteV4"
	case TDXQuoteV5TD10:
		return "TDXQuoteV5TD10"
	case TDXQuoteV5TD15:
		return "TDXQuoteV5TD15"
	}
	return fmt.Sprintf("QuoteKind(%d)", int(k))
}

// IsTDX reports whether the kind is a TDX quote.
func (k QuoteKind) IsTDX() bool { return k >= TDXQuoteV4 && k <= TDXQuoteV5TD15 }

// QuoteKinds lists every kind.
func QuoteKinds() []QuoteKind {
	return []QuoteKind{SGXQuoteV3, SGXQuoteV4, SGXQuoteV5, TDXQuoteV4, TDXQuoteV5TD10, TDXQuoteV5TD15}
}

// Identities of Intel's quoting enclaves, which default quotes and
// collateral use (dcap.md §3.4).
var (
	// TDQEMRSigner is the MRSIGNER of Intel's TD quoting enclave.
	TDQEMRSigner = [32]byte{
		0xDC, 0x9E, 0x2A, 0x7C, 0x6F, 0x94, 0x8F, 0x17, 0x47, 0x4E, 0x34, 0xA7, 0xFC, 0x43, 0xED, 0x03,
		0x0F, 0x7C, 0x15, 0x63, 0xF1, 0xBA, 0xBD, 0xDF, 0x63, 0x40, 0xC8, 0x2E, 0x0E, 0x54, 0xA8, 0xC5,
	}
	// SGXQEMRSigner is the MRSIGNER of Intel's SGX quoting enclave.
	SGXQEMRSigner = [32]byte{
		0x8C, 0x4F, 0x57, 0x75, 0xD7, 0x96, 0x50, 0x3E, 0x96, 0x13, 0x7F, 0x77, 0xC6, 0x8A, 0x82, 0x9A,
		0x00, 0x56, 0xAC, 0x8D, 0xED, 0x70, 0x14, 0x0B, 0x08, 0x1B, 0x09, 0x44, 0x90, 0xC5, 0x7B, 0xFF,
	}
)

// ISVPRODIDs of Intel's quoting enclaves, and the QE ISVSVN of default
// quotes (the top, UpToDate level of the default QE identity).
const (
	TDQEISVProdID   uint16 = 2
	SGXQEISVProdID  uint16 = 1
	DefaultQEISVSVN uint16 = 4
)

// QuoteSpec describes a quote. [Platform.BuildQuote] uses it literally,
// computing only what the spec says to compute (the QE report data
// binding, both signatures and the default certification data); start
// from [Platform.DefaultQuoteSpec]. BuildQuote does not modify the spec:
// it works on copies of Enclave, TD, QEAuthData and Certification.
type QuoteSpec struct {
	Header quote.Header
	// BodyType is written into the v5 body descriptor; v3/v4 quotes
	// ignore it. The descriptor's size is always BodyType.Size(); use
	// MutateBytes for a wrong one.
	BodyType quote.BodyType
	// Exactly one of Enclave (SGX) and TD (TDX) should be set. A TD 1.5
	// body needs TD.TD15 set.
	Enclave *quote.EnclaveReport
	TD      *quote.TDReport
	// QEReport is the QE report. Its REPORTDATA is overwritten with the
	// binding SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes
	// unless KeepQEReportData is set.
	QEReport         quote.EnclaveReport
	KeepQEReportData bool
	QEAuthData       []byte
	// AttestationKey signs the quote; its public key goes into the
	// signature data. If nil, a P-256 key is generated.
	AttestationKey *ecdsa.PrivateKey
	// PCKKey signs the QE report. If nil, the platform's PCK key.
	PCKKey *ecdsa.PrivateKey
	// Certification is the PCK certification data inside the QE report
	// certification data. If nil, type 5 with the platform's PEM chain
	// (followed by a NUL byte unless NoTrailingNUL is set).
	Certification *quote.CertificationData
	NoTrailingNUL bool
	// Trailing is appended after the signature data (real quote buffers
	// are often zero-padded).
	Trailing []byte

	// MutateBeforeSign, if set, is called on the assembled quote after the
	// QE report data binding is computed and before either signature is
	// made: both signatures then cover the change.
	MutateBeforeSign func(*quote.Quote)
	// MutateAfterSign, if set, is called after both signatures are made
	// and before the quote is marshaled: a change to the header or body
	// breaks the quote signature, a change to the QE report breaks the
	// QE report signature.
	MutateAfterSign func(*quote.Quote)
	// MutateBytes, if set, is applied last to the marshaled quote
	// (including Trailing).
	MutateBytes func([]byte) []byte
}

// Quote is a built quote.
type Quote struct {
	// Raw is the quote's bytes.
	Raw []byte
	// Parsed is quote.Parse(Raw), or nil if a mutation made Raw
	// unparsable (ParseErr then holds the error).
	Parsed   *quote.Quote
	ParseErr error
	// AttestationKey is the key that signed the quote.
	AttestationKey *ecdsa.PrivateKey
}

// DefaultQuoteSpec returns a quote of the given kind that verifies as
// UpToDate under the platform's default collateral
// ([DefaultTDXCollateralSpec], [DefaultSGXCollateralSpec]):
//
//   - header: key type 2, Intel's QE vendor ID, user data = a fixed QE
//     ID; SGX: QE SVN = QE ISVSVN, PCE SVN = the platform's PCESVN;
//     TDX: both 0.
//   - TD body: TEE_TCB_SVN 03 01 02 00… (module SVN 3, major version 1),
//     MRSIGNERSEAM and SEAMATTRIBUTES zero, TDATTRIBUTES with only
//     SEPT_VE_DISABLE (bit 28), XFAM 0x61AE7, fixed non-zero measurements
//     and REPORTDATA; TD 1.5: TEE_TCB_SVN2 = TEE_TCB_SVN, MRSERVICETD zero.
//   - SGX body: the platform's CPUSVN, attributes INIT|MODE64BIT (not
//     DEBUG), fixed MRENCLAVE, MRSIGNER and REPORTDATA.
//   - QE report: the platform's CPUSVN, MISCSELECT 0, attributes 0x15
//     (INIT|MODE64BIT|PROVISIONKEY) with XFRM 0xE7, Intel's TD QE or SGX
//     QE MRSIGNER and ISVPRODID, ISVSVN [DefaultQEISVSVN].
//   - QE auth data: the 32 bytes 00 01 … 1F.
//   - certification data: type 5 PEM chain with a trailing NUL.
//
// An unknown kind gives the zero QuoteSpec, which BuildQuote rejects.
func (p *Platform) DefaultQuoteSpec(kind QuoteKind) QuoteSpec {
	s := QuoteSpec{
		Header: quote.Header{
			AttestationKeyType: quote.ECDSA256P256,
			QEVendorID:         quote.IntelQEVendorID,
		},
		QEReport: quote.EnclaveReport{
			CPUSVN:    *p.Spec.CPUSVN,
			ISVSVN:    DefaultQEISVSVN,
			MREnclave: sha256.Sum256([]byte("dcaptest QE MRENCLAVE")),
		},
	}
	copy(s.Header.UserData[:16], fill(16, "dcaptest QE ID"))
	s.QEReport.Attributes[0] = 0x15
	s.QEReport.Attributes[8] = 0xE7
	for i := range 32 {
		s.QEAuthData = append(s.QEAuthData, byte(i))
	}
	switch kind {
	case SGXQuoteV3, SGXQuoteV4, SGXQuoteV5:
		s.Header.Version = 3 + uint16(kind-SGXQuoteV3)
		s.Header.TEEType = quote.TEETypeSGX
		s.Header.QESVN = DefaultQEISVSVN
		s.Header.PCESVN = p.Spec.PCESVN
		s.BodyType = quote.BodySGXEnclave
		s.QEReport.MRSigner = SGXQEMRSigner
		s.QEReport.ISVProdID = SGXQEISVProdID
		e := &quote.EnclaveReport{
			CPUSVN:    *p.Spec.CPUSVN,
			MREnclave: sha256.Sum256([]byte("dcaptest enclave MRENCLAVE")),
			MRSigner:  sha256.Sum256([]byte("dcaptest enclave MRSIGNER")),
			ISVProdID: 1,
			ISVSVN:    1,
		}
		e.Attributes[0] = 0x05 // INIT | MODE64BIT, not DEBUG
		e.Attributes[8] = 0x03 // XFRM: x87 | SSE
		copy(e.ReportData[:], fill(64, "dcaptest enclave REPORTDATA"))
		s.Enclave = e
	case TDXQuoteV4, TDXQuoteV5TD10, TDXQuoteV5TD15:
		s.Header.TEEType = quote.TEETypeTDX
		s.Header.Version = 4
		s.BodyType = quote.BodyTD10
		switch kind {
		case TDXQuoteV5TD10:
			s.Header.Version = 5
		case TDXQuoteV5TD15:
			s.Header.Version = 5
			s.BodyType = quote.BodyTD15
		}
		s.QEReport.MRSigner = TDQEMRSigner
		s.QEReport.ISVProdID = TDQEISVProdID
		td := &quote.TDReport{
			TEETCBSVN: [16]byte{3, 1, 2},
			TD15:      s.BodyType == quote.BodyTD15,
		}
		copy(td.MRSEAM[:], fill(48, "dcaptest MRSEAM"))
		td.TDAttributes[3] = 0x10           // SEPT_VE_DISABLE (bit 28)
		td.XFAM = [8]byte{0xE7, 0x1A, 0x06} // 0x61AE7, as on real TDs
		copy(td.MRTD[:], fill(48, "dcaptest MRTD"))
		for i := range td.RTMRs {
			copy(td.RTMRs[i][:], fill(48, fmt.Sprintf("dcaptest RTMR%d", i)))
		}
		copy(td.ReportData[:], fill(64, "dcaptest TD REPORTDATA"))
		if td.TD15 {
			td.TEETCBSVN2 = td.TEETCBSVN
		}
		s.TD = td
	default:
		return QuoteSpec{}
	}
	return s
}

// fill returns n deterministic bytes derived from label.
func fill(n int, label string) []byte {
	h := sha512.Sum512([]byte(label))
	return h[:n]
}

// BuildQuote builds and signs a quote:
//
//  1. assemble header, body, QE report, QE auth data, attestation public
//     key and certification data from spec;
//  2. set QE report REPORTDATA to SHA-256(attestation key x‖y ‖ QE auth
//     data) ‖ 32 zero bytes (unless spec.KeepQEReportData);
//  3. call spec.MutateBeforeSign;
//  4. sign the 384 QE report bytes with the PCK key and the quote's
//     signed region (header, v5 body descriptor, body) with the
//     attestation key, both ECDSA P-256 SHA-256 as raw r‖s;
//  5. call spec.MutateAfterSign, marshal with quote.Quote.Marshal, append
//     spec.Trailing, apply spec.MutateBytes.
func (p *Platform) BuildQuote(spec QuoteSpec) (*Quote, error) {
	ak := spec.AttestationKey
	if ak == nil {
		var err error
		if ak, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	pck := spec.PCKKey
	if pck == nil {
		pck = p.PCK.Key
	}
	akRaw, err := RawPublicKey(&ak.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: attestation key: %w", err)
	}
	q := &quote.Quote{
		Header:   spec.Header,
		BodyType: spec.BodyType,
		Signature: &quote.SignatureData{
			AttestationKey: akRaw,
			QEReport:       spec.QEReport,
			QEAuthData:     append([]byte(nil), spec.QEAuthData...),
		},
	}
	q.Signature.QEReport.Raw = nil
	if spec.Header.Version != 3 {
		q.Signature.OuterType = quote.CertQEReport
	}
	if spec.Enclave != nil {
		e := *spec.Enclave
		e.Raw = nil
		q.Enclave = &e
	}
	if spec.TD != nil {
		td := *spec.TD
		td.Raw = nil
		q.TD = &td
	}
	if spec.Certification != nil {
		q.Signature.Certification = *spec.Certification
		q.Signature.Certification.Data = append([]byte(nil), spec.Certification.Data...)
	} else {
		q.Signature.Certification = quote.CertificationData{
			Type: quote.CertPCKChain,
			Data: p.ChainPEM(!spec.NoTrailingNUL),
		}
	}
	if !spec.KeepQEReportData {
		q.Signature.QEReport.ReportData = QEReportData(akRaw, q.Signature.QEAuthData)
	}
	if spec.MutateBeforeSign != nil {
		spec.MutateBeforeSign(q)
	}

	if q.Signature.QEReportSignature, err = SignRaw(pck, quote.AppendEnclaveReport(nil, &q.Signature.QEReport)); err != nil {
		return nil, fmt.Errorf("dcaptest: QE report signature: %w", err)
	}
	signed, err := q.SignedBytes()
	if err != nil {
		return nil, fmt.Errorf("dcaptest: %w", err)
	}
	if q.Signature.Signature, err = SignRaw(ak, signed); err != nil {
		return nil, fmt.Errorf("dcaptest: quote signature: %w", err)
	}
	if spec.MutateAfterSign != nil {
		spec.MutateAfterSign(q)
	}
	raw, err := q.Marshal()
	if err != nil {
		return nil, fmt.Errorf("dcaptest: %w", err)
	}
	raw = append(raw, spec.Trailing...)
	if spec.MutateBytes != nil {
		raw = spec.MutateBytes(raw)
	}
	out := &Quote{Raw: raw, AttestationKey: ak}
	out.Parsed, out.ParseErr = quote.Parse(raw)
	return out, nil
}

// QEReportData returns the QE report data binding an attestation key
// (raw x‖y) and QE auth data: SHA-256(key ‖ auth data) ‖ 32 zero bytes.
func QEReportData(attestationKey [64]byte, authData []byte) [64]byte {
	h := sha256.New()
	h.Write(attestationKey[:])
	h.Write(authData)
	var out [64]byte
	h.Sum(out[:0])
	return out
}

// SignRaw signs SHA-256(msg) with key and returns the signature as raw
// r‖s, each 32 bytes big endian, as quotes and collateral carry it.
func SignRaw(key *ecdsa.PrivateKey, msg []byte) ([64]byte, error) {
	var out [64]byte
	if key == nil {
		return out, errors.New("dcaptest: nil signing key")
	}
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return out, err
	}
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// RawPublicKey returns a P-256 public key as raw x‖y (64 bytes, no 0x04
// prefix), as quotes carry the attestation key.
func RawPublicKey(pub *ecdsa.PublicKey) ([64]byte, error) {
	var out [64]byte
	b, err := pub.Bytes()
	if err != nil {
		return out, err
	}
	if len(b) != 65 || b[0] != 4 {
		return out, errors.New("dcaptest: not a P-256 public key")
	}
	copy(out[:], b[1:])
	return out, nil
}
