package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pccs"
	"github.com/tdproof/tdproof/pcs/pcscache"
)

// pccsFlags are the flags of pccs serve.
type pccsFlags struct {
	source          sourceFlags
	listen          string
	trustedRoot     string
	at              timeValue
	maxAge, grace   ageValue
	ahead, interval ageValue
	logFormat       string
	logLevel        string
	tls             listenTLSFlags
	adminToken      string
	userToken       string
}

func (a *app) pccsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "pccs",
		Short: "Run a caching PCCS-compatible collateral proxy",
	}
	return a.group(c, a.pccsServeCommand())
}

func (a *app) pccsServeCommand() *cobra.Command {
	f := &pccsFlags{
		listen: "127.0.0.1:8081", logFormat: "text", logLevel: "info",
		ahead: ageValue{d: pcscache.DefaultRefreshAhead}, interval: ageValue{d: pcscache.DefaultRefreshInterval},
	}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve verified, cached collateral over the PCCS API",
		Long: `Serve the Intel PCS / PCCS v4 collateral routes for SGX and TDX (tcb, qe/identity,
qve/identity, qae/identity, pckcrl, rootcacrl, crl, pckcert, pckcerts, fmspcs, platforms) with
the same status codes, headers and encodings as Intel's PCCS,
answering from a verified cache and fetching from --pccs-url (default Intel PCS) on a miss,
so that one process is the only egress to Intel for a whole fleet. Every response is
verified before it is cached. Items are refreshed ahead of expiry and daily, kept in
--collateral-dir across restarts, and served for --stale-grace after expiry while the
upstream fails; --offline serves a bundle directory without any network access.

Also served: /healthz, and /metrics in the Prometheus text format (requests, cache hits,
misses, upstream errors, item ages and time to expiry). Logs go to stderr. The server
stops gracefully on SIGINT or SIGTERM. Point clients at it with --pccs-url. HTTPS with
--tls-cert and --tls-key (reread on SIGHUP; TLS 1.3 minimum); clients trust a private CA
with --ca-file.`,
		Example: `  tdproof pccs serve --collateral-dir /var/cache/tdproof --listen 0.0.0.0:8081
  tdproof pccs serve --offline --collateral-dir bundle/
  tdproof quote verify quote.bin --pccs-url http://127.0.0.1:8081`,
		Annotations: map[string]string{"exit_codes": `  0  stopped by a signal after a graceful shutdown
  1  the server failed
  2  usage, or the listen address cannot be used`},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runPCCS(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.listen, "listen", f.listen, "listen on `ADDR` (host:port; port 0 picks one)")
	f.source.register(fl, "cache `DIR`: responses are kept here across restarts (default: memory only)", true)
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "verify responses up to the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA")
	fl.Var(&f.at, "at", "judge validity at `TIME` instead of now (for serving archived collateral)")
	fl.Var(&f.maxAge, "max-age", "refuse collateral issued longer than `DURATION` ago (e.g. 7d; default: Intel's validity only)")
	fl.Var(&f.grace, "stale-grace", "serve expired collateral for up to `DURATION` while the upstream fails (default 0)")
	fl.Var(&f.ahead, "refresh-ahead", "refresh an item when less than `DURATION` remains before it expires")
	fl.Var(&f.interval, "refresh-interval", "also refresh every item fetched longer than `DURATION` ago (0: never)")
	fl.StringVar(&f.adminToken, "admin-token", "", "allow GET /sgx/certification/v4/platforms with this `TOKEN` in the admin-token header, as Intel's PCCS (empty: that route answers 401)")
	fl.StringVar(&f.userToken, "user-token", "", "require this `TOKEN` in the user-token header of POST /sgx/certification/v4/platforms, as Intel's PCCS (empty: registration is open)")
	fl.StringVar(&f.logFormat, "log-format", f.logFormat, "log `FORMAT` on stderr: text or json")
	fl.StringVar(&f.logLevel, "log-level", f.logLevel, "log `LEVEL`: debug, info, warn or error")
	f.tls.register(fl, false)
	commandLineOnly(fl, "trusted-root")
	return c
}

func (a *app) newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{err: fmt.Errorf("--log-level: unknown level %q (want debug, info, warn or error)", level)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, &usageError{err: fmt.Errorf("--log-format: unknown format %q (want text or json)", format)}
}

func (a *app) runPCCS(cmd *cobra.Command, f *pccsFlags) error {
	log, err := a.newLogger(f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err != nil {
		return err
	}
	if f.source.offline && f.source.dir == "" {
		return &usageError{err: errors.New("--offline needs --collateral-dir")}
	}
	tc, err := a.listenTLS(&f.tls, f.listen, "", false, log, time.Now())
	if err != nil {
		return err
	}
	// The proxy is online unless --offline, whatever --collateral-dir.
	now := clockAt(f.at.t)
	var up pcs.Fetcher // nil interface when offline
	upstream := "none (offline)"
	if !f.source.offline {
		c, err := f.source.client(root, now)
		if err != nil {
			return err
		}
		up, upstream = c, c.BaseURL()
	}
	opts := []pcscache.Option{
		pcscache.WithClock(now), pcscache.WithMaxAge(f.maxAge.d), pcscache.WithStaleGrace(f.grace.d),
		pcscache.WithRefreshAhead(f.ahead.d), pcscache.WithRefreshInterval(f.interval.d), pcscache.WithLogger(log),
	}
	if root != nil {
		opts = append(opts, pcscache.WithTrustedRoot(root))
	}
	cache, err := pcscache.New(up, f.source.dir, opts...)
	if err != nil {
		return err
	}
	srv, err := pccs.New(cache, pccs.WithLogger(log), pccs.WithAdminToken(f.adminToken), pccs.WithUserToken(f.userToken))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return &usageError{err: fmt.Errorf("--listen: %w", err)}
	}
	ln = tc.wrap(ln)
	reload := tc.watchSIGHUP(log)
	fmt.Fprintf(a.stdout, "pccs: listening on %s://%s (upstream %s)\n", tc.scheme(), ln.Addr(), upstream)
	log.Info("pccs: serving", "addr", ln.Addr().String(), "tls", tc.config != nil, "upstream", upstream, "dir", f.source.dir)
	ctx := cmd.Context()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cache.Run(gctx) })
	g.Go(func() error { return reload(gctx) })
	g.Go(func() error { return srv.Serve(gctx, ln) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("pccs: %w", err)
	}
	log.Info("pccs: stopped")
	return nil
}
