package protocol

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// Key types and algorithms of a TEE public key.
const (
	KtyEC  = "EC"
	KtyRSA = "RSA"
	KtyAKP = "AKP" // experimental ML-KEM-768; parsed, never used for encryption

	CrvP256 = "P-256"

	AlgECDHESA256KW = "ECDH-ES+A256KW"
	AlgRSAOAEP256   = "RSA-OAEP-256"
	EncA256GCM      = "A256GCM"
)

// MinRSABits is the smallest RSA modulus accepted for a TEE key.
const MinRSABits = 2048

// JWK is a TEE public key as kbs-types' TeePubKey: an enum tagged by
// "kty" with fields EC {crv, alg, x, y}, RSA {alg, n, e}, AKP {alg, pub}.
// Values are base64url strings kept verbatim; [JWK.PublicKey] decodes and
// checks them. JSON encoding emits exactly the fields of the key's kty,
// which is what the report-data binding hashes.
type JWK struct {
	Kty string
	Alg string
	Crv string // EC
	X   string // EC
	Y   string // EC
	N   string // RSA
	E   string // RSA
	Pub string // AKP
}

type jwkEC struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Alg string `json:"alg"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

type jwkRSA struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

type jwkAKP struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Pub string `json:"pub"`
}

// MarshalJSON implements json.Marshaler. An unknown kty is an ErrKey error.
func (k JWK) MarshalJSON() ([]byte, error) {
	switch k.Kty {
	case KtyEC:
		return json.Marshal(jwkEC{k.Kty, k.Crv, k.Alg, k.X, k.Y})
	case KtyRSA:
		return json.Marshal(jwkRSA{k.Kty, k.Alg, k.N, k.E})
	case KtyAKP:
		return json.Marshal(jwkAKP{k.Kty, k.Alg, k.Pub})
	}
	return nil, newErr(ErrKey, fmt.Sprintf("kty %q", k.Kty), nil)
}

// UnmarshalJSON implements json.Unmarshaler: kty must be EC, RSA or AKP
// and every member of that variant must be a string (possibly empty);
// unknown members are ignored, as serde does.
func (k *JWK) UnmarshalJSON(data []byte) error {
	var tag struct {
		Kty *string `json:"kty"`
	}
	if err := json.Unmarshal(data, &tag); err != nil {
		return newErr(ErrKey, "tee-pubkey", err)
	}
	if tag.Kty == nil {
		return newErr(ErrKey, "tee-pubkey: missing kty", nil)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return newErr(ErrKey, "tee-pubkey", err)
	}
	var names []string
	switch *tag.Kty {
	case KtyEC:
		names = []string{"crv", "alg", "x", "y"}
	case KtyRSA:
		names = []string{"alg", "n", "e"}
	case KtyAKP:
		names = []string{"alg", "pub"}
	default:
		return newErr(ErrKey, fmt.Sprintf("tee-pubkey: kty %q", *tag.Kty), nil)
	}
	vals := map[string]string{}
	for _, n := range names {
		raw, ok := members[n]
		if !ok {
			return newErr(ErrKey, fmt.Sprintf("tee-pubkey: missing %q", n), nil)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return newErr(ErrKey, fmt.Sprintf("tee-pubkey: %q is not a string", n), nil)
		}
		vals[n] = s
	}
	*k = JWK{Kty: *tag.Kty, Alg: vals["alg"], Crv: vals["crv"], X: vals["x"], Y: vals["y"], N: vals["n"], E: vals["e"], Pub: vals["pub"]}
	return nil
}

func b64url(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, newErr(ErrKey, "tee-pubkey: "+field+" is not base64url without padding", err)
	}
	return b, nil
}

// PublicKey decodes and checks the key: EC keys must be P-256 points with
// alg ECDH-ES+A256KW (*ecdsa.PublicKey); RSA keys alg RSA-OAEP-256, a
// modulus of at least MinRSABits and an odd exponent below 2^31
// (*rsa.PublicKey). Anything else, AKP included, is an ErrKey error.
func (k JWK) PublicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case KtyEC:
		if k.Crv != CrvP256 {
			return nil, newErr(ErrKey, fmt.Sprintf("EC curve %q, want %q", k.Crv, CrvP256), nil)
		}
		if k.Alg != AlgECDHESA256KW {
			return nil, newErr(ErrKey, fmt.Sprintf("EC alg %q, want %q", k.Alg, AlgECDHESA256KW), nil)
		}
		x, err := b64url("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64url("y", k.Y)
		if err != nil {
			return nil, err
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, newErr(ErrKey, "EC coordinates must be 32 bytes", nil)
		}
		pt := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return nil, newErr(ErrKey, "EC point", err)
		}
		return pub, nil
	case KtyRSA:
		if k.Alg != AlgRSAOAEP256 {
			return nil, newErr(ErrKey, fmt.Sprintf("RSA alg %q, want %q", k.Alg, AlgRSAOAEP256), nil)
		}
		n, err := b64url("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64url("e", k.E)
		if err != nil {
			return nil, err
		}
		if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 || len(e) > 4 {
			return nil, newErr(ErrKey, "RSA n or e not minimal big-endian", nil)
		}
		var ev uint64
		for _, c := range e {
			ev = ev<<8 | uint64(c)
		}
		if ev < 3 || ev%2 == 0 || ev >= 1<<31 {
			return nil, newErr(ErrKey, fmt.Sprintf("RSA exponent %d", ev), nil)
		}
		mod := new(big.Int).SetBytes(n)
		if mod.BitLen() < MinRSABits {
			return nil, newErr(ErrKey, fmt.Sprintf("RSA modulus of %d bits, want ≥ %d", mod.BitLen(), MinRSABits), nil)
		}
		return &rsa.PublicKey{N: mod, E: int(ev)}, nil
	}
	return nil, newErr(ErrKey, fmt.Sprintf("kty %q not supported", k.Kty), nil)
}

// PublicJWK returns the JWK of a P-256 key (*ecdsa.PublicKey or
// *ecdh.PublicKey; alg ECDH-ES+A256KW) or an RSA key (*rsa.PublicKey;
// alg RSA-OAEP-256), with unpadded base64url values.
func PublicJWK(pub crypto.PublicKey) (JWK, error) {
	var pt []byte
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return JWK{}, newErr(ErrKey, "EC key not on P-256", nil)
		}
		b, err := p.Bytes()
		if err != nil {
			return JWK{}, newErr(ErrKey, "EC key", err)
		}
		pt = b
	case *ecdh.PublicKey:
		if p.Curve() != ecdh.P256() {
			return JWK{}, newErr(ErrKey, "ECDH key not on P-256", nil)
		}
		pt = p.Bytes()
	case *rsa.PublicKey:
		if p.N == nil || p.N.BitLen() < MinRSABits || p.E < 3 {
			return JWK{}, newErr(ErrKey, "RSA key too small or invalid", nil)
		}
		e := big.NewInt(int64(p.E)).Bytes()
		return JWK{Kty: KtyRSA, Alg: AlgRSAOAEP256,
			N: base64.RawURLEncoding.EncodeToString(p.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(e)}, nil
	default:
		return JWK{}, newErr(ErrKey, fmt.Sprintf("public key type %T", pub), nil)
	}
	if len(pt) != 65 || pt[0] != 4 {
		return JWK{}, newErr(ErrKey, "EC point encoding", nil)
	}
	return JWK{Kty: KtyEC, Crv: CrvP256, Alg: AlgECDHESA256KW,
		X: base64.RawURLEncoding.EncodeToString(pt[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(pt[33:])}, nil
}

// GenerateKey returns a fresh TEE key pair: P-256 for ECDH-ES+A256KW
// (the guest-components default) when rsaBits is 0, else RSA of rsaBits
// (≥ MinRSABits) for RSA-OAEP-256.
func GenerateKey(rsaBits int) (crypto.PrivateKey, JWK, error) {
	if rsaBits == 0 {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, JWK{}, fmt.Errorf("kbs protocol: generate key: %w", err)
		}
		j, err := PublicJWK(&priv.PublicKey)
		return priv, j, err
	}
	if rsaBits < MinRSABits {
		return nil, JWK{}, newErr(ErrKey, fmt.Sprintf("RSA size %d < %d", rsaBits, MinRSABits), nil)
	}
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, JWK{}, fmt.Errorf("kbs protocol: generate key: %w", err)
	}
	j, err := PublicJWK(&priv.PublicKey)
	return priv, j, err
}
