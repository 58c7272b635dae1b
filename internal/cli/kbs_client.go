package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/internal/agent"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/tsm"
)

// newSimulatedTD creates the TD of kbs get-resource --simulate (tests
// replace it to share a trust root with an in-process KBS).
var newSimulatedTD = func() (*tdsim.Sim, error) { return tdsim.New(tdsim.Config{}) }

type kbsGetFlags struct {
	url      string
	simulate bool
	timeout  time.Duration
	runtime  string
	vmConfig string
	caFile   string
	sim      simStateFlags
}

func (a *app) kbsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "kbs",
		Short: "Talk to a key broker (Trustee KBS protocol 0.4.0)",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(a.kbsGetResourceCommand())
	return c
}

func (a *app) kbsGetResourceCommand() *cobra.Command {
	f := &kbsGetFlags{timeout: time.Minute}
	c := &cobra.Command{
		Use:   "get-resource REPO/TYPE/TAG",
		Short: "Attest this TD to a KBS and print a released resource",
		Long: `Run the KBS handshake (auth; attest with a TDX quote whose REPORTDATA binds the
KBS nonce and a fresh TEE key; resource, a JWE encrypted to that key) and write the
decrypted resource to stdout, unmodified.

The quote comes from configfs-tsm and the boot event log from the CCEL table: run it
inside a TDX guest. With --simulate a software TD (tdsim) quotes instead; its quotes
chain to a root CA generated in this process, which no KBS accepts unless it was
configured with that very root. With --simulator-state DIR the simulated TD is the one
kept in DIR (created on first use; see tdproof tdsim export for the KBS side), and its
RTMR3 is the replay of the --runtime-log events, so quote and log agree as on a TD whose
agent (tdproof agent --simulate --simulator-state DIR) wrote that log.`,
		Example: `  tdproof kbs get-resource default/key/1 --kbs-url https://kbs.example:8080 > key.bin
  tdproof kbs get-resource default/key/1 --kbs-url http://127.0.0.1:8080 --simulate --simulator-state sim/ --runtime-log /tmp/events.log`,
		Annotations: map[string]string{"exit_codes": `  0  the resource was released and written to stdout
  1  the KBS refused, or the handshake failed
  2  usage`},
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runKBSGetResource(cmd, f, args[0])
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.url, "kbs-url", "", "the KBS at `URL` (scheme and host, e.g. http://127.0.0.1:8080)")
	fl.BoolVar(&f.simulate, "simulate", false, "quote with a simulated TD (tdsim) instead of TDX hardware: forged evidence, for tests")
	fl.DurationVar(&f.timeout, "timeout", f.timeout, "give up after `DURATION`")
	fl.StringVar(&f.runtime, "runtime-log", agent.DefaultLogPath, "send the runtime events of RTMR3 in `FILE` (dstack's runtime event log) with the evidence, so the KBS verifies the app identity; skipped when the default file does not exist")
	fl.StringVar(&f.vmConfig, "vm-config", "", "send dstack's vm_config JSON in `FILE` with the runtime events")
	fl.StringVar(&f.caFile, "ca-file", "", "trust only the CA certificates in `FILE` (PEM) for an https --kbs-url (default: the system roots)")
	f.sim.register(fl)
	a.withConfigFile(c)
	return c
}

func (a *app) runKBSGetResource(cmd *cobra.Command, f *kbsGetFlags, resource string) error {
	if f.url == "" {
		return &usageError{err: errors.New("--kbs-url is required")}
	}
	if _, err := protocol.ParseResourceID(resource); err != nil {
		return &usageError{err: err}
	}
	if f.timeout <= 0 {
		return &usageError{err: fmt.Errorf("invalid --timeout %v", f.timeout)}
	}
	if err := f.sim.check(f.simulate); err != nil {
		return err
	}
	hc := &http.Client{Timeout: f.timeout}
	if f.caFile != "" {
		var err error
		if hc, err = httpClientWithCA(f.caFile, f.timeout); err != nil {
			return err
		}
	}
	c := &agent.Client{HTTP: hc}
	if err := f.setRuntime(c, cmd.Flags().Changed("runtime-log")); err != nil {
		return err
	}
	if f.simulate {
		sim, err := a.simulatedTD(&f.sim, false)
		if err != nil {
			return err
		}
		a.hint("--simulate: quoting with a SIMULATED TD (tdsim); its evidence is forged and only a KBS configured to trust its root accepts it")
		if c.Runtime != nil && f.sim.state != "" {
			// RTMR3 of this process's TD is the replay of the log the
			// TD's agent wrote, as on a real TD.
			evs, err := c.Runtime.Events()
			if err != nil {
				return fmt.Errorf("kbs get-resource: --runtime-log: %w", err)
			}
			if err := sim.ReplayRuntime(evs); err != nil {
				return fmt.Errorf("kbs get-resource: --runtime-log: %w", err)
			}
		}
		c.Quoter, c.CCEL = sim, sim
	} else {
		q, err := tsm.NewConfigFSQuoter()
		if err != nil {
			return err
		}
		c.Quoter, c.CCEL = q, tsm.Sysfs{}
	}
	plain, err := c.GetResource(cmd.Context(), f.url, resource)
	if err != nil {
		return fmt.Errorf("kbs get-resource: %w", err)
	}
	_, err = a.stdout.Write(plain)
	return err
}

// setRuntime gives c the runtime event log and vm_config. The default log
// path is used only when it exists; an explicit one must.
func (f *kbsGetFlags) setRuntime(c *agent.Client, explicit bool) error {
	if f.runtime != "" {
		if _, err := os.Stat(f.runtime); err == nil {
			c.Runtime = &agent.Log{Path: f.runtime}
		} else if explicit || !errors.Is(err, fs.ErrNotExist) {
			return &usageError{err: fmt.Errorf("--runtime-log: %w", err)}
		}
	}
	if f.vmConfig != "" {
		if c.Runtime == nil {
			return &usageError{err: errors.New("--vm-config needs a runtime event log (--runtime-log)")}
		}
		b, err := os.ReadFile(f.vmConfig)
		if err != nil {
			return &usageError{err: fmt.Errorf("--vm-config: %w", err)}
		}
		if !json.Valid(b) {
			return &usageError{err: fmt.Errorf("--vm-config %s: not JSON", f.vmConfig)}
		}
		c.VMConfig = string(bytes.TrimSpace(b))
	}
	return nil
}
