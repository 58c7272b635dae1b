package verifier

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

// GCPFirmwareReference is the reference-value name of the GCP vTPM's
// firmware PCR0 (claim tpm.pcr0): the accepted values of dstack-gcp-tdx
// evidence's OS-image check are the valid reference values of this name,
// or dstack.DefaultGCPFirmwarePCR0 when there are none.
const GCPFirmwareReference = "tpm.pcr0"

// nitroConfig holds the Nitro and GCP vTPM settings of a Verifier.
type nitroConfig struct {
	root             *x509.Certificate
	maxAge           time.Duration
	tpmRoot          *x509.Certificate
	tpmIntermediates []*x509.Certificate
	// crls: see WithCRLs.
	crls func(ctx context.Context, chain []*x509.Certificate) ([]*x509.RevocationList, error)
}

// WithCRLs turns on the revocation check of the AWS Nitro document chain
// and the Google EK/AK chain of dstack-gcp-tdx evidence (package
// revocation): f returns the CRLs for a verified chain (for example
// revocation/crlcache.Cache.CRLs). A revoked certificate, or a CRL that
// is missing, invalid or not current, makes the evidence not authentic.
func WithCRLs(f func(ctx context.Context, chain []*x509.Certificate) ([]*x509.RevocationList, error)) Option {
	return func(c *config) { c.nitro.crls = f }
}

// revocationHook binds WithCRLs' function to ctx (nil without it).
func (v *Verifier) revocationHook(ctx context.Context) func([]*x509.Certificate) ([]*x509.RevocationList, error) {
	if v.nitro.crls == nil {
		return nil
	}
	return func(chain []*x509.Certificate) ([]*x509.RevocationList, error) { return v.nitro.crls(ctx, chain) }
}

// WithNitroRoot replaces the pinned AWS Nitro Enclaves Root-G1 for Nitro
// Enclave and NitroTPM evidence (nitrosim's test PKI, another partition).
func WithNitroRoot(root *x509.Certificate) Option {
	return func(c *config) { c.nitro.root = root }
}

// WithNitroMaxAge replaces nitro.DefaultMaxAge, how old a Nitro
// document's timestamp may be at the verification time.
func WithNitroMaxAge(d time.Duration) Option {
	return func(c *config) { c.nitro.maxAge = d }
}

// WithGCPTPMRoots replaces Google's pinned EK/AK CA root and intermediate
// for the vTPM quote of dstack-gcp-tdx evidence (tpmsim's test PKI).
func WithGCPTPMRoots(root *x509.Certificate, intermediates []*x509.Certificate) Option {
	return func(c *config) { c.nitro.tpmRoot, c.nitro.tpmIntermediates = root, intermediates }
}

// isNitro reports whether de is Nitro Enclave or NitroTPM evidence.
func isNitro(de *dstack.Evidence) bool {
	a := de.Attestation
	return a != nil && (a.Platform == dstack.PlatformNitroEnclave || a.Platform == dstack.PlatformAWSNitroTPM)
}

// teeVariantOf is the dstack tee_variant of parsed dstack evidence.
func teeVariantOf(de *dstack.Evidence) string {
	if de.Attestation != nil {
		return de.Attestation.TEEVariant()
	}
	return dstack.TEEVariant
}

// gcpOptions are the vTPM settings for dstack-gcp-tdx evidence: the
// verifier's roots and the firmware PCR0 values from the reference values
// (GCPFirmwareReference), nil (dstack's default) when there are none.
func (v *Verifier) gcpOptions(ctx context.Context, de *dstack.Evidence, now time.Time) (dstack.GCPOptions, error) {
	o := dstack.GCPOptions{TPMRoot: v.nitro.tpmRoot, TPMIntermediates: v.nitro.tpmIntermediates, Revocation: v.revocationHook(ctx)}
	if de.Attestation == nil || de.Attestation.Platform != dstack.PlatformGCPTDX || v.refs == nil {
		return o, nil
	}
	vals, err := v.refs.Lookup(ctx, GCPFirmwareReference, now)
	if err != nil {
		return o, fmt.Errorf("verifier: reference value %s: %w", GCPFirmwareReference, err)
	}
	if acc := refvalue.Accepted(vals); len(acc) > 0 {
		o.FirmwarePCR0 = acc
	}
	return o, nil
}

// verifyNitro verifies dstack Nitro Enclave or NitroTPM evidence
// (dstack.VerifyNitro: the AWS-signed document and its chain, user_data
// = report_data, PCR14 replay and aws_measurement for NitroTPM, the
// enclave image for an enclave; no DCAP collateral), then claims (tee
// "nitro"), appraisal and EAR as for TDX. A debug enclave (PCR0–2 zero)
// is not authentic, as dstack refuses it.
func (v *Verifier) verifyNitro(ctx context.Context, de *dstack.Evidence, pol *policy.Policy, nonce []byte) (*Outcome, error) {
	now := v.now()
	res := &Result{MediaType: MediaType, TEE: claims.TEENitro, TEEVariant: teeVariantOf(de), Nonce: NonceClaim(nonce)}
	r, err := dstack.VerifyNitro(de, dstack.NitroOptions{Time: now, MaxAge: v.nitro.maxAge, Root: v.nitro.root, Revocation: v.revocationHook(ctx)})
	if err != nil {
		if errors.Is(err, dstack.ErrMalformed) || errors.Is(err, dstack.ErrUnsupported) || errors.Is(err, nitro.ErrMalformed) {
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
	// Nitro has no TCB levels: the hardware is genuine when the AWS PKI
	// signed the document (checked above).
	s.TCBStatus = collateral.UpToDate
	if d, ok := cs.Bool("nitro.debug"); ok && d {
		s.Debug = true
	}
	return v.sign(res, s)
}

// submodOf is the EAR submodule of a result's TEE.
func submodOf(tee string) string {
	switch tee {
	case claims.TEESGX:
		return ear.SubmodSGX
	case claims.TEESNP:
		return ear.SubmodSNP
	case claims.TEENitro:
		return ear.SubmodNitro
	}
	return ear.SubmodTDX
}
