package verifiersvc

import (
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/verifier"
)

// CertRequest is the JSON body of POST /v1/verify-cert (Content-Type
// application/json).
type CertRequest struct {
	// Certificate is the RA-TLS certificate: PEM text, or its DER in hex
	// (optionally 0x-prefixed) or base64.
	Certificate string `json:"certificate"`
	// PolicyID selects the policy ("": the active policy).
	PolicyID string `json:"policy_id,omitempty"`
}

// Refusal codes of POST /v1/verify-cert: the "code" of a 200 answer with
// is_valid false.
const (
	certNotAttested    = "not_attested"          // an ordinary certificate: no dstack attestation extension
	certProfile        = "certificate_profile"   // dstack's RA-TLS certificate profile fails
	certBadAttestation = "malformed_attestation" // the attestation extension does not parse, or is of a kind not verified
	certNotAuthentic   = "not_authentic"         // the attestation does not verify
	certBinding        = "certificate_binding"   // the attestation does not bind the certificate's key
	certPolicyRejected = "rejected"              // the policy denies the verified attestation
	routeVerifyCert    = "/v1/verify-cert"
)

// rawCertTypes are the Content-Types of a bare certificate body (PEM or
// DER, told apart by the bytes).
var rawCertTypes = map[string]bool{
	"application/pkix-cert":             true, // RFC 2585: DER
	"application/x-x509-ca-cert":        true,
	"application/x-x509-user-cert":      true,
	"application/pem-certificate-chain": true, // RFC 8555: PEM
	"application/x-pem-file":            true,
	"application/octet-stream":          true,
	"text/plain":                        true,
}

// handleVerifyCert is POST /v1/verify-cert: dstack-verifier's
// --verify-cert over HTTP (see the package documentation). The steps are
// those of tdproof dstack verify-cert: dstack.ParseCertificate,
// dstack.CheckCertificateProfile at the verifier's clock, the
// verification pipeline on the certificate (every platform Verify
// supports, appraised by the policy), then dstack.NewCertVerification,
// which refuses an attestation that does not bind the certificate's key.
func (s *Service) handleVerifyCert(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	data, policyID, aerr := s.readCertRequest(w, r)
	if aerr != nil {
		s.fail(w, routeVerifyCert, start, aerr, nil)
		return
	}
	cert, err := dstack.ParseCertificate(data)
	if err != nil {
		s.fail(w, routeVerifyCert, start, badRequest("malformed_evidence", "%v", err), nil)
		return
	}
	refuse := func(code string, err error) {
		s.observe(w, routeVerifyCert, code, time.Since(start))
		writeJSON(w, "application/json", dstack.CertVerification{Reason: err.Error(), Code: code})
	}
	if !dstack.IsAttested(cert) {
		refuse(certNotAttested, dstack.ErrNotAttested)
		return
	}
	if err := dstack.CheckCertificateProfile(cert, s.v.Now()); err != nil {
		refuse(certProfile, err)
		return
	}
	o, err := s.v.Verify(r.Context(), verifier.Evidence{Dstack: cert.Raw, PolicyID: policyID})
	if err != nil {
		if errors.Is(err, verifier.ErrMalformedEvidence) {
			refuse(certBadAttestation, err)
			return
		}
		s.fail(w, routeVerifyCert, start, verifyError(r.Context(), err), nil)
		return
	}
	res := o.Result
	switch {
	case !res.Authentic && errors.Is(o.Cause, dstack.ErrCertificateBinding):
		refuse(certBinding, errors.New(res.Reason))
		return
	case !res.Authentic:
		refuse(certNotAuthentic, errors.New(res.Reason))
		return
	case !res.Allow:
		var parts []string
		if res.Appraisal != nil {
			for _, f := range res.Appraisal.Failed {
				parts = append(parts, f.String())
			}
		}
		refuse(certPolicyRejected, errors.New("policy rejected: "+strings.Join(parts, "; ")))
		return
	}
	out, err := dstack.NewCertVerification(cert, res.Dstack)
	if err != nil {
		refuse(certBinding, err)
		return
	}
	s.observe(w, routeVerifyCert, res.Status.String(), time.Since(start))
	writeJSON(w, "application/json", out)
}

// readCertRequest reads the certificate and the policy id of a
// /v1/verify-cert request: a JSON CertRequest, or the certificate itself
// (PEM or DER) with the policy id in the query (?policy_id=).
func (s *Service) readCertRequest(w http.ResponseWriter, r *http.Request) ([]byte, string, *apiError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	queryPolicy := r.URL.Query().Get("policy_id")
	buf := getBuffer()
	defer putBuffer(buf)
	switch {
	case mt == "application/json":
		if queryPolicy != "" {
			return nil, "", badRequest("malformed_request", "policy_id: give it in the JSON body")
		}
		var req CertRequest
		if aerr := s.decodeJSON(w, r, buf, &req, true); aerr != nil {
			return nil, "", aerr
		}
		c := strings.TrimSpace(req.Certificate)
		if c == "" {
			return nil, "", badRequest("malformed_request", "certificate: missing")
		}
		if strings.HasPrefix(c, "-----BEGIN") {
			return []byte(c), req.PolicyID, nil
		}
		b, err := decodeBytes(c)
		if err != nil {
			return nil, "", badRequest("malformed_evidence", "certificate: not PEM, and %v", err)
		}
		return b, req.PolicyID, nil
	case rawCertTypes[mt]:
		if aerr := s.readBody(w, r, buf); aerr != nil {
			return nil, "", aerr
		}
		return append([]byte(nil), buf.Bytes()...), queryPolicy, nil
	}
	return nil, "", &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		detail: "Content-Type " + mtOrNone(mt) + ": want application/json ({\"certificate\": …}), application/pkix-cert (DER) or application/x-pem-file (PEM)"}
}

func mtOrNone(mt string) string {
	if mt == "" {
		return "(none)"
	}
	return mt
}
