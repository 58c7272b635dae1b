package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/report"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// reportFlags are the flags of report.
type reportFlags struct {
	collateral  string
	source      sourceFlags
	trustedRoot string
	at          timeValue
	ccel        string
	nonce       string
	policy      string
	db          string
	refs        []string
	html        string
}

func (a *app) reportCommand() *cobra.Command {
	f := &reportFlags{}
	c := &cobra.Command{
		Use:   "report EVIDENCE [--collateral PATH] [--html OUT.html]",
		Short: "Verify evidence and write a readable evidence report",
		Long: `Verify evidence exactly as tdproof serve's POST /v1/verify does (DCAP, dstack, the
policy with its reference values, an EAR token) and report the verdict: the verdict
sentence, the failed rules, the chain of trust, the TCB statuses with their advisories,
the measurements next to their reference values (differing bytes marked), the event log
with the system-ready cut-off, and the app identity.

EVIDENCE is a DCAP quote (binary, hex or 0x-hex), or dstack evidence: a GetQuote JSON,
{"attestation": …}, an RA-TLS certificate (PEM or DER). --ccel adds a TDX quote's CCEL.

--html OUT writes the report as one self-contained HTML file (inline CSS, no script, no
external resource but the links to Intel's advisory pages) for an audit or a ticket.
Without --html, --format json writes the /v1/verify response (result with its chain and
event_log members, and the token) and text a short summary.

The policy is the built-in default (or --policy ID from --db); reference values come from
--db and --reference-value. The EAR token is signed by a throwaway key: it records the
verdict, it is not meant for relying parties. The exit code is 0 whenever the report was
made, whatever the verdict; the verdict is in the report.`,
		Example: `  tdproof report quote.bin --collateral collateral.json --at 1752919234 --html report.html
  tdproof report getquote.json --collateral-dir bundle/ --reference-value tdx.mr_td=… --html report.html
  tdproof report quote.bin --db postgres://tdproof@db/tdproof --format json`,
		Annotations: map[string]string{"exit_codes": `  0  the report was made (whatever the verdict)
  1  internal error
  2  usage
  3  the evidence does not parse
  6  collateral unavailable`},
		Args: exactArgs("EVIDENCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runReport(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.collateral, "collateral", "", "collateral `PATH`: QuoteCollateralV3 JSON file, directory with collateral.json, or directory of PCS responses (instead of a PCCS)")
	f.source.register(fl, "collateral bundle or cache `DIR` (alone: offline; with --pccs-url: a cache in front of it)", true)
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "verify up to the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA")
	fl.Var(&f.at, "at", "verify at `TIME` instead of now (for archived evidence)")
	fl.StringVar(&f.ccel, "ccel", "", "the TD's CCEL event log in `FILE` (with a TDX quote)")
	fl.StringVar(&f.nonce, "nonce", "", "expected nonce as `HEX`: a prefix of REPORTDATA")
	fl.StringVar(&f.policy, "policy", "", "appraise with the active version of policy `ID` in --db (default: the default policy)")
	fl.StringVar(&f.db, "db", "", "read policies and reference values from the database at `DSN` (postgres://… or a SQLite path)")
	fl.StringArrayVar(&f.refs, "reference-value", nil, "accept `NAME=HEX` as a reference value (repeatable; e.g. tdx.rtmr_1=…)")
	fl.StringVar(&f.html, "html", "", "write the report as one self-contained HTML file `OUT`")
	commandLineOnly(fl, "trusted-root")
	return c
}

func (a *app) runReport(cmd *cobra.Command, file string, f *reportFlags) error {
	ctx := cmd.Context()
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err != nil {
		return err
	}
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	data, err := a.readInput("evidence", file)
	if err != nil {
		return err
	}
	ev, q, err := reportEvidence(data)
	if err != nil {
		return err
	}
	if f.ccel != "" {
		if ev.Quote == nil {
			return &usageError{err: errors.New("--ccel goes with a quote (dstack evidence carries its own event log)")}
		}
		if ev.CCEL, err = a.readInput("CCEL", f.ccel); err != nil {
			return err
		}
	}
	if f.nonce != "" {
		if ev.Nonce, err = hex.DecodeString(strings.TrimPrefix(f.nonce, "0x")); err != nil {
			return &usageError{err: fmt.Errorf("--nonce: not hex: %w", err)}
		}
	}
	ev.PolicyID, ev.Details = f.policy, true

	var col *collateral.Collateral
	if f.collateral != "" {
		pck, _ := pckFromQuote(q)
		col, _, err = loadCollateral(f.collateral, q, pck)
	} else {
		col, _, err = a.collateralFromSource(ctx, cmd.Flags(), &f.source, q, root, now)
	}
	if err != nil {
		return err
	}

	mem := refvalue.NewMemoryStore()
	if err := addFlagRefs(ctx, mem, f.refs); err != nil {
		return err
	}
	refs := refvalue.Store(mem)
	resolve := verifier.DefaultPolicyResolver
	if f.db != "" {
		if len(f.refs) > 0 {
			return &usageError{err: errors.New("--reference-value and --db exclude each other (add the values to the database with tdproof refvalue add)")}
		}
		st, err := store.Open(ctx, f.db)
		if err != nil {
			return fmt.Errorf("report: open the database: %w", err)
		}
		defer st.Close()
		refs, resolve = st.RefValues(), verifiersvc.StorePolicyResolver(st)
	} else if f.policy != "" && f.policy != "default" {
		return &usageError{err: errors.New("--policy names a policy in --db: give --db")}
	}

	k, err := ear.GenerateKey(nil)
	if err != nil {
		return err
	}
	ks, err := ear.NewKeySet(k)
	if err != nil {
		return err
	}
	clock := func() time.Time { return now }
	signer, err := ear.NewSigner(ks, ear.WithClock(clock))
	if err != nil {
		return err
	}
	opts := []verifier.Option{verifier.WithClock(clock), verifier.WithPolicyResolver(resolve)}
	if root != nil {
		opts = append(opts, verifier.WithTrustedRoot(root))
	}
	v, err := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil }), refs, signer, opts...)
	if err != nil {
		return err
	}
	o, err := v.Verify(ctx, ev)
	if err != nil {
		return err
	}
	resp := verifiersvc.NativeResponse{MediaType: verifier.MediaType, Result: o.Result, Token: o.Token}
	if f.html != "" {
		view, err := report.New(&report.Input{MediaType: resp.MediaType, Result: resp.Result, Token: resp.Token})
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := report.Page(&buf, view); err != nil {
			return err
		}
		if err := os.WriteFile(f.html, buf.Bytes(), 0o644); err != nil {
			return &usageError{err: fmt.Errorf("--html: %w", err)}
		}
		if outputFormat(cmd) != formatJSON {
			p := &printer{w: a.stdout}
			p.printf("report: wrote %s: %s\n", f.html, view.Verdict.Sentence)
			return p.err
		}
	}
	if outputFormat(cmd) == formatJSON {
		return writeJSON(a.stdout, resp)
	}
	if f.html != "" {
		return nil
	}
	view, err := report.New(&report.Input{Result: resp.Result, Token: resp.Token})
	if err != nil {
		return err
	}
	p := &printer{w: a.stdout}
	p.printf("%s\n", view.Verdict.Sentence)
	p.kv(0, "EAR status", view.Verdict.EARStatus)
	if view.Verdict.Reason != "" {
		p.kv(0, "reason", view.Verdict.Reason)
	}
	for _, r := range view.Failed {
		p.kv(0, "failed rule", r.Rule+" "+r.Claim+": expected "+r.Expected+", found "+r.Actual)
	}
	p.printf("(--html OUT.html writes the full report)\n")
	return p.err
}

// reportEvidence reads data as a quote (binary, hex) or dstack evidence.
func reportEvidence(data []byte) (verifier.Evidence, *quote.Quote, error) {
	if raw, err := quote.DecodeInput(data); err == nil {
		if q, err := quote.Parse(raw); err == nil {
			return verifier.Evidence{Quote: raw}, q, nil
		}
	}
	de, err := dstack.ParseEvidence(data)
	if err != nil {
		return verifier.Evidence{}, nil, withHints(fmt.Errorf("%w: neither a DCAP quote nor dstack evidence: %w", errMalformedInput, err),
			"give a quote (binary or hex), a dstack GetQuote JSON, {\"attestation\": …} or an RA-TLS certificate")
	}
	if de.Quote == nil {
		return verifier.Evidence{}, nil, fmt.Errorf("%w: dstack evidence without a quote", errMalformedInput)
	}
	return verifier.Evidence{Dstack: data}, de.Quote, nil
}

// addFlagRefs adds --reference-value NAME=HEX values to s.
func addFlagRefs(ctx context.Context, s *refvalue.MemoryStore, list []string) error {
	for _, nv := range list {
		name, val, ok := strings.Cut(nv, "=")
		if !ok || name == "" || val == "" {
			return &usageError{err: fmt.Errorf("--reference-value %q: want NAME=HEX", nv)}
		}
		if _, err := s.Add(ctx, refvalue.Value{Name: name, Values: []string{val}, Provenance: refvalue.Provenance{Source: "tdproof report --reference-value"}}); err != nil {
			return &usageError{err: fmt.Errorf("--reference-value %q: %w", nv, err)}
		}
	}
	return nil
}
