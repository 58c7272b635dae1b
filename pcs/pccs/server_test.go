package pccs_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pccs"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/pcs/pcstest"
	"github.com/tdproof/tdproof/quote"
)

// proxy is a PCCS proxy whose upstream is a fake PCS on loopback.
type proxy struct {
	upstream *pcstest.Server
	cache    *pcscache.Cache
	url      string
}

func newProxy(t *testing.T, up *pcstest.Server, now time.Time, opts ...pcs.Option) *proxy {
	t.Helper()
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	clock := func() time.Time { return now }
	client, err := pcs.NewClient(ts.URL, append([]pcs.Option{pcs.WithClock(clock), pcs.WithRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pcscache.New(client, t.TempDir(), pcscache.WithClock(clock), pcscache.WithTrustedRoot(client.TrustedRoot()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := pccs.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(s)
	t.Cleanup(ps.Close)
	return &proxy{upstream: up, cache: c, url: ps.URL}
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestProxyServesRealResponses: a client pointed at the proxy, whose
// upstream serves the real Intel responses, gets them byte for byte and
// verifies the real quote to TCB not supported; a second client causes no
// upstream request.
func TestProxyServesRealResponses(t *testing.T) {
	t.Parallel()
	dir := testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs", "pcs")
	q, err := quote.Parse(testvectors.ReadFile(t, "dcap", "tdx-v4-50806f-pcs", "quote.bin"))
	if err != nil {
		t.Fatal(err)
	}
	up := pcstest.New()
	if err := up.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1688173200, 0)
	p := newProxy(t, up, at)
	for range 2 {
		c, err := pcs.NewClient(p.url, pcs.WithClock(func() time.Time { return at }))
		if err != nil {
			t.Fatal(err)
		}
		col, _, err := pcs.CollateralForQuote(t.Context(), c, q, pcs.Channel{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dcap.Verify(q, col, dcap.Options{Now: at}); !errors.Is(err, dcap.ErrTCBNotSupported) {
			t.Fatalf("dcap.Verify = %v, want ErrTCBNotSupported", err)
		}
	}
	if n := up.Requests(""); n != 4 {
		t.Errorf("%d upstream requests for two clients, want 4", n)
	}
	// Bodies and headers as served upstream.
	want, _ := up.Get(pcs.ItemKey{Kind: pcs.KindTCBInfo, TEE: pcs.TEETDX, FMSPC: [6]byte{0x50, 0x80, 0x6F}})
	resp, body := get(t, p.url+"/tdx/certification/v4/tcb?fmspc=50806f000000")
	if !bytes.Equal(body, want.Body) || resp.Header.Get("TCB-Info-Issuer-Chain") != want.Header["TCB-Info-Issuer-Chain"] {
		t.Error("tcb response differs from upstream")
	}
	crl, _ := up.Get(pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: 1})
	_, der := get(t, p.url+"/sgx/certification/v4/pckcrl?ca=platform&encoding=der")
	_, pemCRL := get(t, p.url+"/sgx/certification/v4/pckcrl?ca=platform")
	if !bytes.Equal(der, crl.Body) || !bytes.HasPrefix(pemCRL, []byte("-----BEGIN X509 CRL-----")) {
		t.Errorf("pckcrl: DER equal %v, PEM starts %q", bytes.Equal(der, crl.Body), pemCRL[:min(30, len(pemCRL))])
	}
	root, _ := up.Get(pcs.ItemKey{Kind: pcs.KindRootCACRL})
	_, hexCRL := get(t, p.url+"/sgx/certification/v4/rootcacrl")
	if string(hexCRL) != hex.EncodeToString(root.Body) {
		t.Error("rootcacrl is not the hex text of the DER")
	}
}

// TestProxyErrors: 404 passes through, bad parameters are 400, upstream
// failures 503; /healthz and /metrics answer.
func TestProxyErrors(t *testing.T) {
	t.Parallel()
	f, err := dcaptest.NewFixture(dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.BuildRawCollateral()
	if err != nil {
		t.Fatal(err)
	}
	up := pcstest.New()
	key := pcs.Key{TEE: pcs.TEESGX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA}
	up.AddCollateral(key, rc)
	p := newProxy(t, up, f.Now, pcs.WithTrustedRoot(f.PKI.Root.Certificate))
	c, err := pcs.NewClient(p.url, pcs.WithTrustedRoot(f.PKI.Root.Certificate), pcs.WithClock(func() time.Time { return f.Now }), pcs.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	col, err := c.Collateral(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := dcap.Verify(q.Parsed, col, dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now}); err != nil || res.Status != collateral.UpToDate {
		t.Fatalf("verify through the proxy: %v, %v", res, err)
	}
	for path, want := range map[string]int{
		"/sgx/certification/v4/tcb?fmspc=AABBCCDDEEFF":                                                          404,
		"/sgx/certification/v4/tcb?fmspc=xyz":                                                                   400,
		"/sgx/certification/v4/tcb?fmspc=" + strings.ToUpper(hex.EncodeToString(key.FMSPC[:])) + "&update=late": 400,
		"/sgx/certification/v4/pckcrl?ca=other":                                                                 400,
		"/sev/certification/v4/qe/identity":                                                                     400,
		"/sgx/certification/v4/pckcert?cpusvn=00":                                                               400,
		"/healthz": 200,
	} {
		if resp, body := get(t, p.url+path); resp.StatusCode != want {
			t.Errorf("GET %s = %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
	up.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	resp, _ := get(t, p.url+"/tdx/certification/v4/qe/identity")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upstream failure: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, metrics := get(t, p.url+"/metrics")
	for _, want := range []string{
		`tdproof_pccs_requests_total{code="200",route="sgx_tcb"} 1`,
		`tdproof_pccs_requests_total{code="404",route="sgx_tcb"} 1`,
		"# TYPE go_goroutines gauge", "# TYPE process_resident_memory_bytes gauge",
		"tdproof_pcscache_hits_total ", "tdproof_pcscache_misses_total ",
		"tdproof_pcscache_upstream_errors_total 2", // 404 and 500
		`tdproof_pcscache_item_age_seconds{item="sgx-qe-identity",kind="qe identity"} 86400`,
		`tdproof_pcscache_item_expiry_seconds{item="IntelSGXRootCA.der",kind="root ca crl"}`,
		"# TYPE tdproof_pcscache_items gauge\ntdproof_pcscache_items 4\n",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

// TestServeShutdown: Serve answers on a loopback listener and returns nil
// when its context ends.
func TestServeShutdown(t *testing.T) {
	t.Parallel()
	c, err := pcscache.New(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := pccs.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	if resp, _ := get(t, "http://"+ln.Addr().String()+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	resp, _ := get(t, "http://"+ln.Addr().String()+"/tdx/certification/v4/qe/identity")
	if resp.StatusCode != 404 {
		t.Errorf("offline miss: %d, want 404 as Intel's PCCS", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}
