package ear

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// DefaultLifetime is the token lifetime when [WithLifetime] is not given
// (Trustee's default).
const DefaultLifetime = 5 * time.Minute

// DefaultIssuer is the "iss" when [WithIssuer] is not given.
const DefaultIssuer = "tdproof"

// Signer issues EAR tokens with the active key of a [KeySet]. It reads the
// active key on every call, so a [KeySet.Rotate] takes effect immediately.
// A Signer is safe for concurrent use.
type Signer struct {
	keys *KeySet
	cfg  config
}

type config struct {
	issuer   string
	verifier VerifierID
	lifetime time.Duration
	now      func() time.Time
	rand     io.Reader
}

// Option configures a [Signer].
type Option func(*config)

// WithIssuer sets "iss". If not given, [DefaultIssuer].
func WithIssuer(iss string) Option { return func(c *config) { c.issuer = iss } }

// WithVerifierID sets "ear.verifier-id". If not given, developer
// "https://github.com/tdproof/tdproof" and build "tdproof".
func WithVerifierID(id VerifierID) Option { return func(c *config) { c.verifier = id } }

// WithLifetime sets exp − iat. If not given, [DefaultLifetime]. It must be
// positive.
func WithLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithClock sets the clock for "iat". If not given, time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithRand sets the randomness for "jti". If not given, crypto/rand.
func WithRand(r io.Reader) Option { return func(c *config) { c.rand = r } }

// NewSigner returns a Signer over keys, which must have an active key.
func NewSigner(keys *KeySet, opts ...Option) (*Signer, error) {
	if keys == nil || keys.Active() == nil {
		return nil, fmt.Errorf("%w: key set has no active signing key", ErrKey)
	}
	cfg := config{
		issuer:   DefaultIssuer,
		verifier: VerifierID{Developer: "https://github.com/tdproof/tdproof", Build: "tdproof"},
		lifetime: DefaultLifetime,
		now:      time.Now,
		rand:     rand.Reader,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.issuer == "":
		return nil, fmt.Errorf("%w: empty issuer", ErrClaims)
	case cfg.lifetime <= 0:
		return nil, fmt.Errorf("%w: lifetime %v not positive", ErrClaims, cfg.lifetime)
	case cfg.now == nil || cfg.rand == nil:
		return nil, fmt.Errorf("%w: nil clock or rand", ErrClaims)
	}
	return &Signer{keys: keys, cfg: cfg}, nil
}

// Keys returns the signer's key set.
func (s *Signer) Keys() *KeySet { return s.keys }

// Sign fills the zero fields of c (see [Claims]), validates it and returns
// the compact JWS: protected header {"alg":"ES256","kid":…,"typ":"JWT"}. c
// itself is not modified; the filled claims are returned as well.
func (s *Signer) Sign(c Claims) (string, *Claims, error) {
	key := s.keys.Active()
	if key == nil {
		return "", nil, fmt.Errorf("%w: no active signing key", ErrKey)
	}
	if c.Profile == "" {
		c.Profile = Profile
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = s.cfg.now().Unix()
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = c.IssuedAt + int64(s.cfg.lifetime.Seconds())
	}
	if c.Issuer == "" {
		c.Issuer = s.cfg.issuer
	}
	if c.VerifierID == (VerifierID{}) {
		c.VerifierID = s.cfg.verifier
	}
	if c.ID == "" {
		var b [16]byte
		if _, err := io.ReadFull(s.cfg.rand, b[:]); err != nil {
			return "", nil, fmt.Errorf("ear: jti: %w", err)
		}
		c.ID = hex.EncodeToString(b[:])
	}
	if err := c.validate(ErrClaims); err != nil {
		return "", nil, err
	}
	payload, err := appendPayload(make([]byte, 0, payloadSize(&c)), &c)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	tok, err := key.signCompact(payload)
	if err != nil {
		return "", nil, err
	}
	return tok, &c, nil
}

// payloadSize estimates the size of c's JSON.
func payloadSize(c *Claims) int {
	n := 512 + len(c.Issuer) + len(c.Nonce) + len(c.VerifierID.Developer) + len(c.VerifierID.Build)
	for name, a := range c.Submods {
		n += 256 + len(name) + len(a.PolicyID) + len(a.Claims)
	}
	return n
}
