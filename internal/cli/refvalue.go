package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/refvalue"
)

// RefValuesMediaType is the media type of `tdproof refvalue add|list
// --format json` output.
const RefValuesMediaType = "application/vnd.tdproof.refvalues.v1+json"

// dbFlags choose the database: --data-dir (SQLite file tdproof.db in it)
// or --db (a DSN), as for serve.
type dbFlags struct {
	dataDir string
	db      string
}

func (d *dbFlags) register(fl *pflag.FlagSet) {
	d.dataDir = "./tdproof-data"
	fl.StringVar(&d.dataDir, "data-dir", d.dataDir, "use the SQLite database in `DIR` (created on first run), as tdproof serve does")
	fl.StringVar(&d.db, "db", "", "use the database at `DSN` (postgres://… or a SQLite path) instead of --data-dir")
}

// open opens the store the way serve does.
func (d *dbFlags) open(cmd *cobra.Command) (*store.Store, error) {
	dsn := d.db
	if dsn == "" {
		if d.dataDir == "" {
			return nil, &usageError{err: errors.New("--data-dir is empty (give a directory or --db)")}
		}
		dsn = filepath.Join(d.dataDir, "tdproof.db")
	}
	st, err := store.Open(cmd.Context(), dsn)
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	return st, nil
}

const refvalueExitCodes = `  0  done
  1  internal error (the database failed)
  2  usage: bad argument or flag, invalid reference value, unknown ID, unreadable file
  3  malformed input: the --from-measure file is not tdproof measure JSON output`

func (a *app) refvalueCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "refvalue",
		Short: "Manage the reference values of the verification service",
		Long: `Add, list and remove the reference values that tdproof serve appraises evidence against.
They live in the same database as the service: --data-dir (SQLite) or --db.
A reference value is a name (tdx.mr_td, tdx.rtmr_1, dstack.compose_hash, … or a name of
your own), one or more accepted values, provenance, and an optional validity window
(--not-before, --expires) that is enforced each time evidence is appraised.`,
	}
	return a.group(c, a.refvalueAddCommand(), a.refvalueListCommand(), a.refvalueRemoveCommand())
}

type refvalueAddFlags struct {
	db             dbFlags
	source         string
	author         string
	artifactDigest string
	notBefore      timeValue
	expires        timeValue
	fromMeasure    string
}

func (a *app) refvalueAddCommand() *cobra.Command {
	f := &refvalueAddFlags{}
	c := &cobra.Command{
		Use:   "add NAME VALUE... | add --from-measure FILE",
		Short: "Add a reference value",
		Long: `Add one reference value NAME with the accepted VALUEs (hex is stored in lower case without
0x), or with --from-measure the values computed by tdproof measure --format json: tdx.mr_td,
each completely computed tdx.rtmr_N and dstack.os_image_hash. Provenance (--source,
--author, --artifact-digest) is recorded, not verified; --from-measure records the SHA-256
of FILE as the artifact digest unless --artifact-digest is given.`,
		Example: `  tdproof refvalue add dstack.compose_hash 0x8a3f… --source "release 1.4" --expires 2026-01-01T00:00:00Z
  tdproof measure --image dstack-0.6.0/ --memory 2G --cpus 2 --format json > m.json
  tdproof refvalue add --from-measure m.json --author ops`,
		Annotations: map[string]string{"exit_codes": refvalueExitCodes},
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case f.fromMeasure != "" && len(args) > 0:
				return &usageError{err: errors.New("--from-measure and NAME VALUE... exclude each other")}
			case f.fromMeasure == "" && len(args) < 2:
				return &usageError{err: errors.New("missing NAME and VALUE arguments (or --from-measure FILE)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runRefvalueAdd(cmd, f, args)
		},
	}
	fl := c.Flags()
	f.db.register(fl)
	fl.StringVar(&f.source, "source", "", "provenance: the `SOURCE` of the values (default \"manual\", with --from-measure \"tdproof measure\")")
	fl.StringVar(&f.author, "author", "", "provenance: who adds the values (`NAME`)")
	fl.StringVar(&f.artifactDigest, "artifact-digest", "", "provenance: `ALG:HEX` digest of the artifact the values were computed from")
	fl.Var(&f.notBefore, "not-before", "the values match from `TIME` on (default: at once)")
	fl.Var(&f.expires, "expires", "the values no longer match from `TIME` on (default: never)")
	fl.StringVar(&f.fromMeasure, "from-measure", "", "add the values in `FILE`, the output of tdproof measure --format json (- reads stdin)")
	return c
}

func (a *app) runRefvalueAdd(cmd *cobra.Command, f *refvalueAddFlags, args []string) error {
	prov := refvalue.Provenance{Source: f.source, Author: f.author, ArtifactDigest: f.artifactDigest}
	var vals []refvalue.Value
	if f.fromMeasure != "" {
		doc, err := a.readInput("measure output", f.fromMeasure)
		if err != nil {
			return err
		}
		vals, err = refvalue.FromMeasure(doc, prov)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", errMalformedInput, f.fromMeasure, err)
		}
		if len(vals) == 0 {
			return fmt.Errorf("%w: %s holds no reference values", errMalformedInput, f.fromMeasure)
		}
	} else {
		if prov.Source == "" {
			prov.Source = "manual"
		}
		vals = []refvalue.Value{{Name: args[0], Values: args[1:], Provenance: prov}}
	}
	// The store keeps times as Unix nanoseconds (until 2262).
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"--not-before", f.notBefore.t}, {"--expires", f.expires.t}} {
		if t.t.Year() >= 2262 {
			return &usageError{err: fmt.Errorf("%s %s is after 2261", t.name, t.t.Format(time.RFC3339))}
		}
	}
	for i := range vals {
		vals[i].NotBefore, vals[i].Expires = f.notBefore.t, f.expires.t
		v, err := refvalue.Normalize(vals[i])
		if err != nil {
			return &usageError{err: err}
		}
		vals[i] = v
	}
	st, err := f.db.open(cmd)
	if err != nil {
		return err
	}
	defer st.Close()
	rv := st.RefValues()
	for i := range vals {
		id, err := rv.Add(cmd.Context(), vals[i])
		if err != nil {
			if errors.Is(err, refvalue.ErrInvalid) || errors.Is(err, store.ErrInvalid) {
				return &usageError{err: err}
			}
			return fmt.Errorf("add %s: %w", vals[i].Name, err)
		}
		vals[i].ID = id
	}
	// Read back what was stored (provenance time set by the store).
	all, err := rv.List(cmd.Context())
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	byID := map[string]refvalue.Value{}
	for _, v := range all {
		byID[v.ID] = v
	}
	for i := range vals {
		if v, ok := byID[vals[i].ID]; ok {
			vals[i] = v
		}
	}
	now := time.Now()
	if outputFormat(cmd) == formatJSON {
		return writeJSON(a.stdout, newRefValuesOutput(vals, now))
	}
	p := &printer{w: a.stdout}
	for _, v := range vals {
		p.printf("added %s  %s  %s\n", v.ID, v.Name, strings.Join(v.Values, ","))
	}
	return p.err
}

type refvalueListFlags struct {
	db dbFlags
	at timeValue
}

func (a *app) refvalueListCommand() *cobra.Command {
	f := &refvalueListFlags{}
	c := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List reference values",
		Long: `List the stored reference values, all or those named NAME, with their state at --at (default
now): valid, expired (no longer matches) or not yet valid. Expired values are kept until
removed but never match.`,
		Annotations: map[string]string{"exit_codes": refvalueExitCodes},
		Args:        cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return a.runRefvalueList(cmd, f, name)
		},
	}
	fl := c.Flags()
	f.db.register(fl)
	fl.Var(&f.at, "at", "show the state at `TIME` instead of now")
	return c
}

func (a *app) runRefvalueList(cmd *cobra.Command, f *refvalueListFlags, name string) error {
	st, err := f.db.open(cmd)
	if err != nil {
		return err
	}
	defer st.Close()
	all, err := st.RefValues().List(cmd.Context())
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var vals []refvalue.Value
	for _, v := range all {
		if name == "" || v.Name == name {
			vals = append(vals, v)
		}
	}
	at := f.at.t
	if at.IsZero() {
		at = time.Now()
	}
	out := newRefValuesOutput(vals, at)
	if outputFormat(cmd) == formatJSON {
		return writeJSON(a.stdout, out)
	}
	p := &printer{w: a.stdout}
	if len(vals) == 0 {
		p.printf("no reference values\n")
		return p.err
	}
	p.printf("%-6s %-24s %-13s %-20s %-20s %-16s %s\n", "ID", "NAME", "STATE", "NOT BEFORE", "EXPIRES", "SOURCE", "VALUES")
	for _, v := range out.Values {
		p.printf("%-6s %-24s %-13s %-20s %-20s %-16s %s\n", v.ID, v.Name, v.State, ts(v.NotBefore), ts(v.Expires),
			v.Provenance.Source, strings.Join(v.Values, ","))
	}
	return p.err
}

// refValuesOutput is the JSON output of refvalue add and list.
type refValuesOutput struct {
	MediaType string          `json:"media_type"`
	At        time.Time       `json:"at"`
	Values    []refValueState `json:"values"`
}

// refValueState is a value with its state at the output's time: valid,
// expired or not_yet_valid.
type refValueState struct {
	refvalue.Value
	State string `json:"state"`
}

func newRefValuesOutput(vals []refvalue.Value, at time.Time) *refValuesOutput {
	out := &refValuesOutput{MediaType: RefValuesMediaType, At: at.UTC().Truncate(time.Second), Values: []refValueState{}}
	for _, v := range vals {
		s := "valid"
		switch {
		case !v.Expires.IsZero() && !at.Before(v.Expires):
			s = "expired"
		case !v.NotBefore.IsZero() && at.Before(v.NotBefore):
			s = "not_yet_valid"
		}
		out.Values = append(out.Values, refValueState{Value: v, State: s})
	}
	return out
}

func (a *app) refvalueRemoveCommand() *cobra.Command {
	f := &dbFlags{}
	c := &cobra.Command{
		Use:         "remove ID",
		Short:       "Remove a reference value",
		Long:        "Remove the reference value with the given ID (see tdproof refvalue list).",
		Annotations: map[string]string{"exit_codes": refvalueExitCodes},
		Args:        exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			st, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RefValues().Remove(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, refvalue.ErrNotFound) {
					return withHints(&usageError{err: fmt.Errorf("no reference value with ID %q", args[0])},
						"run \"tdproof refvalue list\" for the IDs")
				}
				return fmt.Errorf("remove %s: %w", args[0], err)
			}
			p := &printer{w: a.stdout}
			if outputFormat(cmd) == formatJSON {
				return writeJSON(a.stdout, map[string]any{"media_type": RefValuesMediaType, "removed": args[0]})
			}
			p.printf("removed %s\n", args[0])
			return p.err
		},
	}
	f.register(c.Flags())
	return c
}
