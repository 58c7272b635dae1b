package dstack

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tdproof/tdproof/nitro"
)

// RA-TLS endpoint verification (dstack-verifier --verify-cert,
// multi-tee.md §6): ParseCertificate, CheckCertificateProfile, then the
// caller's verification pipeline on the certificate's DER (Verify,
// VerifyNitro, VerifySNP or the verifier service), then
// NewCertVerification, which refuses a result that does not bind the
// certificate's key. tdproof dstack verify-cert, dstack connect and POST
// /v1/verify-cert share these steps.

var (
	// ErrCertificateProfile: an RA-TLS certificate fails the profile
	// dstack-verifier checks before its attestation (self-signature,
	// validity, KeyUsage, EKU, SAN). The certificate is not authentic.
	ErrCertificateProfile = errors.New("dstack: RA-TLS certificate profile")
	// ErrNotAttested: a certificate carries no dstack attestation
	// extension (.1.8, or the legacy .1.1 quote): an ordinary certificate.
	// It wraps ErrMalformed (as evidence it does not parse).
	ErrNotAttested = fmt.Errorf("%w: no dstack attestation extension", ErrMalformed)
)

// MaxCertificateSize bounds a certificate given to ParseCertificate (PEM
// or DER). An RA-TLS certificate carries a quote and its event log; the
// bound is MaxEvidenceSize's, the limit of any evidence.
const MaxCertificateSize = MaxEvidenceSize

// ParseCertificate reads one X.509 certificate: PEM (the first
// CERTIFICATE block; other blocks before it are skipped) or DER. Errors
// wrap ErrMalformed.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	if len(data) > MaxCertificateSize {
		return nil, malformed("certificate", 0, "%d bytes exceed the %d byte limit", len(data), MaxCertificateSize)
	}
	der := data
	if text := bytes.TrimLeft(data, " \t\r\n"); bytes.HasPrefix(text, []byte("-----BEGIN")) {
		der = nil
		for rest := text; der == nil; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				return nil, malformed("certificate", -1, "PEM without a CERTIFICATE block")
			}
			if b.Type == "CERTIFICATE" {
				der = b.Bytes
			}
		}
	}
	if len(der) == 0 {
		return nil, malformed("certificate", 0, "empty")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, malformed("certificate", -1, "%v", err)
	}
	return c, nil
}

// IsAttested reports whether c carries a dstack attestation extension
// (.1.8, or the legacy quote .1.1). It says nothing of its validity.
func IsAttested(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDAttestation) || e.Id.Equal(OIDTDXQuote) {
			return true
		}
	}
	return false
}

// CheckCertificateProfile applies dstack-verifier's RA-TLS certificate
// profile at now: the certificate's self-signature verifies, now is within
// its validity, KeyUsage has digitalSignature, EKU has serverAuth or
// clientAuth, and it has a subject alternative name. Errors wrap
// ErrCertificateProfile.
func CheckCertificateProfile(c *x509.Certificate, now time.Time) error {
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return fmt.Errorf("%w: self-signature: %w", ErrCertificateProfile, err)
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("%w: not valid at %s (%s to %s)", ErrCertificateProfile, now.UTC().Format(time.RFC3339),
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: KeyUsage lacks digitalSignature", ErrCertificateProfile)
	}
	eku := false
	for _, u := range c.ExtKeyUsage {
		eku = eku || u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageClientAuth
	}
	if !eku {
		return fmt.Errorf("%w: EKU has neither serverAuth nor clientAuth", ErrCertificateProfile)
	}
	if len(c.DNSNames)+len(c.IPAddresses)+len(c.URIs)+len(c.EmailAddresses) == 0 {
		return fmt.Errorf("%w: no subject alternative name", ErrCertificateProfile)
	}
	return nil
}

// CertVerification is dstack-verifier's --verify-cert output (multi-tee.md
// §6): {is_valid, details} for a verified certificate. Reason is set, and
// Details nil, only by callers that report a refusal in this shape (POST
// /v1/verify-cert); Code is tdproof's stable error code there.
type CertVerification struct {
	IsValid bool         `json:"is_valid"`
	Details *CertDetails `json:"details,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Code    string       `json:"code,omitempty"`
}

// CertDetails are the details of a verified RA-TLS certificate. Bytes are
// lowercase hex.
type CertDetails struct {
	TEEVariant string `json:"tee_variant"`
	ReportData string `json:"report_data"`
	// PublicKeyDER is the certificate's SubjectPublicKeyInfo, the key the
	// attestation binds.
	PublicKeyDER string      `json:"public_key_der"`
	AppInfo      CertAppInfo `json:"app_info"`
}

// CertAppInfo is the identity of a verified RA-TLS certificate's
// attestation. KeyProviderInfo is the key-provider event's payload as
// text (JSON {"name","id"}).
type CertAppInfo struct {
	AppID               string `json:"app_id"`
	ComposeHash         string `json:"compose_hash"`
	InstanceID          string `json:"instance_id"`
	DeviceID            string `json:"device_id"`
	MRSystem            string `json:"mr_system"`
	MRAggregated        string `json:"mr_aggregated"`
	OSImageHash         string `json:"os_image_hash"`
	OSImageHashVerified bool   `json:"os_image_hash_verified"`
	KeyProviderInfo     string `json:"key_provider_info"`
}

// NewCertVerification makes the verdict of a certificate whose evidence
// (c.Raw) verified to r. It fails closed with ErrCertificateBinding unless
// r records the RA-TLS binding check (SourceCertificate among
// ReportDataChecks) and its report data is RATLSReportData of c's
// SubjectPublicKeyInfo: whatever pipeline produced r, the attestation
// must vouch for this certificate's key.
//
// os_image_hash_verified is r's: true when the OS image was bound (a lite
// measurement document, GCP's firmware and UKI, an SEV-SNP launch digest,
// Nitro's PCRs or boot_pcr_digest), false for TDX evidence without one,
// as dstack-verifier reports it. device_id of a Nitro Enclave is dstack's
// value (NitroFacts.DstackDeviceID), for drop-in parity.
func NewCertVerification(c *x509.Certificate, r *Result) (*CertVerification, error) {
	if c == nil || r == nil {
		return nil, fmt.Errorf("%w: no verification result", ErrCertificateBinding)
	}
	want := RATLSReportData(c.RawSubjectPublicKeyInfo)
	if !slices.Contains(r.ReportDataChecks, SourceCertificate) || !bytes.Equal(r.ReportData, want[:]) {
		return nil, &ReportDataError{Source: SourceCertificate, Want: want, Quoted: [64]byte(padReportData(r.ReportData))}
	}
	ai := r.AppInfo
	device := ai.DeviceID
	if r.Nitro != nil && r.Nitro.Kind == nitro.KindEnclave {
		device = r.Nitro.DstackDeviceID
	}
	return &CertVerification{IsValid: true, Details: &CertDetails{
		TEEVariant: r.TEEVariant, ReportData: hex.EncodeToString(r.ReportData),
		PublicKeyDER: hex.EncodeToString(c.RawSubjectPublicKeyInfo),
		AppInfo: CertAppInfo{AppID: hex.EncodeToString(ai.AppID), ComposeHash: hex.EncodeToString(ai.ComposeHash),
			InstanceID: hex.EncodeToString(ai.InstanceID), DeviceID: hex.EncodeToString(device),
			MRSystem: hex.EncodeToString(ai.MRSystem), MRAggregated: hex.EncodeToString(ai.MRAggregated),
			OSImageHash: hex.EncodeToString(ai.OSImageHash), OSImageHashVerified: r.OSImageHashVerified,
			KeyProviderInfo: string(ai.KeyProviderInfo)},
	}}, nil
}

// padReportData returns b in 64 bytes (truncated or zero-padded), for an
// error report.
func padReportData(b []byte) []byte {
	out := make([]byte, 64)
	copy(out, b)
	return out
}
