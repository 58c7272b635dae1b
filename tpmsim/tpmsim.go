// Package tpmsim is a software TPM quote signer for tests: a test AK PKI
// (root, intermediate, AK certificate) and builders for TPMS_ATTEST quotes
// and their TPMT_SIGNATURE, in the shape dstack's GCP vTPM quotes have
// (SHA-256 bank, extraData = SHA-256 of the TDX quote). Quotes verify with
// tpm.Options{Root: s.Root, Intermediates: {s.Intermediate}}; the pinned
// Google root never accepts them.
package tpmsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/tdproof/tdproof/tpm"
)

// Signer holds a test AK and its chain.
type Signer struct {
	Root, Intermediate *x509.Certificate
	RootKey, InterKey  *ecdsa.PrivateKey
	AK                 crypto.Signer
	AKCert             *x509.Certificate
}

// EKCertificateOID is 2.23.133.8.1, the EKU the AK certificate carries.
var EKCertificateOID = asn1.ObjectIdentifier{2, 23, 133, 8, 1}

// New makes a test AK PKI valid a day around at. With rsaAK the AK is
// RSA-2048 (RSASSA signatures), else ECDSA P-256, as GCP's ECC AK.
func New(at time.Time, rsaAK bool) (*Signer, error) {
	s := &Signer{}
	var err error
	if s.RootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if s.InterKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if rsaAK {
		s.AK, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		s.AK, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	from, to := at.Add(-24*time.Hour), at.Add(24*time.Hour)
	if s.Root, err = s.issue(1, "tpmsim root", true, from, to, s.RootKey.Public(), nil, s.RootKey, nil); err != nil {
		return nil, err
	}
	if s.Intermediate, err = s.issue(2, "tpmsim intermediate", true, from, to, s.InterKey.Public(), s.Root, s.RootKey, nil); err != nil {
		return nil, err
	}
	if s.AKCert, err = s.IssueAK(from, to, s.AK.Public(), []asn1.ObjectIdentifier{EKCertificateOID}); err != nil {
		return nil, err
	}
	return s, nil
}

// IssueAK issues an AK certificate for pub from the intermediate, with
// the given EKU OIDs (none: no EKU extension).
func (s *Signer) IssueAK(from, to time.Time, pub crypto.PublicKey, eku []asn1.ObjectIdentifier) (*x509.Certificate, error) {
	return s.issue(3, "tpmsim AK", false, from, to, pub, s.Intermediate, s.InterKey, eku)
}

func (s *Signer) issue(serial int64, cn string, isCA bool, from, to time.Time, pub crypto.PublicKey, parent *x509.Certificate, key *ecdsa.PrivateKey, eku []asn1.ObjectIdentifier) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: to, BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature, UnknownExtKeyUsage: eku,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Attest marshals a TPMS_ATTEST quote over the SHA-256 bank selecting
// pcrs' indices, with pcrDigest = SHA-256 of their values in order.
func Attest(extraData []byte, pcrs []tpm.PCRValue) []byte {
	sel := make([]byte, 3)
	h := sha256.New()
	for _, p := range pcrs {
		sel[p.Index/8] |= 1 << (p.Index % 8)
		h.Write(p.Value)
	}
	return AttestRaw(extraData, []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: sel}}, h.Sum(nil))
}

// AttestRaw marshals a TPMS_ATTEST quote with the given selection and
// pcrDigest.
func AttestRaw(extraData []byte, sel []tpm2.TPMSPCRSelection, pcrDigest []byte) []byte {
	name := append([]byte{0x00, 0x0b}, make([]byte, 32)...)
	att := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: name},
		ExtraData:       tpm2.TPM2BData{Buffer: extraData},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, ResetCount: 1, Safe: true},
		FirmwareVersion: 0x2020,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: sel},
			PCRDigest: tpm2.TPM2BDigest{Buffer: pcrDigest},
		}),
	}
	return tpm2.Marshal(&att)
}

// Sign returns the marshalled TPMT_SIGNATURE of msg by the AK
// (SHA-256; RSASSA for RSA, ECDSA for P-256).
func (s *Signer) Sign(msg []byte) ([]byte, error) { return SignWith(s.AK, msg, tpm2.TPMAlgSHA256) }

// SignWith signs msg with key, naming hash in the signature (the digest
// is always SHA-256, so another name yields an unverifiable signature).
func SignWith(key crypto.Signer, msg []byte, hash tpm2.TPMIAlgHash) ([]byte, error) {
	d := sha256.Sum256(msg)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		if err != nil {
			return nil, err
		}
		return tpm2.Marshal(&tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{Hash: hash, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: sig}})}), nil
	case *ecdsa.PrivateKey:
		r, ss, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			return nil, err
		}
		return tpm2.Marshal(&tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{Hash: hash,
				SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: ss.Bytes()}})}), nil
	}
	panic("tpmsim: unsupported key type")
}

// Quote builds a complete signed quote over pcrs with events.
func (s *Signer) Quote(extraData []byte, pcrs []tpm.PCRValue, events []tpm.Event) (*tpm.Quote, error) {
	msg := Attest(extraData, pcrs)
	sig, err := s.Sign(msg)
	if err != nil {
		return nil, err
	}
	return &tpm.Quote{Message: msg, Signature: sig, PCRs: pcrs, AKCert: s.AKCert.Raw, Events: events}, nil
}

// Options returns tpm.Options trusting this PKI at at.
func (s *Signer) Options(at time.Time) tpm.Options {
	return tpm.Options{Time: at, Root: s.Root, Intermediates: []*x509.Certificate{s.Intermediate}}
}

// SetIntermediateCRL re-issues the intermediate (same key, name, serial
// and validity) naming url as its CRL distribution point, as Google's
// EK/AK CA Intermediate does; the root's CRL (RootCRL) then covers it.
func (s *Signer) SetIntermediateCRL(url string) error {
	c := s.Intermediate
	tmpl := &x509.Certificate{SerialNumber: c.SerialNumber, RawSubject: c.RawSubject, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		BasicConstraintsValid: true, IsCA: true, KeyUsage: c.KeyUsage, SubjectKeyId: c.SubjectKeyId, CRLDistributionPoints: []string{url}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.Root, c.PublicKey, s.RootKey)
	if err != nil {
		return err
	}
	if s.Intermediate, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	return nil
}

// RootCRL returns a CRL (DER) of the root, valid from thisUpdate to
// nextUpdate, listing the given serial numbers.
func (s *Signer) RootCRL(thisUpdate, nextUpdate time.Time, revoked ...*big.Int) ([]byte, error) {
	tmpl := &x509.RevocationList{Number: big.NewInt(thisUpdate.Unix()), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, n := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: thisUpdate})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, s.Root, s.RootKey)
}
