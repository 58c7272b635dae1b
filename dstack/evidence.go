package dstack

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/jcs"
	"github.com/tdproof/tdproof/quote"
)

// Format names the form evidence arrived in.
type Format string

// Evidence formats.
const (
	// FormatGetQuote is the guest agent's GetQuote JSON (or a
	// dstack-verifier request with quote, event_log and vm_config).
	FormatGetQuote Format = "getquote"
	// FormatAttestation is a VersionedAttestation, raw or as
	// {"attestation": hex}.
	FormatAttestation Format = "attestation"
	// FormatRATLS is a dstack RA-TLS certificate.
	FormatRATLS Format = "ratls-cert"
)

// MaxEvidenceSize bounds the input of ParseEvidence: a hex-encoded
// attestation of MaxAttestationSize plus room for JSON.
const MaxEvidenceSize = 2*MaxAttestationSize + 1<<20

// Evidence is parsed dstack evidence: a TDX quote with its event log, the
// runtime events to replay into RTMR3 and what else the format carries.
// Nothing in it is verified; see Verify.
type Evidence struct {
	// Format is the form the evidence arrived in.
	Format Format
	// Quote is the parsed TDX quote.
	Quote *quote.Quote
	// Events is the event log as carried, boot and runtime events in log
	// order (stripped logs lack boot payloads, and attestations in RA-TLS
	// certificates lack most boot events).
	Events []eventlog.Event
	// RuntimeEvents are the events replayed into RTMR3: the events of
	// type EvDstackRuntime of the log (selected by type, as dstack does)
	// or, for attestations, the stack's runtime events.
	RuntimeEvents []eventlog.Event
	// ReportData is the report data the evidence claims next to the quote
	// (GetQuote's "report_data", zero-padded; the attestation's), or nil.
	ReportData *[64]byte
	// Config is the VM configuration JSON as carried ("" when absent);
	// VMConfig is its parse, nil when absent.
	Config   string
	VMConfig *VMConfig
	// Attestation is the decoded VersionedAttestation (FormatAttestation,
	// and FormatRATLS with extension .1.8).
	Attestation *Attestation
	// Certificate is the RA-TLS certificate (FormatRATLS).
	Certificate *RATLSCertificate
}

// ParseEvidence detects the format of data and parses it:
//
//   - a JSON object with a non-empty "attestation" member: the hex
//     VersionedAttestation; unknown members are ignored, as
//     dstack-verifier does, but quote, event_log, report_data and
//     vm_config, when present, must be the attestation's own (dstack
//     ignores them: one request must not carry two evidences);
//   - any other JSON object: GetQuote JSON with "quote" (hex, required),
//     "event_log" (a JSON string holding the event array, or the array
//     itself), "report_data" (hex, at most 64 bytes) and "vm_config" (a
//     JSON string or object, flat or nested sys-config); unknown members
//     are ignored, duplicate members rejected;
//   - PEM: the first CERTIFICATE block, an RA-TLS certificate;
//   - binary starting with 0x30: a DER RA-TLS certificate;
//   - binary starting with 0x00 or a msgpack map: a VersionedAttestation.
//
// On error the result is nil and the error wraps ErrMalformed or
// ErrUnsupported (and is usually a *ParseError).
func ParseEvidence(data []byte) (*Evidence, error) {
	if len(data) > MaxEvidenceSize {
		return nil, malformed("evidence", 0, "%d bytes exceed the %d byte limit", len(data), MaxEvidenceSize)
	}
	text := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(text) > 0 && text[0] == '{':
		return parseJSONEvidence(text)
	case bytes.HasPrefix(text, []byte("-----BEGIN")):
		rest := text
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				return nil, malformed("evidence", -1, "PEM without a CERTIFICATE block")
			}
			if blk.Type == "CERTIFICATE" {
				return parseRATLS(blk.Bytes)
			}
		}
	case len(data) > 0 && data[0] == 0x30:
		return parseRATLS(data)
	case len(data) == 0:
		return nil, malformed("evidence", 0, "empty")
	default:
		a, err := ParseAttestation(data)
		if err != nil {
			return nil, err
		}
		return a.Evidence()
	}
}

// Evidence returns the evidence an attestation carries: its quote parsed,
// its event log, its runtime events as replayable events (which must agree
// with any runtime events in the event log), its report data and its VM
// configuration.
func (a *Attestation) Evidence() (*Evidence, error) {
	if a.SNP != nil {
		return a.snpEvidence()
	}
	if a.Platform == PlatformNitroEnclave || a.Platform == PlatformAWSNitroTPM {
		return a.nitroEvidence()
	}
	q, err := quote.Parse(a.Quote)
	if err != nil {
		return nil, wrapParse("quote", err)
	}
	rt, err := a.runtimeEvents()
	if err != nil {
		return nil, err
	}
	rd := a.ReportData
	ev := &Evidence{
		Format:        FormatAttestation,
		Quote:         q,
		Events:        a.EventLog,
		RuntimeEvents: rt,
		ReportData:    &rd,
		Attestation:   a,
	}
	if err := ev.setConfig([]byte(a.Config)); err != nil {
		return nil, err
	}
	return ev, nil
}

func (ev *Evidence) setConfig(cfg []byte) error {
	ev.Config = string(cfg)
	if len(bytes.TrimSpace(cfg)) == 0 {
		return nil
	}
	c, err := ParseVMConfig(cfg)
	if err != nil {
		return err
	}
	ev.VMConfig = c
	return nil
}

func parseJSONEvidence(data []byte) (*Evidence, error) {
	if err := jcs.Validate(data); err != nil {
		return nil, &ParseError{Field: "evidence", Offset: -1, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, malformed("evidence", -1, "%v", err)
	}
	if raw, ok := obj["attestation"]; ok {
		s, err := jsonString("attestation", raw)
		if err != nil {
			return nil, err
		}
		if s != "" {
			b, err := decodeHexField("attestation", s)
			if err != nil {
				return nil, err
			}
			a, err := ParseAttestation(b)
			if err != nil {
				return nil, err
			}
			ev, err := a.Evidence()
			if err != nil {
				return nil, err
			}
			if err := sameBeside(obj, ev); err != nil {
				return nil, err
			}
			return ev, nil
		}
	}
	raw, ok := obj["quote"]
	if !ok {
		return nil, malformed("evidence", -1, "neither \"attestation\" nor \"quote\" present")
	}
	qs, err := jsonString("quote", raw)
	if err != nil {
		return nil, err
	}
	qb, err := decodeHexField("quote", qs)
	if err != nil {
		return nil, err
	}
	q, err := quote.Parse(qb)
	if err != nil {
		return nil, wrapParse("quote", err)
	}
	ev := &Evidence{Format: FormatGetQuote, Quote: q}
	if raw, ok := obj["event_log"]; ok {
		js, err := stringOrJSON("event_log", raw)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(js)) != 0 {
			if ev.Events, err = eventlog.ParseJSON(js); err != nil {
				return nil, wrapParse("event_log", err)
			}
		}
		ev.RuntimeEvents = eventlog.RuntimeEvents(ev.Events)
	}
	if raw, ok := obj["report_data"]; ok {
		s, err := jsonString("report_data", raw)
		if err != nil {
			return nil, err
		}
		if s != "" {
			b, err := decodeHexField("report_data", s)
			if err != nil {
				return nil, err
			}
			if len(b) > 64 {
				return nil, malformed("report_data", -1, "%d bytes, at most 64", len(b))
			}
			var rd [64]byte
			copy(rd[:], b)
			ev.ReportData = &rd
		}
	}
	if raw, ok := obj["vm_config"]; ok {
		cfg, err := stringOrJSON("vm_config", raw)
		if err != nil {
			return nil, err
		}
		if err := ev.setConfig(cfg); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// sameBeside refuses GetQuote members (quote, event_log, report_data,
// vm_config) beside a non-empty "attestation" unless they carry the
// attestation's own values: one request holds one evidence, and only the
// attestation is verified. null and "" count as absent.
func sameBeside(obj map[string]json.RawMessage, ev *Evidence) error {
	member := func(name string) ([]byte, error) {
		raw, ok := obj[name]
		if !ok {
			return nil, nil
		}
		return stringOrJSON(name, raw)
	}
	differs := func(name string) error {
		return malformed(name, -1, "beside an attestation, must be the attestation's own (one evidence per request)")
	}
	if s, err := member("quote"); err != nil {
		return err
	} else if len(s) > 0 {
		b, err := decodeHexField("quote", string(s))
		if err != nil {
			return err
		}
		if !bytes.Equal(b, ev.Attestation.Quote) {
			return differs("quote")
		}
	}
	if s, err := member("event_log"); err != nil {
		return err
	} else if len(bytes.TrimSpace(s)) > 0 {
		evs, err := eventlog.ParseJSON(s)
		if err != nil {
			return wrapParse("event_log", err)
		}
		if !sameEvents(ev, evs) {
			return differs("event_log")
		}
	}
	if s, err := member("report_data"); err != nil {
		return err
	} else if len(s) > 0 {
		b, err := decodeHexField("report_data", string(s))
		if err != nil {
			return err
		}
		var rd [64]byte
		if len(b) > len(rd) {
			return differs("report_data")
		}
		copy(rd[:], b)
		if rd != *ev.ReportData {
			return differs("report_data")
		}
	}
	if s, err := member("vm_config"); err != nil {
		return err
	} else if len(bytes.TrimSpace(s)) > 0 && string(s) != ev.Config {
		return differs("vm_config")
	}
	return nil
}

// jsonString decodes a JSON string member; null gives "".
func jsonString(field string, raw json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed(field, -1, "not a string")
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// stringOrJSON returns the text of a member that is either a JSON string
// holding JSON text or the JSON value itself; null gives nil.
func stringOrJSON(field string, raw json.RawMessage) ([]byte, error) {
	t := bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(t, []byte("null")):
		return nil, nil
	case len(t) > 0 && t[0] == '"':
		s, err := jsonString(field, t)
		return []byte(s), err
	default:
		return t, nil
	}
}

// wrapParse wraps an error from package quote or eventlog into a
// *ParseError with this package's category sentinel.
func wrapParse(field string, err error) error {
	cat := ErrMalformed
	if errors.Is(err, quote.ErrUnsupported) || errors.Is(err, eventlog.ErrUnsupported) {
		cat = ErrUnsupported
	}
	return &ParseError{Field: field, Offset: -1, Err: fmt.Errorf("%w: %w", cat, err)}
}
