package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/snp"
)

// verifyTrusteeSNP verifies Trustee's SEV-SNP evidence
// (snp.ParseTrusteeEvidence): the report rebuilt from its JSON fields is
// verified over its exact signed bytes with the certificates of its
// cert_chain, or, when it carries none, those WithSNPEndorsement obtains
// (AMD KDS); then the SEV-SNP launch checks of dstack SEV-SNP evidence
// (VMPL 0, no MIGRATE_MA, no MASK_CHIP_KEY, VCEK, POLICY/PLATFORM_INFO
// consistency; DEBUG is left to the policy), the AMD CRLs of
// WithSNPCRLs (the cert_chain's CRL entries are ignored, as Trustee does)
// and the same claims (snp.*, no dstack.*), appraisal and EAR.
func (v *Verifier) verifyTrusteeSNP(ctx context.Context, pol *policy.Policy, ev Evidence) (*Outcome, error) {
	te, err := snp.ParseTrusteeEvidence(ev.TrusteeSNP)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
	}
	now := v.now()
	res := &Result{MediaType: MediaType, TEE: claims.TEESNP, Nonce: NonceClaim(ev.Nonce)}
	var certs snp.Certificates
	switch {
	case te.CertChain != nil:
		certs, err = te.Certificates()
	case v.snpEndorsement != nil:
		if certs, err = v.snpEndorsement(ctx, te.Report); err != nil {
			err = fmt.Errorf("endorsement certificates: %w", err)
		}
	default:
		err = fmt.Errorf("%w: the evidence carries no cert_chain and no AMD KDS source is configured", snp.ErrChain)
	}
	// As for dstack evidence, a failure to obtain the CRLs leaves
	// snp.crl_checked false rather than the evidence not authentic.
	crlErr := errors.New("no AMD CRL source configured")
	if err == nil && v.snpCRLs != nil {
		var crls [][]byte
		if crls, crlErr = v.snpCRLs(ctx, te.Report); crlErr == nil {
			certs.CRLs = append(append([][]byte(nil), certs.CRLs...), crls...)
		}
	}
	var sres *snp.Result
	if err == nil {
		sres, err = v.snp.Verify(te.Report, certs, snp.ProductUnknown, now)
	}
	if err == nil {
		err = snp.Policy{AllowDebugUnsafe: true}.Check(sres)
	}
	if err != nil {
		if errors.Is(err, snp.ErrMalformed) || errors.Is(err, snp.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
		}
		return v.notAuthentic(res, pol, now, err)
	}
	res.SNP = sres
	res.Authentic = true
	if ev.Details {
		res.Chain = snpChainDetails(sres, crlErr)
	}
	return v.appraiseSNP(ctx, res, pol, now, claims.Input{SNP: sres}, sres.TCBStatus)
}

// appraiseSNP makes the claims of an authentic SEV-SNP result, appraises
// them and signs the verdict.
func (v *Verifier) appraiseSNP(ctx context.Context, res *Result, pol *policy.Policy, now time.Time, in claims.Input, status snp.TCBStatus) (*Outcome, error) {
	cs, err := claims.New(in)
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
	switch status {
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
