package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PolicyKind is the language of a policy body.
type PolicyKind string

// Policy kinds.
const (
	PolicyYAML PolicyKind = "yaml" // declarative YAML
	PolicyRego PolicyKind = "rego" // Rego (OPA v1)
)

// Policy is one version of an appraisal policy. Versions of one ID are
// immutable once stored; at most one of them is active.
type Policy struct {
	// ID names the policy, e.g. "default". Required.
	ID string
	// Version is 1, 2, 3, … per ID. On create, zero means "the next one".
	Version int
	// Kind is the language of Body. Required.
	Kind PolicyKind
	// Body is the policy text, stored as given.
	Body string
	// Description and Author are free text. If empty, empty.
	Description string
	Author      string
	// Active reports whether this is the active version of ID. On create,
	// true activates the new version in the same transaction.
	Active bool
	// CreatedAt is set by the store. ActivatedAt is when the version was last
	// activated; nil if it never was.
	CreatedAt   time.Time
	ActivatedAt *time.Time
}

const policyColumns = "id, version, kind, body, description, author, active, created_at, activated_at"

// maxVersionRetries bounds how often CreatePolicy retries when another
// process took the same next version at the same time (PostgreSQL).
const maxVersionRetries = 8

// CreatePolicy stores p as a new version of policy p.ID and returns it as
// stored. If p.Version is zero it gets the next free version (1 for a new
// ID); otherwise exactly p.Version, and an existing version is
// [ErrConflict]. If p.Active is true the new version is activated in the
// same transaction: a failure or a cancelled ctx leaves neither the version
// nor the activation behind.
func (s *Store) CreatePolicy(ctx context.Context, p Policy) (Policy, error) {
	if p.ID == "" {
		return Policy{}, fmt.Errorf("%w: empty policy id", ErrInvalid)
	}
	if p.Kind != PolicyYAML && p.Kind != PolicyRego {
		return Policy{}, fmt.Errorf("%w: policy kind %q, want yaml or rego", ErrInvalid, p.Kind)
	}
	if p.Version < 0 {
		return Policy{}, fmt.Errorf("%w: negative policy version", ErrInvalid)
	}
	for attempt := 0; ; attempt++ {
		out, err := s.createPolicy(ctx, p)
		if err == nil || p.Version != 0 || !errors.Is(err, ErrConflict) || attempt == maxVersionRetries {
			return out, err
		}
	}
}

func (s *Store) createPolicy(ctx context.Context, p Policy) (Policy, error) {
	defer s.wrote()
	now, err := s.clock()
	if err != nil {
		return Policy{}, fmt.Errorf("store: create policy %s: %w", p.ID, err)
	}
	p.CreatedAt = fromDB(toDB(now))
	p.ActivatedAt = nil
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if p.Version == 0 {
			if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE id = ?"), p.ID).Scan(&p.Version); err != nil {
				return fmt.Errorf("store: create policy %s: %w", p.ID, err)
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO policies (id, version, kind, body, description, author, active, created_at)
VALUES (?, ?, ?, ?, ?, ?, 0, ?)`), p.ID, p.Version, string(p.Kind), p.Body, p.Description, p.Author, toDB(now))
		if err != nil {
			return fmt.Errorf("store: create policy %s version %d: %w", p.ID, p.Version, mapErr(err))
		}
		if s.testHookPolicyInserted != nil {
			s.testHookPolicyInserted(ctx)
		}
		if p.Active {
			if err := s.activate(ctx, tx, p.ID, p.Version, now); err != nil {
				return err
			}
			at := p.CreatedAt
			p.ActivatedAt = &at
		}
		return nil
	})
	if err != nil {
		return Policy{}, err
	}
	return p, nil
}

// ActivatePolicy makes version the active version of policy id, and the
// previously active version inactive, atomically. Activating the active
// version does nothing. A missing version is [ErrNotFound].
func (s *Store) ActivatePolicy(ctx context.Context, id string, version int) error {
	defer s.wrote()
	now, err := s.clock()
	if err != nil {
		return fmt.Errorf("store: activate policy %s version %d: %w", id, version, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM policies WHERE id = ? AND version = ?"), id, version).Scan(&n); err != nil {
			return fmt.Errorf("store: activate policy %s version %d: %w", id, version, err)
		}
		if n == 0 {
			return fmt.Errorf("store: activate policy %s version %d: %w", id, version, ErrNotFound)
		}
		return s.activate(ctx, tx, id, version, now)
	})
}

func (s *Store) activate(ctx context.Context, tx *sql.Tx, id string, version int, now time.Time) error {
	if _, err := tx.ExecContext(ctx, s.q("UPDATE policies SET active = 0 WHERE id = ? AND active = 1 AND version <> ?"), id, version); err != nil {
		return fmt.Errorf("store: activate policy %s version %d: %w", id, version, mapErr(err))
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE policies SET active = 1, activated_at = ? WHERE id = ? AND version = ? AND active = 0"),
		toDB(now), id, version); err != nil {
		return fmt.Errorf("store: activate policy %s version %d: %w", id, version, mapErr(err))
	}
	return nil
}

// DeactivatePolicy leaves policy id without an active version. It is not an
// error if none was active; an unknown id is [ErrNotFound].
func (s *Store) DeactivatePolicy(ctx context.Context, id string) error {
	defer s.wrote()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM policies WHERE id = ?"), id).Scan(&n); err != nil {
			return fmt.Errorf("store: deactivate policy %s: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("store: deactivate policy %s: %w", id, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE policies SET active = 0 WHERE id = ? AND active = 1"), id); err != nil {
			return fmt.Errorf("store: deactivate policy %s: %w", id, err)
		}
		return nil
	})
}

// Policy returns one version of policy id; [ErrNotFound] if it does not
// exist.
func (s *Store) Policy(ctx context.Context, id string, version int) (Policy, error) {
	row := s.db.QueryRowContext(ctx, s.q("SELECT "+policyColumns+" FROM policies WHERE id = ? AND version = ?"), id, version)
	p, err := scanPolicy(row)
	if err != nil {
		return Policy{}, fmt.Errorf("store: policy %s version %d: %w", id, version, err)
	}
	return p, nil
}

// ActivePolicy returns the active version of policy id; [ErrNotFound] if
// the id does not exist or has no active version.
func (s *Store) ActivePolicy(ctx context.Context, id string) (Policy, error) {
	row := s.db.QueryRowContext(ctx, s.q("SELECT "+policyColumns+" FROM policies WHERE id = ? AND active = 1"), id)
	p, err := scanPolicy(row)
	if err != nil {
		return Policy{}, fmt.Errorf("store: active policy %s: %w", id, err)
	}
	return p, nil
}

// ListPolicies returns every version of policy id, or of all policies if
// id is empty, ordered by id then version. An unknown id gives an empty
// list, not an error.
func (s *Store) ListPolicies(ctx context.Context, id string) ([]Policy, error) {
	query := "SELECT " + policyColumns + " FROM policies"
	var args []any
	if id != "" {
		query += " WHERE id = ?"
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query+" ORDER BY id, version"), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list policies: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanPolicy(r scanner) (Policy, error) {
	var (
		p         Policy
		kind      string
		active    int
		created   int64
		activated sql.NullInt64
	)
	err := r.Scan(&p.ID, &p.Version, &kind, &p.Body, &p.Description, &p.Author, &active, &created, &activated)
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, ErrNotFound
	}
	if err != nil {
		return Policy{}, err
	}
	p.Kind = PolicyKind(kind)
	p.Active = active == 1
	p.CreatedAt = fromDB(created)
	p.ActivatedAt = fromDBPtr(activated)
	return p, nil
}
