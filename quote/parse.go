package quote

import (
	"encoding/binary"
)

// Quote is a parsed DCAP quote. Exactly one of Enclave and TD is set.
type Quote struct {
	Header Header
	// BodyType is the v5 body descriptor's type, or the type the body of
	// a v3/v4 quote implies (SGX enclave report or TD report 1.0).
	BodyType BodyType
	// Enclave is the body of an SGX quote.
	Enclave *EnclaveReport
	// TD is the body of a TDX quote.
	TD *TDReport
	// Signature is the ECDSA signature data.
	Signature *SignatureData

	// Raw is the quote up to the end of its signature data (aliases the
	// input); Trailing holds any bytes after it.
	Raw      []byte
	Trailing []byte

	signedLen int
}

// Signed returns the region covered by the quote signature: header, v5
// body descriptor and body (aliases the input).
func (q *Quote) Signed() []byte { return q.Raw[:q.signedLen] }

// ReportData returns the body's REPORTDATA.
func (q *Quote) ReportData() [64]byte {
	if q.TD != nil {
		return q.TD.ReportData
	}
	return q.Enclave.ReportData
}

// IsTDX reports whether the quote is a TDX quote.
func (q *Quote) IsTDX() bool { return q.Header.TEEType == TEETypeTDX }

// Parse parses a DCAP quote. The returned Quote aliases data. On error it
// returns nil and an error that wraps ErrMalformed or ErrUnsupported (and
// a more specific sentinel where one applies) inside a *ParseError.
func Parse(data []byte) (*Quote, error) {
	c := cursor{b: data}
	q := &Quote{}
	h := &q.Header
	var err error
	if h.Version, err = c.u16("header.version"); err != nil {
		return nil, err
	}
	if h.Version < 3 || h.Version > 5 {
		return nil, perrf("header.version", 0, ErrVersion, "version %d", h.Version)
	}
	kt, err := c.u16("header.attestation_key_type")
	if err != nil {
		return nil, err
	}
	h.AttestationKeyType = AttestationKeyType(kt)
	if h.AttestationKeyType != ECDSA256P256 {
		return nil, perrf("header.attestation_key_type", 2, ErrKeyType, "key type %d, want 2 (ECDSA-256-with-P-256)", kt)
	}
	tt, err := c.u32("header.tee_type")
	if err != nil {
		return nil, err
	}
	h.TEEType = TEEType(tt)
	if h.TEEType != TEETypeSGX && h.TEEType != TEETypeTDX {
		return nil, perrf("header.tee_type", 4, ErrTEEType, "tee type %#x", tt)
	}
	if h.TEEType == TEETypeTDX && h.Version == 3 {
		return nil, perrf("header.version", 0, ErrVersion, "TDX quotes are version 4 or 5, got 3")
	}
	if h.QESVN, err = c.u16("header.qe_svn"); err != nil {
		return nil, err
	}
	if h.PCESVN, err = c.u16("header.pce_svn"); err != nil {
		return nil, err
	}
	if err := c.array("header.qe_vendor_id", h.QEVendorID[:]); err != nil {
		return nil, err
	}
	if err := c.array("header.user_data", h.UserData[:]); err != nil {
		return nil, err
	}

	// Body type and size.
	switch {
	case h.Version == 5:
		off := c.off()
		bt, err := c.u16("body.type")
		if err != nil {
			return nil, err
		}
		size, err := c.u32("body.size")
		if err != nil {
			return nil, err
		}
		q.BodyType = BodyType(bt)
		switch q.BodyType {
		case BodySGXEnclave:
			if h.TEEType != TEETypeSGX {
				return nil, perrf("body.type", off, ErrBodyType, "SGX body in a TDX quote")
			}
		case BodyTD10, BodyTD15:
			if h.TEEType != TEETypeTDX {
				return nil, perrf("body.type", off, ErrBodyType, "TD body in an SGX quote")
			}
		case BodyTD15EX:
			return nil, perrf("body.type", off, ErrBodyType, "TD report 1.5 EX (type 4) is not supported")
		default:
			return nil, perrf("body.type", off, ErrBodyType, "unknown body type %d", bt)
		}
		if int64(size) != int64(q.BodyType.Size()) {
			return nil, perrf("body.size", off+2, ErrBodySize, "%s is %d bytes, descriptor says %d", q.BodyType, q.BodyType.Size(), size)
		}
	case h.TEEType == TEETypeSGX:
		q.BodyType = BodySGXEnclave
	default:
		q.BodyType = BodyTD10
	}

	body, err := c.take("body", q.BodyType.Size())
	if err != nil {
		return nil, err
	}
	if q.BodyType == BodySGXEnclave {
		q.Enclave = &EnclaveReport{}
		decodeEnclaveReport(body, q.Enclave)
	} else {
		q.TD = &TDReport{}
		decodeTDReport(body, q.TD)
	}
	q.signedLen = c.pos

	sigLen, err := c.u32("signature_data.size")
	if err != nil {
		return nil, err
	}
	sdOff := c.off()
	if int64(sigLen) > int64(len(data)-c.pos) {
		return nil, perrf("signature_data", sdOff, ErrTruncated, "size %d, have %d bytes", sigLen, len(data)-c.pos)
	}
	sdRaw, _ := c.take("signature_data", int(sigLen))
	if q.Signature, err = parseSigData(sdRaw, sdOff, h.Version); err != nil {
		return nil, err
	}
	q.Raw = data[:c.pos:c.pos]
	q.Trailing = data[c.pos:]
	return q, nil
}

func decodeEnclaveReport(b []byte, r *EnclaveReport) {
	r.Raw = b
	copy(r.CPUSVN[:], b[0:16])
	r.MiscSelect = binary.LittleEndian.Uint32(b[16:20])
	copy(r.Reserved1[:], b[20:48])
	copy(r.Attributes[:], b[48:64])
	copy(r.MREnclave[:], b[64:96])
	copy(r.Reserved2[:], b[96:128])
	copy(r.MRSigner[:], b[128:160])
	copy(r.Reserved3[:], b[160:256])
	r.ISVProdID = binary.LittleEndian.Uint16(b[256:258])
	r.ISVSVN = binary.LittleEndian.Uint16(b[258:260])
	copy(r.Reserved4[:], b[260:320])
	copy(r.ReportData[:], b[320:384])
}

func decodeTDReport(b []byte, r *TDReport) {
	r.Raw = b
	copy(r.TEETCBSVN[:], b[0:16])
	copy(r.MRSEAM[:], b[16:64])
	copy(r.MRSignerSEAM[:], b[64:112])
	copy(r.SEAMAttributes[:], b[112:120])
	copy(r.TDAttributes[:], b[120:128])
	copy(r.XFAM[:], b[128:136])
	copy(r.MRTD[:], b[136:184])
	copy(r.MRConfigID[:], b[184:232])
	copy(r.MROwner[:], b[232:280])
	copy(r.MROwnerConfig[:], b[280:328])
	for i := range r.RTMRs {
		copy(r.RTMRs[i][:], b[328+48*i:376+48*i])
	}
	copy(r.ReportData[:], b[520:584])
	if len(b) >= TDReport15Size {
		r.TD15 = true
		copy(r.TEETCBSVN2[:], b[584:600])
		copy(r.MRServiceTD[:], b[600:648])
	}
}
