package verifiersvc

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/verifier"
)

// NativeRequest is the body of POST /v1/verify (see the package
// documentation).
type NativeRequest struct {
	Quote *string `json:"quote,omitempty"`
	// CCEventLog, with a TDX quote, is the TD's CCEL (hex or base64).
	CCEventLog *string         `json:"cc_eventlog,omitempty"`
	Dstack     json.RawMessage `json:"dstack,omitempty"`
	Nonce      string          `json:"nonce,omitempty"`
	PolicyID   string          `json:"policy_id,omitempty"`
}

// NativeResponse is the body of a 200 from POST /v1/verify.
type NativeResponse struct {
	MediaType string           `json:"media_type"`
	Result    *verifier.Result `json:"result"`
	Token     string           `json:"token"`
}

func (s *Service) handleNative(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req NativeRequest
	buf := getBuffer()
	aerr := s.decodeJSON(w, r, buf, &req, true)
	putBuffer(buf) // req holds copies
	if aerr != nil {
		s.fail(w, "/v1/verify", start, aerr, nil)
		return
	}
	ev, aerr := nativeEvidence(&req)
	if aerr != nil {
		s.fail(w, "/v1/verify", start, aerr, nil)
		return
	}
	o, err := s.v.Verify(r.Context(), ev)
	if err != nil {
		s.fail(w, "/v1/verify", start, verifyError(r.Context(), err), nil)
		return
	}
	s.metrics.observe("/v1/verify", o.Result.Status.String(), time.Since(start))
	writeNative(w, o)
}

func nativeEvidence(req *NativeRequest) (verifier.Evidence, *apiError) {
	ev := verifier.Evidence{PolicyID: req.PolicyID}
	if req.Quote != nil {
		b, err := decodeBytes(*req.Quote)
		if err != nil {
			return ev, badRequest("malformed_evidence", "quote: %v", err)
		}
		ev.Quote = b
	}
	if req.CCEventLog != nil {
		if req.Quote == nil {
			return ev, badRequest("malformed_evidence", "cc_eventlog goes with a quote (dstack evidence carries its own event log)")
		}
		b, err := decodeBytes(*req.CCEventLog)
		if err != nil {
			return ev, badRequest("malformed_evidence", "cc_eventlog: %v", err)
		}
		ev.CCEL = b
	}
	if d := req.Dstack; len(d) > 0 && string(d) != "null" {
		switch d[0] {
		case '{':
			ev.Dstack = d
		case '"':
			var str string
			if err := json.Unmarshal(d, &str); err != nil {
				return ev, badRequest("malformed_request", "dstack: %v", err)
			}
			if strings.HasPrefix(strings.TrimSpace(str), "-----BEGIN") {
				ev.Dstack = []byte(str)
				break
			}
			b, err := decodeBytes(str)
			if err != nil {
				return ev, badRequest("malformed_evidence", "dstack: %v", err)
			}
			ev.Dstack = b
		default:
			return ev, badRequest("malformed_request", "dstack: want a JSON object or a string")
		}
	}
	if req.Nonce != "" {
		b, err := hex.DecodeString(strings.TrimPrefix(req.Nonce, "0x"))
		if err != nil {
			return ev, badRequest("malformed_request", "nonce: not hex: %v", err)
		}
		ev.Nonce = b
	}
	if (len(ev.Quote) == 0) == (len(ev.Dstack) == 0) {
		return ev, badRequest("malformed_evidence", "give exactly one of quote and dstack")
	}
	return ev, nil
}

// DstackRequest is dstack-verifier's VerificationRequest.
type DstackRequest struct {
	Quote       *string         `json:"quote"`
	EventLog    *string         `json:"event_log"`
	VMConfig    json.RawMessage `json:"vm_config"`
	Debug       *bool           `json:"debug"`
	Attestation *string         `json:"attestation"`
	ReportData  *string         `json:"report_data"`
}

// DstackResponse is dstack-verifier's VerificationResponse.
type DstackResponse struct {
	IsValid bool          `json:"is_valid"`
	Details DstackDetails `json:"details"`
	Reason  *string       `json:"reason"`
}

// DstackDetails is dstack-verifier's VerificationDetails.
type DstackDetails struct {
	QuoteVerified       bool                `json:"quote_verified"`
	EventLogVerified    bool                `json:"event_log_verified"`
	OSImageHashVerified bool                `json:"os_image_hash_verified"`
	ACPITablesVerified  bool                `json:"acpi_tables_verified"`
	OSImageIsDev        *bool               `json:"os_image_is_dev"`
	OSImageVersion      *string             `json:"os_image_version"`
	TEEVariant          string              `json:"tee_variant"`
	ReportData          string              `json:"report_data"`
	TCBStatus           string              `json:"tcb_status"`
	AdvisoryIDs         []string            `json:"advisory_ids"`
	KeyProvider         *dstack.KeyProvider `json:"key_provider"`
	AppInfo             *dstack.AppInfo     `json:"app_info"`
	BootInfo            *dstack.BootInfo    `json:"boot_info"`
}

func (s *Service) handleDstack(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req DstackRequest
	body, aerr := s.readJSON(w, r, &req, false)
	if aerr != nil {
		s.fail(w, "/verify", start, aerr, dstackExt(aerr))
		return
	}
	ev := verifier.Evidence{Dstack: body}
	switch {
	case req.Attestation != nil:
		// As dstack-verifier: an attestation wins over the other members.
		ev.Dstack, _ = json.Marshal(map[string]string{"attestation": *req.Attestation})
	case req.Quote == nil:
		aerr := badRequest("malformed_evidence", "give quote (with event_log) or attestation")
		s.fail(w, "/verify", start, aerr, dstackExt(aerr))
		return
	}
	o, err := s.v.Verify(r.Context(), ev)
	if err != nil {
		aerr := verifyError(r.Context(), err)
		s.fail(w, "/verify", start, aerr, dstackExt(aerr))
		return
	}
	s.metrics.observe("/verify", o.Result.Status.String(), time.Since(start))
	writeJSON(w, "application/json", dstackResponse(o.Result))
}

func dstackExt(e *apiError) map[string]any {
	return map[string]any{"is_valid": false, "details": nil, "reason": dstackReasonForProblem(e)}
}

func dstackReasonForProblem(e *apiError) string {
	switch e.code {
	case "malformed_evidence", "malformed_request", "body_too_large":
		return "Quote verification failed: " + e.detail
	}
	return "Internal error: " + e.detail
}

// dstackResponse builds dstack-verifier's response from a verdict.
func dstackResponse(res *verifier.Result) DstackResponse {
	out := DstackResponse{Details: DstackDetails{AdvisoryIDs: []string{}}}
	if d := res.Dstack; d != nil {
		out.Details = DstackDetails{
			QuoteVerified:       d.QuoteVerified,
			EventLogVerified:    d.EventLogVerified,
			OSImageHashVerified: d.OSImageHashVerified,
			ACPITablesVerified:  d.ACPITablesVerified,
			TEEVariant:          d.TEEVariant,
			ReportData:          hex.EncodeToString(d.ReportData),
			TCBStatus:           d.TCBStatus,
			AdvisoryIDs:         d.AdvisoryIDs,
			KeyProvider:         d.KeyProvider,
			AppInfo:             &d.AppInfo,
			BootInfo:            &d.BootInfo,
		}
		if out.Details.AdvisoryIDs == nil {
			out.Details.AdvisoryIDs = []string{}
		}
	}
	var reason string
	switch {
	case !res.Authentic:
		reason = dstackFailure(res.Reason)
	case !res.Allow:
		var parts []string
		if res.Appraisal != nil {
			for _, f := range res.Appraisal.Failed {
				parts = append(parts, f.String())
			}
		}
		reason = "Policy rejected: " + strings.Join(parts, "; ")
	default:
		out.IsValid = true
		return out
	}
	out.Reason = &reason
	return out
}

// dstackFailure prefixes a verification failure as dstack-verifier does.
// Only the cause's text survives in verifier.Result, so it is classified by
// the messages of package dstack's errors.
func dstackFailure(cause string) string {
	switch {
	case strings.Contains(cause, dstack.ErrMeasurement.Error()):
		return "OS image hash verification failed: " + cause
	case strings.Contains(cause, dstack.ErrEventLog.Error()),
		strings.Contains(cause, dstack.ErrMRConfigID.Error()),
		strings.Contains(cause, dstack.ErrReportData.Error()),
		strings.Contains(cause, "dstack: RTMR"), strings.Contains(cause, "preimage"):
		return "Event log verification failed: " + cause
	}
	return "Quote verification failed: " + cause
}

func (s *Service) fail(w http.ResponseWriter, route string, start time.Time, e *apiError, ext map[string]any) {
	s.metrics.observe(route, e.code, time.Since(start))
	if e.status >= 500 {
		s.log.Warn("verifiersvc: request failed", "route", route, "code", e.code, "detail", e.detail)
	}
	writeProblem(w, e.status, e.code, e.detail, ext)
}

func (s *Service) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	doc := s.jwks()
	if len(doc) == 0 {
		writeProblem(w, http.StatusServiceUnavailable, "not_ready", "no signing keys", nil)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(doc)
}

func (s *Service) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, "application/json", map[string]string{"status": "ok", "service": "tdproof"})
}

func (s *Service) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "not_ready", err.Error(), nil)
			return
		}
	}
	writeJSON(w, "application/json", map[string]string{"status": "ready"})
}
