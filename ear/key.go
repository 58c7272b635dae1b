package ear

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is an ECDSA P-256 EAR key: a signing key (with its private part) or a
// verification-only public key. Its id is the RFC 7638 JWK thumbprint
// (SHA-256, base64url without padding). A Key is immutable and safe for
// concurrent use. Formatting a Key with fmt prints only its id.
type Key struct {
	priv *ecdsa.PrivateKey // nil for verification-only keys
	pub  *ecdsa.PublicKey
	id   string

	once   sync.Once
	header string // base64url protected header (joseHeader)
	err    error
}

// GenerateKey returns a new P-256 signing key. If rand is nil,
// crypto/rand is used. (Since Go 1.26 crypto/ecdsa ignores rand except
// under testing/cryptotest.)
func GenerateKey(rand io.Reader) (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrKey, err)
	}
	return NewSigningKey(priv)
}

// NewSigningKey wraps a P-256 private key. The Key keeps priv; do not
// modify it afterwards.
func NewSigningKey(priv *ecdsa.PrivateKey) (*Key, error) {
	if priv == nil {
		return nil, fmt.Errorf("%w: nil private key", ErrKey)
	}
	k, err := NewVerificationKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	k.priv = priv
	return k, nil
}

// NewVerificationKey wraps a P-256 public key as a verification-only Key.
func NewVerificationKey(pub *ecdsa.PublicKey) (*Key, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: not a P-256 key", ErrKey)
	}
	raw, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	// Reject points that are not on the curve (Bytes does not check).
	if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	id, err := thumbprint(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return &Key{pub: pub, id: id}, nil
}

// thumbprint computes the RFC 7638 thumbprint of a P-256 public key with
// go-jose (SHA-256 over {"crv","kty","x","y"} in lexicographic order),
// base64url without padding.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// ID returns the key id ("kid"), the RFC 7638 thumbprint.
func (k *Key) ID() string { return k.id }

// Public returns the public key. Do not modify it.
func (k *Key) Public() *ecdsa.PublicKey { return k.pub }

// CanSign reports whether k holds a private key.
func (k *Key) CanSign() bool { return k.priv != nil }

// String returns "ear.Key(<kid>)"; it never prints key material.
func (k *Key) String() string { return "ear.Key(" + k.id + ")" }

// GoString is String, so %#v does not print the private key.
func (k *Key) GoString() string { return k.String() }

// pemPrivate and pemPublic are the PEM block types written by MarshalPEM.
const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
)

// MarshalPEM encodes a signing key as a PKCS#8 "PRIVATE KEY" PEM block and a
// verification-only key as a PKIX "PUBLIC KEY" block. The private form is a
// secret: store it encrypted or with restrictive permissions.
func (k *Key) MarshalPEM() ([]byte, error) {
	if k.priv != nil {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// ParseKeyPEM decodes exactly one PEM block written by [Key.MarshalPEM]:
// a PKCS#8 "PRIVATE KEY" or PKIX "PUBLIC KEY" holding an ECDSA P-256 key.
// Anything else, PEM headers, or trailing data is [ErrMalformed].
func ParseKeyPEM(data []byte) (*Key, error) {
	b, rest := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformed)
	}
	if len(bytes.TrimSpace(rest)) != 0 || len(b.Headers) != 0 {
		return nil, fmt.Errorf("%w: trailing data or PEM headers", ErrMalformed)
	}
	switch b.Type {
	case pemPrivate:
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: pkcs8: %w", ErrMalformed, err)
		}
		priv, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: pkcs8 key is %T, want ECDSA P-256", ErrKey, k)
		}
		return NewSigningKey(priv)
	case pemPublic:
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: pkix: %w", ErrMalformed, err)
		}
		pub, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: public key is %T, want ECDSA P-256", ErrKey, k)
		}
		return NewVerificationKey(pub)
	default:
		return nil, fmt.Errorf("%w: PEM type %q", ErrMalformed, b.Type)
	}
}
