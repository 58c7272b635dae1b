package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/tlsconf"
	"github.com/tdproof/tdproof/internal/tlsconf/tlstest"
)

// handshake serves one TLS handshake with cfg on loopback and returns the
// client's connection state (or its error).
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func TestServerConfigMinVersionAndReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "test")
	a := ca.Server(t, dir, "a")
	r, err := tlsconf.NewReloader(a.CertFile, a.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	v13, _ := tlsconf.ParseMinVersion("1.3")
	srv := tlsconf.ServerConfig(r, v13, nil)
	st, err := handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %x, want TLS 1.3", st.Version)
	}
	if got := st.PeerCertificates[0].Subject.CommonName; got != "a" {
		t.Errorf("served %q, want a", got)
	}
	if _, err := handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was accepted with minimum 1.3")
	}
	v12, _ := tlsconf.ParseMinVersion("1.2")
	if st, err := handshake(t, tlsconf.ServerConfig(r, v12, nil), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}); err != nil || st.Version != tls.VersionTLS12 {
		t.Errorf("minimum 1.2: %v %x", err, st.Version)
	}

	// Reload: the files now hold b; until the reload a is served.
	b := ca.Server(t, dir, "b")
	for _, p := range [][2]string{{b.CertFile, a.CertFile}, {b.KeyFile, a.KeyFile}} {
		data, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.ReloadOn(ctx, sig, func(err error) { done <- err })
	if got := r.Certificate().Leaf.Subject.CommonName; got != "a" {
		t.Fatalf("before the signal: %q", got)
	}
	sig <- os.Interrupt
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err = handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil || st.PeerCertificates[0].Subject.CommonName != "b" {
		t.Fatalf("after reload: %v, want b", err)
	}
	// A broken file keeps the certificate in use.
	if err := os.WriteFile(a.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	sig <- os.Interrupt
	if err := <-done; err == nil {
		t.Error("reloading a broken key succeeded")
	}
	if got := r.Certificate().Leaf.Subject.CommonName; got != "b" {
		t.Errorf("after a failed reload: %q, want b", got)
	}
	if _, err := tlsconf.ParseMinVersion("1.1"); err == nil {
		t.Error("TLS 1.1 accepted")
	}
}

func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "server")
	clientCA := tlstest.NewCA(t, dir, "clients")
	other := tlstest.NewCA(t, dir, "other")
	srvLeaf := ca.Server(t, dir, "srv")
	r, err := tlsconf.NewReloader(srvLeaf.CertFile, srvLeaf.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsconf.CertPool(clientCA.File)
	if err != nil {
		t.Fatal(err)
	}
	srv := tlsconf.ServerConfig(r, tls.VersionTLS13, pool)
	var seen = make(chan bool, 1)
	srv.VerifyConnection = func(cs tls.ConnectionState) error { seen <- tlsconf.HasVerifiedClient(&cs); return nil }
	base := func() *tls.Config { return &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"} }

	if _, err := handshake(t, srv, base()); err != nil {
		t.Fatalf("no client certificate: %v", err)
	}
	if <-seen {
		t.Error("no client certificate counted as verified")
	}
	good := base()
	good.Certificates = []tls.Certificate{clientCA.Client(t, dir, "admin").Pair}
	if _, err := handshake(t, srv, good); err != nil {
		t.Fatalf("good client certificate: %v", err)
	}
	if !<-seen {
		t.Error("good client certificate not verified")
	}
	bad := base()
	bad.Certificates = []tls.Certificate{other.Client(t, dir, "mallory").Pair}
	// In TLS 1.3 the client learns of the refusal on its first read.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), bad)
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	if tlsconf.HasVerifiedClient(nil) {
		t.Error("nil connection state verified")
	}
}

func TestCertPoolAndClientConfig(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "x")
	if _, err := tlsconf.ClientConfig(ca.File); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no pem here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{empty, filepath.Join(dir, "missing.pem")} {
		if _, err := tlsconf.CertPool(f); err == nil {
			t.Errorf("CertPool(%s) succeeded", f)
		}
		if _, err := tlsconf.ClientConfig(f); err == nil {
			t.Errorf("ClientConfig(%s) succeeded", f)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "127.1.2.3:0": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.1:443": false,
		"example.com:443": false, "garbage": false,
	} {
		if got := tlsconf.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Now()
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	cert, key, created, err := tlsconf.SelfSigned(dir, hosts, now)
	if err != nil || !created {
		t.Fatalf("first call: created %v, %v", created, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi, err)
	}
	r, err := tlsconf.NewReloader(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	fp := tlsconf.Fingerprint(r.Certificate())
	// The certificate is its own CA for clients.
	pool, err := tlsconf.CertPool(cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, tlsconf.ServerConfig(r, tls.VersionTLS13, nil), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("client trusting the self-signed certificate: %v", err)
	}
	if _, err := handshake(t, tlsconf.ServerConfig(r, tls.VersionTLS13, nil), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}); err == nil {
		t.Error("a client not trusting it accepted it")
	}
	// Reused while valid and naming every host.
	if _, _, created, err := tlsconf.SelfSigned(dir, hosts[:2], now.Add(time.Hour)); err != nil || created {
		t.Errorf("second call: created %v, %v", created, err)
	}
	// Renewed for a new host and after expiry.
	for _, c := range []struct {
		hosts []string
		at    time.Time
	}{{append(hosts, "kbs.example"), now}, {hosts, now.Add(400 * 24 * time.Hour)}} {
		_, _, created, err := tlsconf.SelfSigned(dir, c.hosts, c.at)
		if err != nil || !created {
			t.Errorf("hosts %v at %v: created %v, %v", c.hosts, c.at, created, err)
		}
		r2, err := tlsconf.NewReloader(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		if tlsconf.Fingerprint(r2.Certificate()) == fp {
			t.Error("certificate not renewed")
		}
	}
	// A broken pair is an error, not silently replaced.
	if err := os.WriteFile(key, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := tlsconf.SelfSigned(dir, hosts, now); err == nil {
		t.Error("broken existing key accepted")
	}
}
