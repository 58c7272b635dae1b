package pcs_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

const tcbPath = "/tdx/certification/v4/tcb"

var (
	tcbKey     = func(e *fakeEnv) pcs.ItemKey { return e.key.Items()[0] }
	pckCRLKey  = func(e *fakeEnv) pcs.ItemKey { return e.key.Items()[2] }
	rootCRLKey = func(*fakeEnv) pcs.ItemKey { return pcs.ItemKey{Kind: pcs.KindRootCACRL} }
)

// answer makes path answer status with the given headers and body.
func answer(path string, status int, header map[string]string, body string) func(testing.TB, *fakeEnv) {
	return func(_ testing.TB, e *fakeEnv) {
		e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != path {
				return false
			}
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
			return true
		})
	}
}

// respec rebuilds and serves the collateral after changing its spec.
func respec(change func(e *fakeEnv)) func(testing.TB, *fakeEnv) {
	return func(tb testing.TB, e *fakeEnv) {
		change(e)
		e.serve(tb)
	}
}

// replaceTCBHeader serves the TCB info response with another header.
func replaceTCBHeader(header func(e *fakeEnv) map[string]string) func(testing.TB, *fakeEnv) {
	return func(_ testing.TB, e *fakeEnv) {
		k := e.key.Items()[0]
		r, _ := e.srv.Get(k)
		r.Header = header(e)
		e.srv.Set(k, r)
	}
}

// TestFailureModes drives every failure of a single response through the
// client (in process, inside a synctest bubble, so retries and timeouts
// take no real time) and checks the sentinel, the number of requests and
// the (fake) time spent.
func TestFailureModes(t *testing.T) {
	t.Parallel()
	otherPKI, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		item     func(*fakeEnv) pcs.ItemKey
		setup    func(testing.TB, *fakeEnv)
		opts     []pcs.Option
		clock    time.Duration // added to the fixture time
		want     []error
		requests int           // to the item's path (0: not checked)
		elapsed  time.Duration // fake time spent (-1: not checked)
	}{
		{name: "404", item: tcbKey, setup: func(_ testing.TB, e *fakeEnv) { e.srv.Delete(e.key.Items()[0]) },
			want: []error{pcs.ErrNotFound, pcs.ErrUnavailable}, requests: 1},
		{name: "429 with Retry-After until the retries run out", item: tcbKey,
			setup: answer(tcbPath, 429, map[string]string{"Retry-After": "2"}, "slow down"),
			want:  []error{pcs.ErrRateLimited, pcs.ErrUnavailable}, requests: 4, elapsed: 6 * time.Second},
		{name: "429 with a Retry-After beyond the cap", item: tcbKey,
			setup: answer(tcbPath, 429, map[string]string{"Retry-After": "3600"}, ""),
			want:  []error{pcs.ErrRateLimited}, requests: 1},
		{name: "500", item: tcbKey, setup: answer(tcbPath, 500, nil, "oops"),
			want: []error{pcs.ErrUnavailable}, requests: 4, elapsed: -1},
		{name: "503 with Retry-After", item: tcbKey, setup: answer(tcbPath, 503, map[string]string{"Retry-After": "5"}, ""),
			opts: []pcs.Option{pcs.WithRetries(1)}, want: []error{pcs.ErrUnavailable}, requests: 2, elapsed: 5 * time.Second},
		{name: "401", item: tcbKey, setup: answer(tcbPath, 401, nil, ""), want: []error{pcs.ErrUnavailable}, requests: 1},
		{name: "timeout", item: tcbKey,
			setup: func(_ testing.TB, e *fakeEnv) {
				e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
					<-r.Context().Done()
					return true
				})
			},
			opts: []pcs.Option{pcs.WithTimeout(2 * time.Second), pcs.WithRetries(1), pcs.WithBackoff(time.Second, time.Second)},
			want: []error{pcs.ErrUnavailable, context.DeadlineExceeded}, requests: 2, elapsed: -1},
		{name: "truncated body", item: tcbKey,
			setup: func(_ testing.TB, e *fakeEnv) {
				body := e.rc.TCBInfoResponse()
				answer(tcbPath, 200, map[string]string{collateral.HeaderTCBInfoIssuerChain: pcstest.EncodeChain(e.rc.TCBInfoIssuerChain)}, string(body[:len(body)/2]))(nil, e)
			},
			want: []error{pcs.ErrInvalidResponse, collateral.ErrMalformed}, requests: 1},
		{name: "missing issuer-chain header", item: tcbKey,
			setup: replaceTCBHeader(func(*fakeEnv) map[string]string { return nil }),
			want:  []error{pcs.ErrIssuerChain, pcs.ErrInvalidResponse}, requests: 1},
		{name: "issuer-chain header under a wrong name", item: tcbKey,
			setup: replaceTCBHeader(func(e *fakeEnv) map[string]string {
				return map[string]string{collateral.HeaderPCKCRLIssuerChain: pcstest.EncodeChain(e.rc.TCBInfoIssuerChain)}
			}),
			want: []error{pcs.ErrIssuerChain}},
		{name: "v3 issuer-chain header accepted", item: tcbKey,
			setup: replaceTCBHeader(func(e *fakeEnv) map[string]string {
				return map[string]string{collateral.HeaderTCBInfoIssuerChainV3: pcstest.EncodeChain(e.rc.TCBInfoIssuerChain)}
			})},
		{name: "plain PEM issuer-chain header accepted", item: tcbKey,
			setup: replaceTCBHeader(func(e *fakeEnv) map[string]string {
				return map[string]string{collateral.HeaderTCBInfoIssuerChain: strings.ReplaceAll(e.rc.TCBInfoIssuerChain, "\n", "%0A")}
			})},
		{name: "wrong issuer chain (PCK CA instead of TCB signing)", item: tcbKey,
			setup: replaceTCBHeader(func(e *fakeEnv) map[string]string {
				return map[string]string{collateral.HeaderTCBInfoIssuerChain: pcstest.EncodeChain(e.rc.PCKCRLIssuerChain)}
			}),
			want: []error{pcs.ErrIssuerChain}},
		{name: "issuer chain of another root", item: tcbKey,
			setup: replaceTCBHeader(func(e *fakeEnv) map[string]string {
				return map[string]string{collateral.HeaderTCBInfoIssuerChain: pcstest.EncodeChain(string(dcaptest.ChainPEM(otherPKI.TCBSigningChain()...)))}
			}),
			want: []error{pcs.ErrIssuerChain}},
		{name: "issuer chain that does not parse", item: tcbKey,
			setup: replaceTCBHeader(func(e *fakeEnv) map[string]string {
				return map[string]string{collateral.HeaderTCBInfoIssuerChain: "-----BEGIN%20CERTIFICATE-----%0AAAAA"}
			}),
			want: []error{pcs.ErrIssuerChain, collateral.ErrMalformed}},
		{name: "signature mismatch", item: tcbKey,
			setup: respec(func(e *fakeEnv) {
				e.f.CollateralSpec.MutateTCBInfoAfterSign = func(b []byte) []byte {
					return []byte(strings.Replace(string(b), `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`, 1))
				}
			}),
			want: []error{pcs.ErrSignature, pcs.ErrInvalidResponse}, requests: 1},
		{name: "signed by another key", item: tcbKey,
			setup: respec(func(e *fakeEnv) { e.f.CollateralSpec.TCBInfoKey = otherPKI.TCBSigning.Key }),
			want:  []error{pcs.ErrSignature}},
		{name: "expired tcb info", item: tcbKey, clock: 40 * 24 * time.Hour,
			want: []error{pcs.ErrExpired, pcs.ErrInvalidResponse}, requests: 1},
		{name: "tcb info not yet valid", item: tcbKey, clock: -2 * 24 * time.Hour, want: []error{pcs.ErrExpired}},
		{name: "tcb info for another FMSPC", item: tcbKey,
			setup: respec(func(e *fakeEnv) { e.f.CollateralSpec.TCBInfo.FMSPC = [6]byte{1, 2, 3, 4, 5, 6} }),
			want:  []error{pcs.ErrMismatch}},
		{name: "SGX tcb info on the TDX route", item: tcbKey,
			setup: func(tb testing.TB, e *fakeEnv) {
				sgx := newFakeEnv(tb, dcaptest.SGXQuoteV3, time.Time{})
				sgx.f.CollateralSpec.TCBInfo.FMSPC = e.key.FMSPC
				sgx.serve(tb)
				r, _ := sgx.srv.Get(sgx.key.Items()[0])
				e.srv.Set(e.key.Items()[0], r)
			},
			want: []error{pcs.ErrMismatch}},
		{name: "pck crl with the processor CA's chain", item: pckCRLKey,
			setup: func(_ testing.TB, e *fakeEnv) {
				k := e.key.Items()[2]
				r, _ := e.srv.Get(k)
				r.Header = map[string]string{collateral.HeaderPCKCRLIssuerChain: pcstest.EncodeChain(string(dcaptest.ChainPEM(e.f.PKI.PCKCRLIssuerChain(pckcert.CAProcessor)...)))}
				e.srv.Set(k, r)
			},
			want: []error{pcs.ErrIssuerChain}},
		{name: "pck crl signed by another key", item: pckCRLKey,
			setup: respec(func(e *fakeEnv) { e.f.CollateralSpec.PCKCRL.SignerKey = otherPKI.PlatformCA.Key }),
			want:  []error{pcs.ErrSignature}},
		{name: "root ca crl as PCCS hex text", item: rootCRLKey, requests: 1},
		{name: "root ca crl as DER from rootcacrl", item: rootCRLKey,
			setup: func(_ testing.TB, e *fakeEnv) { e.srv.SetRootCRLAsDER(true) }},
		{name: "root ca crl that is neither hex nor DER", item: rootCRLKey,
			setup: answer("/sgx/certification/v4/rootcacrl", 200, nil, "zz not a crl"),
			want:  []error{pcs.ErrInvalidResponse, collateral.ErrMalformed}},
		{name: "root ca crl 404 falls back to the distribution point", item: rootCRLKey,
			setup: answer("/sgx/certification/v4/rootcacrl", 404, nil, "")},
		{name: "root ca crl signed by another key", item: rootCRLKey,
			setup: respec(func(e *fakeEnv) { e.f.CollateralSpec.RootCRL.SignerKey = otherPKI.Root.Key }),
			want:  []error{pcs.ErrSignature}},
		{name: "expired root ca crl", item: rootCRLKey,
			setup: respec(func(e *fakeEnv) { e.f.CollateralSpec.RootCRL.NextUpdate = e.f.Now.Add(-time.Hour) }),
			want:  []error{pcs.ErrExpired}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
				if tc.setup != nil {
					tc.setup(t, e)
				}
				now := e.f.Now.Add(tc.clock)
				c := e.client(t, append([]pcs.Option{pcs.WithClock(func() time.Time { return now })}, tc.opts...)...)
				k := tc.item(e)
				start := time.Now()
				it, err := c.Fetch(t.Context(), k)
				elapsed := time.Since(start)
				for _, w := range tc.want {
					if !errors.Is(err, w) {
						t.Errorf("Fetch(%v) = %v, want errors.Is %v", k, err, w)
					}
				}
				if len(tc.want) == 0 && err != nil {
					t.Errorf("Fetch(%v) = %v, want success", k, err)
				}
				if (err == nil) != (it != nil) {
					t.Errorf("Fetch(%v) returned item %v with error %v", k, it != nil, err)
				}
				var pe *pcs.Error
				if err != nil && !errors.As(err, &pe) {
					t.Errorf("Fetch error %T is not a *pcs.Error", err)
				}
				if err != nil && !strings.Contains(err.Error(), k.String()) {
					t.Errorf("error %q does not name the item %q", err, k)
				}
				if path := itemPath(k); tc.requests > 0 && e.srv.Requests(path) != tc.requests {
					t.Errorf("%d requests to %s, want %d", e.srv.Requests(path), path, tc.requests)
				}
				if tc.elapsed > 0 && elapsed != tc.elapsed {
					t.Errorf("took %v, want %v", elapsed, tc.elapsed)
				}
			})
		})
	}
}

func itemPath(k pcs.ItemKey) string {
	switch k.Kind {
	case pcs.KindTCBInfo:
		return "/" + k.TEE.String() + "/certification/v4/tcb"
	case pcs.KindQEIdentity:
		return "/" + k.TEE.String() + "/certification/v4/qe/identity"
	case pcs.KindPCKCRL:
		return "/sgx/certification/v4/pckcrl"
	}
	return "/sgx/certification/v4/rootcacrl"
}

// flaky answers status (with Retry-After ra, if set) to the first n
// requests for path, then serves normally.
func flaky(e *fakeEnv, path string, n, status int, ra string) {
	left := n
	e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path || left == 0 {
			return false
		}
		left--
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(status)
		return true
	})
}

// TestRetryAfterHonoured: a 429 with Retry-After (seconds or HTTP date)
// delays the retry by exactly that long, and the retry succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
		flaky(e, tcbPath, 1, http.StatusTooManyRequests, "7")
		c := e.client(t)
		start := time.Now()
		if _, err := c.Fetch(t.Context(), tcbKey(e)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 7*time.Second {
			t.Errorf("retried after %v, want the 7s of Retry-After", d)
		}
		flaky(e, tcbPath, 1, http.StatusTooManyRequests, time.Now().Add(11*time.Second).UTC().Format(http.TimeFormat))
		start = time.Now()
		if _, err := c.Fetch(t.Context(), tcbKey(e)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 10*time.Second || d > 11*time.Second {
			t.Errorf("retried after %v, want the 11s of the Retry-After date", d)
		}
		if n := e.srv.Requests(tcbPath); n != 4 {
			t.Errorf("%d requests, want 4", n)
		}
	})
}

// TestServerErrorRecovers: two 503s then success, with exponential
// backoff (1s, then 2s, each jittered down by up to half).
func TestServerErrorRecovers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
		flaky(e, tcbPath, 2, http.StatusServiceUnavailable, "")
		start := time.Now()
		if _, err := e.client(t).Fetch(t.Context(), tcbKey(e)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond || d > 3*time.Second {
			t.Errorf("two backoffs took %v, want 1.5s–3s", d)
		}
	})
}

// TestCancelDuringBackoff: cancelling the context ends a retry wait at
// once.
func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
		answer(tcbPath, 500, nil, "")(t, e)
		c := e.client(t, pcs.WithBackoff(time.Minute, time.Minute))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		start := time.Now()
		go func() {
			_, err := c.Fetch(ctx, tcbKey(e))
			done <- err
		}()
		synctest.Wait()
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || !errors.Is(err, pcs.ErrUnavailable) {
			t.Errorf("Fetch = %v, want context.Canceled and ErrUnavailable", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("cancel took %v", d)
		}
	})
}

// TestIntelRootCRLFromDistributionPoint: against Intel PCS the root CA
// CRL comes from the root certificate's CRL distribution point, never
// from a rootcacrl route.
func TestIntelRootCRLFromDistributionPoint(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
	now := e.f.Now
	c, err := pcs.NewClient(pcs.DefaultURL, pcs.WithHTTPClient(e.srv.HTTPClient()), // in process: no network
		pcs.WithTrustedRoot(e.f.PKI.Root.Certificate), pcs.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(t.Context(), pcs.ItemKey{Kind: pcs.KindRootCACRL}); err != nil {
		t.Fatal(err)
	}
	if e.srv.Requests("/sgx/certification/v4/rootcacrl") != 0 || e.srv.Requests("/IntelSGXRootCA.der") != 1 {
		t.Errorf("requests: rootcacrl %d, distribution point %d; want 0, 1",
			e.srv.Requests("/sgx/certification/v4/rootcacrl"), e.srv.Requests("/IntelSGXRootCA.der"))
	}
}

// TestTruncatedConnection: the server promises a longer body than it
// sends and closes the connection; the client reports a truncated body.
func TestTruncatedConnection(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
	e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"tcbInfo\":")
		buf.Flush()
		return true
	})
	c := e.httpClient(t, pcs.WithRetries(0))
	_, err := c.Fetch(t.Context(), tcbKey(e))
	if !errors.Is(err, pcs.ErrUnavailable) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Fetch = %v, want ErrUnavailable naming a truncated body", err)
	}
}

// TestConnectionRefused: nothing listens at the base URL.
func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := pcs.NewClient("http://"+addr, pcs.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(t.Context(), pcs.ItemKey{Kind: pcs.KindRootCACRL}); !errors.Is(err, pcs.ErrUnavailable) {
		t.Errorf("Fetch = %v, want ErrUnavailable", err)
	}
}
