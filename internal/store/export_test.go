package store

import "context"

// SetPolicyInsertedHook installs a function CreatePolicy calls inside its
// transaction right after the new version row is written (tests only).
func (s *Store) SetPolicyInsertedHook(f func(ctx context.Context)) {
	s.testHookPolicyInserted = f
}

// RawPrivateKeys returns the private_key column of every signing key row
// as stored (tests only: no decoding of any kind).
func (s *Store) RawPrivateKeys(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT kid, private_key FROM signing_keys")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var kid string
		var pk []byte
		if err := rows.Scan(&kid, &pk); err != nil {
			return nil, err
		}
		out[kid] = pk
	}
	return out, rows.Err()
}

// SetRawPrivateKey overwrites the private_key column of kid (tests only).
func (s *Store) SetRawPrivateKey(ctx context.Context, kid string, pk []byte) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE signing_keys SET private_key = ? WHERE kid = ?"), pk, kid)
	return err
}

// SetMaxCachedResourceBytes sets the bound on the sealed resource bytes a
// Cache snapshot keeps until the test ends (tests only).
func SetMaxCachedResourceBytes(t interface{ Cleanup(func()) }, n int64) {
	old := maxCachedResourceBytes
	maxCachedResourceBytes = n
	t.Cleanup(func() { maxCachedResourceBytes = old })
}
