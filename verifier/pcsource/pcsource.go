// Package pcsource adapts a pcs.Source (Intel PCS, a PCCS, pcscache) to
// verifier.CollateralSource. It lives apart from package verifier because
// package pcs links net/http, which the orchestrate layer must not.
package pcsource

import (
	"context"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// Source gets the collateral of a quote from Src with pcs.CollateralForQuote.
type Source struct {
	Src pcs.Source
	// Channel selects the update channel and evaluation data number
	// (zero: standard, latest).
	Channel pcs.Channel
}

// CollateralForQuote implements verifier.CollateralSource. A quote that
// names no collateral (pcs.ErrInvalidKey) is malformed evidence; other
// failures are outages.
func (s Source) CollateralForQuote(ctx context.Context, q *quote.Quote) (*collateral.Collateral, error) {
	c, _, err := pcs.CollateralForQuote(ctx, s.Src, q, s.Channel)
	if errors.Is(err, pcs.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: %w", verifier.ErrMalformedEvidence, err)
	}
	return c, err
}

// NewVerifier returns verifier.New(Source{Src: src}, refs, signer, opts...).
func NewVerifier(src pcs.Source, refs refvalue.Store, signer *ear.Signer, opts ...verifier.Option) (*verifier.Verifier, error) {
	if src == nil {
		return nil, errors.New("pcsource: nil pcs.Source")
	}
	return verifier.New(Source{Src: src}, refs, signer, opts...)
}
