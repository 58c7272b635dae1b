package cli

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
)

// VerifyMediaType identifies the JSON schema of quote verify.
const VerifyMediaType = "application/vnd.tdproof.quote-verification.v1+json"

// verifyOutput is the JSON output of quote verify.
type verifyOutput struct {
	MediaType string `json:"media_type"`
	// Verified: the quote is authentic under the collateral (Result set).
	Verified bool `json:"verified"`
	// Accepted: verified and acceptable under the policy.
	Accepted         bool              `json:"accepted"`
	Result           *dcap.Result      `json:"result"`
	Violations       []dcap.Violation  `json:"violations"`
	Error            *errorJSON        `json:"error"`
	VerificationTime time.Time         `json:"verification_time"`
	Strict           bool              `json:"strict"`
	Collateral       *collateralSource `json:"collateral_source"`
	Policy           policyJSON        `json:"policy"`
	// IntelRoot is false when --trusted-root named another certificate
	// than the Intel SGX Root CA (also set when verification failed).
	IntelRoot         bool   `json:"intel_root"`
	TrustedRootSHA256 string `json:"trusted_root_sha256"`
}

// policyJSON records the appraisal settings a verdict was made under.
type policyJSON struct {
	AcceptedStatuses                []string `json:"accepted_statuses"`
	MaxCollateralAge                string   `json:"max_collateral_age,omitempty"`
	RejectExpiredCollateral         bool     `json:"reject_expired_collateral"`
	AllowDebugUnsafe                bool     `json:"allow_debug_unsafe"`
	AllowMissingSEPTVEDisableUnsafe bool     `json:"allow_missing_sept_ve_disable_unsafe"`
	AllowServiceTDUnsafe            bool     `json:"allow_service_td_unsafe"`
}

// verifyFlags are the flags of quote verify.
type verifyFlags struct {
	collateral  string
	source      sourceFlags
	trustedRoot string
	at          timeValue
	strict      bool
	accept      statusListValue
	maxAge      ageValue
	rejectExp   bool
	allowDebug  bool
	allowNoSEPT bool
	allowSvcTD  bool
}

func (f *verifyFlags) policy() dcap.Policy {
	return dcap.Policy{
		AcceptedStatuses:                f.accept.list,
		MaxCollateralAge:                f.maxAge.d,
		RejectExpiredCollateral:         f.rejectExp,
		AllowDebugUnsafe:                f.allowDebug,
		AllowMissingSEPTVEDisableUnsafe: f.allowNoSEPT,
		AllowServiceTDUnsafe:            f.allowSvcTD,
	}
}

func newPolicyJSON(p dcap.Policy) policyJSON {
	out := policyJSON{
		RejectExpiredCollateral:         p.RejectExpiredCollateral,
		AllowDebugUnsafe:                p.AllowDebugUnsafe,
		AllowMissingSEPTVEDisableUnsafe: p.AllowMissingSEPTVEDisableUnsafe,
		AllowServiceTDUnsafe:            p.AllowServiceTDUnsafe,
	}
	for _, s := range p.AcceptedStatuses {
		out.AcceptedStatuses = append(out.AcceptedStatuses, s.String())
	}
	if len(out.AcceptedStatuses) == 0 {
		out.AcceptedStatuses = []string{collateral.UpToDate.String()}
	}
	if p.MaxCollateralAge > 0 {
		out.MaxCollateralAge = p.MaxCollateralAge.String()
	}
	return out
}

func (a *app) verifyCommand() *cobra.Command {
	f := &verifyFlags{accept: statusListValue{list: []collateral.TCBStatus{collateral.UpToDate}}}
	c := &cobra.Command{
		Use:   "verify FILE [--collateral PATH | --pccs-url URL | --collateral-dir DIR]",
		Short: "Verify a quote against its collateral and appraise the result",
		Long: `Verify a DCAP quote (binary, hex or 0x-prefixed hex; FILE - reads stdin) against its
collateral with Intel's semantics: PCK chain to the pinned Intel SGX Root CA, CRLs, TCB info
and QE identity signatures, QE report, TDX module identity, TCB level matching and status
convergence. The verified result is then appraised by a minimal policy: the TCB status must
be accepted (--accept-status, default UpToDate; Revoked and "TCB not supported" never are),
and TDs must not be in DEBUG mode, must set SEPT_VE_DISABLE and must have no service TD.

--collateral takes a dcap-qvl QuoteCollateralV3 JSON file, a directory holding
collateral.json, or a directory of raw Intel PCS responses (NAME.body plus
NAME.headers.json; a pcs/ subdirectory is also found), selected by the quote's TEE and the
FMSPC and CA type of its PCK certificate.

Without --collateral, collateral comes from --pccs-url (default Intel PCS) and is verified
before use; --collateral-dir DIR alone reads a bundle written by "tdproof collateral fetch"
without touching the network, and together with --pccs-url makes DIR a cache in front of
it; --offline never touches the network. --update early and --tcb-eval-num choose which
TCB evaluation the collateral comes from.

Intel's semantics report expired collateral (collateral_expired) without failing;
--reject-expired-collateral makes the policy reject it and --strict fails verification.`,
		Example: `  tdproof quote verify quote.bin --collateral collateral.json
  tdproof quote verify quote.bin --collateral vectors/tdx/ --at 1752919234 --format json
  tdproof quote verify quote.bin --collateral pcs/ --at 2023-07-01T01:00:00Z
  tdproof quote verify quote.bin --pccs-url https://pccs.example:8081
  tdproof quote verify quote.bin --collateral-dir bundle/
  tdproof quote verify quote.bin --collateral collateral.json \
      --accept-status UpToDate,SWHardeningNeeded --max-collateral-age 30d`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runVerify(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.collateral, "collateral", "", "collateral `PATH`: QuoteCollateralV3 JSON file, directory with collateral.json, or directory of PCS responses (instead of a PCCS)")
	f.source.register(fl, "collateral bundle or cache `DIR` (alone: offline; with --pccs-url: a cache in front of it)", true)
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trust the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA; the result then proves nothing about Intel hardware")
	fl.BoolVar(&f.strict, "strict", false, "fail verification (exit 4) on expired or not yet valid collateral or certificates")
	fl.Var(&f.accept, "accept-status", "accept TCB `STATUS` (Intel spelling; repeatable or comma-separated; replaces the default UpToDate)")
	fl.Var(&f.maxAge, "max-collateral-age", "reject TCB info or QE identity issued longer than `DURATION` before the verification time (e.g. 720h, 30d)")
	fl.BoolVar(&f.rejectExp, "reject-expired-collateral", false, "reject results whose collateral has expired")
	fl.BoolVar(&f.allowDebug, "allow-debug-unsafe", false, "accept DEBUG TDs and enclaves (the host can read their memory)")
	fl.BoolVar(&f.allowNoSEPT, "allow-missing-sept-ve-disable-unsafe", false, "accept TDs without SEPT_VE_DISABLE")
	fl.BoolVar(&f.allowSvcTD, "allow-service-td-unsafe", false, "accept TDs bound to a service TD (non-zero MRSERVICETD)")
	commandLineOnly(fl, "trusted-root", "allow-debug-unsafe", "allow-missing-sept-ve-disable-unsafe", "allow-service-td-unsafe")
	return c
}

// runVerify verifies, appraises, prints the outcome and returns the error
// that decides the exit code.
func (a *app) runVerify(cmd *cobra.Command, file string, f *verifyFlags) error {
	pol := f.policy()
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	out := &verifyOutput{
		MediaType: VerifyMediaType, Violations: []dcap.Violation{}, VerificationTime: now,
		Strict: f.strict, Policy: newPolicyJSON(pol),
	}
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err == nil {
		anchor := root
		if anchor == nil {
			anchor = dcap.IntelRoot()
		}
		sum := sha256.Sum256(anchor.Raw)
		out.TrustedRootSHA256 = hex.EncodeToString(sum[:])
		out.IntelRoot = out.TrustedRootSHA256 == dcap.IntelRootSHA256
		err = a.verifyInto(cmd, out, file, f, root, now, pol)
	}
	if errors.As(err, new(*usageError)) {
		return err
	}
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		if werr := writeJSON(a.stdout, out); werr != nil {
			return errors.Join(err, werr)
		}
	} else if werr := printVerify(a.stdout, out, err); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// verifyInto reads the inputs, verifies and appraises, filling out.
func (a *app) verifyInto(cmd *cobra.Command, out *verifyOutput, file string, f *verifyFlags, root *x509.Certificate, now time.Time, pol dcap.Policy) error {
	q, err := a.readQuote(file)
	if err != nil {
		return err
	}
	var c *collateral.Collateral
	var src collateralSource
	if f.collateral != "" {
		// A PCK chain that does not parse leaves the selector open; dcap
		// reports the chain error.
		pck, _ := pckFromQuote(q)
		c, src, err = loadCollateral(f.collateral, q, pck)
	} else {
		c, src, err = a.collateralFromSource(cmd.Context(), cmd.Flags(), &f.source, q, root, now)
	}
	out.Collateral = &src
	if err != nil {
		return err
	}
	res, err := dcap.Verify(q, c, dcap.Options{TrustedRoot: root, Now: now, Strict: f.strict})
	if err != nil {
		if errors.Is(err, dcap.ErrTCBNotSupported) {
			err = withHints(err, "the platform TCB is below every TCB level of the TCB info: update the platform (microcode, firmware, TDX module); no --accept-status accepts this")
		}
		if errors.Is(err, dcap.ErrExpired) {
			err = withHints(err, "without --strict, expiry is reported (collateral_expired) and the policy decides; refresh the collateral or verify --at a time inside its validity")
		}
		return err
	}
	out.Verified, out.Result = true, res
	if err := pol.Appraise(res); err != nil {
		var pe *dcap.PolicyError
		if errors.As(err, &pe) {
			out.Violations = pe.Violations
		}
		return withHints(err, policyHints(pe, res, pol)...)
	}
	out.Accepted = true
	return nil
}

// policyHints suggests the switch that accepts a rejected result, where
// that is a legitimate choice.
func policyHints(pe *dcap.PolicyError, r *dcap.Result, pol dcap.Policy) []string {
	if pe == nil {
		return nil
	}
	var hints []string
	for _, v := range pe.Violations {
		switch v.Rule {
		case "tcb_status":
			if r.Status != collateral.Revoked {
				accept := newPolicyJSON(pol).AcceptedStatuses
				hints = append(hints, fmt.Sprintf("to accept TCB status %s (advisories: %s), pass --accept-status %s,%s",
					r.Status, listOrNone(r.AdvisoryIDs), strings.Join(accept, ","), r.Status))
			}
		case "collateral_expired":
			hints = append(hints, "refresh the collateral, or verify --at a time inside its validity")
		case "max_collateral_age":
			hints = append(hints, "refresh the collateral, or raise --max-collateral-age")
		}
	}
	return hints
}

// verdict is the first line of human output.
func verdict(out *verifyOutput, err error) string {
	if err == nil && out.Accepted {
		s := "OK: " + out.Result.Status.String()
		if out.Result.CollateralExpired {
			s += " (collateral expired at " + ts(out.Result.EarliestExpiration) + ")"
		}
		return s
	}
	var pe *dcap.PolicyError
	if errors.As(err, &pe) {
		parts := make([]string, len(pe.Violations))
		for i, v := range pe.Violations {
			parts[i] = fmt.Sprintf("%s (want %s, got %s)", v.Rule, v.Want, v.Got)
		}
		return "REJECTED: " + strings.Join(parts, "; ")
	}
	switch code, _ := classify(err); code {
	case exitRejected:
		return "REJECTED: " + oneLine(err.Error())
	case exitNotAuthentic:
		return "NOT AUTHENTIC: " + oneLine(err.Error())
	}
	return ""
}

func printVerify(w io.Writer, out *verifyOutput, err error) error {
	p := &printer{w: w}
	r := out.Result
	if out.TrustedRootSHA256 != "" && !out.IntelRoot {
		p.printf("%s\n", nonIntelWarning(out.TrustedRootSHA256))
	}
	if v := verdict(out, err); v != "" {
		p.printf("%s\n", v)
	}
	if r == nil {
		return p.err
	}
	p.kv(0, "status", r.Status)
	p.kv(1, "platform", component(r.Platform, ""))
	if r.Module != nil {
		p.kv(1, "TDX module", component(*r.Module, r.TDXModuleIdentity))
	} else if r.TDXModuleIdentity != "" {
		p.kv(1, "TDX module", r.TDXModuleIdentity)
	}
	p.kv(1, "QE", component(r.QE, ""))
	if r.Current != nil {
		p.kv(1, "current TCB", component(*r.Current, ""))
	}
	p.kv(0, "advisory IDs", listOrNone(r.AdvisoryIDs))
	p.kv(0, "TCB date", ts(r.TCBDate))
	p.kv(0, "TEE", fmt.Sprintf("%s, quote v%d, %s", r.TEEType, r.Version, r.BodyType))
	if r.TD != nil {
		p.kv(0, "MRTD", r.TD.MRTD)
		p.kv(0, "debug", yesNo(r.TD.Debug))
		p.kv(0, "SEPT_VE_DISABLE", yesNo(r.TD.SEPTVEDisable))
	}
	if r.Enclave != nil {
		p.kv(0, "MRENCLAVE", r.Enclave.MREnclave)
		p.kv(0, "MRSIGNER", r.Enclave.MRSigner)
		p.kv(0, "debug", yesNo(r.Enclave.Debug))
	}
	p.kv(0, "FMSPC", r.FMSPC)
	p.kv(0, "PCE-ID", r.PCEID)
	p.kv(0, "PCK CA", r.CAType)
	p.kv(0, "SGX type", r.SGXType)
	col := r.Collateral
	p.kv(0, "collateral", fmt.Sprintf("%s (%s)", out.Collateral.Path, out.Collateral.Kind))
	p.kv(1, "TCB info", document(col.TCBInfo))
	p.kv(1, "QE identity", document(col.QEIdentity))
	p.kv(1, "PCK CRL", crl(col.PCKCRL))
	p.kv(1, "root CA CRL", crl(col.RootCACRL))
	expired := "not expired"
	if r.CollateralExpired {
		expired = "EXPIRED"
	}
	p.kv(0, "earliest expiration", ts(r.EarliestExpiration)+" ("+expired+")")
	if r.CRLNotYetValid {
		p.kv(0, "CRL not yet valid", "yes")
	}
	p.kv(0, "verification time", ts(r.VerificationTime))
	root := "Intel SGX Root CA"
	if !r.IntelRoot {
		root = "NON-INTEL"
	}
	p.kv(0, "trusted root", root+" (sha256 "+r.TrustedRootSHA256+")")
	p.kv(0, "policy", policyLine(out.Policy))
	return p.err
}

func component(c dcap.ComponentStatus, id string) string {
	s := c.Status.String()
	var extra []string
	if id != "" {
		extra = append(extra, id)
	}
	extra = append(extra, "tcb date "+ts(c.TCBDate))
	if len(c.AdvisoryIDs) > 0 {
		extra = append(extra, strings.Join(c.AdvisoryIDs, ", "))
	}
	return s + " (" + strings.Join(extra, "; ") + ")"
}

func document(d dcap.DocumentInfo) string {
	return fmt.Sprintf("%s v%d, issued %s, next update %s, evaluation data number %d",
		d.ID, d.Version, ts(d.IssueDate), ts(d.NextUpdate), d.TCBEvaluationDataNumber)
}

func crl(c dcap.CRLInfo) string {
	n := c.Number
	if n == "" {
		n = "-"
	}
	return fmt.Sprintf("number %s, this update %s, next update %s", n, ts(c.ThisUpdate), ts(c.NextUpdate))
}

func policyLine(p policyJSON) string {
	parts := []string{"accept " + strings.Join(p.AcceptedStatuses, "|")}
	if p.MaxCollateralAge != "" {
		parts = append(parts, "max collateral age "+p.MaxCollateralAge)
	}
	if p.RejectExpiredCollateral {
		parts = append(parts, "reject expired collateral")
	}
	for _, u := range []struct {
		on   bool
		name string
	}{{p.AllowDebugUnsafe, "allow-debug-unsafe"}, {p.AllowMissingSEPTVEDisableUnsafe, "allow-missing-sept-ve-disable-unsafe"}, {p.AllowServiceTDUnsafe, "allow-service-td-unsafe"}} {
		if u.on {
			parts = append(parts, u.name)
		}
	}
	return strings.Join(parts, ", ")
}
