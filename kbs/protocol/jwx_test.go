package protocol

import (
	"bytes"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
)

// TestEncryptResourceJWX decrypts EncryptResource's JWEs with
// lestrrat-go/jwx, a JOSE implementation independent of the go-jose
// library that encrypts them (and of the hand-written decryption in
// jwe_test.go): flattened JSON serialization, ECDH-ES+A256KW on P-256 and
// RSA-OAEP-256, A256GCM.
func TestEncryptResourceJWX(t *testing.T) {
	ecPriv, ecJWK := testEC(t)
	rPriv, rJWK := testRSA(t)
	for _, pt := range plaintexts {
		if len(pt) == 0 {
			// jwx rejects an empty "ciphertext" member when parsing
			// (RFC 7516 allows it; the hand decryption covers it).
			continue
		}
		for _, c := range []struct {
			name string
			jwk  JWK
			alg  jwa.KeyEncryptionAlgorithm
			priv any
		}{
			{"ECDH-ES+A256KW", ecJWK, jwa.ECDH_ES_A256KW(), ecPriv},
			{"RSA-OAEP-256", rJWK, jwa.RSA_OAEP_256(), rPriv},
		} {
			resp, err := EncryptResource(pt, c.jwk)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got, err := jwe.Decrypt(resp, jwe.WithKey(c.alg, c.priv))
			if err != nil {
				t.Fatalf("%s: jwx: %v\n%s", c.name, err, resp)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("%s: jwx decrypted %d bytes, want %d", c.name, len(got), len(pt))
			}
			// A flipped ciphertext byte fails jwx's tag check too.
			bad := bytes.Clone(resp)
			i := bytes.Index(bad, []byte(`"ciphertext":"`)) + len(`"ciphertext":"`)
			if bad[i] == 'A' {
				bad[i] = 'B'
			} else {
				bad[i] = 'A'
			}
			if _, err := jwe.Decrypt(bad, jwe.WithKey(c.alg, c.priv)); err == nil {
				t.Fatalf("%s: jwx accepted a modified ciphertext", c.name)
			}
		}
	}
}
