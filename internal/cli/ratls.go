package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tdproof/tdproof/dstack"
)

type ratlsFlags struct {
	dstackFlags
	out     bool
	timeout time.Duration
}

func (a *app) registerRATLSFlags(c *cobra.Command, f *ratlsFlags) {
	fl := c.Flags()
	fl.StringVar(&f.collateral, "collateral", "", "collateral `PATH` for TDX attestations (as for quote verify)")
	f.source.register(fl, "collateral bundle or cache `DIR` (alone: offline; with --pccs-url: a cache in front of it)", true)
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trust the certificate in `FILE` instead of the platform's pinned root")
	f.crl.register(fl)
	commandLineOnly(fl, "trusted-root")
}

func (a *app) dstackVerifyCertCommand() *cobra.Command {
	f := &ratlsFlags{}
	c := &cobra.Command{
		Use:   "verify-cert CERT [--out]",
		Short: "Verify a dstack RA-TLS certificate: profile, attestation, key binding",
		Long: `Verify a dstack RA-TLS certificate (PEM or DER) as dstack-verifier --verify-cert does:
the certificate profile (its self-signature verifies, it is valid at the verification time,
KeyUsage has digitalSignature, EKU has serverAuth or clientAuth, SAN is present), then the
attestation in extension 1.3.6.1.4.1.62397.1.8 (or the legacy .1.1/.1.2) with every check
of dstack verify for its variant, including report_data = SHA-512("ratls-cert:" ||
SubjectPublicKeyInfo): a certificate whose key is not the attested one is not authentic
(exit 4). Prints dstack's JSON ({is_valid, details}); --out also writes it to
CERT.ratls-verification.json.`,
		Example:     `  tdproof dstack verify-cert app.pem --collateral pcs/ --out`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("CERT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			out := ""
			if f.out {
				if args[0] == "-" {
					return &usageError{err: errors.New("--out writes next to the input: give CERT as a file, not -")}
				}
				out = args[0] + ".ratls-verification.json"
			}
			data, err := a.readInput("certificate", args[0])
			if err != nil {
				return err
			}
			return a.runVerifyCert(cmd, data, f, out)
		},
	}
	a.registerRATLSFlags(c, f)
	c.Flags().BoolVar(&f.out, "out", false, "also write the result to CERT.ratls-verification.json")
	return c
}

func (a *app) dstackConnectCommand() *cobra.Command {
	f := &ratlsFlags{}
	c := &cobra.Command{
		Use:   "connect HOST:PORT",
		Short: "TLS-handshake with an endpoint and verify its RA-TLS certificate",
		Long: `Connect to HOST:PORT over TLS, complete the handshake (which proves the server holds the
private key of the certificate it presents) and verify that certificate as verify-cert does.
No CA is trusted: the endpoint is trusted only if its certificate carries an attestation that
verifies and binds the certificate's key. Run it before trusting an endpoint.`,
		Example:     `  tdproof dstack connect app.example:443 --collateral pcs/`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("HOST:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			der, err := fetchPeerCertificate(cmd.Context(), args[0], f.timeout)
			if err != nil {
				return err
			}
			return a.runVerifyCert(cmd, der, f, "")
		},
	}
	a.registerRATLSFlags(c, f)
	c.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "connect and handshake timeout")
	return c
}

// errConnect: the endpoint could not be reached or the handshake failed.
var errConnect = errors.New("connect")

func fetchPeerCertificate(ctx context.Context, addr string, timeout time.Duration) ([]byte, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("HOST:PORT: %w", err)}
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: &tls.Config{
		ServerName: host,
		// The endpoint's certificate is verified by its attestation
		// below, not by a CA; the handshake still checks that the
		// server holds the certificate's private key.
		InsecureSkipVerify: true, //nolint:gosec
		MinVersion:         tls.VersionTLS12,
	}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errConnect, addr, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s presented no certificate", errConnect, addr)
	}
	return certs[0].Raw, nil
}

func (a *app) runVerifyCert(cmd *cobra.Command, data []byte, f *ratlsFlags, outFile string) error {
	cert, err := dstack.ParseCertificate(data)
	if err != nil {
		return err
	}
	now := f.at.t
	if now.IsZero() {
		now = time.Now()
	}
	if err := dstack.CheckCertificateProfile(cert, now); err != nil {
		return err
	}
	var root *x509.Certificate
	if f.trustedRoot != "" {
		if root, err = a.readTrustedRoot(f.trustedRoot); err != nil {
			return err
		}
	}
	rules, changed := f.rules(cmd.Flags())
	ap, err := a.openAppraisal(cmd.Context(), &f.appraisal, rules, changed)
	if err != nil {
		return err
	}
	defer ap.close()
	res := &dstackOutput{}
	if err := a.dstackVerifyData(cmd, res, cert.Raw, &f.dstackFlags, root, ap); err != nil {
		return err
	}
	var r *dstack.Result
	if res.Result != nil {
		r = res.Result.Dstack
	}
	out, err := dstack.NewCertVerification(cert, r)
	if err != nil {
		return err
	}
	if outFile != "" {
		var b strings.Builder
		if err := writeJSON(&b, out); err != nil {
			return err
		}
		if err := os.WriteFile(outFile, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", outFile, err)
		}
	}
	return writeJSON(a.stdout, out)
}
