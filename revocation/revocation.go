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
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
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
// CRLs that name another issuer, or whose issuing distribution point
// does not cover the certificate (another partition, CA or end-entity
// certificates only, some reasons only), are ignored; one that names the
// issuer but does not verify under its key, or that has (or an entry
// has) a critical extension not processed here (a delta CRL), is ErrCRL.
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
			scoped, err := covers(l, cert)
			if err != nil {
				return fmt.Errorf("%w: CRL of %q: %w", ErrCRL, issuer.Subject, err)
			}
			if !scoped {
				continue // a CRL of another scope (partition, CA certificates only, some reasons)
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

// CheckFetched checks chain against the CRLs fetch returns for it, at now,
// as Check, for a verifier with its own errors: a revoked certificate is
// errRevoked, a list fetch fails to return or Check refuses is errCRL,
// each wrapping the cause.
func CheckFetched(chain []*x509.Certificate, now time.Time, fetch func([]*x509.Certificate) ([]*x509.RevocationList, error), errRevoked, errCRL error) error {
	crls, err := fetch(chain)
	if err != nil {
		return fmt.Errorf("%w: %w", errCRL, err)
	}
	if err := Check(chain, crls, now); err != nil {
		if errors.Is(err, ErrRevoked) {
			return fmt.Errorf("%w: %w", errRevoked, err)
		}
		return fmt.Errorf("%w: %w", errCRL, err)
	}
	return nil
}

var (
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
)

// issuingDistributionPoint is the CRL extension of RFC 5280 §5.2.5.
type issuingDistributionPoint struct {
	DistributionPoint struct {
		FullName     []asn1.RawValue `asn1:"optional,tag:0"`
		RelativeName asn1.RawValue   `asn1:"optional,tag:1"`
	} `asn1:"optional,tag:0"`
	OnlyContainsUserCerts      bool          `asn1:"optional,tag:1"`
	OnlyContainsCACerts        bool          `asn1:"optional,tag:2"`
	OnlySomeReasons            asn1.RawValue `asn1:"optional,tag:3"`
	IndirectCRL                bool          `asn1:"optional,tag:4"`
	OnlyContainsAttributeCerts bool          `asn1:"optional,tag:5"`
}

// covers reports whether l is a complete list for cert (RFC 5280 §6.3.3
// (b)): a CRL without an issuing distribution point covers every
// certificate of its issuer; one with it covers cert only when its
// distribution point names one of cert's, when it is not restricted to
// CA or end-entity certificates cert is not, and when it lists every
// reason and no other issuer's certificates. crypto/x509 does not reject
// CRLs with critical extensions it does not process, so a CRL (or an
// entry) with any other critical extension (a delta CRL, an indirect
// CRL's certificate issuer) is an error: its meaning is not a full list.
// So is a delta CRL indicator, critical or not.
func covers(l *x509.RevocationList, cert *x509.Certificate) (bool, error) {
	scoped := true
	for _, e := range l.Extensions {
		switch {
		case e.Id.Equal(oidIssuingDistributionPoint):
			var idp issuingDistributionPoint
			if rest, err := asn1.Unmarshal(e.Value, &idp); err != nil || len(rest) > 0 {
				return false, fmt.Errorf("issuing distribution point does not parse")
			}
			if idp.OnlyContainsAttributeCerts || idp.IndirectCRL || len(idp.OnlySomeReasons.FullBytes) > 0 ||
				idp.OnlyContainsCACerts && !cert.IsCA || idp.OnlyContainsUserCerts && cert.IsCA ||
				len(idp.DistributionPoint.RelativeName.FullBytes) > 0 {
				scoped = false
			}
			if names := idp.DistributionPoint.FullName; len(names) > 0 && !namesDistributionPoint(names, cert.CRLDistributionPoints) {
				scoped = false
			}
		case e.Id.Equal(oidDeltaCRLIndicator):
			// RFC 5280 §5.2.4 makes it critical; marked non-critical it
			// still says the list is a delta, not the full list.
			return false, fmt.Errorf("a delta CRL (delta CRL indicator), not a full list")
		case e.Id.Equal(oidAuthorityKeyID), e.Id.Equal(oidCRLNumber), !e.Critical:
		default:
			return false, fmt.Errorf("unsupported critical extension %s", e.Id)
		}
	}
	for _, r := range l.RevokedCertificateEntries {
		for _, e := range r.Extensions {
			if e.Critical {
				return false, fmt.Errorf("entry %x: unsupported critical extension %s", r.SerialNumber, e.Id)
			}
		}
	}
	return scoped, nil
}

// namesDistributionPoint reports whether a URI of the general names
// names is one of the distribution points dps.
func namesDistributionPoint(names []asn1.RawValue, dps []string) bool {
	for _, n := range names {
		// uniformResourceIdentifier [6] IA5String
		if n.Class == asn1.ClassContextSpecific && n.Tag == 6 && slices.Contains(dps, string(n.Bytes)) {
			return true
		}
	}
	return false
}
