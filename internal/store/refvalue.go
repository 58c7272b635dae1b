package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ReferenceValue is one provenance record: the values accepted for a
// claim name, where they came from, and when they are valid.
type ReferenceValue struct {
	// ID is assigned by the store on add.
	ID int64
	// Name is the claim or user name, e.g. "tdx.mr_td". Required.
	Name string
	// Values are the accepted values, in order, without duplicates. At
	// least one is required. Stored as given (no case folding).
	Values []string
	// Source says where the values came from (e.g. "tdproof measure"),
	// Author who added them, ArtifactDigest the digest of the artifact they
	// were computed from. If empty, empty.
	Source         string
	Author         string
	ArtifactDigest string
	// CreatedAt is set by the store.
	CreatedAt time.Time
	// NotBefore and Expires bound the validity: the record is valid at t
	// when NotBefore <= t < Expires. nil leaves that side open. Times are
	// stored as int64 Unix nanoseconds, so only 1677-09-21 to 2262-04-11
	// UTC can be stored; add rejects others with [ErrInvalid].
	NotBefore *time.Time
	Expires   *time.Time
}

// ValidAt reports whether r is valid at t, with the same rule that
// [Store.LookupReferenceValues] applies in SQL.
func (r ReferenceValue) ValidAt(t time.Time) bool {
	return (r.NotBefore == nil || !t.Before(*r.NotBefore)) && (r.Expires == nil || t.Before(*r.Expires))
}

// AddReferenceValue stores r and returns it with ID and CreatedAt set.
func (s *Store) AddReferenceValue(ctx context.Context, r ReferenceValue) (ReferenceValue, error) {
	defer s.wrote()
	if r.Name == "" {
		return ReferenceValue{}, fmt.Errorf("%w: empty reference value name", ErrInvalid)
	}
	if len(r.Values) == 0 {
		return ReferenceValue{}, fmt.Errorf("%w: reference value %s has no values", ErrInvalid, r.Name)
	}
	seen := make(map[string]bool, len(r.Values))
	for _, v := range r.Values {
		if seen[v] {
			return ReferenceValue{}, fmt.Errorf("%w: reference value %s: duplicate value %q", ErrInvalid, r.Name, v)
		}
		seen[v] = true
	}
	if r.NotBefore != nil && r.Expires != nil && !r.NotBefore.Before(*r.Expires) {
		return ReferenceValue{}, fmt.Errorf("%w: reference value %s: not_before is not before expires", ErrInvalid, r.Name)
	}
	if err := checkTimePtr("reference value "+r.Name+": not_before", r.NotBefore); err != nil {
		return ReferenceValue{}, err
	}
	if err := checkTimePtr("reference value "+r.Name+": expires", r.Expires); err != nil {
		return ReferenceValue{}, err
	}
	now, err := s.clock()
	if err != nil {
		return ReferenceValue{}, err
	}
	r.Values = append([]string(nil), r.Values...)
	r.CreatedAt = fromDB(toDB(now))
	r.NotBefore = fromDBPtr(toDBPtr(r.NotBefore))
	r.Expires = fromDBPtr(toDBPtr(r.Expires))
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO reference_values (name, source, author, artifact_digest, created_at, not_before, expires)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			r.Name, r.Source, r.Author, r.ArtifactDigest, toDB(now), toDBPtr(r.NotBefore), toDBPtr(r.Expires)).Scan(&r.ID)
		if err != nil {
			return fmt.Errorf("store: add reference value %s: %w", r.Name, mapErr(err))
		}
		for i, v := range r.Values {
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO reference_value_items (reference_value_id, position, value) VALUES (?, ?, ?)"),
				r.ID, i, v); err != nil {
				return fmt.Errorf("store: add reference value %s: %w", r.Name, mapErr(err))
			}
		}
		return nil
	})
	if err != nil {
		return ReferenceValue{}, err
	}
	return r, nil
}

// ListReferenceValues returns the records named name, or all records if
// name is empty, whatever their validity, ordered by ID.
func (s *Store) ListReferenceValues(ctx context.Context, name string) ([]ReferenceValue, error) {
	where, args := "", []any(nil)
	if name != "" {
		where, args = "WHERE r.name = ?", []any{name}
	}
	out, err := s.queryReferenceValues(ctx, s.db, where, args)
	if err != nil {
		return nil, fmt.Errorf("store: list reference values: %w", err)
	}
	return out, nil
}

// LookupReferenceValues returns the records named name that are valid at
// at (NotBefore <= at < Expires), ordered by ID. Validity is enforced by the
// query itself, so an expired record is never returned. No record is an
// empty list, not an error. A time outside the storable range (see
// [ReferenceValue]) is [ErrInvalid].
func (s *Store) LookupReferenceValues(ctx context.Context, name string, at time.Time) ([]ReferenceValue, error) {
	if err := checkTime("lookup time", at); err != nil {
		return nil, fmt.Errorf("store: lookup reference values %s: %w", name, err)
	}
	t := toDB(at)
	out, err := s.queryReferenceValues(ctx, s.db,
		"WHERE r.name = ? AND (r.not_before IS NULL OR r.not_before <= ?) AND (r.expires IS NULL OR ? < r.expires)",
		[]any{name, t, t})
	if err != nil {
		return nil, fmt.Errorf("store: lookup reference values %s: %w", name, err)
	}
	return out, nil
}

// queryReferenceValues reads records and their values with one statement
// (one consistent snapshot).
func (s *Store) queryReferenceValues(ctx context.Context, db querier, where string, args []any) ([]ReferenceValue, error) {
	rows, err := db.QueryContext(ctx, s.q(`SELECT r.id, r.name, r.source, r.author, r.artifact_digest, r.created_at, r.not_before, r.expires, i.value
FROM reference_values r JOIN reference_value_items i ON i.reference_value_id = r.id
`+where+`
ORDER BY r.id, i.position`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReferenceValue
	for rows.Next() {
		var (
			r       ReferenceValue
			created int64
			nb, exp sql.NullInt64
			value   string
		)
		if err := rows.Scan(&r.ID, &r.Name, &r.Source, &r.Author, &r.ArtifactDigest, &created, &nb, &exp, &value); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == r.ID {
			out[n-1].Values = append(out[n-1].Values, value)
			continue
		}
		r.CreatedAt = fromDB(created)
		r.NotBefore = fromDBPtr(nb)
		r.Expires = fromDBPtr(exp)
		r.Values = []string{value}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RemoveReferenceValue deletes the record with the given ID; [ErrNotFound]
// if there is none.
func (s *Store) RemoveReferenceValue(ctx context.Context, id int64) error {
	defer s.wrote()
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM reference_values WHERE id = ?"), id)
	if err != nil {
		return fmt.Errorf("store: remove reference value %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: remove reference value %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("store: remove reference value %d: %w", id, ErrNotFound)
	}
	return nil
}

// RemoveReferenceValues deletes every record named name and reports how
// many there were; [ErrNotFound] if none.
func (s *Store) RemoveReferenceValues(ctx context.Context, name string) (int, error) {
	defer s.wrote()
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM reference_values WHERE name = ?"), name)
	if err != nil {
		return 0, fmt.Errorf("store: remove reference values %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: remove reference values %s: %w", name, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("store: remove reference values %s: %w", name, ErrNotFound)
	}
	return int(n), nil
}
