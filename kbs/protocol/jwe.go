package protocol

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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
//
// It is written with the standard library (RFC 7516, RFC 7518 §4.3,
// §4.6, §5.3; RFC 3394): what go-jose produced for these two algorithms,
// without its general machinery.
func EncryptResource(plaintext []byte, teePubKey JWK) ([]byte, error) {
	pub, err := teePubKey.PublicKey()
	if err != nil {
		return nil, err
	}
	cek := make([]byte, 32)
	rand.Read(cek)
	var hdr, ek []byte
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		recip, err := p.ECDH()
		if err != nil {
			return nil, newErr(ErrKey, "EC key", err)
		}
		eph, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, newErr(ErrJWE, "ephemeral key", err)
		}
		z, err := eph.ECDH(recip)
		if err != nil {
			return nil, newErr(ErrJWE, "ECDH", err)
		}
		ek, err = aesKW(ecdhESKDF(z, AlgECDHESA256KW), cek)
		if err != nil {
			return nil, newErr(ErrJWE, "key wrap", err)
		}
		epk := eph.PublicKey().Bytes() // 0x04 || x || y
		hdr = append(hdr, `{"alg":"`+AlgECDHESA256KW+`","enc":"`+EncA256GCM+`","epk":{"kty":"EC","crv":"P-256","x":"`...)
		hdr = base64.RawURLEncoding.AppendEncode(hdr, epk[1:33])
		hdr = append(hdr, `","y":"`...)
		hdr = base64.RawURLEncoding.AppendEncode(hdr, epk[33:])
		hdr = append(hdr, `"}}`...)
	case *rsa.PublicKey:
		ek, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, p, cek, nil)
		if err != nil {
			return nil, newErr(ErrJWE, "RSA-OAEP-256", err)
		}
		hdr = []byte(`{"alg":"` + AlgRSAOAEP256 + `","enc":"` + EncA256GCM + `"}`)
	default:
		return nil, newErr(ErrKey, fmt.Sprintf("public key type %T", pub), nil)
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, newErr(ErrJWE, "A256GCM", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, newErr(ErrJWE, "A256GCM", err)
	}
	iv := make([]byte, gcm.NonceSize())
	rand.Read(iv)
	// The AAD is ASCII(BASE64URL(UTF8(protected header))) (RFC 7516 §5.1).
	enc := base64.RawURLEncoding
	out := make([]byte, 0, 96+enc.EncodedLen(len(hdr))+enc.EncodedLen(len(ek))+enc.EncodedLen(len(plaintext)+len(iv)+gcm.Overhead()))
	out = append(out, `{"protected":"`...)
	out = enc.AppendEncode(out, hdr)
	aad := out[len(`{"protected":"`):]
	sealed := gcm.Seal(nil, iv, plaintext, aad)
	ct, tag := sealed[:len(plaintext)], sealed[len(plaintext):]
	out = append(out, `","encrypted_key":"`...)
	out = enc.AppendEncode(out, ek)
	out = append(out, `","iv":"`...)
	out = enc.AppendEncode(out, iv)
	out = append(out, `","ciphertext":"`...)
	out = enc.AppendEncode(out, ct)
	out = append(out, `","tag":"`...)
	out = enc.AppendEncode(out, tag)
	out = append(out, `"}`...)
	return out, nil
}

// ecdhESKDF is the Concat KDF of RFC 7518 §4.6.2 (SHA-256, one round)
// for a 256-bit key for alg with empty PartyUInfo and PartyVInfo.
func ecdhESKDF(z []byte, alg string) []byte {
	h := sha256.New()
	var n [4]byte
	put := func(v int) {
		binary.BigEndian.PutUint32(n[:], uint32(v))
		h.Write(n[:])
	}
	put(1) // round
	h.Write(z)
	put(len(alg))
	h.Write([]byte(alg))
	put(0)   // PartyUInfo
	put(0)   // PartyVInfo
	put(256) // SuppPubInfo: keydatalen
	return h.Sum(nil)
}

// aesKW is the AES Key Wrap of RFC 3394 §2.2.1 (default IV) of key,
// a multiple of 8 bytes, at least 16, under kek.
func aesKW(kek, key []byte) ([]byte, error) {
	if len(key)%8 != 0 || len(key) < 16 {
		return nil, fmt.Errorf("key of %d bytes", len(key))
	}
	c, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(out, 0xA6A6A6A6A6A6A6A6)
	copy(out[8:], key)
	var buf [16]byte
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(buf[:8], out[:8])
			copy(buf[8:], out[8*i:8*i+8])
			c.Encrypt(buf[:], buf[:])
			binary.BigEndian.PutUint64(out, binary.BigEndian.Uint64(buf[:8])^uint64(n*j+i))
			copy(out[8*i:], buf[8:])
		}
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
