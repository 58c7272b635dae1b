package ear

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySet holds the EAR keys of a verifier: at most one active signing key
// and any number of previous keys kept for verification during a rotation.
// A KeySet parsed from a JWKS document ([ParseJWKS]) has no active key and
// can only verify. A KeySet is safe for concurrent use.
type KeySet struct {
	mu     sync.RWMutex
	active *Key
	keys   []*Key // active first, then the others in insertion order
}

// NewKeySet returns a set whose active (signing) key is active, plus
// verification keys previous. Duplicate ids are [ErrKey].
func NewKeySet(active *Key, previous ...*Key) (*KeySet, error) {
	if active == nil || !active.CanSign() {
		return nil, fmt.Errorf("%w: active key must have a private key", ErrKey)
	}
	s := &KeySet{active: active, keys: []*Key{active}}
	for _, k := range previous {
		if err := s.Add(k); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Active returns the signing key, or nil for a verification-only set.
func (s *KeySet) Active() *Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active
}

// Keys returns all keys, the active one first. The slice is a copy.
func (s *KeySet) Keys() []*Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.keys)
}

// Lookup returns the key with id kid.
func (s *KeySet) Lookup(kid string) (*Key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := s.index(kid)
	if i < 0 {
		return nil, false
	}
	return s.keys[i], true
}

func (s *KeySet) index(kid string) int {
	return slices.IndexFunc(s.keys, func(k *Key) bool { return k.id == kid })
}

// Add adds a verification key (a signing key added here does not sign).
// A key already in the set is [ErrKey].
func (s *KeySet) Add(k *Key) error {
	if k == nil {
		return fmt.Errorf("%w: nil key", ErrKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index(k.id) >= 0 {
		return fmt.Errorf("%w: duplicate key %s", ErrKey, k.id)
	}
	s.keys = append(s.keys, k)
	return nil
}

// Rotate makes next the active signing key. The previous active key stays
// in the set for verification until [KeySet.Remove]. next may already be
// in the set (e.g. published in advance with Add).
func (s *KeySet) Rotate(next *Key) error {
	if next == nil || !next.CanSign() {
		return fmt.Errorf("%w: new active key must have a private key", ErrKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(next.id); i >= 0 {
		s.keys = slices.Delete(s.keys, i, i+1)
	}
	s.keys = slices.Insert(s.keys, 0, next)
	s.active = next
	return nil
}

// Remove deletes the key with id kid; tokens signed by it no longer
// verify. Removing the active key or an absent key is [ErrKey].
func (s *KeySet) Remove(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil && s.active.id == kid {
		return fmt.Errorf("%w: cannot remove the active key %s", ErrKey, kid)
	}
	i := s.index(kid)
	if i < 0 {
		return fmt.Errorf("%w: no key %s", ErrKey, kid)
	}
	s.keys = slices.Delete(s.keys, i, i+1)
	return nil
}

// JWKS returns the public JWK Set (RFC 7517) of all keys, active first,
// written by go-jose: {"keys":[{"use":"sig","kty":"EC","kid":…,"crv":"P-256",
// "alg":"ES256","x":…,"y":…},…]}. It never contains private key material.
// Serve it as application/jwk-set+json (e.g. at /.well-known/jwks.json).
func (s *KeySet) JWKS() ([]byte, error) {
	keys := s.Keys()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.id, Algorithm: string(jose.ES256), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return b, nil
}

// MaxJWKSSize is the largest JWKS document ParseJWKS accepts (64 KiB).
const MaxJWKSSize = 64 << 10

// ParseJWKS parses a JWK Set of P-256 public keys into a verification-only
// KeySet (no active key). Every key must be "kty":"EC", "crv":"P-256", carry
// no private part, have "alg" ES256 and "use" sig when present, and have a
// "kid" equal to its RFC 7638 thumbprint (as [KeySet.JWKS] writes it);
// anything else is [ErrMalformed].
func ParseJWKS(data []byte) (*KeySet, error) {
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("%w: jwks larger than %d bytes", ErrMalformed, MaxJWKSSize)
	}
	var set jose.JSONWebKeySet
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("%w: jwks: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: jwks: trailing data", ErrMalformed)
	}
	s := &KeySet{}
	for i := range set.Keys {
		k, err := parseJWK(&set.Keys[i])
		if err != nil {
			return nil, fmt.Errorf("%w: jwks key %d: %w", ErrMalformed, i, err)
		}
		if err := s.Add(k); err != nil {
			return nil, fmt.Errorf("%w: jwks key %d: %w", ErrMalformed, i, err)
		}
	}
	return s, nil
}

// parseJWK checks one key go-jose decoded (it validated the point).
func parseJWK(j *jose.JSONWebKey) (*Key, error) {
	if !j.IsPublic() {
		return nil, errors.New("private key in jwks")
	}
	pub, ok := j.Key.(*ecdsa.PublicKey)
	switch {
	case !ok || pub.Curve != elliptic.P256():
		return nil, fmt.Errorf("key of type %T, want EC P-256", j.Key)
	case j.Algorithm != "" && j.Algorithm != string(jose.ES256):
		return nil, fmt.Errorf("alg %q, want ES256", j.Algorithm)
	case j.Use != "" && j.Use != "sig":
		return nil, fmt.Errorf("use %q, want sig", j.Use)
	}
	k, err := NewVerificationKey(pub)
	if err != nil {
		return nil, err
	}
	if j.KeyID != k.id {
		return nil, fmt.Errorf("kid %q is not the key's thumbprint %q", j.KeyID, k.id)
	}
	return k, nil
}
