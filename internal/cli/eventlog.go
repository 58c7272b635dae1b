package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
)

// eventlogMediaType identifies the JSON output of eventlog replay.
const eventlogMediaType = "application/vnd.tdproof.eventlog-replay.v1+json"

// errRTMRMismatch: the replayed registers differ from the quote's.
var errRTMRMismatch = errors.New("event log does not match the quote")

func (a *app) eventlogCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "eventlog",
		Short: "Replay TDX event logs",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return &usageError{err: errors.New("missing command: eventlog replay")}
		},
	}
	c.AddCommand(a.eventlogReplayCommand())
	return c
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
}

func (a *app) eventlogReplayCommand() *cobra.Command {
	var quoteFile string
	c := &cobra.Command{
		Use:   "replay FILE [--quote QUOTE]",
		Short: "Replay an event log into RTMR0-3 and compare with a quote",
		Long: `Replay a TDX event log into RTMR0-3. FILE is a binary CCEL (TCG crypto-agile log, as in
/sys/firmware/acpi/tables/data/CCEL), a JSON event log (the dstack format: imr, event_type,
digest, event, event_payload), or a dstack GetQuote JSON whose event_log holds one. Runtime
events (type 0x08000001) are replayed from digests recomputed from their name and payload;
a supplied digest is never trusted. With --quote the replayed registers are compared with
the quote's (exit 4 on a mismatch).`,
		Example: `  tdproof eventlog replay /sys/firmware/acpi/tables/data/CCEL
  tdproof eventlog replay getquote.json --quote quote.hex --format json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runReplay(cmd, args[0], quoteFile)
		},
	}
	c.Flags().StringVar(&quoteFile, "quote", "", "compare with the RTMRs of the quote in `FILE` (binary, hex or 0x-hex)")
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

func (a *app) runReplay(cmd *cobra.Command, file, quoteFile string) error {
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
	var mismatch error
	if quoteFile != "" {
		q, err := a.readQuote(quoteFile)
		if err != nil {
			return err
		}
		if q.TD == nil {
			return fmt.Errorf("%w: --quote is an SGX quote; RTMRs exist only in TDX quotes", quote.ErrUnsupported)
		}
		all := true
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
	}
	if outputFormat(cmd) == formatJSON {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else if err := printReplay(a.stdout, &out); err != nil {
		return err
	}
	return mismatch
}

func malformedEventLog(err error) error {
	if errors.Is(err, errMalformedInput) {
		return err
	}
	return fmt.Errorf("%w: %w", errMalformedInput, err)
}

func printReplay(w io.Writer, out *replayOutput) error {
	p := &printer{w: w}
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
	return p.err
}
