package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tdproof/tdproof/refvalue"
)

// RefValues is a refvalue.Store backed by the reference_values table, for
// policy appraisal and the refvalue commands. IDs are the record IDs in
// decimal. Validity (not_before, expires) is enforced by the query at
// lookup time, so an expired value never matches.
type RefValues struct {
	s *Store
}

var _ refvalue.Store = RefValues{}

// RefValues returns the refvalue.Store view of s.
func (s *Store) RefValues() RefValues { return RefValues{s: s} }

// Add implements refvalue.Store. The value is normalized first
// (refvalue.Normalize); its ID is ignored and Provenance.Created is the
// store's clock.
func (r RefValues) Add(ctx context.Context, v refvalue.Value) (string, error) {
	v, err := refvalue.Normalize(v)
	if err != nil {
		return "", err
	}
	rec := ReferenceValue{
		Name:           v.Name,
		Values:         v.Values,
		Source:         v.Provenance.Source,
		Author:         v.Provenance.Author,
		ArtifactDigest: v.Provenance.ArtifactDigest,
		NotBefore:      timePtr(v.NotBefore),
		Expires:        timePtr(v.Expires),
	}
	out, err := r.s.AddReferenceValue(ctx, rec)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(out.ID, 10), nil
}

// List implements refvalue.Store: every value, valid or not, by ID.
func (r RefValues) List(ctx context.Context) ([]refvalue.Value, error) {
	recs, err := r.s.ListReferenceValues(ctx, "")
	if err != nil {
		return nil, err
	}
	return toRefValues(recs), nil
}

// Remove implements refvalue.Store. An unknown or non-numeric id wraps
// both refvalue.ErrNotFound and ErrNotFound.
func (r RefValues) Remove(ctx context.Context, id string) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: reference value %q: %w", refvalue.ErrNotFound, id, ErrNotFound)
	}
	if err := r.s.RemoveReferenceValue(ctx, n); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: %w", refvalue.ErrNotFound, err)
		}
		return err
	}
	return nil
}

// Lookup implements refvalue.Store: the values named name valid at at.
func (r RefValues) Lookup(ctx context.Context, name string, at time.Time) ([]refvalue.Value, error) {
	recs, err := r.s.LookupReferenceValues(ctx, name, at)
	if err != nil {
		return nil, err
	}
	return toRefValues(recs), nil
}

func toRefValues(recs []ReferenceValue) []refvalue.Value {
	out := make([]refvalue.Value, 0, len(recs))
	for _, rec := range recs {
		v := refvalue.Value{
			ID:     strconv.FormatInt(rec.ID, 10),
			Name:   rec.Name,
			Values: rec.Values,
			Provenance: refvalue.Provenance{
				Source:         rec.Source,
				Author:         rec.Author,
				Created:        rec.CreatedAt,
				ArtifactDigest: rec.ArtifactDigest,
			},
		}
		if rec.NotBefore != nil {
			v.NotBefore = *rec.NotBefore
		}
		if rec.Expires != nil {
			v.Expires = *rec.Expires
		}
		out = append(out, v)
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
