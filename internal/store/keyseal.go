package store

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
)

// SealedKeyPEMType is the PEM block type of an EAR private key sealed with
// the key-encryption key: its bytes are a 96-bit nonce followed by the
// AES-256-GCM encryption of the PKCS #8 PEM key, with additional data
// sealedKeyAD + kid.
const SealedKeyPEMType = "TDPROOF SEALED PRIVATE KEY"

// sealedKeyAD prefixes the kid in a sealed key's additional data, so a
// sealed key moved to another kid's row does not open.
const sealedKeyAD = "tdproof ear signing key v1\x00"

// sealedKeyInfo is the HKDF info deriving the key-sealing key from the
// key-encryption key (the KBS resources use the key-encryption key
// itself, with other additional data).
const sealedKeyInfo = "tdproof: EAR signing keys at rest v1"

// ErrKeySealed is returned when a stored private key is sealed and no
// key-encryption key was given to SealEARKeys.
var ErrKeySealed = errors.New("the private key is encrypted with a key-encryption key, which is not configured")

// ErrKeyNotSealed is returned when a key-encryption key is configured and
// a stored private key is in plain text: a row written by a replica
// without the key-encryption key, or put there by someone with write
// access to the database, is not trusted to sign tokens.
// SealPlaintextEARKeys seals such rows (serve does it at start).
var ErrKeyNotSealed = errors.New("the private key is stored in plain text while a key-encryption key is configured; seal it (serve does at start) or find out who wrote it")

// SealEARKeys makes the EAR key functions of this package (LoadOrCreateKeySet,
// RotateEARKey, SyncKeySet) store private keys sealed under a key derived
// from the 32-byte key-encryption key kek, and open sealed keys. Call it
// before those functions. Without it, new keys are stored as plain PKCS #8
// PEM and sealed keys cannot be read (ErrKeySealed).
func (s *Store) SealEARKeys(kek []byte) error {
	if len(kek) != 32 {
		return fmt.Errorf("store: key-encryption key of %d bytes, want 32", len(kek))
	}
	k, err := hkdf.Key(sha256.New, kek, nil, sealedKeyInfo, 32)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.keyAEAD = aead
	return nil
}

// sealKey returns the stored form of the private key keyPEM of kid:
// sealed when a key-encryption key is configured, else keyPEM.
func (s *Store) sealKey(kid string, keyPEM []byte) ([]byte, error) {
	if s.keyAEAD == nil {
		return keyPEM, nil
	}
	nonce := make([]byte, s.keyAEAD.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("store: seal key %s: %w", kid, err)
	}
	ct := s.keyAEAD.Seal(nonce, nonce, keyPEM, []byte(sealedKeyAD+kid))
	return pem.EncodeToMemory(&pem.Block{Type: SealedKeyPEMType, Bytes: ct}), nil
}

// isSealedKey reports whether a stored private key is sealed.
func isSealedKey(stored []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(stored), []byte("-----BEGIN "+SealedKeyPEMType+"-----"))
}

// openKey returns the PKCS #8 PEM private key of kid from its stored form.
// With a key-encryption key configured, only sealed rows open.
func (s *Store) openKey(kid string, stored []byte) ([]byte, error) {
	if !isSealedKey(stored) {
		if s.keyAEAD != nil {
			return nil, fmt.Errorf("store: key %s: %w", kid, ErrKeyNotSealed)
		}
		return stored, nil
	}
	if s.keyAEAD == nil {
		return nil, fmt.Errorf("store: key %s: %w", kid, ErrKeySealed)
	}
	blk, rest := pem.Decode(stored)
	if blk == nil || blk.Type != SealedKeyPEMType || len(bytes.TrimSpace(rest)) != 0 || len(blk.Bytes) < s.keyAEAD.NonceSize() {
		return nil, fmt.Errorf("store: key %s: malformed sealed key", kid)
	}
	n := s.keyAEAD.NonceSize()
	pt, err := s.keyAEAD.Open(nil, blk.Bytes[:n], blk.Bytes[n:], []byte(sealedKeyAD+kid))
	if err != nil {
		return nil, fmt.Errorf("store: key %s: cannot open the sealed key (another key-encryption key, or the record was moved or altered): %w", kid, err)
	}
	return pt, nil
}

// PlaintextEARKeys returns the kids of the keys whose private key is
// stored in plain text.
func (s *Store) PlaintextEARKeys(ctx context.Context) ([]string, error) {
	recs, err := s.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs {
		if r.PrivateKey != nil && !isSealedKey(r.PrivateKey) {
			out = append(out, r.KID)
		}
	}
	return out, nil
}

// SealPlaintextEARKeys seals, under the key given to SealEARKeys, every
// private key stored in plain text (rows written before a key-encryption
// key was configured), and returns their kids. Each row is replaced only
// if it still holds the plaintext read, so concurrent replicas doing the
// same agree.
func (s *Store) SealPlaintextEARKeys(ctx context.Context) ([]string, error) {
	if s.keyAEAD == nil {
		return nil, errors.New("store: seal keys: no key-encryption key (SealEARKeys)")
	}
	recs, err := s.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var sealed []string
	for _, r := range recs {
		if r.PrivateKey == nil || isSealedKey(r.PrivateKey) {
			continue
		}
		ct, err := s.sealKey(r.KID, r.PrivateKey)
		if err != nil {
			return sealed, err
		}
		res, err := s.db.ExecContext(ctx, s.q("UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key = ?"), ct, r.KID, r.PrivateKey)
		if err != nil {
			return sealed, fmt.Errorf("store: seal key %s: %w", r.KID, mapErr(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return sealed, fmt.Errorf("store: seal key %s: %w", r.KID, err)
		} else if n == 1 {
			sealed = append(sealed, r.KID)
		}
	}
	return sealed, nil
}
