package verifier

import (
	"context"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/claims"
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

// WithSNPEndorsement sets how the certificates of SEV-SNP evidence that
// carries no cert_chain are obtained (an AMD KDS cache or bundle; see
// package amdkds). Without it such evidence is not authentic.
func WithSNPEndorsement(f func(ctx context.Context, r *snp.Report) (snp.Certificates, error)) Option {
	return func(c *config) { c.snpEndorsement = f }
}

// WithSNPCRLs sets how the ARK-signed AMD CRLs for an SEV-SNP report are
// obtained (AMD KDS {product}/crl through a cache, or an offline bundle;
// see amdkds.CRLs). They are applied to every report's chain: a revoked
// ASK or VCEK, a CRL past its nextUpdate or one not signed by the ARK
// makes the evidence not authentic. When no CRL is obtained (f unset, or
// it fails) the claim snp.crl_checked is false, which the default policy
// refuses (rule crl_checked).
func WithSNPCRLs(f func(ctx context.Context, r *snp.Report) ([][]byte, error)) Option {
	return func(c *config) { c.snpCRLs = f }
}

// verifySNP verifies dstack SEV-SNP evidence (dstack.VerifySNP; no DCAP
// collateral), then claims, appraisal and EAR as for TDX. The report's
// DEBUG bit is left to the policy (rule debug) so that a rejection names
// the rule; the other SEV-SNP launch checks (VMPL 0, no MIGRATE_MA, no
// MASK_CHIP_KEY, VCEK, POLICY/PLATFORM_INFO consistency) make the
// evidence not authentic.
func (v *Verifier) verifySNP(ctx context.Context, de *dstack.Evidence, pol *policy.Policy, ev Evidence) (*Outcome, error) {
	now := v.now()
	res := &Result{MediaType: MediaType, TEE: claims.TEESNP, Nonce: NonceClaim(ev.Nonce)}
	opts := dstack.SNPOptions{Now: now, Verifier: v.snp, Policy: snp.Policy{AllowDebugUnsafe: true}}
	if v.snpEndorsement != nil {
		opts.Endorsement = func(r *snp.Report) (snp.Certificates, error) { return v.snpEndorsement(ctx, r) }
	}
	// The CRLs: a failure to obtain them is not a verification failure
	// (the report may be authentic), but leaves snp.crl_checked false.
	crlErr := errors.New("no AMD CRL source configured")
	if v.snpCRLs != nil && de.Attestation != nil && de.Attestation.SNP != nil {
		if rep, err := snp.ParseReport(de.Attestation.SNP.Report); err == nil {
			if opts.CRLs, crlErr = v.snpCRLs(ctx, rep); crlErr != nil {
				opts.CRLs = nil
			}
		}
	}
	r, err := dstack.VerifySNP(de, opts)
	if err != nil {
		if errors.Is(err, dstack.ErrMalformed) || errors.Is(err, dstack.ErrUnsupported) || errors.Is(err, snp.ErrMalformed) || errors.Is(err, snp.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
		}
		return v.notAuthentic(res, pol, now, err)
	}
	res.Dstack = r
	res.Authentic = true
	if ev.Details {
		res.Chain = snpChainDetails(r.SNP, crlErr)
	}
	return v.appraiseSNP(ctx, res, pol, now, claims.Input{Dstack: r}, r.SNP.TCBStatus)
}
