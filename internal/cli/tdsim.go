package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/pcs/pcstest"
	"github.com/tdproof/tdproof/tdsim"
)

// TDSimExportMediaType is the JSON schema of tdsim export and init.
const TDSimExportMediaType = "application/vnd.tdproof.tdsim.v1+json"

// simulatorRootWarning is printed (as a hint) whenever a simulator root
// leaves the state directory.
const simulatorRootWarning = "this is a SIMULATOR root CA (tdsim): anyone holding the state can forge TDX quotes under it; NEVER give it to a production verifier"

// simStateFlags are --simulator-state and --simulator-measurement of the
// commands that can run a simulated TD.
type simStateFlags struct {
	state       string
	measurement string
}

func (f *simStateFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.state, "simulator-state", "", "with --simulate: keep the simulated TD (fake Intel PKI, platform, attestation key, measurements) in `DIR`, created on first use, so other processes (tdproof tdsim export, serve) share its identity and root")
	fl.StringVar(&f.measurement, "simulator-measurement", "", "with --simulator-state: boot the simulated TD created in the state from `FILE`, the output of tdproof measure --format json (used only when the state is created)")
}

// check rejects the flags without --simulate / --simulator-state.
func (f *simStateFlags) check(simulate bool) error {
	switch {
	case f.state != "" && !simulate:
		return &usageError{err: errors.New("--simulator-state needs --simulate")}
	case f.measurement != "" && f.state == "":
		return &usageError{err: errors.New("--simulator-measurement needs --simulator-state")}
	}
	return nil
}

// simulatedTD returns the TD of --simulate: a fresh in-memory one
// (newSimulatedTD), or the one of --simulator-state, created there on
// first use.
func (a *app) simulatedTD(f *simStateFlags, debug bool) (*tdsim.Sim, error) {
	if f.state == "" {
		return newSimulatedTD()
	}
	cfg := tdsim.Config{Debug: debug}
	if f.measurement != "" {
		var err error
		if cfg, err = a.simConfigFromMeasure(f.measurement); err != nil {
			return nil, err
		}
		cfg.Debug = debug
	}
	sim, created, err := tdsim.Open(f.state, cfg)
	switch {
	case errors.Is(err, tdsim.ErrState):
		return nil, withHints(fmt.Errorf("%w: --simulator-state: %w", errMalformedInput, err),
			"a simulator state is never overwritten: pass another --simulator-state directory, or remove this one if it is yours")
	case err != nil:
		return nil, fmt.Errorf("--simulator-state: %w", err)
	}
	if created {
		a.hint("created simulator state %s (root CA SHA-256 %s): run \"tdproof tdsim export --simulator-state %s --out DIR\" for the verifier's --trusted-root and collateral", f.state, rootFingerprint(sim), f.state)
		return sim, nil
	}
	if f.measurement != "" {
		want, err := eventlog.Replay(cfg.BootEvents)
		if err != nil {
			return nil, err
		}
		got := sim.RTMRs()
		if cfg.MRTD != sim.MRTD() || [3][48]byte(want[:3]) != [3][48]byte(got[:3]) {
			return nil, &usageError{err: fmt.Errorf("--simulator-measurement %s differs from the measurements of the existing --simulator-state %s (the measurement is used only when the state is created)", f.measurement, f.state)}
		}
	}
	return sim, nil
}

func rootFingerprint(sim *tdsim.Sim) string {
	h := sha256.Sum256(sim.TrustRoot().Raw)
	return hex.EncodeToString(h[:])
}

// simConfigFromMeasure builds the TD configuration from tdproof measure
// --format json output: its MRTD and, for RTMR0–2, its events (digest,
// and the description as payload), as tdsim.ConfigFromMeasurement does.
func (a *app) simConfigFromMeasure(path string) (tdsim.Config, error) {
	doc, err := a.readInput("--simulator-measurement", path)
	if err != nil {
		return tdsim.Config{}, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: --simulator-measurement %s: %s", errMalformedInput, path, fmt.Sprintf(format, args...))
	}
	var m measureOutput
	if err := json.Unmarshal(doc, &m); err != nil {
		return tdsim.Config{}, bad("%v", err)
	}
	if m.MediaType != MeasureMediaType {
		return tdsim.Config{}, bad("media_type %q, want %q (the output of tdproof measure --format json)", m.MediaType, MeasureMediaType)
	}
	cfg := tdsim.Config{Measurement: doc}
	b, err := hex.DecodeString(m.MRTD)
	if err != nil || len(b) != 48 {
		return tdsim.Config{}, bad("mrtd %q is not 48 bytes of hex", m.MRTD)
	}
	copy(cfg.MRTD[:], b)
	cfg.BootEvents = []eventlog.Event{}
	for _, r := range m.RTMRs {
		if r.Index < 0 || r.Index > 2 {
			return tdsim.Config{}, bad("unexpected RTMR index %d", r.Index)
		}
		if r.Incomplete != "" {
			return tdsim.Config{}, bad("RTMR%d is incomplete (%s): a simulated TD needs every boot event digest", r.Index, r.Incomplete)
		}
		for _, e := range r.Events {
			d, err := hex.DecodeString(e.Digest)
			if err != nil || len(d) != 48 {
				return tdsim.Config{}, bad("RTMR%d event %d: digest %q is not 48 bytes of hex", r.Index, e.Index, e.Digest)
			}
			cfg.BootEvents = append(cfg.BootEvents, eventlog.Event{IMR: uint32(r.Index), Type: eventlog.EventType(e.Type), Digest: d, Payload: []byte(e.Description)})
		}
	}
	replayed, err := eventlog.Replay(cfg.BootEvents)
	if err != nil {
		return tdsim.Config{}, bad("%v", err)
	}
	for _, r := range m.RTMRs {
		if got := replayed[r.Index]; hex.EncodeToString(got[:]) != r.Value {
			return tdsim.Config{}, bad("RTMR%d: the events replay to %x, the file says %s", r.Index, got, r.Value)
		}
	}
	return cfg, nil
}

func (a *app) tdsimCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "tdsim",
		Short: "Manage a simulated TD's state (fake Intel PKI) for tests across processes",
		Long: `A simulated TD (tdsim, the --simulate backend of agent and kbs get-resource) signs quotes
through a fake Intel PKI. With --simulator-state DIR its PKI, platform, attestation key and
measurements live in DIR, so separate processes are the same TD: "tdsim init" creates the state,
"tdsim export" writes what a verifier needs to accept it (the simulator root for
serve --trusted-root, offline collateral for serve --collateral-dir, reference values).

Evidence of a simulated TD is forged by construction: never configure a production verifier
with a simulator root.`,
	}
	return a.group(c, a.tdsimInitCommand(), a.tdsimExportCommand())
}

type tdsimInitFlags struct {
	sim   simStateFlags
	debug bool
}

func (a *app) tdsimInitCommand() *cobra.Command {
	f := &tdsimInitFlags{}
	c := &cobra.Command{
		Use:   "init --simulator-state DIR [--simulator-measurement FILE] [--debug]",
		Short: "Create a simulated TD's state directory",
		Long: `Create the simulator state DIR (which must not exist or be empty; an existing state is never
overwritten): a new fake Intel PKI, a TDX platform with its PCK certificate, the quoting
attestation key and the TD's measurements, either synthetic or, with --simulator-measurement,
those tdproof measure computed. The files hold private keys (0600, directory 0700).`,
		Example: `  tdproof measure --image dstack-0.6.0/ --memory 2G --cpus 2 --format json > m.json
  tdproof tdsim init --simulator-state sim/ --simulator-measurement m.json`,
		Annotations: map[string]string{"exit_codes": `  0  created
  1  internal error
  2  usage (the state already exists, unreadable file)
  3  malformed --simulator-measurement, or DIR holds something else`},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runTDSimInit(cmd, f)
		},
	}
	fl := c.Flags()
	f.sim.register(fl)
	fl.BoolVar(&f.debug, "debug", false, "simulate a debug TD (TDATTRIBUTES.DEBUG)")
	return c
}

// tdsimOutput is the JSON output of tdsim init and export.
type tdsimOutput struct {
	MediaType     string `json:"media_type"`
	Warning       string `json:"warning"`
	State         string `json:"state"`
	RootSHA256    string `json:"root_sha256"`
	Debug         bool   `json:"debug"`
	FromMeasure   bool   `json:"from_measurement"`
	Root          string `json:"root,omitempty"`
	CollateralDir string `json:"collateral_dir,omitempty"`
	// CollateralNextUpdate is when the exported collateral expires.
	CollateralNextUpdate *time.Time `json:"collateral_next_update,omitempty"`
	MeasureFile          string     `json:"measure_file,omitempty"`
	// ReferenceValues are the values tdproof refvalue add takes
	// (tdx.mr_td, tdx.rtmr_0…2).
	ReferenceValues map[string]string `json:"reference_values"`
}

func newTDSimOutput(dir string, sim *tdsim.Sim) *tdsimOutput {
	mrtd, r := sim.MRTD(), sim.RTMRs()
	return &tdsimOutput{
		MediaType: TDSimExportMediaType, Warning: simulatorRootWarning, State: dir, RootSHA256: rootFingerprint(sim),
		Debug: sim.Debug(), FromMeasure: sim.Measurement() != nil,
		ReferenceValues: map[string]string{
			"tdx.mr_td":  hex.EncodeToString(mrtd[:]),
			"tdx.rtmr_0": hex.EncodeToString(r[0][:]),
			"tdx.rtmr_1": hex.EncodeToString(r[1][:]),
			"tdx.rtmr_2": hex.EncodeToString(r[2][:]),
		},
	}
}

func (a *app) runTDSimInit(cmd *cobra.Command, f *tdsimInitFlags) error {
	if f.sim.state == "" {
		return &usageError{err: errors.New("--simulator-state DIR is required")}
	}
	cfg := tdsim.Config{}
	if f.sim.measurement != "" {
		var err error
		if cfg, err = a.simConfigFromMeasure(f.sim.measurement); err != nil {
			return err
		}
	}
	cfg.Debug = f.debug
	sim, err := tdsim.New(cfg)
	if err != nil {
		return err
	}
	switch err := sim.Save(f.sim.state); {
	case errors.Is(err, tdsim.ErrStateExists):
		return withHints(&usageError{err: err}, "use it as is, or pass another --simulator-state directory")
	case errors.Is(err, tdsim.ErrState):
		return fmt.Errorf("%w: --simulator-state: %w", errMalformedInput, err)
	case err != nil:
		return err
	}
	out := newTDSimOutput(f.sim.state, sim)
	if outputFormat(cmd) == formatJSON {
		return writeJSON(a.stdout, out)
	}
	p := &printer{w: a.stdout}
	p.printf("created simulator state %s\n", f.sim.state)
	p.kv(1, "root CA SHA-256", out.RootSHA256)
	p.kv(1, "debug TD", yesNo(out.Debug))
	p.kv(1, "from measurement", yesNo(out.FromMeasure))
	for _, n := range []string{"tdx.mr_td", "tdx.rtmr_0", "tdx.rtmr_1", "tdx.rtmr_2"} {
		p.kv(1, n, out.ReferenceValues[n])
	}
	p.printf("next: tdproof tdsim export --simulator-state %s --out DIR\n", f.sim.state)
	return p.err
}

type tdsimExportFlags struct {
	state    string
	out      string
	at       timeValue
	validFor time.Duration
}

func (a *app) tdsimExportCommand() *cobra.Command {
	f := &tdsimExportFlags{validFor: 30 * 24 * time.Hour}
	c := &cobra.Command{
		Use:   "export --simulator-state DIR --out OUT",
		Short: "Write the root, collateral and reference values a verifier needs to accept a simulated TD",
		Long: `Write, for the simulated TD of --simulator-state:

  OUT/root.pem       the simulator's fake "Intel SGX Root CA": serve --trusted-root OUT/root.pem
  OUT/collateral/    a collateral bundle (as tdproof collateral fetch writes it) for the simulated
                     platform, issued at --at and valid for --valid-for:
                     serve --collateral-dir OUT/collateral --offline
  OUT/measure.json   when the state was created from --simulator-measurement: that tdproof measure
                     output, for tdproof refvalue add --from-measure OUT/measure.json

and print the reference values (tdx.mr_td, tdx.rtmr_0…2) as tdproof refvalue add commands.

The root is a SIMULATOR root: quotes chaining to it are forged evidence. Configure it only on a
verifier dedicated to tests.`,
		Example: `  tdproof tdsim export --simulator-state sim/ --out sim-export/
  tdproof serve --role all --trusted-root sim-export/root.pem --collateral-dir sim-export/collateral --offline ...`,
		Annotations: map[string]string{"exit_codes": `  0  exported
  1  internal error
  2  usage (no state in DIR, OUT/root.pem holds another root)
  3  DIR is not a valid simulator state`},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runTDSimExport(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.state, "simulator-state", "", "the simulator state `DIR` (tdproof tdsim init, or agent/kbs get-resource --simulate --simulator-state)")
	fl.StringVarP(&f.out, "out", "o", "", "write into `DIR` (created if missing; required)")
	fl.Var(&f.at, "at", "issue the collateral at `TIME`: RFC 3339 or unix seconds (default now)")
	fl.DurationVar(&f.validFor, "valid-for", f.validFor, "the collateral's next update is --at plus `DURATION`")
	return c
}

func (a *app) runTDSimExport(cmd *cobra.Command, f *tdsimExportFlags) error {
	if f.state == "" || f.out == "" {
		return &usageError{err: errors.New("--simulator-state and --out are required")}
	}
	if f.validFor <= 0 {
		return &usageError{err: fmt.Errorf("invalid --valid-for %v", f.validFor)}
	}
	sim, err := tdsim.Load(f.state)
	switch {
	case errors.Is(err, tdsim.ErrNoState):
		return withHints(&usageError{err: err}, "create it with \"tdproof tdsim init --simulator-state "+f.state+"\"")
	case errors.Is(err, tdsim.ErrState):
		return fmt.Errorf("%w: --simulator-state: %w", errMalformedInput, err)
	case err != nil:
		return err
	}
	a.hint("%s", simulatorRootWarning)
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return &usageError{err: fmt.Errorf("--out: %w", err)}
	}
	out := newTDSimOutput(f.state, sim)

	out.Root = filepath.Join(f.out, "root.pem")
	root := sim.TrustRootPEM()
	switch old, err := os.ReadFile(out.Root); {
	case err == nil && !bytes.Equal(old, root):
		return withHints(&usageError{err: fmt.Errorf("%s holds another root than the simulator state %s", out.Root, f.state)},
			"export each simulator state into its own --out directory")
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if err := os.WriteFile(out.Root, root, 0o644); err != nil {
			return err
		}
	default:
		return err
	}

	at := f.at.t
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Second)
	next := at.Add(f.validFor)
	out.CollateralDir = filepath.Join(f.out, "collateral")
	if err := exportSimCollateral(cmd.Context(), sim, out.CollateralDir, at, next); err != nil {
		return fmt.Errorf("tdsim export: collateral: %w", err)
	}
	out.CollateralNextUpdate = &next

	if m := sim.Measurement(); m != nil {
		out.MeasureFile = filepath.Join(f.out, "measure.json")
		if err := os.WriteFile(out.MeasureFile, m, 0o644); err != nil {
			return err
		}
	}
	if outputFormat(cmd) == formatJSON {
		return writeJSON(a.stdout, out)
	}
	p := &printer{w: a.stdout}
	p.printf("exported simulator state %s (SIMULATOR root, tests only)\n", f.state)
	p.kv(1, "root CA", out.Root)
	p.kv(1, "root CA SHA-256", out.RootSHA256)
	p.kv(1, "collateral", out.CollateralDir)
	p.kv(1, "valid until", next.Format(time.RFC3339))
	p.kv(1, "debug TD", yesNo(out.Debug))
	p.printf("\nserve it (a verifier dedicated to tests):\n  tdproof serve --trusted-root %s --collateral-dir %s --offline ...\n", out.Root, out.CollateralDir)
	p.printf("\nreference values:\n")
	if out.MeasureFile != "" {
		p.printf("  tdproof refvalue add --from-measure %s\n", out.MeasureFile)
	} else {
		for _, n := range []string{"tdx.mr_td", "tdx.rtmr_0", "tdx.rtmr_1", "tdx.rtmr_2"} {
			p.printf("  tdproof refvalue add %s %s --source tdsim\n", n, out.ReferenceValues[n])
		}
	}
	return p.err
}

// exportSimCollateral writes the simulated platform's collateral into dir
// in the layout of tdproof collateral fetch: the Sim's signed responses
// are served by an in-process fake PCS (no sockets) and stored through
// the same cache, verified against the simulator root, that fetch uses.
func exportSimCollateral(ctx context.Context, sim *tdsim.Sim, dir string, at, next time.Time) error {
	spec := sim.CollateralSpec(at)
	spec.TCBInfo.NextUpdate = next
	spec.QEIdentity.NextUpdate = next
	spec.RootCRL.NextUpdate = next
	spec.PCKCRL.NextUpdate = next
	rc, err := sim.PKI().RawCollateral(spec)
	if err != nil {
		return err
	}
	ps := sim.Platform().Spec
	key := pcs.Key{TEE: pcs.TEETDX, FMSPC: ps.FMSPC, CA: ps.CA}
	srv := pcstest.New()
	srv.AddCollateral(key, rc)
	now := func() time.Time { return at }
	client, err := pcs.NewClient("https://tdsim.invalid", pcs.WithHTTPClient(srv.HTTPClient()), pcs.WithTrustedRoot(sim.TrustRoot()),
		pcs.WithClock(now), pcs.WithRetries(0))
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cache, err := pcscache.New(client, dir, pcscache.WithClock(now), pcscache.WithTrustedRoot(sim.TrustRoot()))
	if err != nil {
		return err
	}
	for _, k := range key.Items() {
		if _, err := cache.Fetch(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
