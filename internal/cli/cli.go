package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvPrefix starts the name of every flag's environment fallback.
const EnvPrefix = "TDPROOF_"

// Main runs tdproof with args (without the program name) and returns the
// process exit code. It reads flag fallbacks from the process environment.
// Main never calls os.Exit.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, os.LookupEnv, stdin, stdout, stderr)
}

// env looks up an environment variable (os.LookupEnv in production).
type env func(string) (string, bool)

// app holds one invocation's streams and state.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      env
	// ran is set when a command's RunE starts: an error before that came
	// from cobra's parsing (unknown command or flag, argument count) and
	// is a usage error.
	ran bool
}

func run(ctx context.Context, args []string, lookupEnv env, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "tdproof: error: internal error: %v\n%s", r, debug.Stack())
			code = exitInternal
		}
	}()
	if args == nil {
		args = []string{} // cobra would fall back to os.Args
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if !a.ran && !errors.As(err, new(*usageError)) {
		err = &usageError{err: err}
	}
	code, _ = classify(err)
	a.printError(err)
	if code == exitUsage && cmd != nil {
		a.hint("run %q for usage", cmd.CommandPath()+" --help")
	}
	return code
}

// printError writes the error line and any hints the error carries.
func (a *app) printError(err error) {
	fmt.Fprintf(a.stderr, "tdproof: error: %s\n", oneLine(err.Error()))
	var h *hintError
	if errors.As(err, &h) {
		for _, s := range h.hints {
			a.hint("%s", s)
		}
	}
}

func (a *app) hint(format string, args ...any) {
	fmt.Fprintf(a.stderr, "tdproof: hint: %s\n", oneLine(fmt.Sprintf(format, args...)))
}

// oneLine keeps a diagnostic on one line: joined errors and cobra's
// suggestions hold newlines.
func oneLine(s string) string {
	var parts []string
	for line := range strings.Lines(s) {
		if f := strings.Fields(line); len(f) > 0 {
			parts = append(parts, strings.Join(f, " "))
		}
	}
	return strings.Join(parts, "; ")
}

const exitCodesHelp = `  0  verified and allowed: OK (affirming) or WARNING (allowed, not affirming), as the
     service decides (quote inspect: parsed, signatures valid or not checkable)
  1  internal error
  2  usage: unknown command or flag, missing argument, bad flag value, unreadable input file
  3  malformed input: the quote, the collateral or the trusted root does not parse, or the
     quote is of an unsupported kind
  4  not authentic: signature, certificate chain, revocation, CRL, QE identity, TDX module
     identity, event log or collateral check failed (with --strict also expired
     collateral); eventlog replay --quote without collateral (SKIPPED: not appraised)
  5  rejected by policy: any failed rule (TCB status not accepted, TCB not supported,
     collateral expired or too old, debug, SEPT_VE_DISABLE, service TD, reference value,
     events after system-ready, ...)
  6  collateral unavailable: the --collateral path does not exist or lacks a required piece,
     or the PCS/PCCS or --collateral-dir could not provide verified collateral (network,
     timeout, 404, 429, 5xx, response failing verification or expired, offline miss)`

const usageTemplate = `USAGE{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} COMMAND [flags]{{end}}{{if gt (len .Aliases) 0}}

ALIASES
  {{.NameAndAliases}}{{end}}{{if .HasAvailableSubCommands}}

COMMANDS{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }}  {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

FLAGS
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

GLOBAL FLAGS
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{with index .Annotations "exit_codes"}}

EXIT CODES
{{.}}{{end}}{{if .HasExample}}

EXAMPLES
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Run "{{.CommandPath}} COMMAND --help" for more about a command.{{end}}
`

const helpTemplate = `{{with (or .Long .Short)}}{{. | trimTrailingWhitespaces}}

{{end}}{{if or .Runnable .HasSubCommands}}{{.UsageString}}{{end}}`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tdproof",
		Short: "Verify Intel TDX and SGX attestation evidence",
		Long: `tdproof verifies Intel TDX and SGX DCAP attestation evidence: quotes, their collateral
(TCB info, QE identity, CRLs) and the certificate chains up to the pinned Intel SGX Root CA.

Output is human-readable by default; --format json writes one versioned JSON object to
stdout. Diagnostics go to stderr. Every flag can also be set through an environment
variable named TDPROOF_ plus the flag name in upper case with '-' replaced by '_'
(--format: TDPROOF_FORMAT); a flag on the command line wins. --trusted-root and the
*-unsafe switches weaken verification and are read from the command line only.`,
		Example: `  # Show what a quote says (binary, hex or 0x-hex; - reads stdin)
  tdproof quote inspect quote.bin

  # Verify a quote against dcap-qvl collateral at a fixed time
  tdproof quote verify quote.bin --collateral collateral.json --at 2025-07-19T10:00:00Z

  # Verify against a directory of raw Intel PCS responses, machine-readable
  tdproof quote verify quote.bin --collateral pcs/ --format json

  # Accept a platform that needs configuration and software hardening
  tdproof quote verify quote.bin --collateral collateral.json \
      --accept-status UpToDate,ConfigurationAndSWHardeningNeeded`,
		Annotations:       map[string]string{"exit_codes": exitCodesHelp},
		Version:           versionString(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              unknownCommand,
		PersistentPreRunE: a.applyEnv,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return &usageError{err: errors.New("missing command")}
		},
	}
	root.SetVersionTemplate("tdproof {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate(helpTemplate)
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().Var(newFormatValue(), "format", "output `FORMAT`: text or json")
	root.AddCommand(a.quoteCommand(), a.collateralCommand(), a.pccsCommand(), a.versionCommand())
	root.AddCommand(a.eventlogCommand(), a.dstackCommand())
	root.AddCommand(a.measureCommand())
	root.AddCommand(a.serveCommand())
	root.AddCommand(a.refvalueCommand())
	root.AddCommand(a.demoCommand(), a.kbsCommand())
	root.AddCommand(a.agentCommand(), a.tdsimCommand())
	root.AddCommand(a.reportCommand())
	root.AddCommand(a.completionCommand())
	root.AddCommand(a.nitroCommand(), a.tpmCommand(), a.snpCommand())
	describeEnv(root)
	return root
}

// describeEnv appends each flag's environment variable to its usage.
func describeEnv(cmd *cobra.Command) {
	add := func(f *pflag.Flag) {
		switch {
		case strings.Contains(f.Usage, EnvPrefix) || strings.Contains(f.Usage, "command line only"):
		case len(f.Annotations[noEnvAnnotation]) > 0:
			f.Usage += " (command line only)"
		case !skipEnv(f):
			f.Usage += " [$" + envName(f) + "]"
		}
	}
	cmd.LocalNonPersistentFlags().VisitAll(add)
	cmd.PersistentFlags().VisitAll(add)
	for _, c := range cmd.Commands() {
		describeEnv(c)
	}
}

func envName(f *pflag.Flag) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// noEnvAnnotation marks a flag without environment fallback: the trust
// anchor and the *-unsafe switches weaken verification, so a variable left
// in the environment must not turn them on silently.
const noEnvAnnotation = "tdproof_no_env"

func skipEnv(f *pflag.Flag) bool {
	return f.Name == "help" || f.Name == "version" || len(f.Annotations[noEnvAnnotation]) > 0
}

// commandLineOnly marks flags that have no environment fallback.
func commandLineOnly(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, noEnvAnnotation, []string{"true"}); err != nil {
			panic(err) // a flag name typo in this package
		}
	}
}

// applyEnv sets every flag not given on the command line from its
// TDPROOF_* environment variable.
func (a *app) applyEnv(cmd *cobra.Command, _ []string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || skipEnv(f) {
			return
		}
		v, ok := a.lookupEnv(envName(f))
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q in %s: %w", v, envName(f), err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return &usageError{err: err}
	}
	return nil
}

func (a *app) quoteCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "quote",
		Short: "Inspect and verify DCAP quotes",
		Long:  "Inspect and verify Intel DCAP quotes (SGX v3, TDX v4 and v5).",
	}
	return a.group(c, a.inspectCommand(), a.verifyCommand())
}

// unknownCommand rejects arguments to a command that only has
// subcommands, suggesting close command names.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	err := &usageError{err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		return withHints(err, fmt.Sprintf("did you mean %q?", cmd.CommandPath()+" "+s[0]))
	}
	return err
}

// exactArgs is cobra.ExactArgs with a message naming the argument.
func exactArgs(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return &usageError{err: fmt.Errorf("missing %s argument", name)}
		case len(args) > 1:
			return &usageError{err: fmt.Errorf("expected one %s argument, got %d: %s", name, len(args), strings.Join(args, " "))}
		}
		return nil
	}
}

// group makes c a command that only holds subs: an argument is an
// unknown command, and c alone is a usage error naming its commands.
func (a *app) group(c *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = c.Name() + " " + s.Name()
	}
	msg := "missing command: " + names[0]
	if n := len(names); n > 1 {
		msg = "missing command: " + strings.Join(names[:n-1], ", ") + " or " + names[n-1]
	}
	c.Args = unknownCommand
	c.RunE = func(*cobra.Command, []string) error {
		a.ran = true
		return &usageError{err: errors.New(msg)}
	}
	c.AddCommand(subs...)
	return c
}
