package dcap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
)

// verifyRawP256 checks a raw r‖s ECDSA P-256 signature over SHA-256(msg).
func verifyRawP256(pub *ecdsa.PublicKey, msg []byte, sig *[64]byte) bool {
	if pub == nil || pub.Curve != elliptic.P256() {
		return false
	}
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// parseRawP256 decodes a raw x‖y P-256 public key.
func parseRawP256(raw *[64]byte) (*ecdsa.PublicKey, error) {
	var b [65]byte
	b[0] = 4
	copy(b[1:], raw[:])
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b[:])
}

func ecdsaKey(c *x509.Certificate) *ecdsa.PublicKey {
	k, _ := c.PublicKey.(*ecdsa.PublicKey)
	return k
}
