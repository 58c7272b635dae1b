package ear

import (
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// ECDSA signatures are malleable: (r, s) and (r, n−s) both verify. EAR
// tokens use only the low-s form (s ≤ n/2), so a token has exactly one
// valid encoding and a relying party that keys anything on the token's
// bytes (a cache, a replay list) cannot be fooled by a re-encoded copy.

var (
	p256N     = elliptic.P256().Params().N
	p256HalfN = new(big.Int).Rsh(p256N, 1)
)

// es256Size is the size of a JWS ES256 signature: r ‖ s, 32 bytes each.
const es256Size = 64

// checkLowS rejects a token whose ES256 signature is not r ‖ s with s in
// [1, n/2].
func checkLowS(token string) error {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.Strict().DecodeString(token[i+1:])
	if err != nil || len(sig) != es256Size {
		return fmt.Errorf("%w: signature is not 64 bytes of base64url", ErrSignature)
	}
	s := new(big.Int).SetBytes(sig[32:])
	if s.Sign() == 0 || s.Cmp(p256HalfN) > 0 {
		return fmt.Errorf("%w: signature s is not in the low half of the group order (malleated signature)", ErrSignature)
	}
	return nil
}
