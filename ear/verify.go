package ear

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxTokenSize is the largest token Verify accepts (1 MiB).
const MaxTokenSize = 1 << 20

// VerifyOptions are a relying party's expectations. The zero value checks
// signature, key, algorithm, profile and validity period at time.Now with no
// leeway, and does not check nonce or issuer.
type VerifyOptions struct {
	// Now is the verification clock. If nil, time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated for exp and iat. If zero (or
	// negative), none.
	Leeway time.Duration
	// ExpectedNonce must equal "eat_nonce" (compared in constant time). If
	// empty, the nonce is not checked.
	ExpectedNonce string
	// ExpectedIssuer must equal "iss". If empty, the issuer is not checked.
	ExpectedIssuer string
	// ExpectedProfile must equal "eat_profile". If empty, [Profile].
	ExpectedProfile string
}

// header is the part of the JOSE header Verify inspects before using a key.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// Verify checks a compact-serialized EAR token against the verification
// keys of keys (for a relying party, typically [ParseJWKS] of the
// verifier's published JWKS) and returns its claims. In order it rejects:
// an oversized or non-compact token or bad JSON ([ErrMalformed]); an "alg"
// other than ES256 ([ErrAlgorithm]); a "crit" header ([ErrMalformed]); a
// "kid" not in keys ([ErrUnknownKey]); a bad or high-s (malleated)
// signature ([ErrSignature]);
// missing claims ([ErrMalformed]); another profile ([ErrProfile]); now after
// exp + leeway ([ErrExpired]); iat after now + leeway ([ErrNotYetValid]);
// issuer ([ErrIssuer]) and nonce ([ErrNonce]) mismatches. On error the
// claims are nil. Verify is safe for concurrent use.
func Verify(token string, keys *KeySet, opts VerifyOptions) (*Claims, error) {
	if keys == nil {
		return nil, fmt.Errorf("%w: no key set", ErrUnknownKey)
	}
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token larger than %d bytes", ErrMalformed, MaxTokenSize)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	rawHeader, err := base64.RawURLEncoding.Strict().DecodeString(token[:strings.IndexByte(token, '.')])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	var h header
	if err := json.Unmarshal(rawHeader, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if h.Alg != string(jose.ES256) {
		return nil, fmt.Errorf("%w: alg %q", ErrAlgorithm, h.Alg)
	}
	if h.Crit != nil {
		return nil, fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	key, ok := keys.Lookup(h.Kid)
	if !ok || h.Kid == "" {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, h.Kid)
	}
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := checkLowS(token); err != nil {
		return nil, fmt.Errorf("kid %s: %w", h.Kid, err)
	}
	payload, err := obj.Verify(key.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %s: %w", ErrSignature, h.Kid, err)
	}

	var c Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: claims: trailing data", ErrMalformed)
	}
	if err := c.validate(ErrMalformed); err != nil {
		return nil, err
	}
	if err := check(&c, opts); err != nil {
		return nil, err
	}
	return &c, nil
}

// Check applies the claim checks of [Verify] (profile, validity period,
// issuer, nonce) to claims whose signature the caller already knows to be
// valid, such as those [Signer.Sign] returned for a token the caller
// signed itself.
func (c *Claims) Check(opts VerifyOptions) error { return check(c, opts) }

// KeyID returns the "kid" of a compact token's protected header, without
// verifying anything else.
func KeyID(token string) (string, error) {
	i := strings.IndexByte(token, '.')
	if i < 0 {
		return "", fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	rawHeader, err := base64.RawURLEncoding.Strict().DecodeString(token[:i])
	if err != nil {
		return "", fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	var h header
	if err := json.Unmarshal(rawHeader, &h); err != nil {
		return "", fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	return h.Kid, nil
}

func check(c *Claims, opts VerifyOptions) error {
	profile := opts.ExpectedProfile
	if profile == "" {
		profile = Profile
	}
	if c.Profile != profile {
		return fmt.Errorf("%w: %q, want %q", ErrProfile, c.Profile, profile)
	}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	leeway := max(opts.Leeway, 0)
	if now.After(time.Unix(c.ExpiresAt, 0).Add(leeway)) {
		return fmt.Errorf("%w: exp %s, now %s", ErrExpired,
			time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if time.Unix(c.IssuedAt, 0).After(now.Add(leeway)) {
		return fmt.Errorf("%w: iat %s, now %s", ErrNotYetValid,
			time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if opts.ExpectedIssuer != "" && c.Issuer != opts.ExpectedIssuer {
		return fmt.Errorf("%w: %q, want %q", ErrIssuer, c.Issuer, opts.ExpectedIssuer)
	}
	if opts.ExpectedNonce != "" &&
		subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(opts.ExpectedNonce)) != 1 {
		return fmt.Errorf("%w: eat_nonce differs from the expected nonce", ErrNonce)
	}
	return nil
}
