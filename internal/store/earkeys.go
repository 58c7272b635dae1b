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
	sk, err := storeKey(s, k)
	if err != nil {
		return nil, err
	}
	if _, err := s.AddKey(ctx, sk); err != nil && !errors.Is(err, ErrConflict) {
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
	sk, err := storeKey(s, k)
	if err != nil {
		return nil, err
	}
	if _, err := s.RotateKey(ctx, sk); err != nil {
		return nil, err
	}
	if ks != nil {
		if err := ks.Rotate(k); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// storeKey is the record of k, its private key sealed when s seals keys
// (SealEARKeys).
func storeKey(s *Store, k *ear.Key) (Key, error) {
	// MarshalPEM of a generated signing key cannot fail.
	pem, _ := k.MarshalPEM()
	stored, err := s.sealKey(k.ID(), pem)
	if err != nil {
		return Key{}, err
	}
	return Key{KID: k.ID(), Algorithm: EARKeyAlgorithm, PrivateKey: stored, State: KeyActive}, nil
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
		keyPEM, err := s.openKey(r.KID, r.PrivateKey)
		if err != nil {
			return nil, err
		}
		k, err := ear.ParseKeyPEM(keyPEM)
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

// SyncKeySet makes ks match the EAR keys held in s, in place (a Signer over
// ks follows): the store's active key becomes ks's active key, retired keys
// are added for verification, and keys the store no longer publishes
// (removed, or unknown to it) are dropped. Replicas call it periodically
// so that another replica's rotation or removal reaches their JWKS and
// signing. With no active key in s it is [ErrNotFound] and ks is unchanged.
func SyncKeySet(ctx context.Context, s *Store, ks *ear.KeySet) error {
	want, err := loadKeySet(ctx, s)
	if err != nil {
		return err
	}
	if cur := ks.Active(); cur == nil || cur.ID() != want.Active().ID() {
		if err := ks.Rotate(want.Active()); err != nil {
			return err
		}
	}
	for _, k := range want.Keys() {
		if _, ok := ks.Lookup(k.ID()); !ok {
			if err := ks.Add(k); err != nil {
				return err
			}
		}
	}
	for _, k := range ks.Keys() {
		if _, ok := want.Lookup(k.ID()); !ok {
			if err := ks.Remove(k.ID()); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveRetiredEARKey removes the retired key kid ([Store.RemoveKey]): its
// private key is erased and it is no longer published. The active key is
// [ErrConflict] (rotate first); a removed key is left as it is; a missing
// kid is [ErrNotFound]. The check and the removal are one statement, so a
// concurrent rotation cannot make it remove the active key.
func RemoveRetiredEARKey(ctx context.Context, s *Store, kid string) error {
	cur, err := s.transitionKey(ctx, "remove", kid, "state = 'removed', private_key = NULL, removed_at = ?", "state = 'retired'")
	if err != nil {
		return err
	}
	if cur != nil && cur.State == KeyActive {
		return fmt.Errorf("store: remove key %s: it is the active key (rotate first): %w", kid, ErrConflict)
	}
	return nil
}
