// Package tlsconf builds the TLS configurations of tdproof's listeners
// (serve, pccs serve) and clients (--ca-file): a certificate that is
// reloaded from its files on demand (SIGHUP), TLS 1.3 as the default
// minimum version, optional client-certificate verification, and a
// self-signed certificate for a first try.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
)

// ParseMinVersion parses a minimum TLS version: "1.2" or "1.3".
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, fmt.Errorf("unsupported TLS version %q (want 1.2 or 1.3)", s)
}

// Reloader holds a certificate and its private key, read from two PEM
// files, and reads them again on Reload. It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	mu                sync.RWMutex
	cert              *tls.Certificate
}

// NewReloader reads the certificate chain in certFile and its key in
// keyFile.
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On error the certificate in use stays.
func (r *Reloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert = &c
	r.mu.Unlock()
	return nil
}

// Certificate returns the certificate in use.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert
}

// GetCertificate is the tls.Config callback.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// ReloadOn calls Reload for each value received on sig until ctx is
// done, and reports each outcome to done (nil error: reloaded).
func (r *Reloader) ReloadOn(ctx context.Context, sig <-chan os.Signal, done func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			done(r.Reload())
		}
	}
}

// ServerConfig returns the listener configuration: the reloader's
// certificate, at least minVersion, and, with clientCAs, client
// certificates verified against clientCAs when presented (the handler
// decides which routes require one: see HasVerifiedClient).
func ServerConfig(r *Reloader, minVersion uint16, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c
}

// HasVerifiedClient reports whether the connection presented a client
// certificate that chains to the configured client CAs.
func HasVerifiedClient(cs *tls.ConnectionState) bool {
	return cs != nil && len(cs.VerifiedChains) > 0
}

// CertPool reads the PEM certificates in file; a file without any
// certificate is an error.
func CertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// ClientConfig returns a client configuration that trusts only the CA
// certificates in caFile (PEM).
func ClientConfig(caFile string) (*tls.Config, error) {
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// IsLoopback reports whether the listen address addr (host:port) binds
// only loopback interfaces: localhost or a loopback IP. An empty host
// (all interfaces) is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
