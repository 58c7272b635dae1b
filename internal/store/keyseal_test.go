package store_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
)

var testKEK = bytes.Repeat([]byte{0x42}, 32)

// wantSealedRows checks the raw rows: every private key is a sealed
// block, and none holds a PEM private key, the PKCS #8 DER or the private
// scalar of any key of ks.
func wantSealedRows(t *testing.T, s *store.Store, ks *ear.KeySet) {
	t.Helper()
	raw, err := s.RawPrivateKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		t.Fatal("no rows")
	}
	var secrets [][]byte
	for _, k := range ks.Keys() {
		p, err := k.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(p)
		priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		d, err := priv.(*ecdsa.PrivateKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, p, blk.Bytes, d)
	}
	for kid, pk := range raw {
		if !bytes.HasPrefix(pk, []byte("-----BEGIN "+store.SealedKeyPEMType+"-----")) {
			t.Errorf("row %s: not a sealed key: %.40q", kid, pk)
		}
		if bytes.Contains(pk, []byte("-----BEGIN PRIVATE KEY")) {
			t.Errorf("row %s: a plaintext PEM private key", kid)
		}
		for _, sec := range secrets {
			if bytes.Contains(pk, sec) {
				t.Errorf("row %s holds private key material in clear", kid)
			}
		}
	}
}

func TestEARKeysSealedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s := open(t, dsn)
		if err := s.SealEARKeys(testKEK); err != nil {
			t.Fatal(err)
		}
		ks, err := store.LoadOrCreateKeySet(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.RotateEARKey(t.Context(), s, ks); err != nil {
			t.Fatal(err)
		}
		wantSealedRows(t, s, ks)

		// Another replica with the KEK reads the same keys.
		r := open(t, dsn)
		if err := r.SealEARKeys(testKEK); err != nil {
			t.Fatal(err)
		}
		got, err := store.LoadOrCreateKeySet(t.Context(), r)
		if err != nil || got.Active().ID() != ks.Active().ID() || len(got.Keys()) != 2 {
			t.Fatalf("replica with the KEK: %v %v", got, err)
		}
		// Without the KEK, or with another, the keys do not open and no
		// new key is created in their place.
		if _, err := store.LoadOrCreateKeySet(t.Context(), open(t, dsn)); !errors.Is(err, store.ErrKeySealed) {
			t.Errorf("without the KEK: %v, want ErrKeySealed", err)
		}
		wrong := open(t, dsn)
		if err := wrong.SealEARKeys(bytes.Repeat([]byte{7}, 32)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.LoadOrCreateKeySet(t.Context(), wrong); err == nil {
			t.Error("another KEK opened the keys")
		}
		if raw, _ := s.RawPrivateKeys(t.Context()); len(raw) != 2 {
			t.Errorf("%d rows after the failed loads, want 2", len(raw))
		}
		// The kid is bound: a sealed key moved to another row does not open.
		raw, err := s.RawPrivateKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		kids := make([]string, 0, 2)
		for kid := range raw {
			kids = append(kids, kid)
		}
		slices.Sort(kids)
		if err := s.SetRawPrivateKey(t.Context(), kids[0], raw[kids[1]]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.LoadOrCreateKeySet(t.Context(), s); err == nil {
			t.Error("a sealed key moved to another kid opened")
		}
		if err := s.SealEARKeys(make([]byte, 16)); err == nil {
			t.Error("a 16-byte KEK was accepted")
		}
	})
}

func TestEARKeysMigrateToSealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		plain := open(t, dsn)
		ks, err := store.LoadOrCreateKeySet(t.Context(), plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.RotateEARKey(t.Context(), plain, ks); err != nil {
			t.Fatal(err)
		}
		left, err := plain.PlaintextEARKeys(t.Context())
		if err != nil || len(left) != 2 {
			t.Fatalf("plaintext keys before migration: %v %v", left, err)
		}
		if _, err := plain.SealPlaintextEARKeys(t.Context()); err == nil {
			t.Error("sealing without a KEK succeeded")
		}

		s := open(t, dsn)
		if err := s.SealEARKeys(testKEK); err != nil {
			t.Fatal(err)
		}
		// With a KEK configured, plain rows do not load before the
		// migration seals them, and no key is created in their place.
		if _, err := store.LoadOrCreateKeySet(t.Context(), s); !errors.Is(err, store.ErrKeyNotSealed) {
			t.Fatalf("plain rows with a KEK configured: %v, want ErrKeyNotSealed", err)
		}
		if left, err := s.PlaintextEARKeys(t.Context()); err != nil || len(left) != 2 {
			t.Fatalf("plaintext keys after the refused load: %v %v", left, err)
		}
		sealed, err := s.SealPlaintextEARKeys(t.Context())
		if err != nil || len(sealed) != 2 {
			t.Fatalf("migration sealed %v, %v", sealed, err)
		}
		wantSealedRows(t, s, ks)
		if again, err := s.SealPlaintextEARKeys(t.Context()); err != nil || len(again) != 0 {
			t.Errorf("second migration: %v %v", again, err)
		}
		if left, err := s.PlaintextEARKeys(t.Context()); err != nil || len(left) != 0 {
			t.Errorf("plaintext keys after migration: %v %v", left, err)
		}
		got, err := store.LoadOrCreateKeySet(t.Context(), s)
		if err != nil || got.Active().ID() != ks.Active().ID() || len(got.Keys()) != 2 {
			t.Fatalf("after migration: %v %v", got, err)
		}
		// A removed key's row holds nothing to seal.
		for _, k := range got.Keys() {
			if k.ID() != got.Active().ID() {
				if err := store.RemoveRetiredEARKey(t.Context(), s, k.ID()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if again, err := s.SealPlaintextEARKeys(t.Context()); err != nil || len(again) != 0 {
			t.Errorf("migration after removal: %v %v", again, err)
		}
	})
}

// TestEARKeysPlaintextRowRefusedWithKEK: once a key-encryption key is
// configured, a plaintext private key written into a row later (a replica
// without the KEK, or someone with write access to the database) is not
// loaded into the signing key set; the keys already loaded stay.
func TestEARKeysPlaintextRowRefusedWithKEK(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s := open(t, dsn)
		if err := s.SealEARKeys(testKEK); err != nil {
			t.Fatal(err)
		}
		ks, err := store.LoadOrCreateKeySet(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		activeKID := ks.Active().ID()
		// A replica without the KEK cannot load the sealed keys.
		plain := open(t, dsn)
		pks, err := store.LoadOrCreateKeySet(t.Context(), plain)
		if !errors.Is(err, store.ErrKeySealed) {
			t.Fatalf("replica without the KEK loaded sealed keys: %v %v", pks, err)
		}
		// The row now holds a plaintext key (here the same key, so the
		// refusal can only come from its being plain).
		p, err := ks.Active().MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetRawPrivateKey(t.Context(), activeKID, p); err != nil {
			t.Fatal(err)
		}
		if err := store.SyncKeySet(t.Context(), s, ks); !errors.Is(err, store.ErrKeyNotSealed) {
			t.Fatalf("sync with a plaintext row: %v, want ErrKeyNotSealed", err)
		}
		if ks.Active().ID() != activeKID {
			t.Errorf("active key changed to %s after a refused sync", ks.Active().ID())
		}
		if _, err := store.LoadOrCreateKeySet(t.Context(), s); !errors.Is(err, store.ErrKeyNotSealed) {
			t.Errorf("load with a plaintext row: %v, want ErrKeyNotSealed", err)
		}
	})
}
