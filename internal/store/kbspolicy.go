package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// KBSResourcePolicyName names the key broker's resource policy in
// kbs_policies.
const KBSResourcePolicyName = "resource"

// KBSPolicy is one key broker policy as stored.
type KBSPolicy struct {
	Name string
	Body string
	// SHA256 is the lowercase hex SHA-256 of Body, set by the store.
	SHA256    string
	UpdatedAt time.Time
}

// KBSPolicyDigest returns the lowercase hex SHA-256 of body, the value
// the store keeps in KBSPolicy.SHA256.
func KBSPolicyDigest(body string) string {
	d := sha256.Sum256([]byte(body))
	return hex.EncodeToString(d[:])
}

func (s *Store) kbsPolicyRecord(name, body string) (KBSPolicy, error) {
	if name == "" {
		return KBSPolicy{}, fmt.Errorf("%w: empty kbs policy name", ErrInvalid)
	}
	now, err := s.clock()
	if err != nil {
		return KBSPolicy{}, fmt.Errorf("store: kbs policy %s: %w", name, err)
	}
	return KBSPolicy{Name: name, Body: body, SHA256: KBSPolicyDigest(body), UpdatedAt: fromDB(toDB(now))}, nil
}

// PutKBSPolicy stores body as policy name, replacing any previous one, and
// returns the stored record.
func (s *Store) PutKBSPolicy(ctx context.Context, name, body string) (KBSPolicy, error) {
	defer s.wrote()
	p, err := s.kbsPolicyRecord(name, body)
	if err != nil {
		return KBSPolicy{}, err
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO kbs_policies (name, body, sha256, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET body = excluded.body, sha256 = excluded.sha256, updated_at = excluded.updated_at`),
		p.Name, p.Body, p.SHA256, toDB(p.UpdatedAt))
	if err != nil {
		return KBSPolicy{}, fmt.Errorf("store: put kbs policy %s: %w", name, mapErr(err))
	}
	return p, nil
}

// InitKBSPolicy stores body as policy name only if there is none yet, and
// reports whether it did: an existing policy is never overwritten.
func (s *Store) InitKBSPolicy(ctx context.Context, name, body string) (bool, error) {
	defer s.wrote()
	p, err := s.kbsPolicyRecord(name, body)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO kbs_policies (name, body, sha256, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING`), p.Name, p.Body, p.SHA256, toDB(p.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("store: init kbs policy %s: %w", name, mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: init kbs policy %s: %w", name, err)
	}
	return n == 1, nil
}

// KBSPolicy returns policy name; [ErrNotFound] if there is none.
func (s *Store) KBSPolicy(ctx context.Context, name string) (KBSPolicy, error) {
	var (
		p  KBSPolicy
		at int64
	)
	err := s.db.QueryRowContext(ctx, s.q("SELECT name, body, sha256, updated_at FROM kbs_policies WHERE name = ?"), name).
		Scan(&p.Name, &p.Body, &p.SHA256, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return KBSPolicy{}, fmt.Errorf("store: kbs policy %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return KBSPolicy{}, fmt.Errorf("store: kbs policy %s: %w", name, err)
	}
	p.UpdatedAt = fromDB(at)
	return p, nil
}

// KBSPolicySHA256 returns the SHA256 of policy name without reading its
// body, so a caller can check cheaply whether its copy is current;
// [ErrNotFound] if there is none.
func (s *Store) KBSPolicySHA256(ctx context.Context, name string) (string, error) {
	var d string
	err := s.queryRowPrepared(ctx, s.q("SELECT sha256 FROM kbs_policies WHERE name = ?"), name).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: kbs policy %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: kbs policy %s: %w", name, err)
	}
	return d, nil
}
