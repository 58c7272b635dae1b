package refvalue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

var (
	// ErrInvalid: a reference value is malformed (empty name or values,
	// expires not after not_before, …).
	ErrInvalid = errors.New("refvalue: invalid reference value")
	// ErrNotFound: no reference value has the given ID.
	ErrNotFound = errors.New("refvalue: not found")
)

// Value is one named reference value: the values a claim may take, where
// they came from, and when they are valid.
type Value struct {
	// ID identifies the value in its Store; Store.Add assigns it.
	ID string `json:"id,omitempty"`
	// Name is what policies refer to: a well-known measurement name
	// (tdx.mr_td, tdx.rtmr_1, dstack.compose_hash, … see
	// claims.MeasurementClaim) or a user name. Several values may share a
	// name; a claim matches the name when it equals any accepted value
	// of any of them that is valid at the time of the query.
	Name string `json:"name"`
	// Values are the accepted values. Hex strings are normalized to
	// lowercase without a 0x prefix.
	Values []string `json:"values"`
	// Provenance records where the values came from.
	Provenance Provenance `json:"provenance"`
	// NotBefore: the value does not match before this time. If zero, no
	// lower bound.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Expires: the value does not match at or after this time. If zero,
	// it never expires.
	Expires time.Time `json:"expires,omitzero"`
}

// Provenance records where a reference value came from. It is recorded,
// not verified.
type Provenance struct {
	// Source is the producer, e.g. "tdproof measure", "dstack release
	// 0.6.0", "manual".
	Source string `json:"source"`
	// Author is who added it (user or service identity).
	Author string `json:"author,omitempty"`
	// Created is when it was produced or added.
	Created time.Time `json:"created,omitzero"`
	// ArtifactDigest optionally identifies the artifact the values were
	// computed from, as "<alg>:<hex>" (e.g. "sha256:…").
	ArtifactDigest string `json:"artifact_digest,omitempty"`
}

// ValidAt reports whether v matches at time at: NotBefore <= at < Expires.
func (v *Value) ValidAt(at time.Time) bool {
	if !v.NotBefore.IsZero() && at.Before(v.NotBefore) {
		return false
	}
	if !v.Expires.IsZero() && !at.Before(v.Expires) {
		return false
	}
	return true
}

// Normalize checks v and returns a copy with its name trimmed and hex
// values in lowercase. It does not touch ID.
func Normalize(v Value) (Value, error) {
	v.Name = strings.TrimSpace(v.Name)
	if v.Name == "" || strings.IndexFunc(v.Name, unicode.IsSpace) >= 0 || len(v.Name) > 256 {
		return Value{}, fmt.Errorf("%w: name %q", ErrInvalid, v.Name)
	}
	if len(v.Values) == 0 {
		return Value{}, fmt.Errorf("%w: %s: no values", ErrInvalid, v.Name)
	}
	vals := make([]string, 0, len(v.Values))
	for _, s := range v.Values {
		s = NormalizeValue(s)
		if s == "" {
			return Value{}, fmt.Errorf("%w: %s: empty value", ErrInvalid, v.Name)
		}
		if !slices.Contains(vals, s) {
			vals = append(vals, s)
		}
	}
	v.Values = vals
	if !v.NotBefore.IsZero() && !v.Expires.IsZero() && !v.Expires.After(v.NotBefore) {
		return Value{}, fmt.Errorf("%w: %s: expires %s not after not_before %s", ErrInvalid, v.Name,
			v.Expires.Format(time.RFC3339), v.NotBefore.Format(time.RFC3339))
	}
	if d := v.Provenance.ArtifactDigest; d != "" {
		alg, h, ok := strings.Cut(d, ":")
		if !ok || alg == "" || !isHex(h) {
			return Value{}, fmt.Errorf("%w: %s: artifact digest %q is not <alg>:<hex>", ErrInvalid, v.Name, d)
		}
		v.Provenance.ArtifactDigest = alg + ":" + strings.ToLower(h)
	}
	return v, nil
}

// NormalizeValue trims s and, when it is hex (with or without 0x), returns
// it in lowercase without the prefix. Claims hold hex in that form.
func NormalizeValue(s string) string {
	s = strings.TrimSpace(s)
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if isHex(h) {
		return strings.ToLower(h)
	}
	return s
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Accepted returns the union of the accepted values of vals, in order,
// without duplicates.
func Accepted(vals []Value) []string {
	var out []string
	for _, v := range vals {
		for _, s := range v.Values {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// Store holds reference values. Implementations are safe for concurrent
// use; the in-memory one is NewMemoryStore, the SQL ones live in
// internal/store.
type Store interface {
	// Add normalizes and stores v (see Normalize) and returns its ID.
	// v.ID is ignored.
	Add(ctx context.Context, v Value) (id string, err error)
	// List returns every stored value, valid or not, sorted by name
	// then ID.
	List(ctx context.Context) ([]Value, error)
	// Remove deletes the value with the given ID; ErrNotFound if none.
	Remove(ctx context.Context, id string) error
	// Lookup returns the values named name that are valid at time at
	// (see Value.ValidAt), sorted by ID. Expired and not-yet-valid
	// values are never returned. No match is an empty result, not an
	// error.
	Lookup(ctx context.Context, name string, at time.Time) ([]Value, error)
}

// ValidAt returns the values of vals valid at time at, keeping order.
func ValidAt(vals []Value, at time.Time) []Value {
	var out []Value
	for i := range vals {
		if vals[i].ValidAt(at) {
			out = append(out, vals[i])
		}
	}
	return out
}
