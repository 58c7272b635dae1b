package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KeyState is the life-cycle state of a signing key.
type KeyState string

// Key states: an active key signs (at most one key is active); a retired
// key no longer signs but is still published so tokens it signed verify;
// a removed key is neither, and its private key bytes are erased.
const (
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
	KeyRemoved KeyState = "removed"
)

// Key is an EAR signing key.
type Key struct {
	// KID is the JWK key id. Required, unique forever (a removed key keeps
	// its row so that its kid is never reused).
	KID string
	// Algorithm is the JWS algorithm, e.g. "ES256". Required.
	Algorithm string
	// PrivateKey is the PKCS #8 PEM encoding of the private key, or, for
	// keys written through the EAR key functions with a key-encryption
	// key (SealEARKeys), its sealed PEM block. Required on add; nil once
	// the key is removed. The store does not parse it.
	PrivateKey []byte
	// State is the life-cycle state. On add it may be KeyActive or
	// KeyRetired; zero means KeyActive.
	State KeyState
	// CreatedAt, RetiredAt and RemovedAt are set by the store.
	CreatedAt time.Time
	RetiredAt *time.Time
	RemovedAt *time.Time
}

// String describes k without its private key, so that formatting a Key
// (%v, %s) never prints key material.
func (k Key) String() string {
	return fmt.Sprintf("Key{KID: %q, Algorithm: %q, State: %s, PrivateKey: REDACTED}", k.KID, k.Algorithm, k.State)
}

const keyColumns = "kid, algorithm, private_key, state, created_at, retired_at, removed_at"

// AddKey stores k. k.State may be zero or KeyActive (the new key becomes
// the active key; if another key is active that is [ErrConflict], so two
// replicas that both create a first key at start-up agree on one: the loser
// reads [Store.ActiveKey]) or KeyRetired. A kid that exists is
// [ErrConflict]. Use [Store.RotateKey] to replace the active key.
func (s *Store) AddKey(ctx context.Context, k Key) (Key, error) {
	if k.State == "" {
		k.State = KeyActive
	}
	if err := checkNewKey(k); err != nil {
		return Key{}, err
	}
	var out Key
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.insertKey(ctx, tx, k)
		return err
	})
	return out, err
}

// RotateKey stores k as the new active key and retires the key that was
// active (if any), atomically. It returns the new key.
func (s *Store) RotateKey(ctx context.Context, k Key) (Key, error) {
	if k.State == "" {
		k.State = KeyActive
	}
	if k.State != KeyActive {
		return Key{}, fmt.Errorf("%w: rotate to a key in state %q", ErrInvalid, k.State)
	}
	if err := checkNewKey(k); err != nil {
		return Key{}, err
	}
	now, err := s.clock()
	if err != nil {
		return Key{}, fmt.Errorf("store: rotate key: %w", err)
	}
	var out Key
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("UPDATE signing_keys SET state = 'retired', retired_at = ? WHERE state = 'active'"), toDB(now)); err != nil {
			return fmt.Errorf("store: rotate key: %w", mapErr(err))
		}
		var err error
		out, err = s.insertKey(ctx, tx, k)
		return err
	})
	return out, err
}

func checkNewKey(k Key) error {
	switch {
	case k.KID == "":
		return fmt.Errorf("%w: empty kid", ErrInvalid)
	case k.Algorithm == "":
		return fmt.Errorf("%w: key %s: empty algorithm", ErrInvalid, k.KID)
	case len(k.PrivateKey) == 0:
		return fmt.Errorf("%w: key %s: no private key", ErrInvalid, k.KID)
	case k.State != KeyActive && k.State != KeyRetired:
		return fmt.Errorf("%w: key %s: new key in state %q", ErrInvalid, k.KID, k.State)
	}
	return nil
}

func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, k Key) (Key, error) {
	now, err := s.clock()
	if err != nil {
		return Key{}, fmt.Errorf("store: add key %s: %w", k.KID, err)
	}
	k.PrivateKey = append([]byte(nil), k.PrivateKey...)
	k.CreatedAt = fromDB(toDB(now))
	k.RetiredAt, k.RemovedAt = nil, nil
	var retired sql.NullInt64
	if k.State == KeyRetired {
		retired = toDBPtr(&now)
		k.RetiredAt = fromDBPtr(retired)
	}
	_, err = tx.ExecContext(ctx, s.q("INSERT INTO signing_keys ("+keyColumns+") VALUES (?, ?, ?, ?, ?, ?, NULL)"),
		k.KID, k.Algorithm, k.PrivateKey, string(k.State), toDB(now), retired)
	if err != nil {
		return Key{}, fmt.Errorf("store: add key %s: %w", k.KID, mapErr(err))
	}
	return k, nil
}

// Key returns the key with the given kid, in any state; [ErrNotFound] if
// there is none.
func (s *Store) Key(ctx context.Context, kid string) (Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.q("SELECT "+keyColumns+" FROM signing_keys WHERE kid = ?"), kid))
	if err != nil {
		return Key{}, fmt.Errorf("store: key %s: %w", kid, err)
	}
	return k, nil
}

// ActiveKey returns the active key; [ErrNotFound] if there is none.
func (s *Store) ActiveKey(ctx context.Context) (Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM signing_keys WHERE state = 'active'"))
	if err != nil {
		return Key{}, fmt.Errorf("store: active key: %w", err)
	}
	return k, nil
}

// ListKeys returns all keys, removed ones included (without private key),
// oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+keyColumns+" FROM signing_keys ORDER BY created_at, kid")
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return out, nil
}

// transitionKey runs one conditional UPDATE of kid's row ("UPDATE
// signing_keys SET <set> WHERE kid = ? AND <where>", the first placeholder
// of set being the current time). It returns nil when a row changed;
// otherwise the key as it is now (so the caller can say why nothing
// changed), or an error wrapping ErrNotFound when kid does not exist.
func (s *Store) transitionKey(ctx context.Context, op, kid, set, where string) (*Key, error) {
	now, err := s.clock()
	if err != nil {
		return nil, fmt.Errorf("store: %s key %s: %w", op, kid, err)
	}
	res, err := s.db.ExecContext(ctx, s.q("UPDATE signing_keys SET "+set+" WHERE kid = ? AND "+where), toDB(now), kid)
	if err != nil {
		return nil, fmt.Errorf("store: %s key %s: %w", op, kid, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("store: %s key %s: %w", op, kid, err)
	} else if n == 1 {
		return nil, nil
	}
	cur, err := s.Key(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("store: %s key %s: %w", op, kid, err)
	}
	return &cur, nil
}

// RetireKey moves an active key to retired (it stops signing, still
// verifies). Retiring a retired key does nothing; a removed or missing key
// is [ErrNotFound].
func (s *Store) RetireKey(ctx context.Context, kid string) error {
	cur, err := s.transitionKey(ctx, "retire", kid, "state = 'retired', retired_at = ?", "state = 'active'")
	if err != nil {
		return err
	}
	if cur != nil && cur.State == KeyRemoved {
		return fmt.Errorf("store: retire key %s: removed: %w", kid, ErrNotFound)
	}
	return nil
}

// RemoveKey erases the private key of kid and marks it removed: tokens it
// signed no longer verify against the published key set. Removing a
// removed key does nothing; a missing kid is [ErrNotFound].
func (s *Store) RemoveKey(ctx context.Context, kid string) error {
	_, err := s.transitionKey(ctx, "remove", kid, "state = 'removed', private_key = NULL, removed_at = ?", "state <> 'removed'")
	return err
}

func scanKey(r scanner) (Key, error) {
	var (
		k                Key
		state            string
		created          int64
		retired, removed sql.NullInt64
	)
	err := r.Scan(&k.KID, &k.Algorithm, &k.PrivateKey, &state, &created, &retired, &removed)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, err
	}
	k.State = KeyState(state)
	k.CreatedAt = fromDB(created)
	k.RetiredAt = fromDBPtr(retired)
	k.RemovedAt = fromDBPtr(removed)
	return k, nil
}
