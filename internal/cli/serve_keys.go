package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// defaultKeyReload is how often serve reloads the EAR keys from the store.
const defaultKeyReload = 30 * time.Second

// earKeys is serve's EAR key set and its verifiersvc.KeyManager: either the
// keys of the store (kept in step with other replicas by reload) or, with
// --ear-key-file, one fixed key from a file.
type earKeys struct {
	ks  *ear.KeySet
	st  *store.Store // nil with a key file
	log *slog.Logger
	mu  sync.Mutex // serializes reloads and admin operations
}

var _ verifiersvc.KeyManager = (*earKeys)(nil)

// openEARKeys loads the key set: from keyFile (PKCS #8 PEM of a P-256
// private key) when it is not empty, else from the store (created on first
// run).
func openEARKeys(ctx context.Context, st *store.Store, keyFile string, log *slog.Logger) (*earKeys, error) {
	if keyFile == "" {
		ks, err := store.LoadOrCreateKeySet(ctx, st)
		if err != nil {
			return nil, err
		}
		return &earKeys{ks: ks, st: st, log: log}, nil
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--ear-key-file: %w", err)}
	}
	k, err := ear.ParseKeyPEM(b)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--ear-key-file %s: %w", keyFile, err)}
	}
	if !k.CanSign() {
		return nil, &usageError{err: fmt.Errorf("--ear-key-file %s: not a private key", keyFile)}
	}
	ks, err := ear.NewKeySet(k)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--ear-key-file %s: %w", keyFile, err)}
	}
	return &earKeys{ks: ks, log: log}, nil
}

// sealEARKeys makes st seal the EAR private keys with kek and seals the
// rows written in plain text before a KEK was configured. Without a KEK it
// returns the loud warning serve logs once it listens (nil: none): the
// keys are, or are about to be, stored in clear (not when they come from
// --ear-key-file and the database holds none, nor when every stored key
// is sealed, which then fails to load and says so).
func sealEARKeys(ctx context.Context, st *store.Store, kek []byte, keyFile bool, log *slog.Logger) (warn func(), err error) {
	if kek == nil {
		plain, err := st.PlaintextEARKeys(ctx)
		if err != nil {
			return nil, err
		}
		all, err := st.ListKeys(ctx)
		if err != nil {
			return nil, err
		}
		live := 0
		for _, k := range all {
			if k.State != store.KeyRemoved {
				live++
			}
		}
		if len(plain) == 0 && (live > 0 || keyFile) {
			return nil, nil
		}
		return func() {
			log.Warn("serve: EAR signing keys are stored UNENCRYPTED in the database: anyone with a copy of it (a backup, a replica, a snapshot) can sign tokens every relying party and the key broker accept; give the key-encryption key (--kek-file or " + envKBSKEK + ") to seal them (docs/service.md, EAR signing keys)")
		}, nil
	}
	if err := st.SealEARKeys(kek); err != nil {
		return nil, err
	}
	sealed, err := st.SealPlaintextEARKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal the keys stored in plain text: %w", err)
	}
	if len(sealed) > 0 {
		log.Info("serve: sealed the EAR signing keys stored in plain text with the key-encryption key", "kids", sealed)
	}
	return nil, nil
}

// fromFile reports whether the key came from --ear-key-file.
func (k *earKeys) fromFile() bool { return k.st == nil }

// reload brings the key set in step with the store (no-op with a key file).
func (k *earKeys) reload(ctx context.Context) error {
	if k.fromFile() {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return store.SyncKeySet(ctx, k.st, k.ks)
}

// run reloads the keys on every tick until ctx is done; reloaded, if not
// nil, is called after each reload. A failed reload is logged and the
// previous keys are kept.
func (k *earKeys) run(ctx context.Context, tick <-chan time.Time, reloaded func(error)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
		err := k.reload(ctx)
		if err != nil && ctx.Err() == nil {
			k.log.Warn("serve: reload EAR keys", "err", err)
		}
		if reloaded != nil {
			reloaded(err)
		}
	}
}

// runEvery runs the reload loop with a ticker of period d.
func (k *earKeys) runEvery(ctx context.Context, d time.Duration) error {
	if k.fromFile() {
		return nil
	}
	t := time.NewTicker(d)
	defer t.Stop()
	return k.run(ctx, t.C, nil)
}

// jwks returns the published JWK Set (nil on error, which serve answers
// with 503).
func (k *earKeys) jwks() []byte {
	b, err := k.ks.JWKS()
	if err != nil {
		k.log.Error("serve: JWKS", "err", err)
		return nil
	}
	return b
}

// ListKeys implements verifiersvc.KeyManager.
func (k *earKeys) ListKeys(ctx context.Context) ([]verifiersvc.KeyInfo, error) {
	if k.fromFile() {
		return []verifiersvc.KeyInfo{{KID: k.ks.Active().ID(), State: string(store.KeyActive), Algorithm: store.EARKeyAlgorithm}}, nil
	}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	recs, err := k.st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]verifiersvc.KeyInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, verifiersvc.StoreKeyInfo(r))
	}
	return out, nil
}

// RotateKey implements verifiersvc.KeyManager.
func (k *earKeys) RotateKey(ctx context.Context) (verifiersvc.KeyInfo, error) {
	if k.fromFile() {
		return verifiersvc.KeyInfo{}, verifiersvc.ErrKeysFixed
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	nk, err := store.RotateEARKey(ctx, k.st, nil)
	if err != nil {
		return verifiersvc.KeyInfo{}, err
	}
	if err := store.SyncKeySet(ctx, k.st, k.ks); err != nil {
		return verifiersvc.KeyInfo{}, err
	}
	rec, err := k.st.Key(ctx, nk.ID())
	if err != nil {
		return verifiersvc.KeyInfo{}, err
	}
	k.log.Info("serve: EAR key rotated", "kid", nk.ID())
	return verifiersvc.StoreKeyInfo(rec), nil
}

// RemoveKey implements verifiersvc.KeyManager.
func (k *earKeys) RemoveKey(ctx context.Context, kid string) error {
	if k.fromFile() {
		return verifiersvc.ErrKeysFixed
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	err := store.RemoveRetiredEARKey(ctx, k.st, kid)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("key %s: %w", kid, verifiersvc.ErrActiveKey)
	}
	if err != nil {
		return err
	}
	k.log.Info("serve: EAR key removed", "kid", kid)
	return store.SyncKeySet(ctx, k.st, k.ks)
}
