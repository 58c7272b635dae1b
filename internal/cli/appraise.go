package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/policy/rego"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// The CLI's verdicts come from the service's pipeline: quote verify,
// dstack verify and eventlog replay --quote build a verifier.Verifier (the
// one tdproof serve runs) around the collateral they loaded, with the
// policy and reference values chosen here, and print its outcome. There is
// no second appraisal in the CLI (docs/security-model.md, "CLI";
// TestCLIAgreesWithService).

// Verdicts: the first line of human output and "verdict" in JSON.
const (
	verdictOK       = "OK"       // allowed and affirming; exit 0
	verdictWarning  = "WARNING"  // allowed, not affirming; exit 0
	verdictRejected = "REJECTED" // not authentic or denied; exit 4 or 5
	verdictSkipped  = "SKIPPED"  // a check the service makes was not made; exit 4
)

// cliPolicyID names the built-in default policy changed by command-line
// switches (--accept-status, --allow-debug-unsafe, …).
const cliPolicyID = "command-line"

// errNotAppraised: a check the service makes was skipped, so the CLI
// cannot say the service would accept (exit 4, code not_appraised).
var errNotAppraised = errors.New("not appraised")

// codeNotAppraised is the JSON error code of errNotAppraised.
const codeNotAppraised = "not_appraised"

// appraisalFlags choose the policy and the reference values.
type appraisalFlags struct {
	policyFile string
	policyID   string
	refValues  string
	db         string
}

func (f *appraisalFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.policyFile, "policy", "", "appraise with the policy in `FILE`: declarative YAML or Rego, as tdproof serve stores them (default: the built-in default policy)")
	fl.StringVar(&f.policyID, "policy-id", "", "appraise with the active version of policy `ID` in --db, as a request's policy_id (with --policy: the id of the file's policy)")
	fl.StringVar(&f.refValues, "refvalues", "", "compare with the reference values in `FILE`: the output of tdproof refvalue list --format json, or of tdproof measure --format json")
	fl.StringVar(&f.db, "db", "", "read reference values and policies from the tdproof serve database at `DSN` (postgres://… or a SQLite path, e.g. tdproof-data/tdproof.db)")
	// A policy replaces every rule: like the *-unsafe switches, it must
	// not come from a variable left in the environment.
	commandLineOnly(fl, "policy", "policy-id")
}

// appraisal is a configured appraisal: the policy resolver and the
// reference values of one command run.
type appraisal struct {
	resolve verifier.PolicyResolver
	refs    refvalue.Store
	id      string
	closeDB func()
}

// close releases the database, if one was opened.
func (p *appraisal) close() {
	if p.closeDB != nil {
		p.closeDB()
	}
}

// open reads the policy and reference values. rules are the built-in
// policy's switches from the command's own flags; changed names those
// flags when the user set any (they exclude --policy and --db policies).
func (a *app) openAppraisal(ctx context.Context, f *appraisalFlags, rules policy.Rules, changed []string) (*appraisal, error) {
	if len(changed) > 0 && (f.policyFile != "" || f.db != "" || f.policyID != "") {
		return nil, &usageError{err: fmt.Errorf("--%s changes the built-in policy and excludes --policy, --policy-id and --db: write the rule in the policy instead", changed[0])}
	}
	if f.refValues != "" && f.db != "" {
		return nil, &usageError{err: errors.New("--refvalues and --db exclude each other (the database holds the reference values)")}
	}
	p := &appraisal{resolve: verifier.DefaultPolicyResolver, id: f.policyID}
	if len(changed) > 0 {
		pol, err := policy.FromRules(cliPolicyID, "1", rules)
		if err != nil {
			return nil, &usageError{err: err}
		}
		p.resolve = func(_ context.Context, id string) (*policy.Policy, error) {
			if id == "" || id == cliPolicyID {
				return pol, nil
			}
			return nil, fmt.Errorf("%w %q", verifier.ErrUnknownPolicy, id)
		}
	}
	if f.refValues != "" {
		data, err := a.readInput("reference values", f.refValues)
		if err != nil {
			return nil, err
		}
		if p.refs, err = parseRefValues(data); err != nil {
			return nil, fmt.Errorf("%w: --refvalues %s: %w", errMalformedInput, f.refValues, err)
		}
	}
	if f.db != "" {
		st, err := store.Open(ctx, f.db)
		if err != nil {
			return nil, fmt.Errorf("open the database: %w", err)
		}
		p.closeDB = func() { st.Close() }
		p.refs = st.RefValues()
		p.resolve = verifiersvc.StorePolicyResolver(st)
	}
	if f.policyFile != "" {
		src, err := a.readInput("policy", f.policyFile)
		if err != nil {
			p.close()
			return nil, err
		}
		pol, err := parsePolicyFile(f.policyFile, f.policyID, src)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("%w: --policy %s: %w", errMalformedInput, f.policyFile, err)
		}
		p.id = pol.ID()
		p.resolve = func(_ context.Context, id string) (*policy.Policy, error) {
			if id == "" || id == pol.ID() {
				return pol, nil
			}
			return nil, fmt.Errorf("%w %q", verifier.ErrUnknownPolicy, id)
		}
	}
	return p, nil
}

// regoPackage recognises a Rego module.
var regoPackage = regexp.MustCompile(`(?m)^\s*package\s`)

// parsePolicyFile compiles a policy file as the service compiles a stored
// policy (rego.Parse handles both formats). The format is Rego for a .rego
// file or a module declaring a package, else YAML. The id is id, else the
// document's, else the file's base name; the version the document's, else
// "file".
func parsePolicyFile(path, id string, src []byte) (*policy.Policy, error) {
	format := policy.FormatYAML
	switch strings.ToLower(filepath.Ext(path)) {
	case ".rego":
		format = policy.FormatRego
	case ".yaml", ".yml":
	default:
		if regoPackage.Match(src) {
			format = policy.FormatRego
		}
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	version := ""
	if format == policy.FormatRego {
		version = "file"
		if id == "" {
			id = base
		}
	}
	p, err := rego.Parse(format, id, version, src)
	if err != nil || (p.ID() != "" && p.Version() != "") {
		return p, err
	}
	if id == "" {
		id = p.ID()
	}
	if id == "" {
		id = base
	}
	if version = p.Version(); version == "" {
		version = "file"
	}
	return rego.Parse(format, id, version, src)
}

// parseRefValues reads reference values in the formats tdproof produces:
// the JSON output of tdproof refvalue list or add (RefValuesMediaType),
// and the JSON output of tdproof measure (the values refvalue add
// --from-measure imports).
func parseRefValues(data []byte) (refvalue.Store, error) {
	var head struct {
		MediaType string `json:"media_type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, err
	}
	var vals []refvalue.Value
	switch head.MediaType {
	case RefValuesMediaType:
		var doc struct {
			Values []refvalue.Value `json:"values"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&doc); err != nil {
			return nil, err
		}
		vals = doc.Values
	case MeasureMediaType:
		var err error
		if vals, err = refvalue.FromMeasure(data, refvalue.Provenance{Source: "tdproof measure"}); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("media_type %q: want %s (tdproof refvalue list --format json) or %s (tdproof measure --format json)",
			head.MediaType, RefValuesMediaType, MeasureMediaType)
	}
	ms := refvalue.NewMemoryStore()
	for _, v := range vals {
		v.ID = ""
		if _, err := ms.Add(context.Background(), v); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// verify runs the service's pipeline on ev with the collateral c, at now,
// with root (nil: Intel's) and strict. The signing key is ephemeral: the
// CLI prints the result, not the token.
func (p *appraisal) verify(ctx context.Context, ev verifier.Evidence, c *collateral.Collateral, root *x509.Certificate, strict bool, now time.Time) (*verifier.Outcome, error) {
	key, err := ear.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ks, err := ear.NewKeySet(key)
	if err != nil {
		return nil, err
	}
	clock := func() time.Time { return now }
	signer, err := ear.NewSigner(ks, ear.WithClock(clock))
	if err != nil {
		return nil, err
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return c, nil })
	v, err := verifier.New(src, p.refs, signer, verifier.WithClock(clock), verifier.WithPolicyResolver(p.resolve),
		verifier.WithDCAPVerifier(dcap.NewVerifier(dcap.VerifierOptions{TrustedRoot: root, Strict: strict})))
	if err != nil {
		return nil, err
	}
	ev.PolicyID = p.id
	o, err := v.Verify(ctx, ev)
	if err != nil {
		if errors.Is(err, verifier.ErrUnknownPolicy) {
			return nil, withHints(&usageError{err: err}, "--policy-id names a policy with an active version in --db (or the id of --policy)")
		}
		if errors.Is(err, verifier.ErrMalformedEvidence) && !errors.Is(err, errMalformedInput) {
			return nil, fmt.Errorf("%w: %w", errMalformedInput, err)
		}
		return nil, err
	}
	return o, nil
}

// verdictOf returns the verdict of an outcome, its first line of human
// output (without the verdict word) and the error that decides the exit
// status (nil when the service would allow).
func verdictOf(o *verifier.Outcome) (verdict, line string, err error) {
	r := o.Result
	switch {
	case !r.Authentic:
		cause := o.Cause
		if cause == nil {
			cause = errors.New(r.Reason)
		}
		if code, _ := classify(cause); code == exitInternal || code == exitOK {
			cause = fmt.Errorf("%w: %w", errNotAuthentic, cause)
		}
		line = oneLine(r.Reason)
		if code, _ := classify(cause); code == exitNotAuthentic {
			line = "not authentic: " + line
		}
		return verdictRejected, line, cause
	case !r.Allow:
		parts := make([]string, 0, len(r.Appraisal.Failed))
		for _, v := range r.Appraisal.Failed {
			parts = append(parts, v.String())
		}
		line = strings.Join(parts, "; ")
		return verdictRejected, line, r.Appraisal.Err()
	}
	line = fmt.Sprintf("%s (%s)", r.Status, outcomeFacts(r))
	if r.Status == ear.StatusAffirming {
		return verdictOK, line, nil
	}
	var why, unpinned []string
	for _, w := range r.Appraisal.Warnings {
		if w.Rule == "unpinned" {
			unpinned = append(unpinned, strings.TrimPrefix(w.Expected, "a reference value "))
			continue
		}
		why = append(why, w.String())
	}
	if len(unpinned) > 0 {
		why = append(why, "unpinned: no reference value for "+strings.Join(unpinned, ", "))
	}
	if r.DCAP != nil && r.DCAP.Status != collateral.UpToDate {
		why = append(why, "TCB status "+r.DCAP.Status.String()+" is accepted but not UpToDate")
	}
	if d, ok := r.Claims.Bool("tdx.td_attributes.debug"); ok && d {
		why = append(why, "DEBUG TD allowed")
	}
	if d, ok := r.Claims.Bool("sgx.debug"); ok && d {
		why = append(why, "DEBUG enclave allowed")
	}
	if len(why) == 0 {
		why = append(why, "trust vector "+trustVectorLine(r.TrustVector))
	}
	return verdictWarning, fmt.Sprintf("allowed, not affirming (EAR status %s, %s): %s", r.Status, outcomeFacts(r), strings.Join(why, "; ")), nil
}

// outcomeFacts summarises an allowed result: TCB status, collateral
// expiry and the policy.
func outcomeFacts(r *verifier.Result) string {
	var parts []string
	if r.DCAP != nil {
		parts = append(parts, "TCB "+r.DCAP.Status.String())
		if r.DCAP.CollateralExpired {
			parts = append(parts, "collateral EXPIRED at "+ts(r.DCAP.EarliestExpiration))
		}
	}
	parts = append(parts, "policy "+policyName(r.Appraisal))
	return strings.Join(parts, ", ")
}

// policyName is "id@version".
func policyName(a *policy.Appraisal) string {
	if a == nil {
		return "-"
	}
	return a.PolicyID + "@" + a.PolicyVersion
}

func trustVectorLine(tv ear.TrustVector) string {
	b, err := json.Marshal(tv)
	if err != nil {
		return "?"
	}
	return string(b)
}

// printAppraisal writes the appraisal block shared by the commands.
func printAppraisal(p *printer, r *verifier.Result) {
	if r == nil || r.Appraisal == nil {
		return
	}
	p.kv(0, "EAR status", r.Status)
	p.kv(0, "policy", policyName(r.Appraisal))
	for _, f := range r.Appraisal.Failed {
		p.kv(1, "failed", f.String())
	}
	for _, w := range r.Appraisal.Warnings {
		p.kv(1, "warning", w.String())
	}
	for _, c := range r.Appraisal.Comparisons {
		if c.Outcome == policy.NoReferenceValue {
			continue
		}
		p.kv(1, "reference value", fmt.Sprintf("%s: %s", c.Name, c.Outcome))
	}
}

// appraisalHints suggest a way forward for a rejected or warning result;
// builtin says whether the command-line switches apply (no --policy or
// --db).
func appraisalHints(r *verifier.Result, builtin bool) []string {
	if r == nil || r.Appraisal == nil {
		return nil
	}
	var hints []string
	for _, v := range r.Appraisal.Failed {
		switch v.Rule {
		case "tcb_status":
			if builtin && r.DCAP != nil && r.DCAP.Status != collateral.Revoked {
				hints = append(hints, fmt.Sprintf("to accept TCB status %s (advisories: %s), pass --accept-status UpToDate,%s or write accepted_tcb_statuses in a --policy file",
					r.DCAP.Status, listOrNone(r.DCAP.AdvisoryIDs), r.DCAP.Status))
			}
		case "collateral_expired":
			hints = append(hints, "refresh the collateral, or verify --at a time inside its validity (the service rejects expired collateral by default)")
		case "collateral_age":
			hints = append(hints, "refresh the collateral, or raise --max-collateral-age")
		case "reference_value":
			hints = append(hints, "the reference values (--refvalues or --db) do not match the evidence; a claim missing from it (a quote without its event log) fails too")
		}
	}
	return hints
}
