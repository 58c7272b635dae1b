package pcs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
)

// DefaultURL is the base URL of Intel's Provisioning Certification
// Service.
const DefaultURL = "https://api.trustedservices.intel.com"

// Defaults of a Client.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultRetries       = 3
	DefaultBackoff       = time.Second
	DefaultMaxBackoff    = 30 * time.Second
	DefaultMaxRetryAfter = 2 * time.Minute
	// MaxBodySize bounds every response body (real ones are a few KiB;
	// the Processor CA CRL and the fmspcs list a few hundred KiB).
	MaxBodySize = 8 << 20
)

// Header names used by the client beyond the issuer chains.
const (
	// HeaderSubscriptionKey carries the Intel PCS API key (pckcert only).
	HeaderSubscriptionKey = "Ocp-Apim-Subscription-Key"
	headerRetryAfter      = "Retry-After"
)

const intelPCSHost = "api.trustedservices.intel.com"

// Client fetches and verifies collateral from Intel PCS or a PCCS. It
// implements [Source], [Fetcher], [PCKCertSource] and [FMSPCLister]. A
// Client is safe for concurrent use and caches nothing; see package
// pcscache.
type Client struct {
	base  string
	intel bool
	cfg   clientConfig
}

type clientConfig struct {
	hc              *http.Client
	timeout         time.Duration
	retries         int
	backoff, maxBO  time.Duration
	maxRetryAfter   time.Duration
	subscriptionKey string
	root            *x509.Certificate
	rootCRLURL      string
	now             func() time.Time
	log             *slog.Logger
}

// Option configures a Client.
type Option func(*clientConfig) error

// WithHTTPClient sends requests through hc instead of a client with a
// clone of http.DefaultTransport. hc's own Timeout, if any, applies in
// addition to WithTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *clientConfig) error {
		if hc == nil {
			return errors.New("pcs: nil http client")
		}
		c.hc = hc
		return nil
	}
}

// WithTimeout bounds each attempt (connect, headers and body). If not
// set, DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *clientConfig) error {
		if d <= 0 {
			return fmt.Errorf("pcs: timeout %v must be positive", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRetries sets how many times a failed request (network error,
// timeout, truncated body, 5xx, 429) is retried; 0 disables retries. If
// not set, DefaultRetries.
func WithRetries(n int) Option {
	return func(c *clientConfig) error {
		if n < 0 {
			return fmt.Errorf("pcs: negative retries %d", n)
		}
		c.retries = n
		return nil
	}
}

// WithBackoff sets the wait before the first retry and its cap; the wait
// doubles per retry and is jittered down by up to half. A Retry-After
// header replaces it. If not set, DefaultBackoff and DefaultMaxBackoff.
func WithBackoff(first, maxWait time.Duration) Option {
	return func(c *clientConfig) error {
		if first <= 0 || maxWait < first {
			return fmt.Errorf("pcs: invalid backoff %v, %v", first, maxWait)
		}
		c.backoff, c.maxBO = first, maxWait
		return nil
	}
}

// WithMaxRetryAfter caps the Retry-After the client honours: a 429 or
// 503 asking for a longer wait fails at once with ErrRateLimited (or
// ErrUnavailable). If not set, DefaultMaxRetryAfter.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(c *clientConfig) error {
		if d < 0 {
			return fmt.Errorf("pcs: negative max Retry-After %v", d)
		}
		c.maxRetryAfter = d
		return nil
	}
}

// WithSubscriptionKey sets the Intel PCS API key sent (as
// Ocp-Apim-Subscription-Key) with pckcert requests. PCCS and the other
// routes need none.
func WithSubscriptionKey(key string) Option {
	return func(c *clientConfig) error { c.subscriptionKey = key; return nil }
}

// WithTrustedRoot replaces the pinned Intel SGX Root CA as the trust
// anchor responses must chain to (for test or private PKIs).
func WithTrustedRoot(root *x509.Certificate) Option {
	return func(c *clientConfig) error {
		if root == nil {
			return errors.New("pcs: nil trusted root")
		}
		c.root = root
		return nil
	}
}

// WithRootCRLURL fetches the root CA CRL (DER) from u instead of the
// PCCS rootcacrl route or the CRL distribution point of the trust anchor.
func WithRootCRLURL(u string) Option {
	return func(c *clientConfig) error {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("pcs: invalid root CA CRL URL %q", u)
		}
		c.rootCRLURL = u
		return nil
	}
}

// WithClock sets the clock that validity windows are checked against.
// If not set, time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *clientConfig) error {
		if now == nil {
			return errors.New("pcs: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithLogger logs requests (Debug), retries (Warn) and failures. If not
// set, nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *clientConfig) error {
		if l == nil {
			return errors.New("pcs: nil logger")
		}
		c.log = l
		return nil
	}
}

// NormalizeURL checks a PCS or PCCS base URL and normalises it: a
// trailing "/" and a trailing "/sgx/certification/v4" or
// "/tdx/certification/v4" (or v3) are removed. An empty string gives
// DefaultURL.
func NormalizeURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultURL, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("pcs: invalid base URL %q (want http(s)://host[/path] without query)", s)
	}
	p := strings.TrimRight(u.Path, "/")
	for _, suffix := range []string{"/sgx/certification/v4", "/tdx/certification/v4", "/sgx/certification/v3", "/tdx/certification/v3"} {
		p = strings.TrimSuffix(p, suffix)
	}
	u.Path, u.RawPath = strings.TrimRight(p, "/"), ""
	return u.String(), nil
}

// NewClient returns a client for the PCS or PCCS at baseURL (see
// [NormalizeURL]). The root CA CRL comes from the PCCS rootcacrl route
// (falling back to the trust anchor's CRL distribution point on 404),
// or, for Intel PCS, from the distribution point directly.
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	base, err := NormalizeURL(baseURL)
	if err != nil {
		return nil, err
	}
	cfg := clientConfig{
		timeout: DefaultTimeout, retries: DefaultRetries,
		backoff: DefaultBackoff, maxBO: DefaultMaxBackoff, maxRetryAfter: DefaultMaxRetryAfter,
		root: dcap.IntelRoot(), now: time.Now, log: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.hc == nil {
		cfg.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	u, _ := url.Parse(base)
	return &Client{base: base, intel: strings.EqualFold(u.Hostname(), intelPCSHost), cfg: cfg}, nil
}

// CloseIdleConnections closes the idle connections of the client's HTTP
// transport (call it when done with a short-lived client).
func (c *Client) CloseIdleConnections() { c.cfg.hc.CloseIdleConnections() }

// BaseURL returns the normalised base URL.
func (c *Client) BaseURL() string { return c.base }

// TrustedRoot returns the trust anchor responses are verified against.
func (c *Client) TrustedRoot() *x509.Certificate { return c.cfg.root }

// Fetch fetches, verifies and returns the response for k; it must be
// inside its validity window at the client's clock.
func (c *Client) Fetch(ctx context.Context, k ItemKey) (*Item, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	k = k.Normalize()
	if k.Kind == KindRootCACRL {
		return c.fetchRootCRL(ctx, k)
	}
	u := c.itemURL(k)
	resp, err := c.get(ctx, k.String(), u, nil)
	if err != nil {
		return nil, err
	}
	return c.decode(k, u, resp)
}

func (c *Client) decode(k ItemKey, u string, resp *response) (*Item, error) {
	it, err := DecodeItem(k, resp.body, resp.header, c.cfg.root)
	if err == nil {
		err = it.CheckValidity(c.cfg.now())
	}
	if err != nil {
		c.cfg.log.Warn("pcs: rejected response", "item", k.String(), "url", u, "err", err)
		return nil, &Error{Item: k.String(), URL: u, StatusCode: resp.status, Attempts: resp.attempts, Err: err}
	}
	return it, nil
}

func (c *Client) itemURL(k ItemKey) string {
	q := url.Values{}
	var path string
	switch k.Kind {
	case KindTCBInfo:
		path = "/" + k.TEE.String() + "/certification/v4/tcb"
		q.Set("fmspc", strings.ToUpper(fmt.Sprintf("%x", k.FMSPC[:])))
	case KindQEIdentity:
		path = "/" + k.TEE.String() + "/certification/v4/qe/identity"
	case KindQvEIdentity:
		path = "/sgx/certification/v4/qve/identity"
	case KindQAEIdentity:
		path = "/sgx/certification/v4/qae/identity"
	case KindPCKCRL:
		path = "/sgx/certification/v4/pckcrl"
		q.Set("ca", k.CA.String())
		q.Set("encoding", "der")
	}
	if k.Kind != KindPCKCRL {
		switch {
		case k.EvalNumber > 0:
			q.Set("tcbEvaluationDataNumber", strconv.Itoa(k.EvalNumber))
		case k.Update == UpdateEarly:
			q.Set("update", "early")
		}
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// fetchRootCRL gets the root CA CRL from the configured URL, the PCCS
// rootcacrl route (hex text; DER also accepted) or the trust anchor's CRL
// distribution point.
func (c *Client) fetchRootCRL(ctx context.Context, k ItemKey) (*Item, error) {
	dp := c.cfg.rootCRLURL
	if dp == "" && !c.intel {
		u := c.base + "/sgx/certification/v4/rootcacrl"
		resp, err := c.get(ctx, k.String(), u, nil)
		if err == nil {
			return c.decode(k, u, resp)
		}
		if !errors.Is(err, ErrNotFound) || len(c.cfg.root.CRLDistributionPoints) == 0 {
			return nil, err
		}
		c.cfg.log.Debug("pcs: no rootcacrl route, using the CRL distribution point", "url", u)
	}
	if dp == "" {
		if len(c.cfg.root.CRLDistributionPoints) == 0 {
			return nil, &Error{Item: k.String(), Err: fmt.Errorf("%w: the trust anchor names no CRL distribution point", ErrUnavailable)}
		}
		dp = c.cfg.root.CRLDistributionPoints[0]
	}
	resp, err := c.get(ctx, k.String(), dp, nil)
	if err != nil {
		return nil, err
	}
	return c.decode(k, dp, resp)
}

// Collateral fetches and verifies the four responses of k concurrently.
// Each call returns a new Collateral.
func (c *Client) Collateral(ctx context.Context, k Key) (*collateral.Collateral, error) {
	return FetchCollateral(ctx, c, k)
}

// response is a received HTTP response with its body read.
type response struct {
	status   int
	header   http.Header
	body     []byte
	attempts int
}

// get requests u until it gets a 200, a non-retryable status, or the
// retries run out.
func (c *Client) get(ctx context.Context, what, u string, hdr http.Header) (*response, error) {
	e := &Error{Item: what, URL: u}
	for attempt := 0; ; attempt++ {
		e.Attempts = attempt + 1
		start := time.Now()
		resp, err := c.attempt(ctx, u, hdr)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			e.Err = fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
			return nil, e
		case err != nil:
			e.StatusCode, e.Err = 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
		case resp.status == http.StatusOK:
			c.cfg.log.Debug("pcs: fetched", "url", u, "bytes", len(resp.body), "duration", time.Since(start))
			resp.attempts = e.Attempts
			if len(resp.body) > MaxBodySize {
				e.StatusCode, e.Err = resp.status, invalid(ErrInvalidResponse, "body larger than %d bytes", MaxBodySize)
				return nil, e
			}
			return resp, nil
		case resp.status == http.StatusNotFound:
			e.StatusCode, e.Err = resp.status, ErrNotFound
			return nil, e
		case resp.status == http.StatusTooManyRequests || resp.status >= 500:
			e.StatusCode, e.RetryAfter = resp.status, 0
			e.Err = ErrRateLimited
			if resp.status != http.StatusTooManyRequests {
				e.Err = fmt.Errorf("%w: server error", ErrUnavailable)
			}
			if ra, ok := parseRetryAfter(resp.header.Get(headerRetryAfter), time.Now()); ok {
				e.RetryAfter, wait = ra, ra
				if ra > c.cfg.maxRetryAfter {
					return nil, e
				}
			}
		default:
			e.StatusCode, e.Err = resp.status, fmt.Errorf("%w: unexpected status", ErrUnavailable)
			return nil, e
		}
		if attempt >= c.cfg.retries {
			return nil, e
		}
		if wait == 0 {
			wait = c.backoffFor(attempt)
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return nil, e
		}
		c.cfg.log.Warn("pcs: retrying", "url", u, "attempt", e.Attempts, "wait", wait, "err", e.Err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			e.Err = fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
			return nil, e
		case <-t.C:
		}
	}
}

// attempt makes one request bounded by the client timeout and reads the
// whole body (up to MaxBodySize+1 bytes).
func (c *Client) attempt(ctx context.Context, u string, hdr http.Header) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "tdproof")
	resp, err := c.cfg.hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("no response within %v: %w", c.cfg.timeout, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("body not received within %v: %w", c.cfg.timeout, err)
		}
		return nil, fmt.Errorf("reading body (truncated after %d bytes): %w", len(body), err)
	}
	if actx.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("no response within %v: %w", c.cfg.timeout, actx.Err())
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// backoffFor returns the jittered wait before retry number attempt+1.
func (c *Client) backoffFor(attempt int) time.Duration {
	d := c.cfg.backoff
	for range attempt {
		d *= 2
		if d >= c.cfg.maxBO {
			d = c.cfg.maxBO
			break
		}
	}
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter decodes a Retry-After value: delay seconds or an
// HTTP date (relative to now). ok is false when absent or invalid.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
