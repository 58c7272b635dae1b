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
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/verifier"
)

// VerifyMediaType identifies the JSON schema of quote verify. Version 2:
// the verdict comes from the service's pipeline and "result" is the
// service's result (verifier.Result, as in POST /v1/verify).
const VerifyMediaType = "application/vnd.tdproof.quote-verification.v2+json"

// verifyOutput is the JSON output of quote verify.
type verifyOutput struct {
	MediaType string `json:"media_type"`
	// Verdict is OK, WARNING or REJECTED ("" when no verdict was reached:
	// see Error).
	Verdict string `json:"verdict"`
	// Verified: the quote is authentic (Result.Authentic).
	Verified bool `json:"verified"`
	// Accepted: the policy allows it (Result.Allow), as the service.
	Accepted         bool              `json:"accepted"`
	Result           *verifier.Result  `json:"result"`
	Error            *errorJSON        `json:"error"`
	VerificationTime time.Time         `json:"verification_time"`
	Strict           bool              `json:"strict"`
	Collateral       *collateralSource `json:"collateral_source"`
	// IntelRoot is false when --trusted-root named another certificate
	// than the Intel SGX Root CA.
	IntelRoot         bool   `json:"intel_root"`
	TrustedRootSHA256 string `json:"trusted_root_sha256"`
	// line is the verdict's reason, for human output.
	line string
}

// verifyFlags are the flags of quote verify.
type verifyFlags struct {
	collateral   string
	source       sourceFlags
	appraisal    appraisalFlags
	trustedRoot  string
	at           timeValue
	strict       bool
	accept       statusListValue
	maxAge       ageValue
	rejectExp    bool
	allowExpired bool
	allowDebug   bool
	allowNoSEPT  bool
	allowSvcTD   bool
}

// rules returns the built-in policy changed by the command-line switches
// and the names of the switches set.
func (f *verifyFlags) rules(fl *pflag.FlagSet) (policy.Rules, []string) {
	var r policy.Rules
	var changed []string
	set := func(name string) bool {
		if fl.Changed(name) {
			changed = append(changed, name)
			return true
		}
		return false
	}
	if set("accept-status") {
		for _, s := range f.accept.list {
			r.AcceptedTCBStatuses = append(r.AcceptedTCBStatuses, s.String())
		}
	}
	if set("max-collateral-age") {
		r.MaxCollateralAge = f.maxAge.d
	}
	if set("allow-expired-collateral-unsafe") {
		r.AllowExpiredCollateralUnsafe = f.allowExpired
	}
	if set("allow-debug-unsafe") {
		r.AllowDebugUnsafe = f.allowDebug
	}
	if set("allow-missing-sept-ve-disable-unsafe") {
		r.AllowMissingSEPTVEDisableUnsafe = f.allowNoSEPT
	}
	if set("allow-service-td-unsafe") {
		r.AllowServiceTDUnsafe = f.allowSvcTD
	}
	return r, changed
}

func (a *app) verifyCommand() *cobra.Command {
	f := &verifyFlags{accept: statusListValue{list: []collateral.TCBStatus{collateral.UpToDate}}}
	c := &cobra.Command{
		Use:   "verify FILE [--collateral PATH | --pccs-url URL | --collateral-dir DIR]",
		Short: "Verify a quote against its collateral and appraise the result",
		Long: `Verify a DCAP quote (binary, hex or 0x-prefixed hex; FILE - reads stdin) against its
collateral with Intel's semantics: PCK chain to the pinned Intel SGX Root CA, CRLs, TCB info
and QE identity signatures, QE report, TDX module identity, TCB level matching and status
convergence. The verified result is then appraised exactly as tdproof serve appraises it
(the same pipeline and, by default, the same built-in policy): TCB status UpToDate,
collateral not expired, no DEBUG TD or enclave, SEPT_VE_DISABLE set, no service TD, every
reference value given matching, and MRTD and RTMR0-2 pinned for an affirming result.

The first line of output is the verdict: OK (affirming; exit 0), WARNING (allowed but not
affirming, e.g. nothing pins the TD's code or an accepted TCB status is not UpToDate;
exit 0) or REJECTED (not authentic, exit 4, or denied by the policy, exit 5) with the
reason. --policy FILE takes a policy as the service stores it (YAML or Rego), --refvalues
FILE reference values (tdproof refvalue list --format json), --db DSN both from a
tdproof serve database (--policy-id selects a policy there). --accept-status and the
--allow-*-unsafe switches change the built-in policy (they exclude --policy and --db).

--collateral takes a dcap-qvl QuoteCollateralV3 JSON file, a directory holding
collateral.json, or a directory of raw Intel PCS responses (NAME.body plus
NAME.headers.json; a pcs/ subdirectory is also found), selected by the quote's TEE and the
FMSPC and CA type of its PCK certificate.

Without --collateral, collateral comes from --pccs-url (default Intel PCS) and is verified
before use; --collateral-dir DIR alone reads a bundle written by "tdproof collateral fetch"
without touching the network, and together with --pccs-url makes DIR a cache in front of
it; --offline never touches the network. --update early and --tcb-eval-num choose which
TCB evaluation the collateral comes from.

Intel's semantics report expired collateral (collateral_expired) without failing; the
policy rejects it (as the service does) unless --allow-expired-collateral-unsafe, and
--strict fails verification.`,
		Example: `  tdproof quote verify quote.bin --collateral collateral.json
  tdproof quote verify quote.bin --collateral vectors/tdx/ --at 1752919234 --format json
  tdproof quote verify quote.bin --collateral pcs/ --at 2023-07-01T01:00:00Z
  tdproof quote verify quote.bin --pccs-url https://pccs.example:8081
  tdproof quote verify quote.bin --collateral-dir bundle/
  tdproof quote verify quote.bin --collateral collateral.json \
      --accept-status UpToDate,SWHardeningNeeded --max-collateral-age 30d
  tdproof quote verify quote.bin --collateral collateral.json --refvalues refvalues.json
  tdproof quote verify quote.bin --collateral-dir bundle/ --db tdproof-data/tdproof.db --policy-id production`,
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
	fl.BoolVar(&f.rejectExp, "reject-expired-collateral", false, "reject results whose collateral has expired (the default; kept for compatibility)")
	fl.BoolVar(&f.allowExpired, "allow-expired-collateral-unsafe", false, "accept results whose collateral has expired")
	fl.BoolVar(&f.allowDebug, "allow-debug-unsafe", false, "accept DEBUG TDs and enclaves (the host can read their memory)")
	fl.BoolVar(&f.allowNoSEPT, "allow-missing-sept-ve-disable-unsafe", false, "accept TDs without SEPT_VE_DISABLE")
	fl.BoolVar(&f.allowSvcTD, "allow-service-td-unsafe", false, "accept TDs bound to a service TD (non-zero MRSERVICETD)")
	f.appraisal.register(fl)
	commandLineOnly(fl, "trusted-root", "allow-debug-unsafe", "allow-missing-sept-ve-disable-unsafe", "allow-service-td-unsafe", "allow-expired-collateral-unsafe")
	return c
}

// runVerify verifies, appraises, prints the outcome and returns the error
// that decides the exit code.
func (a *app) runVerify(cmd *cobra.Command, file string, f *verifyFlags) error {
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	out := &verifyOutput{MediaType: VerifyMediaType, VerificationTime: now, Strict: f.strict}
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err == nil {
		anchor := root
		if anchor == nil {
			anchor = dcap.IntelRoot()
		}
		sum := sha256.Sum256(anchor.Raw)
		out.TrustedRootSHA256 = hex.EncodeToString(sum[:])
		out.IntelRoot = out.TrustedRootSHA256 == dcap.IntelRootSHA256
		err = a.verifyInto(cmd, out, file, f, root, now)
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

// verifyInto reads the inputs and runs the service's pipeline, filling
// out.
func (a *app) verifyInto(cmd *cobra.Command, out *verifyOutput, file string, f *verifyFlags, root *x509.Certificate, now time.Time) error {
	rules, changed := f.rules(cmd.Flags())
	ap, err := a.openAppraisal(cmd.Context(), &f.appraisal, rules, changed)
	if err != nil {
		return err
	}
	defer ap.close()
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
	o, err := ap.verify(cmd.Context(), verifier.Evidence{Quote: q.Raw}, c, root, f.strict, now)
	if err != nil {
		return err
	}
	out.Result = o.Result
	out.Verified, out.Accepted = o.Result.Authentic, o.Result.Allow
	out.Verdict, out.line, err = verdictOf(o)
	if err != nil {
		if errors.Is(err, dcap.ErrTCBNotSupported) {
			err = withHints(err, "the platform TCB is below every TCB level of the TCB info: update the platform (microcode, firmware, TDX module); no --accept-status accepts this")
		}
		if errors.Is(err, dcap.ErrExpired) {
			err = withHints(err, "without --strict, expiry is reported (collateral_expired) and the policy decides; refresh the collateral or verify --at a time inside its validity")
		}
		return withHints(err, appraisalHints(o.Result, len(changed) > 0 || (f.appraisal.policyFile == "" && f.appraisal.db == ""))...)
	}
	return nil
}

func printVerify(w io.Writer, out *verifyOutput, err error) error {
	p := &printer{w: w}
	if out.Verdict != "" {
		p.printf("%s: %s\n", out.Verdict, out.line)
	}
	if out.TrustedRootSHA256 != "" && !out.IntelRoot {
		p.printf("%s\n", nonIntelWarning(out.TrustedRootSHA256))
	}
	if out.Result == nil {
		return p.err
	}
	r := out.Result.DCAP
	if r == nil {
		printAppraisal(p, out.Result)
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
	printAppraisal(p, out.Result)
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
