package pcs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// Headers of a pckcert response besides the issuer chain.
const (
	HeaderTCBm   = "SGX-TCBm"
	HeaderFMSPC  = "SGX-FMSPC"
	HeaderCAType = "SGX-PCK-Certificate-CA-Type"
)

// PCKCertRequest asks for the PCK certificate of a platform whose quote
// carries an encrypted PPID.
type PCKCertRequest struct {
	// EncryptedPPID is the RSA-OAEP encrypted PPID (256 or 384 bytes).
	EncryptedPPID []byte
	// CPUSVN, PCESVN and PCEID are the platform's raw TCB and PCE ID as
	// the quote's certification data carries them.
	CPUSVN [16]byte
	PCESVN uint16
	PCEID  [2]byte
	// QEID is the quoting enclave ID (the first 16 bytes of the quote
	// header's user data). It is sent to PCCS, which looks platforms up
	// by it, but not to Intel PCS. Zero means absent.
	QEID [16]byte
}

// PCKCertRequestForQuote builds the request for q, whose certification
// data must be of type 2 or 3.
func PCKCertRequestForQuote(q *quote.Quote) (PCKCertRequest, error) {
	if q == nil || q.Signature == nil || q.Signature.Certification.EncryptedPPID == nil {
		return PCKCertRequest{}, fmt.Errorf("%w: the quote carries no encrypted PPID", ErrInvalidKey)
	}
	e := q.Signature.Certification.EncryptedPPID
	r := PCKCertRequest{EncryptedPPID: e.PPID, CPUSVN: e.CPUSVN, PCESVN: e.PCESVN, PCEID: e.PCEID}
	copy(r.QEID[:], q.Header.UserData[:16])
	return r, nil
}

// ID returns a stable identifier of the request (hex, 32 digits), used
// as the file name of cached PCK certificates.
func (r PCKCertRequest) ID() string {
	h := sha256.New()
	h.Write(r.QEID[:])
	h.Write(r.CPUSVN[:])
	h.Write(binary.LittleEndian.AppendUint16(nil, r.PCESVN))
	h.Write(r.PCEID[:])
	h.Write(r.EncryptedPPID)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (r PCKCertRequest) query(withQEID bool) url.Values {
	up := func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
	q := url.Values{}
	q.Set("encrypted_ppid", up(r.EncryptedPPID))
	q.Set("cpusvn", up(r.CPUSVN[:]))
	q.Set("pcesvn", up(binary.LittleEndian.AppendUint16(nil, r.PCESVN)))
	q.Set("pceid", up(r.PCEID[:]))
	if withQEID && r.QEID != [16]byte{} {
		q.Set("qeid", up(r.QEID[:]))
	}
	return q
}

// PCKCert is a verified PCK certificate response.
type PCKCert struct {
	// Chain is the PCK leaf, its PCK CA and the trust anchor, as PEM and
	// parsed; it is what collateral.Collateral.PCKCertChain holds.
	Chain *collateral.Chain
	// TCBm is the SGX-TCBm header: hex of the CPUSVN and PCESVN of the TCB
	// level the certificate was issued for ("" when absent).
	TCBm string
	// FMSPC is read from the leaf's SGX extension, CA from its issuer.
	FMSPC [6]byte
	CA    pckcert.CAType
	// Body and Header are the response as served (Header under Intel's
	// spelling, only the headers above and the issuer chain).
	Body []byte
	// Header maps header names to values.
	Header map[string]string
	// ValidFrom and ValidUntil bound the validity of the three
	// certificates.
	ValidFrom, ValidUntil time.Time
}

// CheckValidity reports whether now is inside the certificates' validity
// (tolerating ClockSkew). The error wraps ErrExpired.
func (p *PCKCert) CheckValidity(now time.Time) error {
	if now.Before(p.ValidFrom.Add(-ClockSkew)) || !now.Before(p.ValidUntil) {
		return invalid(ErrExpired, "pck certificate chain is valid from %s until %s", p.ValidFrom.UTC().Format(time.RFC3339), p.ValidUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// DecodePCKCert parses and verifies a pckcert response: a PEM leaf in
// the body, its issuer chain [PCK CA, root] in the
// SGX-PCK-Certificate-Issuer-Chain header, the leaf signed by the CA and
// carrying the SGX extension. root nil means the Intel SGX Root CA.
// Errors wrap ErrInvalidResponse.
func DecodePCKCert(body []byte, h http.Header, root *x509.Certificate) (*PCKCert, error) {
	if root == nil {
		root = dcap.IntelRoot()
	}
	blk, rest := pem.Decode(bytes.TrimSpace(body))
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, invalid(ErrInvalidResponse, "pck certificate: body is not one PEM certificate")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, invalid(ErrInvalidResponse, "pck certificate: %v", err)
	}
	issuer, name, err := issuerChain(h, root, []string{pckcert.PlatformCACN, pckcert.ProcessorCACN}, collateral.HeaderPCKCertIssuerChain)
	if err != nil {
		return nil, err
	}
	ca := issuer.Certs[0]
	if !bytes.Equal(leaf.RawIssuer, ca.RawSubject) {
		return nil, invalid(ErrIssuerChain, "pck certificate is not issued by the %s of its issuer chain", ca.Subject.CommonName)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, invalid(ErrSignature, "pck certificate: %v", err)
	}
	ext, err := pckcert.FromCertificate(leaf)
	if err != nil {
		return nil, malformed(err)
	}
	p := &PCKCert{FMSPC: ext.FMSPC, CA: pckcert.CATypeOf(ca, true), TCBm: h.Get(HeaderTCBm), Body: body,
		Header: map[string]string{name: h.Get(name)}}
	for _, n := range []string{HeaderTCBm, HeaderFMSPC, HeaderCAType} {
		if v := h.Get(n); v != "" {
			p.Header[n] = v
		}
	}
	if v := h.Get(HeaderFMSPC); v != "" && !strings.EqualFold(v, hex.EncodeToString(ext.FMSPC[:])) {
		return nil, invalid(ErrMismatch, "%s header %s, certificate FMSPC %X", HeaderFMSPC, v, ext.FMSPC[:])
	}
	pemText := string(pem.EncodeToMemory(blk)) + issuer.PEM
	if p.Chain, err = collateral.ParseChain(pemText); err != nil {
		return nil, malformed(err)
	}
	for i, c := range p.Chain.Certs {
		if i == 0 || c.NotBefore.After(p.ValidFrom) {
			p.ValidFrom = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(p.ValidUntil) {
			p.ValidUntil = c.NotAfter
		}
	}
	return p, nil
}

// PCKCert fetches and verifies the PCK certificate for req. Against Intel
// PCS the subscription key (WithSubscriptionKey) is required.
func (c *Client) PCKCert(ctx context.Context, req PCKCertRequest) (*PCKCert, error) {
	if len(req.EncryptedPPID) == 0 {
		return nil, fmt.Errorf("%w: pck certificate request without encrypted PPID", ErrInvalidKey)
	}
	u := c.base + "/sgx/certification/v4/pckcert?" + req.query(!c.intel).Encode()
	var hdr http.Header
	if c.cfg.subscriptionKey != "" {
		hdr = http.Header{HeaderSubscriptionKey: {c.cfg.subscriptionKey}}
	}
	const what = "pck certificate"
	resp, err := c.get(ctx, what, u, hdr)
	if err != nil {
		return nil, err
	}
	p, err := DecodePCKCert(resp.body, resp.header, c.cfg.root)
	if err == nil {
		err = p.CheckValidity(c.cfg.now())
	}
	if err != nil {
		return nil, &Error{Item: what, URL: u, StatusCode: resp.status, Attempts: resp.attempts, Err: err}
	}
	return p, nil
}
