package verifiersvc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/verifier"
)

// ServiceName is the "service" member of GET /health and GET /healthz.
const ServiceName = "tdproof"

// DstackRequest is dstack-verifier's VerificationRequest.
type DstackRequest struct {
	Quote       *string         `json:"quote"`
	EventLog    *string         `json:"event_log"`
	VMConfig    json.RawMessage `json:"vm_config"`
	Debug       *bool           `json:"debug"`
	Attestation *string         `json:"attestation"`
	ReportData  *string         `json:"report_data"`
}

// DstackResponse is dstack-verifier's VerificationResponse. It is the body
// of every answer of POST /verify to a JSON request, valid or not.
type DstackResponse struct {
	IsValid bool          `json:"is_valid"`
	Details DstackDetails `json:"details"`
	Reason  *string       `json:"reason"`
}

// DstackDetails is dstack-verifier's VerificationDetails. The members that
// are null there until a step succeeds are pointers here; boot_info and
// rtmr_debug are omitted when absent, as dstack-verifier does.
type DstackDetails struct {
	QuoteVerified       bool                `json:"quote_verified"`
	EventLogVerified    bool                `json:"event_log_verified"`
	OSImageHashVerified bool                `json:"os_image_hash_verified"`
	ACPITablesVerified  bool                `json:"acpi_tables_verified"`
	OSImageIsDev        *bool               `json:"os_image_is_dev"`
	OSImageVersion      *string             `json:"os_image_version"`
	TEEVariant          *string             `json:"tee_variant"`
	ReportData          *string             `json:"report_data"`
	TCBStatus           *string             `json:"tcb_status"`
	AdvisoryIDs         []string            `json:"advisory_ids"`
	KeyProvider         *dstack.KeyProvider `json:"key_provider"`
	AppInfo             *dstack.AppInfo     `json:"app_info"`
	BootInfo            *dstack.BootInfo    `json:"boot_info,omitempty"`
	RTMRDebug           []RTMRMismatch      `json:"rtmr_debug,omitempty"`
}

// RTMRMismatch is one entry of details.rtmr_debug: a register whose
// expected value (replayed from the event log, or recomputed from the OS
// image's measurement document) differs from the quote's.
type RTMRMismatch struct {
	RTMR     string `json:"rtmr"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	// Events are the log's events for the register; empty when tdproof
	// has no per-event expectation (RTMR0–2).
	Events                 []RTMREvent `json:"events"`
	MissingExpectedDigests []string    `json:"missing_expected_digests,omitempty"`
}

// RTMREvent is one event of an RTMRMismatch. For RTMR3 the expected digest
// is recomputed from the event's name and payload; status is "mismatch"
// when the log's own digest differs from it, else "match".
type RTMREvent struct {
	Index          int     `json:"index"`
	EventType      uint32  `json:"event_type"`
	EventName      string  `json:"event_name"`
	ActualDigest   string  `json:"actual_digest"`
	ExpectedDigest *string `json:"expected_digest,omitempty"`
	PayloadLen     int     `json:"payload_len"`
	Status         string  `json:"status"`
}

// dstack-verifier's reason prefixes.
const (
	reasonQuote    = "Quote verification failed: "
	reasonEventLog = "Event log verification failed: "
	reasonOSImage  = "OS image hash verification failed: "
	reasonInternal = "Internal error: "
	reasonPolicy   = "Policy rejected: "
)

func (s *Service) handleDstack(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, req, aerr := s.readDstack(w, r)
	if aerr != nil {
		// Not a verification failure: the body is not the JSON expected
		// (dstack-verifier's web framework answers 400 or 422 then).
		s.fail(w, "/verify", start, aerr, dstackExt(aerr))
		return
	}
	ev := verifier.Evidence{Dstack: body}
	switch {
	case req.attestation:
		// dstack-verifier lets an attestation win over the other
		// members; tdproof verifies the whole body, so quote, event_log,
		// report_data and vm_config beside it must be its own
		// (dstack.ParseEvidence): one request, one evidence.
	case !req.quote:
		s.dstackError(w, start, badRequest("malformed_evidence", "Quote is required"))
		return
	}
	o, err := s.v.Verify(r.Context(), ev)
	if err != nil {
		aerr := verifyError(r.Context(), err)
		if aerr.code == "request_timeout" {
			s.fail(w, "/verify", start, aerr, dstackExt(aerr))
			return
		}
		s.dstackError(w, start, aerr)
		return
	}
	var cause error
	if res := o.Result; !res.Authentic && (res.DCAP != nil || isNitroVariant(res.TEEVariant) || res.TEEVariant == dstack.TEEVariantSEVSNP) {
		// The quote (or Nitro document, or SEV-SNP report) verified or
		// was checked, and the typed error says which step failed.
		cause = o.Cause
	}
	resp := dstackResponse(o.Result, cause, s.opts.DstackCompatPolicy)
	if !o.Result.Authentic && resp.Details.QuoteVerified && resp.Details.ReportData == nil {
		// A Nitro document verified and a later step failed: its
		// user_data is the attestation's report data.
		if de, err := dstack.ParseEvidence(ev.Dstack); err == nil && de.ReportData != nil {
			rd := hex.EncodeToString(de.ReportData[:])
			resp.Details.ReportData = &rd
		}
	}
	if req.debug {
		resp.Details.RTMRDebug = rtmrDebug(cause, ev.Dstack)
	}
	s.observe(w, "/verify", o.Result.Status.String(), time.Since(start))
	writeJSON(w, "application/json", resp)
}

// readDstack reads a /verify body and its shape: from one pass over the
// usual body, else by decoding it as a DstackRequest.
func (s *Service) readDstack(w http.ResponseWriter, r *http.Request) ([]byte, dstackShape, *apiError) {
	buf := getBuffer()
	defer putBuffer(buf)
	if aerr := s.readBody(w, r, buf); aerr != nil {
		return nil, dstackShape{}, aerr
	}
	shape, ok := dstackShapeFast(buf.Bytes())
	if !ok {
		var req DstackRequest
		if aerr := decodeBody(buf.Bytes(), &req, false); aerr != nil {
			return nil, dstackShape{}, aerr
		}
		shape = shapeOf(&req)
	}
	return bytes.Clone(buf.Bytes()), shape, nil
}

// dstackError answers a failure of the verification pipeline as
// dstack-verifier does: 200, is_valid false, the details of no verified
// step, and the reason. A collateral outage is a quote verification
// failure there; everything else (undecodable evidence, a missing quote)
// an internal error.
func (s *Service) dstackError(w http.ResponseWriter, start time.Time, e *apiError) {
	s.observe(w, "/verify", e.code, time.Since(start))
	if e.status >= 500 {
		s.log.Warn("verifiersvc: request failed", "route", "/verify", "code", e.code, "detail", e.detail)
	}
	prefix := reasonInternal
	if e.code == "collateral_unavailable" {
		prefix = reasonQuote
	}
	reason := prefix + e.detail
	writeJSON(w, "application/json", DstackResponse{Details: emptyDetails(), Reason: &reason})
}

func emptyDetails() DstackDetails { return DstackDetails{AdvisoryIDs: []string{}} }

// dstackExt is the dstack-verifier view added to a problem document.
func dstackExt(e *apiError) map[string]any {
	return map[string]any{"is_valid": false, "details": emptyDetails(), "reason": reasonInternal + e.detail}
}

// dstackResponse builds dstack-verifier's response from a verdict. The
// quote's facts (quote_verified, tee_variant, report_data, tcb_status,
// advisory_ids) are reported whenever the quote verified, also when a
// later step failed; the event-log facts only when every step passed.
// is_valid follows tdproof's policy (the verdict's allow) unless compat
// is set, which gives dstack-verifier's own rule (see
// dstackCompatRejection).
//
// cause is the typed error of the failed event-log checks (Outcome.Cause)
// when the quote verified and the evidence is not authentic, else nil. A
// TD rejected on its attributes (dstack.ErrTDRejected) did not pass
// dstack-verifier's quote step: quote_verified stays false.
func dstackResponse(res *verifier.Result, cause error, compat bool) DstackResponse {
	out := DstackResponse{Details: emptyDetails()}
	det := &out.Details
	platformFailed := platformStepFailed(res.TEEVariant, cause)
	if q := res.DCAP; q != nil && !errors.Is(cause, dstack.ErrTDRejected) && !platformFailed {
		det.QuoteVerified = true
		variant, status := dstack.TEEVariant, q.Status.String()
		if res.TEEVariant != "" {
			variant = res.TEEVariant
		}
		det.TEEVariant, det.TCBStatus = &variant, &status
		if q.TD != nil {
			rd := q.TD.ReportData
			det.ReportData = &rd
		}
		if q.AdvisoryIDs != nil {
			det.AdvisoryIDs = q.AdvisoryIDs
		}
	}
	if d := res.Dstack; d != nil {
		if res.DCAP == nil && d.QuoteVerified {
			// A platform without a DCAP quote (SEV-SNP, Nitro): the
			// dstack result carries the verified report's facts; an
			// empty TCB status (Nitro Enclave) is null.
			variant, status := d.TEEVariant, d.TCBStatus
			det.QuoteVerified, det.TEEVariant = true, &variant
			if status != "" {
				det.TCBStatus = &status
			}
		}
		det.EventLogVerified = d.EventLogVerified
		det.OSImageHashVerified = d.OSImageHashVerified
		det.ACPITablesVerified = d.ACPITablesVerified
		rd := hex.EncodeToString(d.ReportData)
		det.ReportData = &rd
		if d.AdvisoryIDs != nil {
			det.AdvisoryIDs = d.AdvisoryIDs
		}
		det.KeyProvider = d.KeyProvider
		ai, bi := d.AppInfo, d.BootInfo
		if d.Nitro != nil && d.TEEVariant == dstack.TEEVariantNitroEnclave {
			// dstack's /verify reports SHA-256 of module_id up to its
			// first '-' (docs/nitro.md); the native result keeps the
			// whole module_id's.
			ai.DeviceID, bi.DeviceID = d.Nitro.DstackDeviceID, d.Nitro.DstackDeviceID
		}
		det.AppInfo, det.BootInfo = &ai, &bi
	} else if (isNitroVariant(res.TEEVariant) || res.TEEVariant == dstack.TEEVariantSEVSNP) && cause != nil && !platformFailed {
		// The Nitro document or SEV-SNP report verified; a later step
		// (the OS image, for SEV-SNP the launch digest) failed.
		variant := res.TEEVariant
		det.QuoteVerified, det.TEEVariant = true, &variant
		if variant == dstack.TEEVariantAWSNitroTPM {
			status := "UpToDate"
			det.TCBStatus = &status
		}
	}
	var reason string
	switch {
	case !res.Authentic:
		reason = dstackFailure(res.Reason, cause, det.QuoteVerified)
	case compat && res.DCAP == nil:
		reason = dstackCompatOther(res)
	case compat:
		reason = dstackCompatRejection(res)
	case !res.Allow:
		var parts []string
		if res.Appraisal != nil {
			for _, f := range res.Appraisal.Failed {
				parts = append(parts, f.String())
			}
		}
		reason = reasonPolicy + strings.Join(parts, "; ")
	}
	if reason == "" {
		out.IsValid = true
		return out
	}
	out.Reason = &reason
	return out
}

// isNitroVariant reports whether v is a Nitro tee_variant.
func isNitroVariant(v string) bool {
	return v == dstack.TEEVariantNitroEnclave || v == dstack.TEEVariantAWSNitroTPM
}

// platformStepFailed reports whether cause failed dstack-verifier's
// platform step (its quote_verified) for the variants whose platform
// step covers more than the DCAP quote: GCP TDX (the vTPM quote, its
// binding, the PCR14 and RTMR3 replays) and Nitro (the document,
// user_data, NitroTPM's PCR14). The OS-image checks
// (dstack.ErrMeasurement, a debug enclave) come after it.
//
// For SEV-SNP (dstack.VerifySNP verifies the report, its chain and the
// HOST_DATA binding before the launch digest and the event log) only an
// OS-image (launch digest) or event-log failure comes after the
// platform step.
func platformStepFailed(variant string, cause error) bool {
	if cause != nil && variant == dstack.TEEVariantSEVSNP {
		return !errors.Is(cause, dstack.ErrMeasurement) && !errors.Is(cause, dstack.ErrEventLog)
	}
	if cause == nil || (variant != dstack.TEEVariantGCPTDX && !isNitroVariant(variant)) {
		return false
	}
	return !errors.Is(cause, dstack.ErrMeasurement) && !errors.Is(cause, nitro.ErrDebug)
}

// dstackCompatOther is dstack-verifier's is_valid for authentic evidence
// of a platform without a DCAP quote (SEV-SNP, Nitro): every step
// verified. The policy is not consulted. It returns the reason, "" when
// valid.
func dstackCompatOther(res *verifier.Result) string {
	d := res.Dstack
	switch {
	case d == nil:
		return reasonInternal + "no verification result"
	case !d.OSImageHashVerified:
		return reasonOSImage + "not verified"
	case !d.EventLogVerified:
		return reasonEventLog + "not verified"
	}
	return ""
}

// dstackFailure prefixes a verification failure as dstack-verifier does:
// the quote (when it did not verify), the OS image (a register recomputed
// from the image or its measurement document differs) or the event log.
func dstackFailure(reason string, cause error, quoteVerified bool) string {
	switch {
	case !quoteVerified:
		return reasonQuote + reason
	case errors.Is(cause, dstack.ErrMeasurement), errors.Is(cause, nitro.ErrDebug):
		return reasonOSImage + reason
	}
	return reasonEventLog + reason
}

// dstackCompatRejection is dstack-verifier's is_valid for authentic
// evidence: the quote verified with a TCB status other than Revoked, the
// TD is not a DEBUG TD and has no service TD, the event log verified, and
// the OS image was bound (MRTD and RTMR0–2 recomputed from what
// os_image_hash names). The policy is not consulted. It returns the
// reason, "" when valid.
func dstackCompatRejection(res *verifier.Result) string {
	q, d := res.DCAP, res.Dstack
	switch {
	case q == nil || d == nil:
		return reasonInternal + "no verification result"
	case q.Status == collateral.Revoked:
		return reasonQuote + "TCB status is Revoked"
	case q.TD != nil && q.TD.Debug:
		return reasonQuote + dstack.ErrDebugTD.Error()
	case q.TD != nil && strings.Trim(q.TD.MRServiceTD, "0") != "":
		return reasonQuote + dstack.ErrServiceTD.Error()
	case !d.EventLogVerified:
		return reasonEventLog + "not verified"
	case !d.OSImageHashVerified:
		return reasonOSImage + "MRTD and RTMR0-2 were not recomputed from the OS image os_image_hash names (tdproof serve downloads no image; the vm_config carries no tdx_measurement)"
	}
	return ""
}

// rtmrDebug describes a register mismatch as dstack-verifier's rtmr_debug
// does; nil when cause is not a register mismatch. evidence is the
// request's dstack evidence, parsed again only to list RTMR3's events.
func rtmrDebug(cause error, evidence []byte) []RTMRMismatch {
	if cause == nil {
		return nil
	}
	if rm, ok := errors.AsType[*dstack.RTMRMismatchError](cause); ok {
		m := RTMRMismatch{
			RTMR:     fmt.Sprintf("RTMR%d", rm.Index),
			Expected: hex.EncodeToString(rm.Replayed[:]),
			Actual:   hex.EncodeToString(rm.Quoted[:]),
			Events:   []RTMREvent{},
		}
		if rm.Index == 3 {
			if ev, err := dstack.ParseEvidence(evidence); err == nil {
				m.Events = runtimeEventEntries(ev)
			}
		}
		return []RTMRMismatch{m}
	}
	if mm, ok := errors.AsType[*dstack.MeasurementMismatchError](cause); ok && strings.HasPrefix(mm.Register, "RTMR") {
		return []RTMRMismatch{{
			RTMR:     mm.Register,
			Expected: hex.EncodeToString(mm.Expected[:]),
			Actual:   hex.EncodeToString(mm.Quoted[:]),
			Events:   []RTMREvent{},
		}}
	}
	return nil
}

// runtimeEventEntries lists the events replayed into RTMR3, indexed by
// their position in the event log when the log carries them (GetQuote
// JSON), else in the attestation's runtime events.
func runtimeEventEntries(ev *dstack.Evidence) []RTMREvent {
	var idx []int
	for i := range ev.Events {
		if ev.Events[i].IsRuntime() {
			idx = append(idx, i)
		}
	}
	if len(idx) != len(ev.RuntimeEvents) {
		idx = idx[:0]
		for i := range ev.RuntimeEvents {
			idx = append(idx, i)
		}
	}
	out := make([]RTMREvent, 0, len(ev.RuntimeEvents))
	for n := range ev.RuntimeEvents {
		e := &ev.RuntimeEvents[n]
		ent := RTMREvent{
			Index:      idx[n],
			EventType:  uint32(e.Type),
			EventName:  e.Name,
			PayloadLen: len(e.Payload),
			Status:     "match",
		}
		if ent.EventName == "" {
			ent.EventName = "(unnamed)"
		}
		d, err := e.ReplayDigest()
		if err == nil {
			x := hex.EncodeToString(d[:])
			ent.ExpectedDigest = &x
		}
		switch {
		case len(e.Digest) > 0:
			ent.ActualDigest = hex.EncodeToString(e.Digest)
			if err != nil || hex.EncodeToString(e.Digest) != *ent.ExpectedDigest {
				ent.Status = "mismatch"
			}
		case err == nil:
			ent.ActualDigest = *ent.ExpectedDigest
		default:
			ent.Status = "mismatch"
		}
		out = append(out, ent)
	}
	return out
}
