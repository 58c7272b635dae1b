package verifiersvc

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

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
	// Details asks for the result's chain and event_log members
	// (verifier.Evidence.Details).
	Details bool `json:"details,omitempty"`
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
	s.observe(w, "/v1/verify", o.Result.Status.String(), time.Since(start))
	writeNative(w, o)
}

func nativeEvidence(req *NativeRequest) (verifier.Evidence, *apiError) {
	ev := verifier.Evidence{PolicyID: req.PolicyID, Details: req.Details}
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

func (s *Service) fail(w http.ResponseWriter, route string, start time.Time, e *apiError, ext map[string]any) {
	s.observe(w, route, e.code, time.Since(start))
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
	writeJSON(w, "application/json", map[string]string{"status": "ok", "service": ServiceName})
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
