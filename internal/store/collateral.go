package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CollateralItem is one cached upstream response (PCS or PCCS): the raw
// body exactly as fetched and the response headers that matter (issuer
// chains, update times).
type CollateralItem struct {
	// Key identifies the item, e.g. "tcb/00906ED50000". Required.
	Key string
	// Body is the raw response body. Stored and returned byte for byte.
	Body []byte
	// Headers are response headers; nil is stored as an empty object.
	Headers map[string]string
	// FetchedAt is when the item was fetched. If zero on put, now. Times
	// outside 1677-09-21 to 2262-04-11 UTC cannot be stored ([ErrInvalid]).
	FetchedAt time.Time
}

// PutCollateral inserts or replaces the item with key it.Key.
func (s *Store) PutCollateral(ctx context.Context, it CollateralItem) error {
	if it.Key == "" {
		return fmt.Errorf("%w: empty collateral key", ErrInvalid)
	}
	h := it.Headers
	if h == nil {
		h = map[string]string{}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: put collateral %s: %w", it.Key, err)
	}
	if it.FetchedAt.IsZero() {
		it.FetchedAt = s.now()
	}
	if err := checkTime("collateral "+it.Key+": fetched_at", it.FetchedAt); err != nil {
		return err
	}
	body := it.Body
	if body == nil {
		body = []byte{}
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO collateral (key, body, headers, fetched_at) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET body = excluded.body, headers = excluded.headers, fetched_at = excluded.fetched_at`),
		it.Key, body, string(hj), toDB(it.FetchedAt))
	if err != nil {
		return fmt.Errorf("store: put collateral %s: %w", it.Key, err)
	}
	return nil
}

// Collateral returns the item with the given key; [ErrNotFound] if none.
func (s *Store) Collateral(ctx context.Context, key string) (CollateralItem, error) {
	it, err := scanCollateral(s.db.QueryRowContext(ctx, s.q("SELECT key, body, headers, fetched_at FROM collateral WHERE key = ?"), key))
	if err != nil {
		return CollateralItem{}, fmt.Errorf("store: collateral %s: %w", key, err)
	}
	return it, nil
}

// ListCollateral returns all items ordered by key. Bodies are included.
func (s *Store) ListCollateral(ctx context.Context) ([]CollateralItem, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT key, body, headers, fetched_at FROM collateral ORDER BY key")
	if err != nil {
		return nil, fmt.Errorf("store: list collateral: %w", err)
	}
	defer rows.Close()
	var out []CollateralItem
	for rows.Next() {
		it, err := scanCollateral(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list collateral: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list collateral: %w", err)
	}
	return out, nil
}

// DeleteCollateral removes the item with the given key; [ErrNotFound] if
// none.
func (s *Store) DeleteCollateral(ctx context.Context, key string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM collateral WHERE key = ?"), key)
	if err != nil {
		return fmt.Errorf("store: delete collateral %s: %w", key, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete collateral %s: %w", key, err)
	} else if n == 0 {
		return fmt.Errorf("store: delete collateral %s: %w", key, ErrNotFound)
	}
	return nil
}

func scanCollateral(r scanner) (CollateralItem, error) {
	var (
		it      CollateralItem
		headers string
		fetched int64
	)
	err := r.Scan(&it.Key, &it.Body, &headers, &fetched)
	if errors.Is(err, sql.ErrNoRows) {
		return CollateralItem{}, ErrNotFound
	}
	if err != nil {
		return CollateralItem{}, err
	}
	if err := json.Unmarshal([]byte(headers), &it.Headers); err != nil {
		return CollateralItem{}, fmt.Errorf("headers: %w", err)
	}
	if it.Body == nil {
		it.Body = []byte{}
	}
	it.FetchedAt = fromDB(fetched)
	return it, nil
}
