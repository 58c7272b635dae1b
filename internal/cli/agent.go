package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/internal/agent"
	"github.com/tdproof/tdproof/tsm"
)

// agentFlags are the flags of agent.
type agentFlags struct {
	simulate   bool
	socket     string
	log        string
	appCompose string
	sim        simStateFlags
}

func (a *app) agentCommand() *cobra.Command {
	f := &agentFlags{socket: agent.DefaultSocket}
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run the attestation agent inside a TD",
		Long: `Record the app's boot-time identity events (system-preparing, app-id, compose-hash,
instance-id, boot-mr-done, key-provider, system-ready) from --app-compose in the runtime
event log --log (RTMR3 extended first, then the line appended), then serve the guest
agent API (dstack compatible: POST /GetQuote, /Attest, /Info, /GetKey, /GetTlsKey) on
the unix socket --socket until SIGINT or SIGTERM.

Quotes come from configfs-tsm, RTMR3 is extended through sysfs and the boot event log
is read from the CCEL table: run it inside a TDX guest. With --simulate a software TD
(tdsim) stands in; its quotes chain to a root CA generated in this process, which no
verifier accepts unless configured with that very root. With --simulator-state DIR the
simulated TD (its fake Intel PKI, platform, attestation key and measurements) is kept in
DIR, created on first use: "tdproof tdsim export" then writes the root and collateral a
verifier in another process needs, and "tdproof kbs get-resource --simulate" with the same
DIR and --runtime-log quotes as this TD. RTMR3 starts at zero, as after a reboot: --log
must be a new (empty) log.`,
		Example: `  tdproof agent --app-compose /dstack/app-compose.json --log /run/tdproof/runtime_events.log
  tdproof agent --simulate --socket /tmp/agent.sock --log /tmp/events.log --app-compose app-compose.json
  tdproof agent --simulate --simulator-state sim/ --socket /tmp/agent.sock --log /tmp/events.log --app-compose app-compose.json`,
		Annotations: map[string]string{"exit_codes": `  0  stopped by a signal
  1  the agent failed (attestation interface missing, log unusable)
  2  usage`},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runAgent(cmd.Context(), f)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.simulate, "simulate", false, "use a simulated TD (tdsim) instead of TDX hardware: forged evidence, for tests")
	fl.StringVar(&f.socket, "socket", f.socket, "serve the guest API on the unix socket `PATH`")
	fl.StringVar(&f.log, "log", "", "keep the runtime event log in `FILE` (required)")
	fl.StringVar(&f.appCompose, "app-compose", "", "the app's app-compose.json `FILE` (required)")
	f.sim.register(fl)
	a.withConfigFile(c)
	return c
}

func (a *app) runAgent(ctx context.Context, f *agentFlags) error {
	if f.log == "" || f.appCompose == "" || f.socket == "" {
		return &usageError{err: errors.New("--log, --app-compose and --socket are required")}
	}
	if err := f.sim.check(f.simulate); err != nil {
		return err
	}
	compose, err := os.ReadFile(f.appCompose)
	if err != nil {
		return &usageError{err: fmt.Errorf("--app-compose: %w", err)}
	}
	srv := &agent.Server{AppCompose: compose}
	l := &agent.Log{Path: f.log}
	if f.simulate {
		sim, err := a.simulatedTD(&f.sim, false)
		if err != nil {
			return err
		}
		a.hint("--simulate: a SIMULATED TD (tdsim) quotes and holds RTMR3; its evidence is forged and only a verifier configured to trust its root accepts it")
		l.Extender, srv.Quoter, srv.CCEL = sim, sim, sim
	} else {
		q, err := tsm.NewConfigFSQuoter()
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		l.Extender, srv.Quoter, srv.CCEL = tsm.Sysfs{}, q, tsm.Sysfs{}
	}
	srv.Log = l
	id, err := agent.EmitBootEvents(l, agent.Boot{AppCompose: compose})
	if err != nil {
		return fmt.Errorf("agent: boot events: %w", err)
	}
	ln, err := agent.ListenUnix(f.socket)
	if err != nil {
		return &usageError{err: fmt.Errorf("--socket: %w", err)}
	}
	fmt.Fprintf(a.stdout, "agent: serving on %s (app id %s, compose hash %s)\n", f.socket, id.AppID, id.ComposeHash)
	return serveAgent(ctx, ln, srv.Handler())
}

// serveAgent serves h on ln until ctx is done, then shuts down gracefully.
func serveAgent(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("agent: shutdown: %w", err)
	}
	return nil
}
