package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/internal/webui"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/verifier"
	"github.com/tdproof/tdproof/verifier/pcsource"
)

// serveFlags are the flags of serve.
type serveFlags struct {
	source      sourceFlags
	listen      string
	dataDir     string
	db          string
	trustedRoot string
	at          timeValue
	maxBody     int64
	logFormat   string
	logLevel    string
	adminToken  string
	compatPol   bool
	earKeyFile  string
	keyReload   time.Duration
	kbs         serveKBSFlags
	tls         listenTLSFlags
	noUI        bool
	crl         crlFlags
}

func (a *app) serveCommand() *cobra.Command {
	f := &serveFlags{listen: "127.0.0.1:8080", dataDir: "./tdproof-data", logFormat: "text", logLevel: "info",
		maxBody: verifiersvc.DefaultMaxBodyBytes, keyReload: defaultKeyReload}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the verification service",
		Long: `Serve attestation verification over HTTP: POST /v1/verify (native: a DCAP quote or dstack
evidence, optional nonce and policy id → the appraisal result and a signed EAR token),
POST /verify (dstack-verifier compatible), GET /.well-known/jwks.json (the EAR keys),
/healthz, /readyz and /metrics (Prometheus text format), and GET / (the evidence page:
drop evidence, read the report; --no-ui turns it off; not with --role kbs).

State lives in a SQLite database under --data-dir (created on first run) or, with
--db postgres://…, in PostgreSQL shared by any number of replicas. The EAR signing key
is created on first run and kept in the database; the admin API rotates it and removes
retired keys, and every replica reloads the keys every --key-reload-interval. With
--ear-key-file that key alone signs and the database keys are not used. Evidence is appraised with the
active version of the policy named in the request ("default" when none is named); when
the database holds no active "default" policy, the built-in default policy applies.
Reference values come from the database.

Collateral is fetched from --pccs-url (default Intel PCS), verified and cached in
--collateral-dir (default: memory only); --offline serves only that directory. SEV-SNP
evidence without a cert_chain gets its VCEK and ASK the same way: from that directory (the
layout of "tdproof collateral fetch --platform snp") when offline, else from AMD KDS.
HTTPS with --tls-cert and --tls-key (reread on SIGHUP; TLS 1.3 minimum), or with
--tls-self-signed for a first try; plain HTTP is refused on an address that is not
loopback unless --insecure-plaintext. --admin-client-ca requires a client certificate on
the admin routes (docs/service.md, TLS).

Logs go to stderr. The server stops gracefully on SIGINT or SIGTERM.`,
		Example: `  tdproof serve
  tdproof serve --listen 127.0.0.1:9000 --pccs-url http://127.0.0.1:8081
  tdproof serve --db postgres://tdproof@db/tdproof --collateral-dir /var/cache/tdproof
  tdproof serve --ear-key-file /run/secrets/ear-key.pem
  tdproof serve --listen 0.0.0.0:8443 --tls-cert /etc/tdproof/tls.crt --tls-key /etc/tdproof/tls.key
  tdproof serve --listen 0.0.0.0:8443 --tls-self-signed`,
		Annotations: map[string]string{"exit_codes": `  0  stopped by a signal after a graceful shutdown
  1  the server failed
  2  usage, or the listen address cannot be used`},
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runServe(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.listen, "listen", f.listen, "listen on `ADDR` (host:port; port 0 picks one)")
	fl.StringVar(&f.dataDir, "data-dir", f.dataDir, "keep the SQLite database in `DIR` (created on first run)")
	fl.StringVar(&f.db, "db", "", "use the database at `DSN` (postgres://… or a SQLite path) instead of --data-dir")
	f.source.register(fl, "cache `DIR`: collateral is kept here across restarts (default: memory only)", true)
	f.source.registerAMDKDS(fl)
	f.crl.register(fl)
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "verify quotes and collateral up to the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA")
	fl.Var(&f.at, "at", "verify at `TIME` instead of now (for archived evidence)")
	fl.Int64Var(&f.maxBody, "max-body", f.maxBody, "reject request bodies larger than `BYTES`")
	fl.StringVar(&f.logFormat, "log-format", f.logFormat, "log `FORMAT` on stderr: text or json")
	fl.StringVar(&f.logLevel, "log-level", f.logLevel, "log `LEVEL`: debug, info, warn or error")
	fl.BoolVar(&f.compatPol, "dstack-compat-policy", false, "make is_valid of POST /verify dstack-verifier's own rule (quote, event log and OS image verified; TCB status not judged) instead of tdproof's policy; /v1/verify and its tokens are unaffected")
	fl.StringVar(&f.adminToken, "admin-token", "", "enable the admin API (/admin/v1/…, and the key broker's admin routes under /kbs/v0) for bearer `TOKEN` (prefer TDPROOF_ADMIN_TOKEN; empty: disabled)")
	fl.StringVar(&f.earKeyFile, "ear-key-file", "", "sign EAR tokens with the P-256 key in `FILE` (PKCS #8 PEM) instead of the database keys; no rotation through the admin API")
	fl.DurationVar(&f.keyReload, "key-reload-interval", f.keyReload, "reload the EAR keys from the database every `DURATION` (another replica's rotation shows up within it)")
	f.kbs.register(fl)
	f.tls.register(fl, true)
	fl.BoolVar(&f.noUI, "no-ui", false, "do not serve the evidence page (GET /, /ui/…)")
	commandLineOnly(fl, "trusted-root")
	a.withConfigFile(c)
	return c
}

func (a *app) runServe(cmd *cobra.Command, f *serveFlags) error {
	log, err := a.newLogger(f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err != nil {
		return err
	}
	if f.maxBody <= 0 {
		return &usageError{err: fmt.Errorf("invalid --max-body %d", f.maxBody)}
	}
	ch, err := f.source.channel()
	if err != nil {
		return err
	}
	a.resolveRole(&f.kbs)
	if err := f.kbs.check(); err != nil {
		return err
	}
	tc, err := a.listenTLS(&f.tls, f.listen, f.dataDir, true, log, time.Now())
	if err != nil {
		return err
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(verifiersvc.GCPercent)
	}
	var kek, appKeyRoot []byte
	if f.kbs.withKBS() {
		if kek, err = a.kbsKEK(&f.kbs); err != nil {
			return err
		}
		if appKeyRoot, err = a.kbsAppKeyRoot(&f.kbs); err != nil {
			return err
		}
	} else if kek, err = a.readSecret("--kek-file", f.kbs.kekFile, envKBSKEK, parseKEK); err != nil {
		// --role verifier: the KEK, when given, still seals the EAR keys.
		return err
	}
	ctx := cmd.Context()
	dsn := f.db
	if dsn == "" {
		if f.dataDir == "" {
			return &usageError{err: errors.New("--data-dir is empty (give a directory or --db)")}
		}
		dsn = filepath.Join(f.dataDir, "tdproof.db")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("serve: open the database: %w", err)
	}
	defer st.Close()
	if f.keyReload <= 0 {
		return &usageError{err: fmt.Errorf("invalid --key-reload-interval %v", f.keyReload)}
	}
	warnPlainKeys, err := sealEARKeys(ctx, st, kek, f.earKeyFile != "", log)
	if err != nil {
		return fmt.Errorf("serve: EAR keys: %w", err)
	}
	keys, err := openEARKeys(ctx, st, f.earKeyFile, log)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return err
		}
		return fmt.Errorf("serve: EAR keys: %w", err)
	}
	now := clockAt(f.at.t)
	signer, err := ear.NewSigner(keys.ks, ear.WithClock(now))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cache, src, done, err := f.source.openSource(cmd.Flags(), root, now, pcscache.WithLogger(log))
	if err != nil {
		return err
	}
	defer done()
	// Verifications read reference values and active policies from
	// memory; writes of other processes sharing the database are seen
	// within store.DefaultCachePoll plus one reload.
	snap, err := st.NewCache(ctx, store.CacheOptions{})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer snap.Close()
	opts := []verifier.Option{verifier.WithClock(now), verifier.WithPolicyResolver(verifiersvc.DryRunResolver(verifiersvc.StorePolicyResolver(snap)))}
	if root != nil {
		opts = append(opts, verifier.WithTrustedRoot(root))
		if sum := sha256.Sum256(root.Raw); hex.EncodeToString(sum[:]) != dcap.IntelRootSHA256 {
			// A test PKI or a simulator (tdsim): say so at start, and
			// every result says so (claim <tee>.collateral.intel_root
			// false, with the root's SHA-256).
			log.Warn("serve: trusting a root CA that is NOT Intel's SGX Root CA: quotes it signs are accepted (test PKI or simulator only)",
				"subject", root.Subject.String(), "sha256", hex.EncodeToString(sum[:]))
		}
	}
	opts = append(opts, f.source.snpOptions(cmd.Flags(), now)...)
	f.source.warnSNPCRLs(cmd.Flags(), log, now)
	opts = append(opts, f.crl.verifierOptions(f.at.t)...)
	v, err := verifier.New(pcsource.Source{Src: cache, Channel: ch}, snap.RefValues(), signer, opts...)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	svc, err := verifiersvc.New(v, keys.jwks, verifiersvc.Options{
		MaxBodyBytes: f.maxBody,
		Logger:       log,
		AdminToken:   f.adminToken,
		Policies:     st,
		RefValues:    st.RefValues(),
		Collateral:   cache,
		Keys:         keys,
		Ready: func() error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return st.Ping(pctx)
		},
		DstackCompatPolicy: f.compatPol,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	broker, err := newServeBroker(&f.kbs, kek, appKeyRoot, f.adminToken, st, snap, v, keys.ks, now, f.maxBody)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if broker != nil {
		warnUnpinned(ctx, log, st, broker, verifiersvc.StorePolicyResolver(st), now())
	}
	h := serveHandler(f.kbs.role, svc, broker)
	if !f.noUI && f.kbs.role != roleKBS {
		// The evidence page (GET /, /ui/…) for roles that verify.
		h = webui.Handler(h)
	}
	if tc.config != nil && f.tls.adminClientCA != "" {
		h = requireAdminClientCert(h)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return &usageError{err: fmt.Errorf("--listen: %w", err)}
	}
	ln = tc.wrap(ln)
	reload := tc.watchSIGHUP(log)
	if warnPlainKeys != nil {
		warnPlainKeys()
	}
	fmt.Fprintf(a.stdout, "serve: listening on %s://%s (database %s, collateral %s %s)\n", tc.scheme(), ln.Addr(), st.Dialect(), src.Kind, src.Path)
	log.Info("serve: serving", "addr", ln.Addr().String(), "tls", tc.config != nil, "role", f.kbs.role, "database", string(st.Dialect()), "collateral", src.Path)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cache.Run(gctx) })
	g.Go(func() error { return keys.runEvery(gctx, f.keyReload) })
	g.Go(func() error { return reload(gctx) })
	if broker != nil {
		g.Go(func() error {
			return broker.Run(gctx, 0, func(err error) { log.Warn("serve: delete expired KBS sessions", "error", err) })
		})
	}
	g.Go(func() error { return serveRole(gctx, ln, h, svc) })
	if err := g.Wait(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("serve: stopped")
	return nil
}
