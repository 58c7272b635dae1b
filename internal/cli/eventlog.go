package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/verifier"
)

// eventlogMediaType identifies the JSON output of eventlog replay.
// Version 2 adds, with --quote, the verdict and the service's result.
const eventlogMediaType = "application/vnd.tdproof.eventlog-replay.v2+json"

// errRTMRMismatch: the replayed registers differ from the quote's.
var errRTMRMismatch = errors.New("event log does not match the quote")

func (a *app) eventlogCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "eventlog",
		Short: "Replay TDX event logs",
	}
	return a.group(c, a.eventlogReplayCommand())
}

type eventJSON struct {
	Index    int    `json:"index"`
	IMR      uint32 `json:"imr"`
	Type     string `json:"event_type"`
	TypeCode uint32 `json:"event_type_code"`
	Name     string `json:"event,omitempty"`
	Digest   string `json:"digest"`
	// Recomputed is true for runtime events, whose digest is always
	// recomputed from name and payload.
	Recomputed  bool   `json:"recomputed"`
	Description string `json:"description"`
}

type registerJSON struct {
	Replayed string `json:"replayed"`
	Quoted   string `json:"quoted,omitempty"`
	Match    *bool  `json:"match,omitempty"`
}

type replayOutput struct {
	MediaType string          `json:"media_type"`
	Source    string          `json:"source"`
	Events    []eventJSON     `json:"events"`
	RTMRs     [4]registerJSON `json:"rtmrs"`
	Matches   *bool           `json:"matches_quote,omitempty"`
	// With --quote: Verdict is OK, WARNING, REJECTED or SKIPPED (no
	// collateral: the quote was not verified nor appraised), Result the
	// service's result when it ran, Error why the exit status is not 0.
	Verdict string           `json:"verdict,omitempty"`
	Result  *verifier.Result `json:"result,omitempty"`
	Error   *errorJSON       `json:"error,omitempty"`
	line    string
}

// replayFlags are the flags of eventlog replay.
type replayFlags struct {
	quote       string
	collateral  string
	source      sourceFlags
	appraisal   appraisalFlags
	trustedRoot string
	at          timeValue
	strict      bool
}

// appraise reports whether collateral was given, so that the quote is
// verified and appraised.
func (f *replayFlags) appraise(fl *pflag.FlagSet) bool {
	return f.collateral != "" || f.source.dir != "" || f.source.offline || fl.Changed("pccs-url")
}

func (a *app) eventlogReplayCommand() *cobra.Command {
	f := &replayFlags{}
	c := &cobra.Command{
		Use:   "replay FILE [--quote QUOTE [--collateral PATH | --pccs-url URL | --collateral-dir DIR]]",
		Short: "Replay an event log into RTMR0-3 and compare with a quote",
		Long: `Replay a TDX event log into RTMR0-3. FILE is a binary CCEL (TCG crypto-agile log, as in
/sys/firmware/acpi/tables/data/CCEL), a JSON event log (the dstack format: imr, event_type,
digest, event, event_payload), or a dstack GetQuote JSON whose event_log holds one. Runtime
events (type 0x08000001) are replayed from digests recomputed from their name and payload;
a supplied digest is never trusted.

With --quote the replayed registers are compared with the quote's, and with collateral
(--collateral, --collateral-dir or --pccs-url, as for quote verify) the quote and the log
are verified and appraised exactly as tdproof serve does: a CCEL as POST /v1/verify's
cc_eventlog, a JSON log as dstack evidence ({"quote", "event_log"}; a GetQuote JSON
keeps its other members). The first line is then the verdict: OK or WARNING (exit 0),
REJECTED (exit 4 not authentic, 5 denied by the policy). Without collateral the quote's
signature and the policy are not checked: the first line is SKIPPED (exit 4) or, when a
register differs, REJECTED (exit 4).`,
		Example: `  tdproof eventlog replay /sys/firmware/acpi/tables/data/CCEL
  tdproof eventlog replay getquote.json --quote quote.hex --format json
  tdproof eventlog replay ccel.bin --quote quote.bin --collateral collateral.json --refvalues refvalues.json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runReplay(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.quote, "quote", "", "compare with the RTMRs of the quote in `FILE` (binary, hex or 0x-hex)")
	fl.StringVar(&f.collateral, "collateral", "", "with --quote: verify and appraise with the collateral at `PATH` (as for quote verify)")
	f.source.register(fl, "with --quote: collateral bundle or cache `DIR` (alone: offline; with --pccs-url: a cache in front of it)", true)
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trust the certificate in `FILE` instead of the Intel SGX Root CA")
	fl.BoolVar(&f.strict, "strict", false, "fail on expired or not yet valid collateral or certificates")
	f.appraisal.register(fl)
	commandLineOnly(fl, "trusted-root")
	return c
}

// readEvents reads a CCEL, a JSON event array or a GetQuote JSON.
func readEvents(data []byte) ([]eventlog.Event, string, error) {
	t := bytes.TrimSpace(data)
	switch {
	case len(t) > 0 && t[0] == '[':
		ev, err := eventlog.ParseJSON(t)
		return ev, "json", err
	case len(t) > 0 && t[0] == '{':
		var gq struct {
			EventLog *string `json:"event_log"`
		}
		if err := json.Unmarshal(t, &gq); err != nil || gq.EventLog == nil {
			return nil, "", fmt.Errorf("%w: a JSON object without an event_log string", errMalformedInput)
		}
		ev, err := eventlog.ParseJSON([]byte(*gq.EventLog))
		return ev, "getquote-json", err
	}
	ev, err := eventlog.ParseCCELEvents(data)
	return ev, "ccel", err
}

func (a *app) runReplay(cmd *cobra.Command, file string, f *replayFlags) error {
	appraise := f.quote != "" && f.appraise(cmd.Flags())
	if f.quote == "" {
		// Flags that only make sense with a quote, unless they came from
		// the environment (TDPROOF_COLLATERAL set for quote verify).
		for _, name := range []string{"collateral", "policy", "policy-id", "refvalues", "db", "collateral-dir", "offline", "pccs-url"} {
			if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
				if v, env := a.lookupEnv(envName(fl)); env && v == fl.Value.String() {
					continue
				}
				return &usageError{err: fmt.Errorf("--%s goes with --quote", name)}
			}
		}
	}
	data, err := a.readInput("event log", file)
	if err != nil {
		return err
	}
	events, source, err := readEvents(data)
	if err != nil {
		return malformedEventLog(err)
	}
	rtmrs, err := eventlog.Replay(events)
	if err != nil {
		return malformedEventLog(err)
	}
	out := replayOutput{MediaType: eventlogMediaType, Source: source, Events: []eventJSON{}}
	for i := range events {
		e := &events[i]
		ej := eventJSON{Index: i, IMR: e.IMR, Type: e.Type.String(), TypeCode: uint32(e.Type), Name: e.Name,
			Digest: hex.EncodeToString(e.Digest), Description: e.Describe()}
		if e.IsRuntime() {
			d, err := e.ReplayDigest()
			if err != nil {
				return malformedEventLog(err)
			}
			ej.Digest, ej.Recomputed = hex.EncodeToString(d[:]), true
		}
		out.Events = append(out.Events, ej)
	}
	for i := range rtmrs {
		out.RTMRs[i].Replayed = hex.EncodeToString(rtmrs[i][:])
	}
	var verdictErr error
	if f.quote != "" {
		q, err := a.readQuote(f.quote)
		if err != nil {
			return err
		}
		if q.TD == nil {
			return fmt.Errorf("%w: --quote is an SGX quote; RTMRs exist only in TDX quotes", quote.ErrUnsupported)
		}
		all := true
		var mismatch error
		for i := range rtmrs {
			m := rtmrs[i] == q.TD.RTMRs[i]
			out.RTMRs[i].Quoted, out.RTMRs[i].Match = hex.EncodeToString(q.TD.RTMRs[i][:]), &m
			if !m {
				all = false
				if mismatch == nil {
					mismatch = fmt.Errorf("%w: RTMR%d quoted %x, replayed %x", errRTMRMismatch, i, q.TD.RTMRs[i], rtmrs[i])
				}
			}
		}
		out.Matches = &all
		if appraise {
			verdictErr = a.appraiseReplay(cmd, &out, f, q, data, source)
			if errors.As(verdictErr, new(*usageError)) {
				return verdictErr
			}
		} else {
			out.Verdict = verdictSkipped
			out.line = "quote signature, collateral and policy not checked (give --collateral, --collateral-dir or --pccs-url to appraise as the service does); RTMR0-3 match the quote"
			verdictErr = withHints(fmt.Errorf("%w: the quote was not verified: without collateral the service's verdict is unknown", errNotAppraised),
				"give --collateral, --collateral-dir or --pccs-url to verify the quote and appraise the evidence")
			if mismatch != nil {
				out.Verdict, out.line, verdictErr = verdictRejected, "not authentic: "+oneLine(mismatch.Error()), mismatch
			}
		}
		out.Error = newErrorJSON(verdictErr)
	}
	if outputFormat(cmd) == formatJSON {
		if err := writeJSON(a.stdout, out); err != nil {
			return errors.Join(verdictErr, err)
		}
	} else if err := printReplay(a.stdout, &out); err != nil {
		return errors.Join(verdictErr, err)
	}
	return verdictErr
}

// appraiseReplay verifies and appraises the quote with the log through the
// service's pipeline: a CCEL as /v1/verify's cc_eventlog, a JSON log as
// dstack evidence.
func (a *app) appraiseReplay(cmd *cobra.Command, out *replayOutput, f *replayFlags, q *quote.Quote, data []byte, source string) error {
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err != nil {
		return err
	}
	ap, err := a.openAppraisal(cmd.Context(), &f.appraisal, policy.Rules{}, nil)
	if err != nil {
		return err
	}
	defer ap.close()
	ev, err := replayEvidence(q.Raw, data, source)
	if err != nil {
		return err
	}
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	c, _, err := a.quoteCollateral(cmd.Context(), cmd.Flags(), f.collateral, &f.source, q, root, now)
	if err != nil {
		return err
	}
	o, err := ap.verify(cmd.Context(), ev, c, root, f.strict, now)
	if err != nil {
		return err
	}
	out.Result = o.Result
	out.Verdict, out.line, err = verdictOf(o)
	return withHints(err, appraisalHints(o.Result, f.appraisal.policyFile == "" && f.appraisal.db == "")...)
}

// replayEvidence is the service request for a quote and an event log: the
// CCEL as cc_eventlog; a JSON log as dstack evidence {"quote",
// "event_log"} (a GetQuote JSON keeps its other members, its quote
// replaced by --quote).
func replayEvidence(rawQuote, data []byte, source string) (verifier.Evidence, error) {
	if source == "ccel" {
		return verifier.Evidence{Quote: rawQuote, CCEL: data}, nil
	}
	obj := map[string]json.RawMessage{}
	if source == "getquote-json" {
		if err := json.Unmarshal(data, &obj); err != nil {
			return verifier.Evidence{}, malformedEventLog(err)
		}
	} else {
		log, err := json.Marshal(string(bytes.TrimSpace(data)))
		if err != nil {
			return verifier.Evidence{}, err
		}
		obj["event_log"] = log
	}
	delete(obj, "attestation")
	qh, err := json.Marshal(hex.EncodeToString(rawQuote))
	if err != nil {
		return verifier.Evidence{}, err
	}
	obj["quote"] = qh
	b, err := json.Marshal(obj)
	if err != nil {
		return verifier.Evidence{}, err
	}
	return verifier.Evidence{Dstack: b}, nil
}

func malformedEventLog(err error) error {
	if errors.Is(err, errMalformedInput) {
		return err
	}
	return fmt.Errorf("%w: %w", errMalformedInput, err)
}

func printReplay(w io.Writer, out *replayOutput) error {
	p := &printer{w: w}
	if out.Verdict != "" {
		p.printf("%s: %s\n", out.Verdict, out.line)
	}
	p.printf("%-5s %-5s %-36s %s\n", "#", "RTMR", "type", "digest / event")
	for _, e := range out.Events {
		name := e.Type
		if e.Name != "" {
			name += " " + e.Name
		}
		d := e.Digest
		if e.Recomputed {
			d += " (recomputed)"
		}
		p.printf("%-5d %-5d %-36s %s\n", e.Index, e.IMR, name, d)
		if e.Description != "" && e.Description != e.Type {
			p.printf("%-5s %-5s %-36s   %s\n", "", "", "", e.Description)
		}
	}
	p.section("replayed registers")
	for i, r := range out.RTMRs {
		line := r.Replayed
		if r.Match != nil {
			if *r.Match {
				line += "  matches the quote"
			} else {
				line += "  MISMATCH, quote has " + r.Quoted
			}
		}
		p.kv(0, fmt.Sprintf("RTMR%d", i), line)
	}
	if out.Result != nil {
		p.section("appraisal")
		printAppraisal(p, out.Result)
	}
	return p.err
}
