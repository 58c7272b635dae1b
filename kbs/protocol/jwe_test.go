package protocol

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
)

// This file decrypts (and encrypts) JWEs by hand with the standard
// library, independently of go-jose: Concat KDF (RFC 7518 §4.6.2), AES
// Key Wrap (RFC 3394), AES-GCM, RSA-OAEP-256.

var b64 = base64.RawURLEncoding

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

var defaultIV = []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// aesKeyWrap is RFC 3394 §2.2.1.
func aesKeyWrap(kek, key []byte) []byte {
	c, err := aes.NewCipher(kek)
	if err != nil {
		panic(err)
	}
	n := len(key) / 8
	a := slices.Clone(defaultIV)
	r := slices.Clone(key)
	buf := make([]byte, 16)
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(buf, a)
			copy(buf[8:], r[(i-1)*8:i*8])
			c.Encrypt(buf, buf)
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[(i-1)*8:], buf[8:])
		}
	}
	return append(a, r...)
}

// aesKeyUnwrap is RFC 3394 §2.2.2 with the integrity check of §2.2.3.
func aesKeyUnwrap(kek, wrapped []byte) ([]byte, bool) {
	c, err := aes.NewCipher(kek)
	if err != nil || len(wrapped)%8 != 0 || len(wrapped) < 24 {
		return nil, false
	}
	n := len(wrapped)/8 - 1
	a := slices.Clone(wrapped[:8])
	r := slices.Clone(wrapped[8:])
	buf := make([]byte, 16)
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf, binary.BigEndian.Uint64(a)^t)
			copy(buf[8:], r[(i-1)*8:i*8])
			c.Decrypt(buf, buf)
			copy(a, buf[:8])
			copy(r[(i-1)*8:], buf[8:])
		}
	}
	return r, bytes.Equal(a, defaultIV)
}

// concatKDF is RFC 7518 §4.6.2 (NIST SP 800-56A Concat KDF, SHA-256) for
// one 256-bit key with empty PartyUInfo and PartyVInfo.
func concatKDF(z []byte, alg string) []byte {
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, uint32(1)) // round counter
	h.Write(z)
	_ = binary.Write(h, binary.BigEndian, uint32(len(alg)))
	h.Write([]byte(alg))
	_ = binary.Write(h, binary.BigEndian, uint32(0)) // apu
	_ = binary.Write(h, binary.BigEndian, uint32(0)) // apv
	_ = binary.Write(h, binary.BigEndian, uint32(256))
	return h.Sum(nil)
}

func TestAESKeyWrapRFC3394Vector(t *testing.T) {
	// RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
	kek, _ := hex.DecodeString("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	key, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	want, _ := hex.DecodeString("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
	if got := aesKeyWrap(kek, key); !bytes.Equal(got, want) {
		t.Fatalf("wrap = %X", got)
	}
	got, ok := aesKeyUnwrap(kek, want)
	if !ok || !bytes.Equal(got, key) {
		t.Fatalf("unwrap = %X, %v", got, ok)
	}
	// EncryptResource's own.
	if got, err := aesKW(kek, key); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("aesKW = %X, %v", got, err)
	}
	// RFC 3394 §4.1: 128 bits of key data with a 128-bit KEK.
	kek, _ = hex.DecodeString("000102030405060708090A0B0C0D0E0F")
	key, _ = hex.DecodeString("00112233445566778899AABBCCDDEEFF")
	want, _ = hex.DecodeString("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
	if got, err := aesKW(kek, key); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("aesKW 128 = %X, %v", got, err)
	}
	if _, err := aesKW(kek, key[:12]); err == nil {
		t.Fatal("aesKW wrapped 12 bytes")
	}
}

// TestECDHESKDF compares EncryptResource's Concat KDF with the one of
// this file.
func TestECDHESKDF(t *testing.T) {
	z := make([]byte, 32)
	for i := range 4 {
		rand.Read(z)
		if got, want := ecdhESKDF(z, AlgECDHESA256KW), concatKDF(z, AlgECDHESA256KW); !bytes.Equal(got, want) {
			t.Fatalf("round %d: %x, want %x", i, got, want)
		}
	}
}

type handHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	EPK *struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
	} `json:"epk"`
}

// handDecrypt decrypts a KBS resource response without go-jose.
func handDecrypt(t *testing.T, resp []byte, priv any) []byte {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatalf("response is not a JSON object of strings: %v", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"ciphertext", "encrypted_key", "iv", "protected", "tag"}) {
		t.Fatalf("response members %v", keys)
	}
	var h handHeader
	if err := json.Unmarshal(mustB64(t, m["protected"]), &h); err != nil {
		t.Fatal(err)
	}
	if h.Enc != "A256GCM" {
		t.Fatalf("enc %q", h.Enc)
	}
	ek := mustB64(t, m["encrypted_key"])
	var cek []byte
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if h.Alg != "ECDH-ES+A256KW" || h.EPK == nil || h.EPK.Kty != "EC" || h.EPK.Crv != "P-256" {
			t.Fatalf("header %+v", h)
		}
		pt := append(append([]byte{4}, mustB64(t, h.EPK.X)...), mustB64(t, h.EPK.Y)...)
		epk, err := ecdh.P256().NewPublicKey(pt)
		if err != nil {
			t.Fatal(err)
		}
		dk, err := k.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		z, err := dk.ECDH(epk)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		cek, ok = aesKeyUnwrap(concatKDF(z, h.Alg), ek)
		if !ok {
			t.Fatal("key unwrap integrity check failed")
		}
	case *rsa.PrivateKey:
		if h.Alg != "RSA-OAEP-256" || h.EPK != nil {
			t.Fatalf("header %+v", h)
		}
		var err error
		cek, err = rsa.DecryptOAEP(sha256.New(), nil, k, ek, nil)
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("key %T", priv)
	}
	if len(cek) != 32 {
		t.Fatalf("CEK of %d bytes", len(cek))
	}
	blk, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(blk)
	iv := mustB64(t, m["iv"])
	if len(iv) != 12 {
		t.Fatalf("iv of %d bytes", len(iv))
	}
	ct := append(mustB64(t, m["ciphertext"]), mustB64(t, m["tag"])...)
	pt, err := gcm.Open(nil, iv, ct, []byte(m["protected"]))
	if err != nil {
		t.Fatalf("A256GCM open: %v", err)
	}
	return pt
}

// handEncryptEC builds a Trustee-style ECDH-ES+A256KW response by hand.
func handEncryptEC(t *testing.T, plaintext []byte, to *ecdsa.PublicKey) []byte {
	t.Helper()
	recip, err := to.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	eph, _ := ecdh.P256().GenerateKey(rand.Reader)
	z, _ := eph.ECDH(recip)
	epk := eph.PublicKey().Bytes()
	hdr := `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"` +
		b64.EncodeToString(epk[1:33]) + `","y":"` + b64.EncodeToString(epk[33:]) + `"}}`
	return handSeal(t, plaintext, hdr, func(cek []byte) []byte { return aesKeyWrap(concatKDF(z, "ECDH-ES+A256KW"), cek) })
}

func handSeal(t *testing.T, plaintext []byte, hdr string, wrap func([]byte) []byte) []byte {
	t.Helper()
	cek := make([]byte, 32)
	iv := make([]byte, 12)
	rand.Read(cek)
	rand.Read(iv)
	prot := b64.EncodeToString([]byte(hdr))
	blk, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(blk)
	sealed := gcm.Seal(nil, iv, plaintext, []byte(prot))
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	out, _ := json.Marshal(map[string]string{
		"protected": prot, "encrypted_key": b64.EncodeToString(wrap(cek)), "iv": b64.EncodeToString(iv),
		"ciphertext": b64.EncodeToString(ct), "tag": b64.EncodeToString(tag),
	})
	return out
}

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
	rsaJWK  JWK
)

func testRSA(t *testing.T) (*rsa.PrivateKey, JWK) {
	t.Helper()
	rsaOnce.Do(func() {
		k, j, err := GenerateKey(2048)
		if err != nil {
			panic(err)
		}
		rsaPriv, rsaJWK = k.(*rsa.PrivateKey), j
	})
	return rsaPriv, rsaJWK
}

func testEC(t *testing.T) (*ecdsa.PrivateKey, JWK) {
	t.Helper()
	k, j, err := GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey), j
}

var plaintexts = [][]byte{[]byte("secret image key"), {}, bytes.Repeat([]byte{0xA5}, 70000)}

func TestEncryptResourceHandDecrypt(t *testing.T) {
	ecPriv, ecJWK := testEC(t)
	rPriv, rJWK := testRSA(t)
	for _, pt := range plaintexts {
		for _, c := range []struct {
			name string
			jwk  JWK
			priv any
		}{{"ec", ecJWK, ecPriv}, {"rsa", rJWK, rPriv}} {
			resp, err := EncryptResource(pt, c.jwk)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := handDecrypt(t, resp, c.priv); !bytes.Equal(got, pt) {
				t.Fatalf("%s: hand decryption differs", c.name)
			}
			got, err := DecryptResource(resp, c.priv)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s: round trip: %v", c.name, err)
			}
		}
	}
}

func TestDecryptResourceHandEncrypted(t *testing.T) {
	ecPriv, _ := testEC(t)
	pt := []byte(`{"key":"value"}`)
	resp := handEncryptEC(t, pt, &ecPriv.PublicKey)
	got, err := DecryptResource(resp, ecPriv)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("EC: %q, %v", got, err)
	}
	dk, _ := ecPriv.ECDH()
	if got, err := DecryptResource(resp, dk); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("ecdh key: %q, %v", got, err)
	}

	rPriv, _ := testRSA(t)
	resp = handSeal(t, pt, `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, func(cek []byte) []byte {
		w, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rPriv.PublicKey, cek, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w
	})
	if got, err := DecryptResource(resp, rPriv); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("RSA: %q, %v", got, err)
	}
}

func TestEncryptResourceRejectsKeys(t *testing.T) {
	_, ec := testEC(t)
	_, r := testRSA(t)
	mod := func(k JWK, f func(*JWK)) JWK { f(&k); return k }
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := map[string]JWK{
		"akp":        {Kty: KtyAKP, Alg: "ML-KEM-768+A192KW", Pub: "AAAA"},
		"oct":        {Kty: "oct"},
		"p384":       mod(ec, func(k *JWK) { k.Crv = "P-384" }),
		"ec-alg":     mod(ec, func(k *JWK) { k.Alg = "ECDH-ES" }),
		"ec-pad":     mod(ec, func(k *JWK) { k.X += "=" }),
		"ec-std-b64": mod(ec, func(k *JWK) { k.X = "+/" + k.X[2:] }),
		"ec-short":   mod(ec, func(k *JWK) { k.X = k.X[:20] }),
		"off-curve":  mod(ec, func(k *JWK) { k.X, k.Y = k.Y, k.X }),
		"rsa1_5":     mod(r, func(k *JWK) { k.Alg = "RSA1_5" }),
		"rsa-e-even": mod(r, func(k *JWK) { k.E = "AQAA" }),
		"rsa-e-zero": mod(r, func(k *JWK) { k.E = "AAEAAQ" }),
		"rsa-1024":   {Kty: KtyRSA, Alg: AlgRSAOAEP256, N: b64.EncodeToString(small.N.Bytes()), E: "AQAB"},
	}
	for name, k := range cases {
		if _, err := EncryptResource([]byte("x"), k); !errors.Is(err, ErrKey) {
			t.Errorf("%s: err = %v, want ErrKey", name, err)
		}
	}
}

func TestDecryptResourceRejects(t *testing.T) {
	ecPriv, ecJWK := testEC(t)
	otherEC, _ := testEC(t)
	rPriv, rJWK := testRSA(t)
	ecResp, _ := EncryptResource([]byte("s"), ecJWK)
	rResp, _ := EncryptResource([]byte("s"), rJWK)
	edit := func(resp []byte, f func(m map[string]string)) []byte {
		var m map[string]string
		_ = json.Unmarshal(resp, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	flip := func(s string) string {
		b, _ := b64.DecodeString(s)
		b[0] ^= 1
		return b64.EncodeToString(b)
	}
	header := func(h string) func(m map[string]string) {
		return func(m map[string]string) { m["protected"] = b64.EncodeToString([]byte(h)) }
	}
	cases := []struct {
		name string
		resp []byte
		key  any
		want error
	}{
		{"not-json", []byte("nope"), ecPriv, ErrJWE},
		{"trailing", append(slices.Clone(ecResp), '{'), ecPriv, ErrJWE},
		{"wrong-ec-key", ecResp, otherEC, ErrJWE},
		{"rsa-resp-ec-key", rResp, ecPriv, ErrJWE},
		{"ec-resp-rsa-key", ecResp, rPriv, ErrJWE},
		{"tag", edit(ecResp, func(m map[string]string) { m["tag"] = flip(m["tag"]) }), ecPriv, ErrJWE},
		{"ciphertext", edit(rResp, func(m map[string]string) { m["ciphertext"] = flip(m["ciphertext"]) }), rPriv, ErrJWE},
		{"encrypted-key", edit(ecResp, func(m map[string]string) { m["encrypted_key"] = flip(m["encrypted_key"]) }), ecPriv, ErrJWE},
		{"missing-iv", edit(ecResp, func(m map[string]string) { delete(m, "iv") }), ecPriv, ErrJWE},
		{"padded-iv", edit(ecResp, func(m map[string]string) { m["iv"] += "=" }), ecPriv, ErrJWE},
		{"enc-a128", edit(rResp, header(`{"alg":"RSA-OAEP-256","enc":"A128GCM"}`)), rPriv, ErrJWE},
		{"alg-rsa1_5", edit(rResp, header(`{"alg":"RSA1_5","enc":"A256GCM"}`)), rPriv, ErrJWE},
		{"alg-dir", edit(rResp, header(`{"alg":"dir","enc":"A256GCM"}`)), rPriv, ErrJWE},
		{"no-epk", edit(ecResp, header(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}`)), ecPriv, ErrJWE},
		{"header-not-json", edit(ecResp, header(`{`)), ecPriv, ErrJWE},
		{"key-type", ecResp, "not a key", ErrKey},
	}
	for _, c := range cases {
		pt, err := DecryptResource(c.resp, c.key)
		if !errors.Is(err, c.want) || pt != nil {
			t.Errorf("%s: %q, %v; want %v", c.name, pt, err, c.want)
		}
		var pe *Error
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%s: error %T is not *Error", c.name, err)
		}
	}
}
