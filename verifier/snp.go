package verifier

import (
	"context"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/snp"
)

// WithSNPVerifier shares v (and its caches, roots and CRLs) for SEV-SNP
// evidence instead of a default snp.Verifier trusting the pinned AMD
// roots.
func WithSNPVerifier(v *snp.Verifier) Option {
	return func(c *config) { c.snp = v }
}

// verifySNP verifies dstack SEV-SNP evidence (dstack.VerifySNP; no DCAP
// collateral), then claims, appraisal and EAR as for TDX. The report's
// DEBUG bit is left to the policy (rule debug) so that a rejection names
// the rule; the other SEV-SNP launch checks (VMPL 0, no MIGRATE_MA, no
// MASK_CHIP_KEY, VCEK, POLICY/PLATFORM_INFO consistency) make the
// evidence not authentic.
func (v *Verifier) verifySNP(ctx context.Context, de *dstack.Evidence, pol *policy.Policy, nonce []byte) (*Outcome, error) {
	now := v.now()
	res := &Result{MediaType: MediaType, TEE: claims.TEESNP, Nonce: NonceClaim(nonce)}
	r, err := dstack.VerifySNP(de, dstack.SNPOptions{Now: now, Verifier: v.snp, Policy: snp.Policy{AllowDebugUnsafe: true}})
	if err != nil {
		if errors.Is(err, dstack.ErrMalformed) || errors.Is(err, dstack.ErrUnsupported) || errors.Is(err, snp.ErrMalformed) || errors.Is(err, snp.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
		}
		return v.notAuthentic(res, pol, now, err)
	}
	res.Dstack = r
	res.Authentic = true
	cs, err := claims.New(claims.Input{Dstack: r})
	if err != nil {
		return nil, fmt.Errorf("verifier: claims: %w", err)
	}
	res.Claims = cs
	a, err := policy.Appraise(ctx, pol, cs, v.refs, now)
	if err != nil {
		return nil, fmt.Errorf("verifier: appraisal: %w", err)
	}
	res.Appraisal = a
	res.Allow = a.Allow
	s := summarize(nil, cs, a)
	switch r.SNP.TCBStatus {
	case snp.TCBUpToDate:
		s.TCBStatus = collateral.UpToDate
	case snp.TCBOutOfDate:
		s.TCBStatus = collateral.OutOfDate
	}
	if d, ok := cs.Bool("snp.guest_policy.debug"); ok && d {
		s.Debug = true
	}
	return v.sign(res, s)
}
