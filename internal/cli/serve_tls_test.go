package cli

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/tlsconf"
	"github.com/tdproof/tdproof/internal/tlsconf/tlstest"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tdsim"
)

// tlsClient returns an HTTP client trusting pool, presenting certs.
func tlsClient(pool *x509.CertPool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends a request and returns the status (0 and the error on a
// transport failure) and the TLS version.
func do(t *testing.T, c *http.Client, method, url, token string) (int, uint16, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	var v uint16
	if resp.TLS != nil {
		v = resp.TLS.Version
	}
	return resp.StatusCode, v, nil
}

// TestServeTLS: serve with --tls-cert/--tls-key answers HTTPS with TLS
// 1.3 only, and with --admin-client-ca the admin API needs a client
// certificate of that CA on top of the token, while the other routes do
// not.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "server")
	clientCA := tlstest.NewCA(t, dir, "admins")
	other := tlstest.NewCA(t, dir, "other")
	leaf := ca.Server(t, dir, "serve")
	s := startServe(t, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", leaf.CertFile, "--tls-key", leaf.KeyFile,
		"--admin-token", "admintok", "--admin-client-ca", clientCA.File)
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("url %q, want https", s.url)
	}
	anon := tlsClient(ca.Pool())
	if code, v, err := do(t, anon, "GET", s.url+"/healthz", ""); err != nil || code != 200 || v != tls.VersionTLS13 {
		t.Fatalf("GET /healthz: %d, TLS %x, %v", code, v, err)
	}
	old := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}}}
	if _, _, err := do(t, old, "GET", s.url+"/healthz", ""); err == nil {
		t.Error("a TLS 1.2 client was served")
	}
	if _, _, err := do(t, tlsClient(x509.NewCertPool()), "GET", s.url+"/healthz", ""); err == nil {
		t.Error("a client not trusting the server's CA was served")
	}
	if code, _, err := do(t, &http.Client{Timeout: 30 * time.Second}, "GET", "http://"+strings.TrimPrefix(s.url, "https://")+"/healthz", ""); err == nil && code == 200 {
		t.Error("plain HTTP answered 200 on the TLS listener")
	}

	admin := tlsClient(ca.Pool(), clientCA.Client(t, dir, "admin").Pair)
	for _, c := range []struct {
		name   string
		client *http.Client
		method string
		path   string
		token  string
		want   int
	}{
		{"no client certificate", anon, "GET", "/admin/v1/policies", "admintok", http.StatusForbidden},
		{"no client certificate, kbs admin route", anon, "POST", protocol.PathResourcePolicy, "admintok", http.StatusForbidden},
		{"client certificate and token", admin, "GET", "/admin/v1/policies", "admintok", http.StatusOK},
		{"client certificate without token", admin, "GET", "/admin/v1/policies", "", http.StatusUnauthorized},
		{"client certificate, wrong token", admin, "GET", "/admin/v1/policies", "nope", http.StatusUnauthorized},
		{"public route without client certificate", anon, "GET", "/.well-known/jwks.json", "", http.StatusOK},
	} {
		code, _, err := do(t, c.client, c.method, s.url+c.path, c.token)
		if err != nil || code != c.want {
			t.Errorf("%s: %s %s: %d (%v), want %d", c.name, c.method, c.path, code, err, c.want)
		}
	}
	// A certificate of another CA, sent anyway, fails the handshake
	// (the Go client itself sends only certificates of the CAs the
	// server names, and then none: 403 above).
	mallory := other.Client(t, dir, "mallory").Pair
	forced := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory, nil }}}}
	if code, _, err := do(t, forced, "GET", s.url+"/admin/v1/policies", "admintok"); err == nil {
		t.Errorf("a client certificate of another CA got %d", code)
	}
	if code, _, err := do(t, tlsClient(ca.Pool(), mallory), "GET", s.url+"/admin/v1/policies", "admintok"); err != nil || code != http.StatusForbidden {
		t.Errorf("a client holding only a certificate of another CA: %d %v, want 403", code, err)
	}
}

// TestServeTLSSelfSigned: --tls-self-signed writes a certificate to the
// data directory, which clients trust with it as CA, and reuses it on the
// next start.
func TestServeTLSSelfSigned(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	s := startServe(t, "--data-dir", data, "--tls-self-signed")
	certFile := filepath.Join(data, tlsconf.SelfSignedCert)
	pool, err := tlsconf.CertPool(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := do(t, tlsClient(pool), "GET", s.url+"/healthz", ""); err != nil || code != 200 {
		t.Fatalf("GET /healthz trusting the self-signed certificate: %d %v", code, err)
	}
	if fi, err := os.Stat(filepath.Join(data, tlsconf.SelfSignedKey)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	first, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("stop: exit %d", code)
	}
	s = startServe(t, "--data-dir", data, "--tls-self-signed")
	if code, _, err := do(t, tlsClient(pool), "GET", s.url+"/healthz", ""); err != nil || code != 200 {
		t.Fatalf("second start: %d %v", code, err)
	}
	if again, _ := os.ReadFile(certFile); string(again) != string(first) {
		t.Error("the self-signed certificate was replaced on restart")
	}
}

// TestServePlaintextRefused: serve refuses plain HTTP on an address that
// is not loopback unless --insecure-plaintext, and rejects inconsistent
// TLS flags.
func TestServePlaintextRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "server")
	leaf := ca.Server(t, dir, "serve")
	data := filepath.Join(dir, "data")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"--listen", ":0"}, "not a loopback address"},
		{[]string{"--tls-cert", leaf.CertFile}, "go together"},
		{[]string{"--tls-key", leaf.KeyFile}, "go together"},
		{[]string{"--tls-self-signed", "--tls-cert", leaf.CertFile, "--tls-key", leaf.KeyFile}, "excludes"},
		{[]string{"--admin-client-ca", ca.File}, "needs TLS"},
		{[]string{"--insecure-plaintext", "--tls-self-signed"}, "excludes"},
		{[]string{"--tls-self-signed", "--tls-min-version", "1.1"}, "--tls-min-version"},
		{[]string{"--tls-cert", leaf.CertFile, "--tls-key", ca.File}, "tls"},
	} {
		args := append([]string{"serve", "--data-dir", data}, c.args...)
		o := invoke(t, nil, args...)
		o.wantCode(t, exitUsage, args...)
		if !strings.Contains(o.stderr, c.want) {
			t.Errorf("tdproof %s: stderr %q lacks %q", strings.Join(args, " "), o.stderr, c.want)
		}
	}
	s := startServe(t, "--data-dir", data, "--listen", "0.0.0.0:0", "--insecure-plaintext")
	url := strings.Replace(s.url, "0.0.0.0", "127.0.0.1", 1)
	if code, _, err := do(t, &http.Client{Timeout: 30 * time.Second}, "GET", url+"/healthz", ""); err != nil || code != 200 {
		t.Fatalf("--insecure-plaintext: %d %v", code, err)
	}
	if !strings.Contains(s.stderr.String(), "plain HTTP") {
		t.Errorf("no warning about plain HTTP: %s", s.stderr.String())
	}
}

// TestServeTLSReloadOnSIGHUP: a serve process rereads its certificate on
// SIGHUP and keeps serving.
func TestServeTLSReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "server")
	a := ca.Server(t, dir, "first")
	p := startServeProcess(t, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", a.CertFile, "--tls-key", a.KeyFile)
	served := func() string {
		t.Helper()
		resp, err := tlsClient(ca.Pool()).Get(p.url + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v\n%s", err, p.stderr.String())
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	b := ca.Server(t, dir, "second")
	for _, f := range [][2]string{{b.CertFile, a.CertFile}, {b.KeyFile, a.KeyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := served(); got != "first" {
		t.Fatalf("before SIGHUP served %q, want first", got)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for served() != "second" {
		if time.Now().After(deadline) {
			t.Fatalf("certificate not reloaded 20s after SIGHUP:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPCCSServeTLSAndCAFile: pccs serve answers HTTPS, and collateral
// fetch reaches it with --ca-file (and not without).
func TestPCCSServeTLSAndCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "pccs")
	leaf := ca.Server(t, dir, "pccs")
	_, upURL, quote := realPCS(t)
	s := servePCCS(t, "--pccs-url", upURL, "--at", realPCSTime, "--tls-cert", leaf.CertFile, "--tls-key", leaf.KeyFile)
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("url %q, want https", s.url)
	}
	if code, v, err := do(t, tlsClient(ca.Pool()), "GET", s.url+"/healthz", ""); err != nil || code != 200 || v != tls.VersionTLS13 {
		t.Fatalf("GET /healthz: %d %x %v", code, v, err)
	}
	args := []string{"collateral", "fetch", quote, "-o", filepath.Join(dir, "a"), "--pccs-url", s.url, "--ca-file", ca.File, "--at", realPCSTime, "--pcs-retries", "0"}
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
	args = []string{"collateral", "fetch", quote, "-o", filepath.Join(dir, "b"), "--pccs-url", s.url, "--at", realPCSTime, "--pcs-retries", "0"}
	if o := invoke(t, nil, args...); o.code == exitOK {
		t.Errorf("collateral fetch without --ca-file trusted the test CA:\n%s", o.stdout)
	}
	args = []string{"collateral", "fetch", quote, "-o", filepath.Join(dir, "c"), "--pccs-url", s.url, "--ca-file", filepath.Join(dir, "missing.pem"), "--at", realPCSTime}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}

// TestKBSGetResourceCAFile: kbs get-resource reaches an HTTPS broker with
// --ca-file, and not without it.
func TestKBSGetResourceCAFile(t *testing.T) {
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := startSimKBS(t.Context(), t.TempDir(), sim, simRefValues(sim))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.close)
	if err := k.broker.PutResource(t.Context(), protocol.ResourceID{Repository: "default", Type: "key", Tag: "1"}, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "kbs")
	leaf := ca.Server(t, dir, "kbs")
	ts := httptest.NewUnstartedServer(k.broker)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.Pair}, MinVersion: tls.VersionTLS13}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	withSimulatedTD(t, sim)
	args := []string{"kbs", "get-resource", "default/key/1", "--kbs-url", ts.URL, "--simulate", "--ca-file", ca.File}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if o.stdout != "s3cret" {
		t.Errorf("stdout %q", o.stdout)
	}
	args = []string{"kbs", "get-resource", "default/key/1", "--kbs-url", ts.URL, "--simulate"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitInternal, args...)
	if !strings.Contains(o.stderr, "certificate") {
		t.Errorf("stderr %q does not name the certificate problem", o.stderr)
	}
	args = []string{"kbs", "get-resource", "default/key/1", "--kbs-url", ts.URL, "--simulate", "--ca-file", filepath.Join(dir, "none.pem")}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}
