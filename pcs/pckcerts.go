package pcs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PCKCertsRequest asks for every PCK certificate of a platform, one per
// TCB level (the pckcerts route).
type PCKCertsRequest struct {
	// EncryptedPPID is the RSA-OAEP encrypted PPID (256 or 384 bytes).
	EncryptedPPID []byte
	// PCEID is the platform's PCE ID.
	PCEID [2]byte
}

// ID returns a stable identifier of the request (hex, 32 digits), used
// as the file name of cached responses.
func (r PCKCertsRequest) ID() string {
	h := sha256.New()
	h.Write([]byte("pckcerts"))
	h.Write(r.PCEID[:])
	h.Write(r.EncryptedPPID)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PCKCertsSource fetches every PCK certificate of a platform. It is an
// optional capability of a Fetcher.
type PCKCertsSource interface {
	PCKCerts(ctx context.Context, req PCKCertsRequest) (*PCKCerts, error)
}

// PCKCerts is a verified pckcerts response: a JSON array of
// {"tcb", "tcbm", "cert"} entries whose cert is a URL-escaped PEM
// certificate or "Not available", with the issuer chain, FMSPC and CA
// type headers.
type PCKCerts struct {
	// Certs are the verified certificates, in the response's order
	// (entries without a certificate are skipped).
	Certs []*PCKCert
	// Body and Header are the response as served (Header under Intel's
	// spelling: the issuer chain, SGX-FMSPC and the CA type).
	Body   []byte
	Header map[string]string
	// ValidFrom and ValidUntil bound the validity of every certificate.
	ValidFrom, ValidUntil time.Time
}

// notAvailable is the cert of an entry the PCS has no certificate for.
const notAvailable = "Not available"

// DecodePCKCerts parses and verifies a pckcerts response: every
// certificate must be issued by the PCK CA of the issuer-chain header,
// which must chain to root (nil: the Intel SGX Root CA), and carry the
// FMSPC of the SGX-FMSPC header. At least one certificate is required.
// Errors wrap ErrInvalidResponse.
func DecodePCKCerts(body []byte, h http.Header, root *x509.Certificate) (*PCKCerts, error) {
	var entries []struct {
		TCB  json.RawMessage `json:"tcb"`
		TCBm string          `json:"tcbm"`
		Cert string          `json:"cert"`
	}
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, invalid(ErrInvalidResponse, "pck certificates: %v", err)
	}
	out := &PCKCerts{Body: body, Header: map[string]string{}}
	for i, e := range entries {
		if e.Cert == notAvailable {
			continue
		}
		pemText, err := url.QueryUnescape(e.Cert)
		if err != nil {
			return nil, invalid(ErrInvalidResponse, "pck certificates: entry %d: %v", i, err)
		}
		eh := h.Clone()
		eh.Set(HeaderTCBm, e.TCBm)
		p, err := DecodePCKCert([]byte(pemText), eh, root)
		if err != nil {
			return nil, fmt.Errorf("pck certificates: entry %d: %w", i, err)
		}
		if len(out.Certs) > 0 && (p.FMSPC != out.Certs[0].FMSPC || p.CA != out.Certs[0].CA) {
			return nil, invalid(ErrMismatch, "pck certificates: entry %d has FMSPC %X (%s CA), entry 0 %X (%s CA)", i, p.FMSPC[:], p.CA, out.Certs[0].FMSPC[:], out.Certs[0].CA)
		}
		if len(out.Certs) == 0 || p.ValidFrom.After(out.ValidFrom) {
			out.ValidFrom = p.ValidFrom
		}
		if len(out.Certs) == 0 || p.ValidUntil.Before(out.ValidUntil) {
			out.ValidUntil = p.ValidUntil
		}
		out.Certs = append(out.Certs, p)
		for k, v := range p.Header {
			if !strings.EqualFold(k, HeaderTCBm) {
				out.Header[k] = v
			}
		}
	}
	if len(out.Certs) == 0 {
		return nil, invalid(ErrInvalidResponse, "pck certificates: no certificate in %d entries", len(entries))
	}
	return out, nil
}

// CheckValidity reports whether now is inside every certificate's
// validity (tolerating ClockSkew). The error wraps ErrExpired.
func (p *PCKCerts) CheckValidity(now time.Time) error {
	if now.Before(p.ValidFrom.Add(-ClockSkew)) || !now.Before(p.ValidUntil) {
		return invalid(ErrExpired, "pck certificates are valid from %s until %s", p.ValidFrom.UTC().Format(time.RFC3339), p.ValidUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// PCKCerts fetches and verifies every PCK certificate of a platform.
// Against Intel PCS the subscription key (WithSubscriptionKey) is
// required.
func (c *Client) PCKCerts(ctx context.Context, req PCKCertsRequest) (*PCKCerts, error) {
	if len(req.EncryptedPPID) == 0 {
		return nil, fmt.Errorf("%w: pck certificates request without encrypted PPID", ErrInvalidKey)
	}
	q := url.Values{}
	q.Set("encrypted_ppid", strings.ToUpper(hex.EncodeToString(req.EncryptedPPID)))
	q.Set("pceid", strings.ToUpper(hex.EncodeToString(req.PCEID[:])))
	u := c.base + "/sgx/certification/v4/pckcerts?" + q.Encode()
	var hdr http.Header
	if c.cfg.subscriptionKey != "" {
		hdr = http.Header{HeaderSubscriptionKey: {c.cfg.subscriptionKey}}
	}
	const what = "pck certificates"
	resp, err := c.get(ctx, what, u, hdr)
	if err != nil {
		return nil, err
	}
	p, err := DecodePCKCerts(resp.body, resp.header, c.cfg.root)
	if err == nil {
		err = p.CheckValidity(c.cfg.now())
	}
	if err != nil {
		return nil, &Error{Item: what, URL: u, StatusCode: resp.status, Attempts: resp.attempts, Err: err}
	}
	return p, nil
}

var _ PCKCertsSource = (*Client)(nil)
