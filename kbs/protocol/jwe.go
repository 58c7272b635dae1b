package protocol

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Response is the body of a resource response: a flattened JWE JSON
// serialization (kbs-types Response) with every value base64url without
// padding. The AAD of the A256GCM encryption is ASCII(Protected).
type Response struct {
	Protected    string `json:"protected"`
	EncryptedKey string `json:"encrypted_key"`
	IV           string `json:"iv"`
	Ciphertext   string `json:"ciphertext"`
	Tag          string `json:"tag"`
}

// ProtectedHeader is the decoded protected header of a Response.
type ProtectedHeader struct {
	Alg string          `json:"alg"`
	Enc string          `json:"enc"`
	EPK json.RawMessage `json:"epk,omitempty"` // ECDH-ES only
}

// EncryptResource encrypts plaintext to teePubKey and returns the JSON of
// the [Response]: A256GCM content encryption with the CEK wrapped by
// ECDH-ES+A256KW (P-256 key; Concat KDF with empty apu/apv, the protected
// header carrying epk) or RSA-OAEP-256 (RSA key). The key must pass
// [JWK.PublicKey]; otherwise the error wraps ErrKey.
func EncryptResource(plaintext []byte, teePubKey JWK) ([]byte, error) {
	pub, err := teePubKey.PublicKey()
	if err != nil {
		return nil, err
	}
	var rcpt jose.Recipient
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		rcpt = jose.Recipient{Algorithm: jose.ECDH_ES_A256KW, Key: p}
	case *rsa.PublicKey:
		rcpt = jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: p}
	default:
		return nil, newErr(ErrKey, fmt.Sprintf("public key type %T", pub), nil)
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, rcpt, nil)
	if err != nil {
		return nil, newErr(ErrJWE, "encrypter", err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return nil, newErr(ErrJWE, "encrypt", err)
	}
	// Re-encode go-jose's flattened serialization as exactly the five
	// members Trustee sends, refusing anything that would be lost.
	var full struct {
		Response
		Unprotected json.RawMessage `json:"unprotected"`
		Header      json.RawMessage `json:"header"`
		AAD         string          `json:"aad"`
		Recipients  json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(obj.FullSerialize()), &full); err != nil {
		return nil, newErr(ErrJWE, "re-encode", err)
	}
	if len(full.Unprotected) != 0 || len(full.Header) != 0 || full.AAD != "" || len(full.Recipients) != 0 {
		return nil, newErr(ErrJWE, "unexpected unprotected JWE members", nil)
	}
	out, err := json.Marshal(full.Response)
	if err != nil {
		return nil, newErr(ErrJWE, "marshal", err)
	}
	return out, nil
}

// ParseResponse decodes a resource response and its protected header and
// checks the shape: every member present and base64url, enc A256GCM, alg
// ECDH-ES+A256KW (with epk) or RSA-OAEP-256.
func ParseResponse(data []byte) (*Response, *ProtectedHeader, error) {
	var r Response
	if err := decodeStrict(data, &r, "resource response"); err != nil {
		return nil, nil, newErr(ErrJWE, "", err)
	}
	for _, f := range []struct{ name, v string }{
		{"protected", r.Protected}, {"encrypted_key", r.EncryptedKey}, {"iv", r.IV},
		{"ciphertext", r.Ciphertext}, {"tag", r.Tag},
	} {
		if f.v == "" && f.name != "ciphertext" {
			return nil, nil, newErr(ErrJWE, "missing "+f.name, nil)
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(f.v); err != nil {
			return nil, nil, newErr(ErrJWE, f.name+" is not base64url without padding", err)
		}
	}
	hb, _ := base64.RawURLEncoding.DecodeString(r.Protected)
	var h ProtectedHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, nil, newErr(ErrJWE, "protected header", err)
	}
	if h.Enc != EncA256GCM {
		return nil, nil, newErr(ErrJWE, fmt.Sprintf("enc %q, want %q", h.Enc, EncA256GCM), nil)
	}
	switch h.Alg {
	case AlgECDHESA256KW:
		if isNullOrAbsent(h.EPK) {
			return nil, nil, newErr(ErrJWE, "ECDH-ES header without epk", nil)
		}
	case AlgRSAOAEP256:
	default:
		return nil, nil, newErr(ErrJWE, fmt.Sprintf("alg %q not supported", h.Alg), nil)
	}
	return &r, &h, nil
}

// DecryptResource decrypts a resource response (the JSON of a [Response])
// with the TEE private key: *ecdsa.PrivateKey or *ecdh.PrivateKey on
// P-256 for ECDH-ES+A256KW, *rsa.PrivateKey for RSA-OAEP-256. The header's
// alg must match the key. Failures wrap ErrJWE (ErrKey for an unusable
// key).
func DecryptResource(resp []byte, priv crypto.PrivateKey) ([]byte, error) {
	r, h, err := ParseResponse(resp)
	if err != nil {
		return nil, err
	}
	var key any
	var want string
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, newErr(ErrKey, "EC private key not on P-256", nil)
		}
		key, want = k, AlgECDHESA256KW
	case *ecdh.PrivateKey:
		if k.Curve() != ecdh.P256() {
			return nil, newErr(ErrKey, "ECDH private key not on P-256", nil)
		}
		ek, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), k.Bytes())
		if err != nil {
			return nil, newErr(ErrKey, "ECDH private key", err)
		}
		key, want = ek, AlgECDHESA256KW
	case *rsa.PrivateKey:
		key, want = k, AlgRSAOAEP256
	default:
		return nil, newErr(ErrKey, fmt.Sprintf("private key type %T", priv), nil)
	}
	if h.Alg != want {
		return nil, newErr(ErrJWE, fmt.Sprintf("alg %q does not match the %s key", h.Alg, want), nil)
	}
	canon, err := json.Marshal(r)
	if err != nil {
		return nil, newErr(ErrJWE, "marshal", err)
	}
	obj, err := jose.ParseEncryptedJSON(string(canon), []jose.KeyAlgorithm{jose.KeyAlgorithm(want)}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, newErr(ErrJWE, "parse", err)
	}
	pt, err := obj.Decrypt(key)
	if err != nil {
		return nil, newErr(ErrJWE, "decrypt", err)
	}
	return pt, nil
}
