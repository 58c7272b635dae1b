package snp

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"time"
)

// CRLInfo describes the ARK-signed CRL a verification applied.
type CRLInfo struct {
	// Issuer is the common name of the ARK that signed it.
	Issuer string `json:"issuer"`
	// Number is the CRL number (decimal; "" when the CRL has none).
	Number     string    `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update"`
	// NextUpdate is zero when the CRL names none.
	NextUpdate time.Time `json:"next_update,omitzero"`
	// SHA256 is the SHA-256 of the DER CRL, hex.
	SHA256 string `json:"sha256"`
	// Revoked is the number of serials the CRL lists.
	Revoked int `json:"revoked"`
}

// verifiedCRL is a CRL whose signature by an ARK has been checked.
type verifiedCRL struct {
	issuerRaw              []byte
	thisUpdate, nextUpdate time.Time
	revoked                map[string]bool // serial (decimal) → revoked
	info                   CRLInfo
}

// ParseCRL parses a DER (or PEM "X509 CRL") CRL without checking it.
func ParseCRL(b []byte) (*x509.RevocationList, error) {
	crl, err := x509.ParseRevocationList(pemOrDER(b, "X509 CRL"))
	if err != nil {
		return nil, stepErr("crl", ErrCRL, "parse: %v", err)
	}
	return crl, nil
}

// verifyCRL parses raw and checks it against ark. It returns (nil, nil)
// when the CRL is issued by another ARK (a bundle may carry all three).
func verifyCRL(raw []byte, ark *x509.Certificate) (*verifiedCRL, error) {
	crl, err := ParseCRL(raw)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(crl.RawIssuer, ark.RawSubject) {
		return nil, nil
	}
	switch crl.SignatureAlgorithm {
	case x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
	default:
		return nil, stepErr("crl", ErrCRL, "signature algorithm %s", crl.SignatureAlgorithm)
	}
	if err := ark.CheckSignature(crl.SignatureAlgorithm, crl.RawTBSRevocationList, crl.Signature); err != nil {
		return nil, stepErr("crl", ErrCRL, "signature by %q: %v", ark.Subject.CommonName, err)
	}
	v := &verifiedCRL{issuerRaw: crl.RawIssuer, thisUpdate: crl.ThisUpdate, nextUpdate: crl.NextUpdate, revoked: map[string]bool{}}
	for _, e := range crl.RevokedCertificateEntries {
		v.revoked[e.SerialNumber.String()] = true
	}
	sum := sha256.Sum256(crl.Raw)
	v.info = CRLInfo{Issuer: ark.Subject.CommonName, ThisUpdate: crl.ThisUpdate.UTC(), NextUpdate: crl.NextUpdate.UTC(),
		SHA256: hex.EncodeToString(sum[:]), Revoked: len(v.revoked)}
	if crl.Number != nil {
		v.info.Number = crl.Number.String()
	}
	return v, nil
}

func (v *verifiedCRL) check(ch *chain, now time.Time) error {
	if now.Before(v.thisUpdate) {
		return stepErr("crl", ErrCRL, "CRL of %q issued %s, after the verification time", ch.ark.Subject.CommonName, v.thisUpdate.UTC().Format(time.RFC3339))
	}
	if v.nextUpdate.IsZero() {
		// Without a nextUpdate nothing says when the list stops being
		// current: an old ARK-signed list could be replayed forever
		// (revocation.Check refuses such lists too; AMD's carry one).
		return stepErr("crl", ErrCRL, "CRL of %q has no nextUpdate", ch.ark.Subject.CommonName)
	}
	if now.After(v.nextUpdate) {
		return stepErr("crl", ErrCRL, "CRL of %q expired at %s", ch.ark.Subject.CommonName, v.nextUpdate.UTC().Format(time.RFC3339))
	}
	for _, c := range []*x509.Certificate{ch.ask, ch.vcek} {
		if v.revoked[serial(c)] {
			return stepErr("crl", ErrRevoked, "%q serial %s", c.Subject.CommonName, c.SerialNumber)
		}
	}
	return nil
}

func serial(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return new(big.Int).String()
	}
	return c.SerialNumber.String()
}
