package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/internal/tlsconf"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/quote"
)

// sourceFlags choose where collateral comes from: a PCS or PCCS, a
// bundle or cache directory, or both.
type sourceFlags struct {
	pccsURL         string
	dir             string
	offline         bool
	update          updateValue
	evalNumber      int
	subscriptionKey string
	timeout         time.Duration
	retries         int
	caFile          string
	// amdKDSURL is --amd-kds-url (registerAMDKDS).
	amdKDSURL string
}

// updateValue is --update: standard or early.
type updateValue struct{ u pcs.Update }

func (u *updateValue) String() string { return u.u.String() }
func (u *updateValue) Type() string   { return "channel" }
func (u *updateValue) Set(s string) error {
	v, err := pcs.ParseUpdate(s)
	if err != nil {
		return fmt.Errorf("unknown update channel %q (want standard or early)", s)
	}
	u.u = v
	return nil
}

// register adds the network flags (all commands that fetch) and, with
// dir, --collateral-dir and --offline.
func (s *sourceFlags) register(fl *pflag.FlagSet, dirUsage string, offline bool) {
	fl.StringVar(&s.pccsURL, "pccs-url", pcs.DefaultURL, "base `URL` of Intel PCS or a PCCS (v4 routes; a trailing /sgx/certification/v4 is fine)")
	if dirUsage != "" {
		fl.StringVar(&s.dir, "collateral-dir", "", dirUsage)
	}
	if offline {
		fl.BoolVar(&s.offline, "offline", false, "never touch the network: use only --collateral-dir")
	}
	fl.Var(&s.update, "update", "TCB update `CHANNEL`: standard or early (early shows TCB recoveries before they become standard)")
	fl.IntVar(&s.evalNumber, "tcb-eval-num", 0, "pin the TCB evaluation data `NUMBER` of TCB info and QE identity (0: latest; excludes --update early)")
	fl.StringVar(&s.subscriptionKey, "subscription-key", "", "Intel PCS API `KEY`, needed only to fetch PCK certificates for quotes carrying an encrypted PPID")
	fl.DurationVar(&s.timeout, "pcs-timeout", pcs.DefaultTimeout, "bound each request to the PCS or PCCS by `DURATION`")
	fl.IntVar(&s.retries, "pcs-retries", pcs.DefaultRetries, "retry failed requests (network, timeout, 5xx, 429) `N` times")
	fl.StringVar(&s.caFile, "ca-file", "", "trust only the CA certificates in `FILE` (PEM) for an https --pccs-url (default: the system roots); collateral is verified up to the Intel root either way")
}

// channel returns the update channel and evaluation data number.
func (s *sourceFlags) channel() (pcs.Channel, error) {
	ch := pcs.Channel{Update: s.update.u, EvalNumber: s.evalNumber}
	if s.evalNumber < 0 {
		return ch, &usageError{err: fmt.Errorf("invalid --tcb-eval-num %d", s.evalNumber)}
	}
	if s.evalNumber > 0 && s.update.u == pcs.UpdateEarly {
		return ch, &usageError{err: errors.New("--update early and --tcb-eval-num exclude each other")}
	}
	return ch, nil
}

// online reports whether the source may use the network: not --offline,
// and, when --collateral-dir is given, only if --pccs-url was set too
// (a bundle directory alone means offline).
func (s *sourceFlags) online(fl *pflag.FlagSet) bool {
	if s.offline {
		return false
	}
	return s.dir == "" || fl.Changed("pccs-url")
}

// client returns the PCS/PCCS client the flags describe.
func (s *sourceFlags) client(root *x509.Certificate, now func() time.Time) (*pcs.Client, error) {
	if s.retries < 0 {
		return nil, &usageError{err: fmt.Errorf("invalid --pcs-retries %d", s.retries)}
	}
	if s.timeout <= 0 {
		return nil, &usageError{err: fmt.Errorf("invalid --pcs-timeout %v", s.timeout)}
	}
	opts := []pcs.Option{pcs.WithTimeout(s.timeout), pcs.WithRetries(s.retries), pcs.WithClock(now)}
	if root != nil {
		opts = append(opts, pcs.WithTrustedRoot(root))
	}
	if s.subscriptionKey != "" {
		opts = append(opts, pcs.WithSubscriptionKey(s.subscriptionKey))
	}
	if s.caFile != "" {
		hc, err := httpClientWithCA(s.caFile, 0)
		if err != nil {
			return nil, err
		}
		opts = append(opts, pcs.WithHTTPClient(hc))
	}
	c, err := pcs.NewClient(s.pccsURL, opts...)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--pccs-url: %w", err)}
	}
	return c, nil
}

// httpClientWithCA returns an HTTP client (timeout 0: none) that trusts
// only the CA certificates in caFile (--ca-file).
func httpClientWithCA(caFile string, timeout time.Duration) (*http.Client, error) {
	cfg, err := tlsconf.ClientConfig(caFile)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--ca-file: %w", err)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// clockAt returns a clock fixed at t, or time.Now when t is zero.
func clockAt(t time.Time) func() time.Time {
	if t.IsZero() {
		return time.Now
	}
	return func() time.Time { return t }
}

// openSource builds the cache (with the client as upstream when online)
// and describes it. done releases the client's connections.
func (s *sourceFlags) openSource(fl *pflag.FlagSet, root *x509.Certificate, now func() time.Time, opts ...pcscache.Option) (cache *pcscache.Cache, src collateralSource, done func(), err error) {
	var up pcs.Fetcher
	done = func() {}
	if s.online(fl) {
		c, err := s.client(root, now)
		if err != nil {
			return nil, src, done, err
		}
		up, done = c, c.CloseIdleConnections
		src = collateralSource{Path: c.BaseURL(), Kind: "pccs", Cache: s.dir}
	} else {
		if s.dir == "" {
			return nil, src, done, withHints(&usageError{err: errors.New("--offline needs --collateral-dir")},
				"fetch a bundle with \"tdproof collateral fetch\" and pass it with --collateral-dir")
		}
		src = collateralSource{Path: s.dir, Kind: "collateral-dir"}
	}
	anchor := root
	if anchor == nil {
		anchor = dcap.IntelRoot()
	}
	opts = append([]pcscache.Option{pcscache.WithClock(now), pcscache.WithTrustedRoot(anchor)}, opts...)
	cache, err = pcscache.New(up, s.dir, opts...)
	return cache, src, done, err
}

// collateralFromSource gets the collateral of q from the configured
// source (quote verify without --collateral).
func (a *app) collateralFromSource(ctx context.Context, fl *pflag.FlagSet, s *sourceFlags, q *quote.Quote, root *x509.Certificate, now time.Time) (*collateral.Collateral, collateralSource, error) {
	ch, err := s.channel()
	if err != nil {
		return nil, collateralSource{}, err
	}
	cache, src, done, err := s.openSource(fl, root, clockAt(now))
	defer done()
	if err != nil {
		return nil, src, err
	}
	if q.Signature.Certification.Type == quote.CertPCKChain {
		if _, err := pcs.KeyForQuote(q, nil); err != nil {
			// The chain that names the collateral does not parse: the
			// evidence is not authentic.
			return nil, src, fmt.Errorf("%w: PCK certificate chain: %w", dcap.ErrChain, err)
		}
	}
	c, k, err := pcs.CollateralForQuote(ctx, cache, q, ch)
	if err != nil {
		return nil, src, withHints(err, sourceHints(s, fl, k, err)...)
	}
	return c, src, nil
}

// sourceHints suggests what to do when collateral cannot be obtained.
func sourceHints(s *sourceFlags, fl *pflag.FlagSet, k pcs.Key, err error) []string {
	switch {
	case errors.Is(err, pcscache.ErrOffline):
		fmspc := ""
		if k.TEE != 0 {
			fmspc = " (or --fmspc " + strings.ToUpper(fmt.Sprintf("%x", k.FMSPC[:])) + ")"
		}
		return []string{"add it to the bundle with \"tdproof collateral fetch QUOTE" + fmspc + " -o " + s.dir + "\" on a machine with network access"}
	case errors.Is(err, pcs.ErrNotFound):
		return []string{"the service does not know this platform: check --pccs-url, and for a TDX quote that the FMSPC is a TDX platform"}
	case errors.Is(err, pcs.ErrExpired):
		return []string{"the service serves expired collateral: check that it refreshes, or verify --at a time inside the collateral's validity"}
	case errors.Is(err, pcs.ErrInvalidResponse):
		return []string{"the response failed verification: check --pccs-url points at a genuine Intel PCS or PCCS (and --trusted-root, if set)"}
	case errors.Is(err, pcs.ErrUnavailable) && s.online(fl):
		return []string{"check the network and " + s.pccsURL + "; --pcs-timeout and --pcs-retries tune the client, --collateral-dir with a bundle works offline"}
	}
	return nil
}
