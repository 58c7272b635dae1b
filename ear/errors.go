package ear

import "errors"

// Category sentinels. Errors returned by this package wrap exactly one of
// them; match with errors.Is.
var (
	// ErrMalformed: the token, key, PEM or JWKS document cannot be parsed,
	// or a required claim is missing or has the wrong type.
	ErrMalformed = errors.New("ear: malformed")
	// ErrAlgorithm: the JWS "alg" is not ES256 (this includes "none" and HMAC).
	ErrAlgorithm = errors.New("ear: unsupported algorithm")
	// ErrUnknownKey: the token's "kid" is not in the verification key set.
	ErrUnknownKey = errors.New("ear: unknown key")
	// ErrSignature: the signature does not verify with the key named by "kid".
	ErrSignature = errors.New("ear: bad signature")
	// ErrExpired: the token's "exp" is in the past (beyond the leeway).
	ErrExpired = errors.New("ear: token expired")
	// ErrNotYetValid: the token's "iat" is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("ear: token not yet valid")
	// ErrNonce: "eat_nonce" differs from the expected nonce.
	ErrNonce = errors.New("ear: nonce mismatch")
	// ErrIssuer: "iss" differs from the expected issuer.
	ErrIssuer = errors.New("ear: issuer mismatch")
	// ErrProfile: "eat_profile" differs from the expected profile.
	ErrProfile = errors.New("ear: unexpected profile")
	// ErrKey: a key is unusable (not P-256, no private key where one is
	// needed, duplicate or active key removed).
	ErrKey = errors.New("ear: invalid key")
	// ErrClaims: the claims given to [Signer.Sign] are invalid.
	ErrClaims = errors.New("ear: invalid claims")
)
