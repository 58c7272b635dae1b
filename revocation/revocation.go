// Package revocation checks a verified X.509 certificate chain against
// certificate revocation lists (RFC 5280 §5, §6.3; the subset the AWS
// Nitro and Google EK/AK PKIs use: full CRLs issued by the certificate's
// own issuer, no delta CRLs, no indirect CRLs, no OCSP). It performs no
// I/O: package revocation/crlcache fetches and caches the lists a chain
// names.
//
// A certificate that names a CRL distribution point must be covered by a
// CRL its issuer signed, current at the verification time, that does not
// list its serial number. Certificates without a distribution point (the
// Nitro signing and instance certificates, Google's AK certificates) have
// no revocation information and are not checked: their short validity, or
// the issuer's CRL covering the CA above them, is what revokes them.
package revocation

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrRevoked: a certificate of the chain is listed on its issuer's
	// CRL.
	ErrRevoked = errors.New("revocation: certificate revoked")
	// ErrCRL: a CRL needed for the chain is missing, is not signed by
	// the certificate's issuer, or is not current at the verification
	// time. The chain's revocation status is unknown: fail closed.
	ErrCRL = errors.New("revocation: CRL unavailable or invalid")
)

// DistributionPoints returns the http(s) CRL distribution points named by
// the certificates of chain (leaf first, root last), in order, without
// duplicates. The root is skipped: a trust anchor is not checked.
func DistributionPoints(chain []*x509.Certificate) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i+1 < len(chain); i++ {
		for _, u := range chain[i].CRLDistributionPoints {
			if !seen[u] && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Check checks chain (leaf first, each certificate issued by the next, the
// root last; as a verifier returns it) against crls at now. Every
// certificate below the root that names a CRL distribution point needs a
// CRL whose issuer is that certificate's issuer (by name, and signed by
// its key), with a NextUpdate and now in [ThisUpdate, NextUpdate] (ErrCRL
// otherwise), that
// does not list the certificate's serial number (ErrRevoked otherwise).
// CRLs that name another issuer are ignored; one that names the issuer
// but does not verify under its key is ErrCRL.
func Check(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		if len(cert.CRLDistributionPoints) == 0 {
			continue
		}
		covered := false
		for _, l := range crls {
			if l == nil || !bytes.Equal(l.RawIssuer, issuer.RawSubject) {
				continue
			}
			if err := l.CheckSignatureFrom(issuer); err != nil {
				return fmt.Errorf("%w: CRL of %q does not verify under its key: %v", ErrCRL, issuer.Subject, err)
			}
			if now.Before(l.ThisUpdate) || l.NextUpdate.IsZero() || now.After(l.NextUpdate) {
				return fmt.Errorf("%w: CRL of %q is not current at %s (this update %s, next update %s)", ErrCRL, issuer.Subject,
					now.UTC().Format(time.RFC3339), l.ThisUpdate.UTC().Format(time.RFC3339), l.NextUpdate.UTC().Format(time.RFC3339))
			}
			for _, r := range l.RevokedCertificateEntries {
				if r.SerialNumber != nil && r.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return fmt.Errorf("%w: %q (serial %x) revoked on %s by %q", ErrRevoked, cert.Subject, cert.SerialNumber,
						r.RevocationTime.UTC().Format(time.RFC3339), issuer.Subject)
				}
			}
			covered = true
		}
		if !covered {
			return fmt.Errorf("%w: no CRL of %q for %q (distribution point %s)", ErrCRL, issuer.Subject, cert.Subject, cert.CRLDistributionPoints[0])
		}
	}
	return nil
}
