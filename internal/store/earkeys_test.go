package store_test

import (
	"errors"
	"testing"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
)

func TestEARKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s := open(t, dsn)
		ks, err := store.LoadOrCreateKeySet(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		first := ks.Active()
		if first == nil || len(ks.Keys()) != 1 {
			t.Fatalf("first run: %v", ks.Keys())
		}
		// A second load (another replica) gets the same key.
		again, err := store.LoadOrCreateKeySet(t.Context(), open(t, dsn))
		if err != nil || again.Active().ID() != first.ID() {
			t.Fatalf("reload: %v %v", again, err)
		}
		signer, err := ear.NewSigner(ks)
		if err != nil {
			t.Fatal(err)
		}
		sub := map[string]ear.Appraisal{ear.SubmodTDX: {Status: ear.StatusAffirming}}
		old, _, err := signer.Sign(ear.Claims{Submods: sub})
		if err != nil {
			t.Fatal(err)
		}
		next, err := store.RotateEARKey(t.Context(), s, ks)
		if err != nil {
			t.Fatal(err)
		}
		if ks.Active().ID() != next.ID() {
			t.Fatal("key set not rotated")
		}
		fresh, _, err := signer.Sign(ear.Claims{Submods: sub})
		if err != nil {
			t.Fatal(err)
		}
		// The stored set has the new active key and the retired one.
		loaded, err := store.LoadOrCreateKeySet(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.Active().ID() != next.ID() || len(loaded.Keys()) != 2 {
			t.Fatalf("after rotation: %v", loaded.Keys())
		}
		for _, tok := range []string{old, fresh} {
			if _, err := ear.Verify(tok, loaded, ear.VerifyOptions{}); err != nil {
				t.Errorf("verify after rotation: %v", err)
			}
		}
		// Removing the old key: its tokens no longer verify.
		if err := s.RemoveKey(t.Context(), first.ID()); err != nil {
			t.Fatal(err)
		}
		loaded, err = store.LoadOrCreateKeySet(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if len(loaded.Keys()) != 1 {
			t.Fatalf("after removal: %v", loaded.Keys())
		}
		if _, err := ear.Verify(old, loaded, ear.VerifyOptions{}); !errors.Is(err, ear.ErrUnknownKey) {
			t.Errorf("old token after removal: %v", err)
		}
		if _, err := ear.Verify(fresh, loaded, ear.VerifyOptions{}); err != nil {
			t.Errorf("new token after removal: %v", err)
		}
	})
}

// TestSyncKeySet: a second replica's key set follows the first's rotation
// and removal through SyncKeySet; the active key cannot be removed.
func TestSyncKeySet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		sa, sb := open(t, dsn), open(t, dsn)
		a, err := store.LoadOrCreateKeySet(t.Context(), sa)
		if err != nil {
			t.Fatal(err)
		}
		bks, err := store.LoadOrCreateKeySet(t.Context(), sb)
		if err != nil {
			t.Fatal(err)
		}
		first := a.Active().ID()
		if err := store.RemoveRetiredEARKey(t.Context(), sa, first); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("remove the active key: %v, want ErrConflict", err)
		}
		if err := store.RemoveRetiredEARKey(t.Context(), sa, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("remove a missing key: %v, want ErrNotFound", err)
		}
		next, err := store.RotateEARKey(t.Context(), sa, a)
		if err != nil {
			t.Fatal(err)
		}
		if bks.Active().ID() != first {
			t.Fatal("B changed before its sync")
		}
		if err := store.SyncKeySet(t.Context(), sb, bks); err != nil {
			t.Fatal(err)
		}
		if bks.Active().ID() != next.ID() || len(bks.Keys()) != 2 {
			t.Fatalf("B after sync: active %s, keys %v", bks.Active().ID(), bks.Keys())
		}
		if err := store.RemoveRetiredEARKey(t.Context(), sa, first); err != nil {
			t.Fatal(err)
		}
		if err := store.RemoveRetiredEARKey(t.Context(), sa, first); err != nil {
			t.Fatalf("second removal: %v", err)
		}
		if err := store.SyncKeySet(t.Context(), sb, bks); err != nil {
			t.Fatal(err)
		}
		if _, ok := bks.Lookup(first); ok || len(bks.Keys()) != 1 {
			t.Fatalf("B after removal: %v", bks.Keys())
		}
	})
}
