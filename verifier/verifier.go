// Package verifier is tdproof's verification pipeline, the orchestrate
// layer of the relying party: evidence (a DCAP quote, dstack evidence or
// Trustee's SEV-SNP evidence) → collateral → dcap, dstack or snp → claims
// → policy (with reference values) → a signed EAR token.
//
// The pipeline performs no I/O of its own: collateral comes from a
// CollateralSource (package verifier/pcsource adapts a pcs.Source, so this
// package does not link net/http), reference values from a refvalue.Store
// and policies from a PolicyResolver.
//
// # Errors
//
// Verify returns an error only when it cannot produce a verdict:
// ErrMalformedEvidence (the evidence does not parse, HTTP 400),
// ErrCollateralUnavailable (the collateral could not be obtained, HTTP 503),
// a policy resolution error (ErrUnknownPolicy for the default resolver) or
// an internal failure (policy evaluation, signing). Evidence that is not
// authentic or that the policy rejects is not an error: the Outcome says so,
// with an appraisal that denies, the failed rules and the EAR status
// contraindicated.
package verifier

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
)

// MediaType identifies the JSON schema of Result.
const MediaType = "application/vnd.tdproof.verification-result.v1+json"

// MaxNonceSize is the largest nonce Verify accepts: REPORTDATA is 64 bytes.
const MaxNonceSize = 64

var (
	// ErrMalformedEvidence: the evidence (or the request around it) cannot
	// be parsed. The original error (quote.ErrMalformed,
	// dstack.ErrMalformed, …) is wrapped as well.
	ErrMalformedEvidence = errors.New("verifier: malformed evidence")
	// ErrCollateralUnavailable: the collateral for the quote could not be
	// obtained. The source's error (pcs.ErrUnavailable, …) is wrapped as
	// well.
	ErrCollateralUnavailable = errors.New("verifier: collateral unavailable")
	// ErrUnknownPolicy: the default PolicyResolver knows only the built-in
	// default policy.
	ErrUnknownPolicy = errors.New("verifier: unknown policy")
	// ErrEventLog is the cause (Result.Reason) of evidence whose CCEL does
	// not replay to the quote's RTMR0–2: not authentic, not an error.
	ErrEventLog = errors.New("verifier: event log does not match the quote")
)

// CollateralSource provides verified DCAP collateral for a quote.
// verifier/pcsource adapts a pcs.Source (pcs.CollateralForQuote).
// Errors are collateral outages (ErrCollateralUnavailable) unless they wrap
// ErrMalformedEvidence, quote.ErrMalformed, quote.ErrUnsupported or
// pckcert.ErrMalformed, which describe the quote.
type CollateralSource interface {
	CollateralForQuote(ctx context.Context, q *quote.Quote) (*collateral.Collateral, error)
}

// CollateralFunc adapts a function to CollateralSource.
type CollateralFunc func(ctx context.Context, q *quote.Quote) (*collateral.Collateral, error)

// CollateralForQuote calls f.
func (f CollateralFunc) CollateralForQuote(ctx context.Context, q *quote.Quote) (*collateral.Collateral, error) {
	return f(ctx, q)
}

// PolicyResolver returns the policy named id ("" means the caller gave
// none). Its errors are returned by Verify, wrapped.
type PolicyResolver func(ctx context.Context, id string) (*policy.Policy, error)

// DefaultPolicyResolver resolves "" and policy.DefaultID to policy.Default()
// and every other id to ErrUnknownPolicy.
func DefaultPolicyResolver(_ context.Context, id string) (*policy.Policy, error) {
	if id == "" || id == policy.DefaultID {
		return policy.Default(), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownPolicy, id)
}

// Option configures a Verifier.
type Option func(*config)

type config struct {
	root     *x509.Certificate
	now      func() time.Time
	dcap     *dcap.Verifier
	policies PolicyResolver
	snp      *snp.Verifier
	// snpEndorsement: see WithSNPEndorsement.
	snpEndorsement func(ctx context.Context, r *snp.Report) (snp.Certificates, error)
	// snpCRLs: see WithSNPCRLs.
	snpCRLs func(ctx context.Context, r *snp.Report) ([][]byte, error)
	// nitro: see WithNitroRoot, WithNitroMaxAge and WithGCPTPMRoots.
	nitro nitroConfig
}

// WithTrustedRoot replaces the pinned Intel SGX Root CA for the dcap.Verifier
// New creates. Ignored with WithDCAPVerifier.
func WithTrustedRoot(root *x509.Certificate) Option {
	return func(c *config) { c.root = root }
}

// WithClock sets the verification and appraisal clock. If not set,
// time.Now. (The EAR "iat" comes from the Signer's own clock.)
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithDCAPVerifier shares v (and its caches) instead of creating one.
func WithDCAPVerifier(v *dcap.Verifier) Option {
	return func(c *config) { c.dcap = v }
}

// WithPolicyResolver sets how policy ids are resolved. If not set,
// DefaultPolicyResolver.
func WithPolicyResolver(r PolicyResolver) Option {
	return func(c *config) { c.policies = r }
}

// Verifier runs the verification pipeline. It is safe for concurrent use.
type Verifier struct {
	src      CollateralSource
	refs     refvalue.Store
	signer   *ear.Signer
	now      func() time.Time
	dcap     *dcap.Verifier
	policies PolicyResolver
	snp      *snp.Verifier
	// snpEndorsement: see WithSNPEndorsement.
	snpEndorsement func(ctx context.Context, r *snp.Report) (snp.Certificates, error)
	// snpCRLs: see WithSNPCRLs.
	snpCRLs func(ctx context.Context, r *snp.Report) ([][]byte, error)
	// nitro: see WithNitroRoot, WithNitroMaxAge and WithGCPTPMRoots.
	nitro nitroConfig
}

// New returns a Verifier getting collateral from src, reference values from
// refs (nil: none) and signing results with signer.
func New(src CollateralSource, refs refvalue.Store, signer *ear.Signer, opts ...Option) (*Verifier, error) {
	if src == nil {
		return nil, errors.New("verifier: nil collateral source")
	}
	if signer == nil {
		return nil, errors.New("verifier: nil signer")
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.dcap == nil {
		c.dcap = dcap.NewVerifier(dcap.VerifierOptions{TrustedRoot: c.root})
	}
	if c.policies == nil {
		c.policies = DefaultPolicyResolver
	}
	if c.snp == nil {
		c.snp = snp.NewVerifier(snp.VerifierOptions{})
	}
	return &Verifier{src: src, refs: refs, signer: signer, now: c.now, dcap: c.dcap, policies: c.policies, snp: c.snp, snpEndorsement: c.snpEndorsement,
		snpCRLs: c.snpCRLs, nitro: c.nitro}, nil
}

// Evidence is one verification request. Exactly one of Quote, Dstack and
// TrusteeSNP is set.
type Evidence struct {
	// Quote is a raw DCAP quote (TDX or SGX).
	Quote []byte
	// Dstack is dstack evidence in any format dstack.ParseEvidence reads.
	Dstack []byte
	// TrusteeSNP is Trustee's SEV-SNP evidence (the JSON
	// snp.ParseTrusteeEvidence reads): the report with its cert_chain, or
	// without one when WithSNPEndorsement supplies the certificates.
	TrusteeSNP []byte
	// CCEL, with a TDX Quote only, is the TD's boot event log as the
	// CCEL ACPI table holds it (/sys/firmware/acpi/tables/data/CCEL). It
	// must replay to the quote's RTMR0–2, and to its RTMR3 when it holds
	// events for RTMR3, else the evidence is not authentic; the replayed
	// registers become the tdx.eventlog.* claims.
	CCEL []byte
	// Nonce, if not empty, must be a prefix of the quote's REPORTDATA (at
	// most 64 bytes; policy rule "report_data"); it is returned as the
	// token's eat_nonce (see NonceClaim).
	Nonce []byte
	// PolicyID selects the policy ("": the resolver's default).
	PolicyID string
	// DstackInputs, with Dstack evidence only, adds the caller's image
	// and ACPI tables to the verification (nil: none). SEV-SNP evidence
	// with an image or ACPI tables is refused (ErrMalformedEvidence).
	DstackInputs *DstackInputs
	// Details asks for Result.Chain and Result.EventLog (for reports such
	// as tdproof report and the serve UI); they are omitted otherwise.
	Details bool
}

// Result is the explainable verification result (JSON: MediaType).
type Result struct {
	MediaType string `json:"media_type"`
	// Authentic is true when the quote (and the dstack evidence) verified.
	Authentic bool `json:"authentic"`
	// Allow is the policy decision (Appraisal.Allow).
	Allow bool `json:"allow"`
	// Status is the EAR status of the token.
	Status ear.Status `json:"ear_status"`
	// Reason says why the evidence is not authentic ("" when it is).
	Reason string `json:"reason,omitempty"`
	// TEE is "tdx", "sgx", "snp" or "nitro" (the "tee" claim).
	TEE string `json:"tee"`
	// TEEVariant is dstack's tee_variant of dstack evidence
	// (dstack-tdx, dstack-gcp-tdx, dstack-amd-sev-snp,
	// dstack-nitro-enclave, dstack-aws-nitro-tpm), also when it is not
	// authentic; "" for a bare quote.
	TEEVariant string `json:"tee_variant,omitempty"`
	// Nonce is the eat_nonce of the token ("" without a nonce).
	Nonce string `json:"nonce,omitempty"`
	// Claims is the claim set (nil when not authentic).
	Claims claims.Set `json:"claims,omitempty"`
	// Appraisal is the policy's verdict; for evidence that is not
	// authentic, a denial with rule "authentic".
	Appraisal *policy.Appraisal `json:"appraisal"`
	// TrustVector is the EAR trust vector of the token.
	TrustVector ear.TrustVector `json:"trust_vector"`
	// DCAP and Dstack are the verification results (nil when not run or
	// not authentic). DCAP is kept when the quote verified but a later
	// check (the event log) failed, so that its TCB status is reported.
	DCAP   *dcap.Result   `json:"dcap,omitempty"`
	Dstack *dstack.Result `json:"dstack,omitempty"`
	// SNP is the SEV-SNP verification result of Trustee SEV-SNP evidence
	// (dstack SEV-SNP evidence has it in Dstack.SNP); nil otherwise.
	SNP *snp.Result `json:"snp,omitempty"`
	// Chain describes the verified PCK certificate chain, leaf first
	// (Evidence.Details only; nil when not authentic).
	Chain []ChainCert `json:"chain,omitempty"`
	// EventLog lists the events of the event log the evidence carries
	// (Evidence.Details only; nil when not authentic or without a log).
	EventLog []LogEvent `json:"event_log,omitempty"`

	// claimsJSON is the encoding of Claims made for the token, and
	// claimsOf the map it was made from (AppendJSON).
	claimsJSON []byte
	claimsOf   claims.Set
}

// Outcome is a verdict: the result and the EAR token that signs it.
type Outcome struct {
	Result *Result
	// Token is the compact ES256 EAR JWT.
	Token string
	// TokenClaims are the signed claims of Token.
	TokenClaims *ear.Claims
	// Cause is the verification failure when Result.Authentic is false
	// (Result.Reason is its text), for callers that classify it (the
	// CLI's exit codes); nil otherwise.
	Cause error
}

// NonceClaim is the eat_nonce Verify writes for nonce: base64url without
// padding ("" for an empty nonce). Relying parties pass it as
// ear.VerifyOptions.ExpectedNonce.
func NonceClaim(nonce []byte) string {
	return base64.RawURLEncoding.EncodeToString(nonce)
}

// Verify verifies ev, appraises it and signs the verdict. See the package
// documentation for which failures are errors.
func (v *Verifier) Verify(ctx context.Context, ev Evidence) (*Outcome, error) {
	if n := btoi(len(ev.Quote) > 0) + btoi(len(ev.Dstack) > 0) + btoi(len(ev.TrusteeSNP) > 0); n != 1 {
		return nil, fmt.Errorf("%w: give exactly one of a quote, dstack evidence and Trustee SEV-SNP evidence", ErrMalformedEvidence)
	}
	if len(ev.TrusteeSNP) > 0 && (ev.DstackInputs != nil || len(ev.CCEL) > 0) {
		return nil, fmt.Errorf("%w: Trustee SEV-SNP evidence takes no image, ACPI tables or CCEL", ErrMalformedEvidence)
	}
	if ev.DstackInputs != nil && len(ev.Dstack) == 0 {
		return nil, fmt.Errorf("%w: an image or ACPI tables go with dstack evidence", ErrMalformedEvidence)
	}
	if len(ev.CCEL) > 0 && len(ev.Quote) == 0 {
		return nil, fmt.Errorf("%w: a CCEL goes with a quote (dstack evidence carries its own event log)", ErrMalformedEvidence)
	}
	if len(ev.Nonce) > MaxNonceSize {
		return nil, fmt.Errorf("%w: nonce of %d bytes, at most %d", ErrMalformedEvidence, len(ev.Nonce), MaxNonceSize)
	}
	pol, err := v.policies(ctx, ev.PolicyID)
	if err != nil {
		return nil, fmt.Errorf("verifier: policy %q: %w", ev.PolicyID, err)
	}
	if len(ev.Nonce) > 0 {
		if pol, err = pol.WithExpectedReportData(hex.EncodeToString(ev.Nonce)); err != nil {
			return nil, fmt.Errorf("verifier: policy %q: %w", ev.PolicyID, err)
		}
	}

	if len(ev.TrusteeSNP) > 0 {
		return v.verifyTrusteeSNP(ctx, pol, ev)
	}
	var (
		q  *quote.Quote
		de *dstack.Evidence
	)
	var (
		replayed  *[4][48]byte
		ccel      []eventlog.Event
		ccelRTMR3 bool // the CCEL holds RTMR3 events
	)
	if len(ev.Quote) > 0 {
		if q, err = quote.Parse(ev.Quote); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
		}
		if len(ev.CCEL) > 0 {
			if q.TD == nil {
				return nil, fmt.Errorf("%w: a CCEL goes with a TDX quote", ErrMalformedEvidence)
			}
			if replayed, ccel, ccelRTMR3, err = replayCCEL(ev.CCEL); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
			}
		}
	} else {
		if de, err = dstack.ParseEvidence(ev.Dstack); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
		}
		if de.Attestation != nil && de.Attestation.SNP != nil {
			if in := ev.DstackInputs; in != nil && (in.Image != nil || in.ImageOSHash != nil || in.ACPI != nil) {
				// The SEV-SNP path has no image or ACPI check: refuse
				// rather than answer without the checks asked for.
				return nil, fmt.Errorf("%w: %w: an image or ACPI tables with SEV-SNP evidence", ErrMalformedEvidence, dstack.ErrUnsupported)
			}
			o, err := v.verifySNP(ctx, de, pol, ev)
			if o != nil {
				o.Result.TEEVariant = dstack.TEEVariantSEVSNP
			}
			return o, err
		}
		if isNitro(de) {
			if in := ev.DstackInputs; in != nil && (in.Image != nil || in.ImageOSHash != nil || in.ACPI != nil) {
				// As for SEV-SNP: no TDX image or ACPI check applies.
				return nil, fmt.Errorf("%w: %w: an image or ACPI tables with Nitro evidence", ErrMalformedEvidence, dstack.ErrUnsupported)
			}
			return v.verifyNitro(ctx, de, pol, ev.Nonce)
		}
		q = de.Quote
		if q == nil {
			return nil, fmt.Errorf("%w: dstack evidence without a quote", ErrMalformedEvidence)
		}
	}

	col, err := v.src.CollateralForQuote(ctx, q)
	if err != nil {
		return nil, classifySourceError(ctx, err)
	}

	now := v.now()
	res := &Result{MediaType: MediaType, TEE: teeOf(q), Nonce: NonceClaim(ev.Nonce)}
	if de != nil {
		res.TEEVariant = teeVariantOf(de)
	}
	in := claims.Input{Quote: q}
	if de == nil {
		r, err := v.dcap.Verify(q, col, now)
		if err != nil {
			return v.notAuthentic(res, pol, now, err)
		}
		res.DCAP, in.DCAP = r, r
		if replayed != nil {
			if err := matchCCEL(replayed, ccelRTMR3, q.TD); err != nil {
				// res.DCAP stays: the quote itself verified.
				return v.notAuthentic(res, pol, now, err)
			}
			in.Replayed = replayed
		}
	} else {
		if de.Quote.TD == nil {
			return nil, fmt.Errorf("%w: %w: not a TDX quote", ErrMalformedEvidence, dstack.ErrUnsupported)
		}
		dres, err := v.dcap.Verify(q, col, now)
		if err != nil {
			return v.notAuthentic(res, pol, now, fmt.Errorf("%w: %w", dstack.ErrQuote, err))
		}
		// The quote was verified just above (with v.dcap's caches);
		// VerifyQuoted runs the remaining checks on that result.
		opts := dstack.Options{
			Now: now,
			// The policy decides these (rules debug and mr_servicetd),
			// so that a rejection names the rule.
			AllowDebugUnsafe:     true,
			AllowServiceTDUnsafe: true,
		}
		ev.DstackInputs.apply(&opts)
		if opts.GCP, err = v.gcpOptions(ctx, de, now); err != nil {
			return nil, err
		}
		r, err := dstack.VerifyQuoted(de, dres, opts)
		if err != nil {
			if errors.Is(err, dstack.ErrMalformed) || errors.Is(err, dstack.ErrUnsupported) {
				return nil, fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
			}
			// The quote verified: keep its result (TCB status) next to
			// the reason the event log failed.
			res.DCAP = dres
			return v.notAuthentic(res, pol, now, err)
		}
		res.Dstack, res.DCAP, in.Dstack = r, r.DCAP, r
	}
	res.Authentic = true
	if ev.Details {
		res.Chain = chainDetails(q, col, res.DCAP)
		if de != nil {
			res.EventLog = logDetails(de.Events, de.RuntimeEvents)
		} else if ccel != nil {
			res.EventLog = logDetails(ccel, eventlog.RuntimeEvents(ccel))
		}
	}
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
	return v.sign(res, summarize(res.DCAP, cs, a))
}

// notAuthentic makes the outcome of evidence that failed verification.
func (v *Verifier) notAuthentic(res *Result, pol *policy.Policy, now time.Time, cause error) (*Outcome, error) {
	res.Reason = cause.Error()
	res.Dstack, res.Claims = nil, nil
	res.Appraisal = &policy.Appraisal{
		MediaType:     policy.MediaType,
		Allow:         false,
		Failed:        []policy.Violation{{Rule: policy.RuleAuthentic, Expected: "authentic evidence", Actual: cause.Error()}},
		PolicyID:      pol.ID(),
		PolicyVersion: pol.Version(),
		TrustVector:   policy.TrustVector{Hardware: policy.TrustHardwareUnsafe},
		Time:          now,
	}
	o, err := v.sign(res, ear.Summary{Rejected: true})
	if o != nil {
		o.Cause = cause
	}
	return o, err
}

func (v *Verifier) sign(res *Result, s ear.Summary) (*Outcome, error) {
	tv, status := ear.Derive(s)
	res.TrustVector, res.Status = tv, status
	sub := ear.Appraisal{
		Status:      status,
		TrustVector: &tv,
		PolicyID:    ear.PolicyID(res.Appraisal.PolicyID, res.Appraisal.PolicyVersion),
	}
	if res.Claims != nil {
		// The bytes of json.Marshal, without its compaction pass.
		b, err := res.Claims.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("verifier: encode claims: %w", err)
		}
		sub.Claims, sub.ClaimsCompact = b, true
		res.claimsJSON, res.claimsOf = b, res.Claims
	}
	tok, tc, err := v.signer.Sign(ear.Claims{
		Nonce:   res.Nonce,
		Submods: map[string]ear.Appraisal{submodOf(res.TEE): sub},
	})
	if err != nil {
		return nil, fmt.Errorf("verifier: sign: %w", err)
	}
	return &Outcome{Result: res, Token: tok, TokenClaims: tc}, nil
}

// summarize fills ear.Summary from an authentic result and its appraisal.
func summarize(r *dcap.Result, cs claims.Set, a *policy.Appraisal) ear.Summary {
	s := ear.Summary{Authentic: true, Rejected: !a.Allow}
	if r != nil {
		s.TCBStatus = r.Status
	}
	if d, ok := cs.Bool("tdx.td_attributes.debug"); ok && d {
		s.Debug = true
	}
	if d, ok := cs.Bool("sgx.debug"); ok && d {
		s.Debug = true
	}
	failed := map[string]bool{}
	for _, f := range a.Failed {
		failed[policy.Category(f.Rule)] = true
	}
	check := func(cat string, val int8) ear.Check {
		switch {
		case failed[cat]:
			return ear.Failed
		case val == policy.TrustAffirming:
			return ear.Passed
		}
		return ear.NotChecked
	}
	s.Measurements = check("executables", a.TrustVector.Executables)
	s.Configuration = check("configuration", a.TrustVector.Configuration)
	s.Identity = check("instance-identity", a.TrustVector.InstanceIdentity)
	return s
}

func teeOf(q *quote.Quote) string {
	if q.IsTDX() {
		return claims.TEETDX
	}
	return claims.TEESGX
}

// classifySourceError maps a CollateralSource error to the taxonomy.
func classifySourceError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrMalformedEvidence):
		return err
	case errors.Is(err, quote.ErrMalformed), errors.Is(err, quote.ErrUnsupported),
		errors.Is(err, pckcert.ErrMalformed), errors.Is(err, pckcert.ErrNoExtension):
		return fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
	case ctx.Err() != nil:
		return fmt.Errorf("verifier: collateral: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrCollateralUnavailable, err)
}

// CheckCCEL checks that a CCEL (the CCEL ACPI table's event log) is the
// boot log of the TD that produced td: it must parse (else an error
// wrapping ErrMalformedEvidence) and replay to td's RTMR0–2, and to its
// RTMR3 when it records RTMR3 events (else an error wrapping
// ErrEventLog). It verifies nothing about td itself. Verify applies the
// same rule to Evidence.CCEL; the key broker uses it for a CCEL sent
// beside a dstack event log.
func CheckCCEL(td *quote.TDReport, ccel []byte) error {
	if td == nil {
		return fmt.Errorf("%w: a CCEL goes with a TDX quote", ErrMalformedEvidence)
	}
	replayed, _, rtmr3, err := replayCCEL(ccel)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedEvidence, err)
	}
	return matchCCEL(replayed, rtmr3, td)
}

// matchCCEL compares a CCEL's replay with the quoted registers: RTMR0–2,
// and RTMR3 when the CCEL records events for it (a log whose RTMR3 events
// do not replay to the quote is not the TD's).
func matchCCEL(replayed *[4][48]byte, rtmr3 bool, td *quote.TDReport) error {
	n := 3
	if rtmr3 {
		n = 4
	}
	for i := range n {
		if replayed[i] != td.RTMRs[i] {
			return fmt.Errorf("%w: the CCEL replays RTMR%d to %x, the quote has %x", ErrEventLog, i, replayed[i], td.RTMRs[i])
		}
	}
	return nil
}

// replayCCEL parses a CCEL and replays its events (RTMR0–2 from the
// firmware; RTMR3 from any events the log holds for it, which rtmr3
// reports). It also returns the events.
func replayCCEL(raw []byte) (replayed *[4][48]byte, evs []eventlog.Event, rtmr3 bool, err error) {
	evs, err = eventlog.ParseCCELEvents(raw)
	if err != nil {
		return nil, nil, false, err
	}
	r, err := eventlog.Replay(evs)
	if err != nil {
		return nil, nil, false, err
	}
	for _, e := range evs {
		if e.IMR == 3 && e.Type != eventlog.EvNoAction {
			rtmr3 = true
		}
	}
	out := [4][48]byte(r)
	return &out, evs, rtmr3, nil
}
