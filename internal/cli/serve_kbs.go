package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// Roles of serve.
const (
	roleAll      = "all"
	roleVerifier = "verifier"
	roleKBS      = "kbs"
)

// envKBSKEK is the environment variable holding the KBS key-encryption key.
const envKBSKEK = EnvPrefix + "KBS_KEK"

// envKBSAppKeyRoot is the environment variable holding the KBS app key
// root secret.
const envKBSAppKeyRoot = EnvPrefix + "KBS_APP_KEY_ROOT"

// serveKBSFlags are serve's key broker flags.
type serveKBSFlags struct {
	role           string
	kekFile        string
	appKeyRootFile string
	limits         kbs.Limits
}

func (f *serveKBSFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.role, "role", "", "serve `ROLE`: verifier (verification API only), kbs (key broker under /kbs/v0 only) or all (default: all when a KBS key-encryption key is configured, else verifier)")
	fl.StringVar(&f.kekFile, "kek-file", "", "seal KBS resources at rest with the 32-byte key in `FILE` (hex or base64; or "+envKBSKEK+"); required with --role kbs or all")
	fl.StringVar(&f.appKeyRootFile, "app-key-root-file", "", "derive KBS app keys (resource types app-key and instance-key) from the secret of at least 32 bytes in `FILE` (hex or base64; or "+envKBSAppKeyRoot+"); default: app keys disabled")
	f.limits = kbs.Limits{RatePerSecond: defaultKBSRate, RateBurst: defaultKBSBurst, MaxSessions: kbs.DefaultMaxSessions, MaxInFlight: kbs.DefaultMaxInFlight}
	fl.Float64Var(&f.limits.RatePerSecond, "kbs-rate-limit", f.limits.RatePerSecond, "allow each client IP address `N` requests per second on average to /kbs/v0/auth and /kbs/v0/attest (429 beyond; 0: no limit)")
	fl.IntVar(&f.limits.RateBurst, "kbs-rate-burst", f.limits.RateBurst, "and bursts of `N` requests")
	fl.IntVar(&f.limits.MaxSessions, "kbs-max-sessions", f.limits.MaxSessions, "refuse new KBS sessions (503) while `N` sessions created by this process have not expired")
	fl.IntVar(&f.limits.MaxInFlight, "kbs-max-in-flight", f.limits.MaxInFlight, "refuse attestations (503) while `N` are being verified")
}

// Defaults of serve's KBS rate limit: a handshake is two rate-limited
// requests (auth, attest), so 10/s with bursts of 20 lets one address
// complete 5 handshakes a second.
const (
	defaultKBSRate  = 10
	defaultKBSBurst = 20
)

// checkLimits validates the limit flags.
func (f *serveKBSFlags) checkLimits() error {
	l := f.limits
	switch {
	case l.RatePerSecond < 0:
		return &usageError{err: fmt.Errorf("invalid --kbs-rate-limit %v", l.RatePerSecond)}
	case l.RatePerSecond > 0 && l.RateBurst < 1:
		return &usageError{err: fmt.Errorf("invalid --kbs-rate-burst %d (at least 1)", l.RateBurst)}
	case l.MaxSessions < 1:
		return &usageError{err: fmt.Errorf("invalid --kbs-max-sessions %d (at least 1)", l.MaxSessions)}
	case l.MaxInFlight < 1:
		return &usageError{err: fmt.Errorf("invalid --kbs-max-in-flight %d (at least 1)", l.MaxInFlight)}
	}
	return nil
}

// resolveRole picks the default role: all when a key-encryption key is
// configured (--kek-file or TDPROOF_KBS_KEK), verifier otherwise, so that
// serve with no configuration at all starts the verification service.
func (a *app) resolveRole(f *serveKBSFlags) {
	if f.role != "" {
		return
	}
	f.role = roleVerifier
	if v, ok := a.lookupEnv(envKBSKEK); f.kekFile != "" || (ok && v != "") {
		f.role = roleAll
	}
}

// withKBS reports whether the role serves the key broker.
func (f *serveKBSFlags) withKBS() bool { return f.role == roleAll || f.role == roleKBS }

// check validates the role and the limits.
func (f *serveKBSFlags) check() error {
	switch f.role {
	case roleAll, roleVerifier, roleKBS:
		return f.checkLimits()
	}
	return &usageError{err: fmt.Errorf("invalid --role %q (want verifier, kbs or all)", f.role)}
}

// kbsKEK returns the key-encryption key from --kek-file or
// TDPROOF_KBS_KEK. Without either it refuses: resources in a persistent
// store must stay readable after a restart, so no key is ever generated.
func (a *app) kbsKEK(f *serveKBSFlags) ([]byte, error) {
	k, err := a.readSecret("--kek-file", f.kekFile, envKBSKEK, parseKEK)
	if err == nil && k == nil {
		err = &usageError{err: fmt.Errorf("--role %s serves the key broker and needs its key-encryption key: give --kek-file FILE or %s (32 bytes, hex or base64); use --role verifier to serve without it", f.role, envKBSKEK)}
	}
	return k, err
}

// kbsAppKeyRoot returns the app key root from --app-key-root-file or
// TDPROOF_KBS_APP_KEY_ROOT, or nil (app keys disabled) without either.
func (a *app) kbsAppKeyRoot(f *serveKBSFlags) ([]byte, error) {
	return a.readSecret("--app-key-root-file", f.appKeyRootFile, envKBSAppKeyRoot, func(b []byte) ([]byte, error) {
		return parseSecret(b, kbs.MinAppKeyRoot, 0)
	})
}

// readSecret reads the secret in file (given with flag) or, without a
// file, in the environment variable env, and decodes it with parse; it
// returns nil, nil when neither is set. Errors are usage errors naming
// where the secret came from.
func (a *app) readSecret(flag, file, env string, parse func([]byte) ([]byte, error)) ([]byte, error) {
	var raw []byte
	from := env
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, &usageError{err: fmt.Errorf("%s: %w", flag, err)}
		}
		raw, from = b, flag+" "+file
	} else if v, ok := a.lookupEnv(env); ok && v != "" {
		raw = []byte(v)
	} else {
		return nil, nil
	}
	k, err := parse(raw)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("%s: %w", from, err)}
	}
	return k, nil
}

// parseKEK decodes a 32-byte key written as hex or base64.
func parseKEK(b []byte) ([]byte, error) { return parseSecret(b, 32, 32) }

// parseSecret decodes a secret of minLen to maxLen bytes (maxLen 0: no
// limit) written as hex or base64 (standard or URL alphabet, padded or
// not), surrounding white space ignored. A text of an even number of hex
// digits is read as hex.
func parseSecret(b []byte, minLen, maxLen int) ([]byte, error) {
	want := fmt.Sprintf("at least %d bytes", minLen)
	if maxLen == minLen {
		want = fmt.Sprintf("%d bytes", minLen)
	}
	fits := func(k []byte) bool { return len(k) >= minLen && (maxLen == 0 || len(k) <= maxLen) }
	s := string(bytes.TrimSpace(b))
	if k, err := hex.DecodeString(s); err == nil && s != "" {
		if !fits(k) {
			return nil, fmt.Errorf("%d bytes of hex, want %s", len(k), want)
		}
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && fits(k) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("not a secret of %s in hex or base64", want)
}

// newServeBroker returns the key broker sharing serve's store, verifier
// and EAR keys, or nil when the role does not include it.
// adminToken (serve's --admin-token) enables the broker's admin routes;
// appKeyRoot (nil: none) its app keys.
// maxBody (--max-body) bounds attestation bodies. The resource policy and
// the sealed resources are read from snap (memory), like the verifier's
// reference values.
func newServeBroker(f *serveKBSFlags, kek, appKeyRoot []byte, adminToken string, st *store.Store, snap *store.Cache, v *verifier.Verifier, keys *ear.KeySet, now func() time.Time, maxBody int64) (*kbs.Broker, error) {
	if !f.withKBS() {
		return nil, nil
	}
	lim := f.limits
	lim.AttestBodyBytes = maxBody
	return kbs.New(kbs.Config{Store: st, Policies: snap, Resources: snap, Verifier: v, TokenKeys: keys, KEK: kek, AppKeyRoot: appKeyRoot, AdminToken: adminToken, Now: now, Limits: lim})
}

// serveHandler routes the role's requests: /kbs/… to the broker (nil:
// none), the rest to the verification service; with --role kbs only
// /kbs/… and /healthz.
func serveHandler(role string, svc *verifiersvc.Service, b *kbs.Broker) http.Handler {
	if b == nil {
		return svc
	}
	mux := http.NewServeMux()
	mux.Handle(protocol.APIPrefix+"/", svc.AccessLog(protocol.APIPrefix+"/", b))
	if role == roleKBS {
		mux.Handle("GET /healthz", svc)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", verifiersvc.ProblemMediaType)
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"type":"about:blank","title":"Not Found","status":404,"detail":%q}`+"\n", "no such route: "+r.URL.Path)
		})
	} else {
		mux.Handle("/", svc)
	}
	return mux
}

// serveRole serves h on ln with the service's server settings until ctx
// is done, then shuts down gracefully.
func serveRole(ctx context.Context, ln net.Listener, h http.Handler, svc *verifiersvc.Service) error {
	srv := svc.Server()
	srv.Handler = h
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), verifiersvc.DefaultShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// pinnedNames are the reference values that pin a TD's code under the
// default policy (policy rule "unpinned").
var pinnedNames = []string{"tdx.mr_td", "tdx.rtmr_0", "tdx.rtmr_1", "tdx.rtmr_2"}

// warnUnpinned logs, at start, how the broker could treat TDs whose code
// no reference value pins: with the default attestation and resource
// policies such TDs get at most a "warning" token and no secret, which an
// operator who forgot to add reference values needs to hear; with a
// policy that allows unpinned TDs, or a resource policy of their own, the
// broker could release secrets to any TD on any image, which they need to
// hear louder. It returns the messages it logged (for tests).
func warnUnpinned(ctx context.Context, log *slog.Logger, st *store.Store, b *kbs.Broker, resolve verifier.PolicyResolver, at time.Time) []string {
	var missing []string
	for _, n := range pinnedNames {
		vals, err := st.RefValues().Lookup(ctx, n, at)
		if err != nil {
			log.Warn("serve: cannot read the reference values", "error", err)
			return nil
		}
		if len(refvalue.ValidAt(vals, at)) == 0 {
			missing = append(missing, n)
		}
	}
	var out []string
	warn := func(msg string, args ...any) {
		out = append(out, msg)
		log.Warn(msg, args...)
	}
	var unsafe, rego bool
	if p, err := resolve(ctx, ""); err == nil {
		r := p.Rules()
		rego = r == nil
		unsafe = r != nil && (r.AllowUnpinnedUnsafe || r.IgnoreKnownReferenceValuesUnsafe)
	}
	rp, err := b.ResourcePolicy(ctx)
	custom := err != nil || rp.Body != kbs.DefaultResourcePolicy
	switch {
	case unsafe:
		warn("serve: the attestation policy accepts TDs whose MRTD and RTMR0-2 no reference value pins (allow_unpinned_unsafe or ignore_known_reference_values_unsafe): the key broker can release secrets to a TD on any image")
	case len(missing) > 0 && (custom || rego):
		warn("serve: no reference value pins "+strings.Join(missing, ", ")+", and the attestation or resource policy is not the default: check that it refuses unpinned TDs, or the key broker could release secrets to a TD on any image",
			"custom_resource_policy", custom, "rego_attestation_policy", rego)
	case len(missing) > 0:
		warn("serve: no reference value pins " + strings.Join(missing, ", ") + ": every TD is at most 'warning' and the key broker releases no secret until they are added (tdproof refvalue add --from-measure)")
	}
	return out
}
