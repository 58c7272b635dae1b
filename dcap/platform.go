package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"

	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// verifiedPlatform is a PCK chain plus QE report whose signatures and
// binding have been checked; it depends only on the bytes it holds
// copies of and the root. Revocation and validity windows are checked per
// call.
type verifiedPlatform struct {
	root                       *x509.Certificate
	chainPEM, qeReport, qeAuth []byte
	qeSig                      [64]byte
	attKeyRaw                  [64]byte
	leaf, intermediate         *x509.Certificate
	ext                        *pckcert.Extension
	caType                     pckcert.CAType
	attKey                     *ecdsa.PublicKey
	leafSerial, interSerial    string // revocation lookup keys
	window                     window // leaf and PCK CA validity
}

func (p *verifiedPlatform) sameBytes(chainPEM []byte, sd *quote.SignatureData, root *x509.Certificate) bool {
	return p.qeSig == sd.QEReportSignature && p.attKeyRaw == sd.AttestationKey &&
		bytes.Equal(p.qeReport, sd.QEReport.Raw) && bytes.Equal(p.qeAuth, sd.QEAuthData) &&
		bytes.Equal(p.chainPEM, chainPEM) && bytes.Equal(p.root.Raw, root.Raw)
}

// pckChainPEM returns the PEM PCK chain of the quote, or of the
// collateral for certification data types 2 and 3.
func pckChainPEM(q *quote.Quote, pckChain []byte) ([]byte, error) {
	cd := q.Signature.Certification
	switch cd.Type {
	case quote.CertPCKChain:
		return cd.PCKChain, nil
	case quote.CertPPIDRSA2048, quote.CertPPIDRSA3072, quote.CertPPIDCleartext:
		if len(pckChain) == 0 {
			return nil, stepErr("pck chain", ErrCollateral, "quote carries %v; the PCK certificate chain must come with the collateral", cd.Type)
		}
		return pckChain, nil
	}
	return nil, stepErr("pck chain", ErrChain, "certification data type %v carries no PCK chain", cd.Type)
}

var pemEnd = []byte("-----END CERTIFICATE-----")

// decodePEMChain splits PEM text into DER blocks without parsing them.
// For a cached session, blocks whose exact text was already decoded for a
// verified CA certificate are not decoded again.
func (s *session) decodePEMChain(text []byte) ([][]byte, error) {
	var out [][]byte
	rest := bytes.TrimRight(text, "\x00")
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if len(out) == 3 {
			return nil, stepErr("pck chain", ErrChain, "PCK chain has more than 3 certificates")
		}
		end := bytes.Index(rest, pemEnd)
		if end < 0 {
			return nil, stepErr("pck chain", ErrChain, "PCK chain holds data that is not a PEM certificate")
		}
		block := rest[:end+len(pemEnd)]
		rest = rest[end+len(pemEnd):]
		if der := s.knownPEM(block); der != nil {
			out = append(out, der)
			continue
		}
		b, tail := pem.Decode(block)
		if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(tail)) != 0 {
			return nil, stepErr("pck chain", ErrChain, "PCK chain holds data that is not a PEM certificate")
		}
		out = append(out, b.Bytes)
	}
	return out, nil
}

// knownPEM returns the DER of a CA certificate block seen before, or nil.
func (s *session) knownPEM(block []byte) []byte {
	if s.cache == nil {
		return nil
	}
	s.cache.mu.RLock()
	der := s.cache.pemBlocks[string(block)]
	s.cache.mu.RUnlock()
	return der
}

// rememberPEM records the DER of the CA certificate blocks of a verified
// chain (the root and the PCK CA).
func (s *session) rememberPEM(text []byte, ders [][]byte) {
	if s.cache == nil {
		return
	}
	rest := bytes.TrimRight(text, "\x00")
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if len(s.cache.pemBlocks) >= s.cache.maxEntries {
		clear(s.cache.pemBlocks)
	}
	for i := 0; len(rest) > 0 && i < len(ders); i++ {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		end := bytes.Index(rest, pemEnd)
		if end < 0 {
			return
		}
		if block := rest[:end+len(pemEnd)]; i > 0 && s.cache.pemBlocks[string(block)] == nil { // CA blocks only
			s.cache.pemBlocks[string(block)] = ders[i]
		}
		rest = rest[end+len(pemEnd):]
	}
}

// verifyPlatform checks the PCK chain (leaf ← PCK CA ← trusted root), the
// QE report signature and the QE report binding of the attestation key.
func (s *session) verifyPlatform(q *quote.Quote, chainPEM []byte) (*verifiedPlatform, error) {
	sd := q.Signature
	ders, err := s.decodePEMChain(chainPEM)
	if err != nil {
		return nil, err
	}
	if len(ders) != 3 {
		return nil, stepErr("pck chain", ErrChain, "PCK chain has %d certificates, want 3", len(ders))
	}
	if !bytes.Equal(ders[2], s.root.Raw) {
		return nil, stepErr("pck chain", ErrChain, "PCK chain does not end in the trusted root")
	}
	if err := s.checkRootName("pck chain"); err != nil {
		return nil, err
	}
	inter, err := s.intermediate(ders[1])
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, stepErr("pck chain", ErrChain, "PCK certificate: %w", err)
	}
	if !strings.Contains(leaf.Subject.CommonName, cnPCKLeaf) {
		return nil, stepErr("pck chain", ErrChain, "PCK certificate CN %q does not contain %q", leaf.Subject.CommonName, cnPCKLeaf)
	}
	if !bytes.Equal(leaf.RawIssuer, inter.RawSubject) {
		return nil, stepErr("pck chain", ErrChain, "PCK certificate is not issued by the chain's PCK CA")
	}
	if err := leaf.CheckSignatureFrom(inter); err != nil {
		return nil, stepErr("pck chain", ErrChain, "PCK certificate signature: %w", err)
	}
	ext, err := pckcert.FromCertificate(leaf)
	if err != nil {
		return nil, stepErr("pck chain", ErrChain, "PCK certificate: %w", err)
	}
	caType, _ := pckCAType(inter) // known: s.intermediate checked it
	if err := checkScalable(ext, caType); err != nil {
		return nil, err
	}
	pub := ecdsaKey(leaf)
	if !verifyRawP256(pub, sd.QEReport.Raw, &sd.QEReportSignature) {
		return nil, stepErr("qe report", ErrQEReportSignature, "not signed by the PCK key")
	}
	h := sha256.New()
	h.Write(sd.AttestationKey[:])
	h.Write(sd.QEAuthData)
	var want [32]byte
	h.Sum(want[:0])
	// Intel compares the first 32 bytes only (dcap.md §1.7).
	if !bytes.Equal(sd.QEReport.ReportData[:32], want[:]) {
		return nil, stepErr("qe report", ErrQEReportData, "REPORTDATA[0:32] is not SHA-256(attestation key ‖ QE auth data)")
	}
	attKey, err := parseRawP256(&sd.AttestationKey)
	if err != nil {
		return nil, stepErr("quote", ErrQuoteSignature, "attestation key: %w", err)
	}
	s.rememberPEM(chainPEM, ders)
	p := &verifiedPlatform{
		root: s.root, chainPEM: chainPEM, qeReport: sd.QEReport.Raw, qeAuth: sd.QEAuthData,
		qeSig: sd.QEReportSignature, attKeyRaw: sd.AttestationKey,
		leaf: leaf, intermediate: inter, ext: ext, caType: caType, attKey: attKey,
		leafSerial: serialKey(leaf), interSerial: serialKey(inter),
	}
	p.window.cert(leaf)
	p.window.cert(inter)
	return p, nil
}

// checkScalable applies Intel's rule for the PCK certificate of a
// Scalable (or ScalableWithIntegrity) platform: Intel reads it as a
// Platform CA certificate, whose SGX extension carries the platform
// instance ID and the configuration, and fails it
// (PCK_CERT_UNSUPPORTED_FORMAT) when they are missing, which is what a
// Processor CA certificate looks like. tdproof also rejects a Processor CA
// certificate that claims a Scalable platform with those fields present:
// Intel's Processor CA issues none, and the pair contradicts itself.
func checkScalable(ext *pckcert.Extension, ca pckcert.CAType) error {
	if ext.SGXType != pckcert.SGXTypeScalable && ext.SGXType != pckcert.SGXTypeScalableWithIntegrity {
		return nil
	}
	if ca == pckcert.CAProcessor {
		return stepErr("pck chain", ErrPCKCertUnsupported, "SGX type %v in a certificate issued by the Processor CA", ext.SGXType)
	}
	if ext.PlatformInstanceID == nil || ext.Configuration == nil {
		return stepErr("pck chain", ErrPCKCertUnsupported, "SGX type %v without the platform instance ID and configuration of a Platform CA certificate", ext.SGXType)
	}
	return nil
}

func (p *verifiedPlatform) detach() {
	p.chainPEM = bytes.Clone(p.chainPEM)
	p.qeReport = bytes.Clone(p.qeReport)
	p.qeAuth = bytes.Clone(p.qeAuth)
}

func (s *session) platform(q *quote.Quote, chainPEM []byte) (*verifiedPlatform, error) {
	if s.cache == nil {
		return s.verifyPlatform(q, chainPEM)
	}
	key := q.Signature.QEReportSignature
	s.cache.mu.RLock()
	p := s.cache.platforms[key]
	s.cache.mu.RUnlock()
	if p != nil && p.sameBytes(chainPEM, q.Signature, s.root) {
		return p, nil
	}
	p, err := s.verifyPlatform(q, chainPEM)
	if err != nil {
		return nil, err
	}
	p.detach()
	s.cache.mu.Lock()
	evictIfFull(s.cache.platforms, s.cache.maxEntries)
	s.cache.platforms[key] = p
	s.cache.mu.Unlock()
	return p, nil
}
