package collateral

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"

	"github.com/tdproof/tdproof/pckcert"
)

// CRL is a certificate revocation list with its DER bytes. A CRL from
// ParseCRL is a value: neither DER nor List may be modified afterwards
// (its digest is computed once, when it is parsed).
type CRL struct {
	// DER is the exact DER encoding (its signature covers DER's TBS part).
	DER  []byte
	List *x509.RevocationList

	// sum is SHA-256(DER) when parsed is set.
	sum    [32]byte
	parsed bool
}

// Digest returns SHA-256 of DER: the digest computed by ParseCRL, or, for
// a CRL built by hand, one computed now. Verifiers key their caches by it
// so that looking up a known CRL costs nothing proportional to its size.
func (c *CRL) Digest() [32]byte {
	if c.parsed {
		return c.sum
	}
	return sha256.Sum256(c.DER)
}

// ParseCRL parses a CRL given as DER, PEM ("X509 CRL"), or hex text of the
// DER (as PCCS serves the root CA CRL).
func ParseCRL(data []byte) (*CRL, error) {
	der := data
	t := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		block, rest := pem.Decode(t)
		if block == nil || block.Type != "X509 CRL" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: crl: expected one PEM X509 CRL block", ErrMalformed)
		}
		der = block.Bytes
	case len(t) > 0 && isHex(t):
		der = make([]byte, hex.DecodedLen(len(t)))
		if _, err := hex.Decode(der, t); err != nil {
			return nil, fmt.Errorf("%w: crl: hex: %w", ErrMalformed, err)
		}
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%w: crl: %w", ErrMalformed, err)
	}
	return &CRL{DER: der, List: l, sum: sha256.Sum256(der), parsed: true}, nil
}

func isHex(t []byte) bool {
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Chain is an issuer certificate chain, leaf first, with its PEM text.
type Chain struct {
	PEM   string
	Certs []*x509.Certificate
}

// ParseChain parses an issuer chain given as PEM or as the URL-encoded
// PEM of PCS response headers (decoded with path unescaping, so a literal
// '+' stays '+').
func ParseChain(s string) (*Chain, error) {
	text := s
	if !strings.Contains(s, "-----BEGIN") || strings.Contains(s, "%") {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, fmt.Errorf("%w: issuer chain: %w", ErrMalformed, err)
		}
		text = u
	}
	certs, err := pckcert.ParseChainPEM([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: issuer chain: %w", ErrMalformed, err)
	}
	return &Chain{PEM: text, Certs: certs}, nil
}

// Leaf returns the first certificate.
func (c *Chain) Leaf() *x509.Certificate { return c.Certs[0] }
