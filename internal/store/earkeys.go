package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/ear"
)

// EARKeyAlgorithm is the algorithm recorded for EAR signing keys.
const EARKeyAlgorithm = "ES256"

// LoadOrCreateKeySet returns the EAR key set held in s: the active key signs,
// retired keys stay for verification (and the JWKS), removed keys are left
// out. With no active key (first run) a new key is generated and stored;
// when another replica stores one first, that one is used.
func LoadOrCreateKeySet(ctx context.Context, s *Store) (*ear.KeySet, error) {
	ks, err := loadKeySet(ctx, s)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return ks, err
	}
	k, err := ear.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("store: generate EAR key: %w", err)
	}
	if _, err := s.AddKey(ctx, storeKey(k)); err != nil && !errors.Is(err, ErrConflict) {
		return nil, err
	}
	return loadKeySet(ctx, s)
}

// RotateEARKey generates a new EAR key, stores it as the active key and
// retires the previous one (Store.RotateKey). If ks is not nil the new key
// is also made active in ks; other replicas see it on their next
// LoadOrCreateKeySet. Remove the old key later with Store.RemoveKey.
func RotateEARKey(ctx context.Context, s *Store, ks *ear.KeySet) (*ear.Key, error) {
	k, err := ear.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("store: generate EAR key: %w", err)
	}
	if _, err := s.RotateKey(ctx, storeKey(k)); err != nil {
		return nil, err
	}
	if ks != nil {
		if err := ks.Rotate(k); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func storeKey(k *ear.Key) Key {
	// MarshalPEM of a generated signing key cannot fail.
	pem, _ := k.MarshalPEM()
	return Key{KID: k.ID(), Algorithm: EARKeyAlgorithm, PrivateKey: pem, State: KeyActive}
}

// loadKeySet builds the key set; ErrNotFound when there is no active key.
func loadKeySet(ctx context.Context, s *Store) (*ear.KeySet, error) {
	recs, err := s.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var (
		active   *ear.Key
		previous []*ear.Key
	)
	for _, r := range recs {
		if r.State == KeyRemoved || r.Algorithm != EARKeyAlgorithm {
			continue
		}
		k, err := ear.ParseKeyPEM(r.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("store: key %s: %w", r.KID, err)
		}
		if k.ID() != r.KID {
			return nil, fmt.Errorf("store: key %s: stored kid does not match the key (%s)", r.KID, k.ID())
		}
		if r.State == KeyActive {
			active = k
		} else {
			previous = append(previous, k)
		}
	}
	if active == nil {
		return nil, fmt.Errorf("store: EAR keys: no active key: %w", ErrNotFound)
	}
	return ear.NewKeySet(active, previous...)
}
