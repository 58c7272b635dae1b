package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/internal/tlsconf"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// listenTLSFlags are the TLS flags of a listener (serve, pccs serve).
type listenTLSFlags struct {
	cert, key  string
	minVersion string
	// serve only:
	selfSigned        bool
	adminClientCA     string
	insecurePlaintext bool
}

func (f *listenTLSFlags) register(fl *pflag.FlagSet, serve bool) {
	fl.StringVar(&f.cert, "tls-cert", "", "serve HTTPS with the certificate chain in `FILE` (PEM; reread with the key on SIGHUP)")
	fl.StringVar(&f.key, "tls-key", "", "the private key of --tls-cert in `FILE` (PEM)")
	fl.StringVar(&f.minVersion, "tls-min-version", "1.3", "refuse TLS versions older than `VERSION` (1.2 or 1.3)")
	if !serve {
		return
	}
	fl.BoolVar(&f.selfSigned, "tls-self-signed", false, "serve HTTPS with a self-signed certificate kept in --data-dir (created on first use; clients trust it with --ca-file DIR/"+tlsconf.SelfSignedCert+"): for a first try, not for production")
	fl.StringVar(&f.adminClientCA, "admin-client-ca", "", "require admin requests (/admin/v1/…, the key broker's admin routes) to present a client certificate issued by a CA in `FILE` (PEM), in addition to the admin token; needs TLS")
	fl.BoolVar(&f.insecurePlaintext, "insecure-plaintext", false, "allow plain HTTP on an address that is not loopback (tokens, admin credentials and evidence cross the network in clear)")
}

// enabled reports whether the flags ask for TLS.
func (f *listenTLSFlags) enabled() bool { return f.cert != "" || f.key != "" || f.selfSigned }

// serveTLS is a listener's TLS set-up: nil config means plain HTTP.
type serveTLS struct {
	config   *tls.Config
	reloader *tlsconf.Reloader
}

// scheme is the URL scheme of the listener.
func (s *serveTLS) scheme() string {
	if s.config == nil {
		return "http"
	}
	return "https"
}

// listenTLS checks the flags and builds the TLS configuration of a
// listener on listen; selfSignedDir is where --tls-self-signed keeps its
// files ("" when the command has none). requirePlaintextOptIn refuses
// plain HTTP on an address that is not loopback without
// --insecure-plaintext.
func (a *app) listenTLS(f *listenTLSFlags, listen, selfSignedDir string, requirePlaintextOptIn bool, log *slog.Logger, now time.Time) (*serveTLS, error) {
	minVersion, err := tlsconf.ParseMinVersion(f.minVersion)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--tls-min-version: %w", err)}
	}
	switch {
	case (f.cert == "") != (f.key == ""):
		return nil, &usageError{err: errors.New("--tls-cert and --tls-key go together")}
	case f.selfSigned && f.cert != "":
		return nil, &usageError{err: errors.New("--tls-self-signed excludes --tls-cert and --tls-key")}
	case f.adminClientCA != "" && !f.enabled():
		return nil, &usageError{err: errors.New("--admin-client-ca needs TLS (--tls-cert and --tls-key, or --tls-self-signed)")}
	case f.insecurePlaintext && f.enabled():
		return nil, &usageError{err: errors.New("--insecure-plaintext excludes the TLS flags")}
	}
	if !f.enabled() {
		if _, _, err := net.SplitHostPort(listen); err != nil {
			return &serveTLS{}, nil // net.Listen reports the bad address
		}
		if requirePlaintextOptIn && !tlsconf.IsLoopback(listen) && !f.insecurePlaintext {
			return nil, withHints(&usageError{err: fmt.Errorf("--listen %s is not a loopback address and no TLS certificate is configured: refusing to send tokens and admin credentials in clear", listen)},
				"give --tls-cert FILE --tls-key FILE, or --tls-self-signed for a first try",
				"or --insecure-plaintext when a TLS-terminating proxy in front of tdproof is the only client")
		}
		if !tlsconf.IsLoopback(listen) {
			log.Warn("serving plain HTTP on an address that is not loopback: requests and responses cross the network in clear", "listen", listen)
		}
		return &serveTLS{}, nil
	}
	cert, key := f.cert, f.key
	if f.selfSigned {
		if selfSignedDir == "" {
			return nil, &usageError{err: errors.New("--tls-self-signed keeps its certificate in --data-dir, which is empty")}
		}
		c, k, created, err := tlsconf.SelfSigned(selfSignedDir, selfSignedHosts(listen), now)
		if err != nil {
			return nil, err
		}
		cert, key = c, k
		log.Warn("serving HTTPS with a SELF-SIGNED certificate (--tls-self-signed): for a first try only; clients must trust it with --ca-file",
			"cert", c, "created", created)
	}
	r, err := tlsconf.NewReloader(cert, key)
	if err != nil {
		return nil, &usageError{err: err}
	}
	var clientCAs *x509.CertPool
	if f.adminClientCA != "" {
		if clientCAs, err = tlsconf.CertPool(f.adminClientCA); err != nil {
			return nil, &usageError{err: fmt.Errorf("--admin-client-ca: %w", err)}
		}
	}
	return &serveTLS{config: tlsconf.ServerConfig(r, minVersion, clientCAs), reloader: r}, nil
}

// selfSignedHosts are the names a self-signed certificate for listen
// carries: the listen host when it is specific, this machine's host name,
// and the loopback names.
func selfSignedHosts(listen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

// wrap returns ln serving TLS when configured.
func (s *serveTLS) wrap(ln net.Listener) net.Listener {
	if s.config == nil {
		return ln
	}
	return tls.NewListener(ln, s.config)
}

// watchSIGHUP starts catching SIGHUP (before the listener accepts
// anything, so that a SIGHUP never kills the server) and returns the loop
// that rereads the certificate on each one until ctx is done. Without
// TLS the loop does nothing.
func (s *serveTLS) watchSIGHUP(log *slog.Logger) func(ctx context.Context) error {
	if s.reloader == nil {
		return func(context.Context) error { return nil }
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(sig)
		s.reloader.ReloadOn(ctx, sig, func(err error) {
			if err != nil {
				log.Error("SIGHUP: TLS certificate not reloaded, the previous one stays in use", "error", err)
				return
			}
			log.Info("SIGHUP: TLS certificate reloaded", "sha256", tlsconf.Fingerprint(s.reloader.Certificate()))
		})
		return nil
	}
}

// isAdminRequest reports whether r is for the admin API: /admin/v1/… or
// one of the key broker's admin routes.
func isAdminRequest(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, verifiersvc.AdminPrefix):
		return true
	case strings.HasPrefix(p, protocol.PathResource+"/"):
		return r.Method != http.MethodGet && r.Method != http.MethodHead
	case p == protocol.PathResourcePolicy, p == protocol.PathAttestationPolicy,
		p == protocol.PathReferenceValue, strings.HasPrefix(p, protocol.PathReferenceValue+"/"):
		return true
	}
	return false
}

// requireAdminClientCert refuses admin requests on connections without a
// verified client certificate (--admin-client-ca).
func requireAdminClientCert(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAdminRequest(r) && !tlsconf.HasVerifiedClient(r.TLS) {
			w.Header().Set("Content-Type", verifiersvc.ProblemMediaType)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"type":"about:blank","title":"Forbidden","status":403,"detail":%q}`+"\n",
				"the admin API needs a client certificate issued by a CA of --admin-client-ca")
			return
		}
		h.ServeHTTP(w, r)
	})
}
