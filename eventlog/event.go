package eventlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tdproof/tdproof/jcs"
)

// Event is one measurement event in the common form used for replay: the
// dstack TdxEvent shape, which is what the JSON event log carries and what
// [CCEL.TDXEvents] produces from a binary log.
//
// The zero value is an RTMR0 EV_PREBOOT_CERT event with no digest.
// Slices may alias the input they were parsed from.
type Event struct {
	// IMR is the RTMR index, 0–3 (JSON "imr"; CCEL MR index − 1).
	IMR uint32
	// Type is the event type (JSON "event_type").
	Type EventType
	// Digest is the recorded SHA-384 digest (JSON "digest", hex). It is
	// empty for runtime events in stripped logs. For runtime events it is
	// informational only: replay recomputes it (see [RuntimeDigest]).
	Digest []byte
	// Name is the event name (JSON "event"): the runtime event name, an
	// ACPI label such as "acpi-tables", or empty.
	Name string
	// Payload is the event data (JSON "event_payload", hex). It is empty
	// for boot events in stripped logs.
	Payload []byte
	// Version is the runtime event digest version (JSON "version"): 0
	// when the field is absent, which means version 1; otherwise 1 or 2.
	Version uint32
	// Preimage is the supplied digest preimage (JSON "preimage", hex);
	// nil when the field is absent. Like Digest it is never trusted; see
	// [Event.CheckDigest].
	Preimage []byte
}

// IsRuntime reports whether e is a dstack runtime event (type
// [EvDstackRuntime]).
func (e *Event) IsRuntime() bool { return e.Type == EvDstackRuntime }

// Describe returns a short human-readable summary of the event, for
// display. It never fails: data that does not decode is summarized as
// such.
func (e *Event) Describe() string { return describe(e.Type, e.Payload, e.Name) }

// ParseJSON parses a JSON array of events in the dstack TdxEvent format
// (the "event_log" string of a dstack GetQuote or Tappd response, with the
// outer string already decoded), full or stripped:
//
//	[{"imr":0,"event_type":4,"digest":"<hex>","event":"","event_payload":"<hex>"},
//	 {"imr":3,"event_type":134217729,"digest":"","event":"app-id","event_payload":"<hex>","version":2,"preimage":"<hex>"}]
//
// The JSON must be I-JSON (see package jcs): valid UTF-8, no duplicate
// member names. Member names are matched exactly; unknown members are
// ignored. "imr", "event_type", "event" and "event_payload" are
// required; "digest" defaults to empty; "version" (1 or 2) and
// "preimage" are optional.
//
// On error the result is nil and the error wraps [ErrMalformed] or
// [ErrUnsupported], inside an [*EventError] when one event is at fault.
func ParseJSON(data []byte) ([]Event, error) {
	if err := jcs.Validate(data); err != nil {
		return nil, fmt.Errorf("eventlog: json: %w: %w", ErrMalformed, err)
	}
	// One decoding pass: the array straight into its events' members.
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(data, &objs); err != nil || objs == nil {
		// Not an array of objects: the element-wise path says which
		// element is wrong.
		return parseJSONElements(data)
	}
	events := make([]Event, len(objs))
	for i, m := range objs {
		if m == nil {
			return nil, &EventError{Index: i, Err: fmt.Errorf("%w: event is not a JSON object", ErrMalformed)}
		}
		if err := events[i].decodeMembers(m); err != nil {
			return nil, &EventError{Index: i, Err: err}
		}
	}
	return events, nil
}

// parseJSONElements is ParseJSON's error path for a document that is not
// an array of objects: it decodes element by element to report the
// failing one, and never returns events.
func parseJSONElements(data []byte) ([]Event, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil || raws == nil {
		return nil, fmt.Errorf("eventlog: json: %w: not an array of events", ErrMalformed)
	}
	for i, raw := range raws {
		var e Event
		if err := e.decode(raw); err != nil {
			return nil, &EventError{Index: i, Err: err}
		}
	}
	return nil, fmt.Errorf("eventlog: json: %w: not an array of event objects", ErrMalformed)
}

// ParseEvent parses one JSON event object in the format described at
// [ParseJSON]. On error the result is nil.
func ParseEvent(data []byte) (*Event, error) {
	if err := jcs.Validate(data); err != nil {
		return nil, fmt.Errorf("eventlog: json: %w: %w", ErrMalformed, err)
	}
	e := new(Event)
	if err := e.decode(data); err != nil {
		return nil, fmt.Errorf("eventlog: json: %w", err)
	}
	return e, nil
}

// UnmarshalJSON implements json.Unmarshaler with the rules of
// [ParseEvent].
func (e *Event) UnmarshalJSON(data []byte) error {
	ev, err := ParseEvent(data)
	if err != nil {
		return err
	}
	*e = *ev
	return nil
}

// decode fills e from one JSON object that has already passed
// jcs.Validate. Errors carry no package prefix.
func (e *Event) decode(data []byte) error {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' {
		return fmt.Errorf("%w: event is not a JSON object", ErrMalformed)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return e.decodeMembers(m)
}

// decodeMembers fills e from the members of one JSON event object that
// has already passed jcs.Validate.
func (e *Event) decodeMembers(m map[string]json.RawMessage) error {
	var ev Event
	if err := decodeU32(m, "imr", &ev.IMR, true); err != nil {
		return err
	}
	if ev.IMR > 3 {
		return fmt.Errorf("%w: imr %d is not an RTMR index", ErrMalformed, ev.IMR)
	}
	var typ uint32
	if err := decodeU32(m, "event_type", &typ, true); err != nil {
		return err
	}
	ev.Type = EventType(typ)
	var err error
	if ev.Digest, err = decodeHex(m, "digest", false); err != nil {
		return err
	}
	if ev.Digest == nil {
		ev.Digest = []byte{}
	}
	raw, ok := m["event"]
	if !ok || isNull(raw) {
		return fmt.Errorf("%w: missing field \"event\"", ErrMalformed)
	}
	if name, ok := plainString(raw); ok {
		ev.Name = name
	} else if err := json.Unmarshal(raw, &ev.Name); err != nil {
		return fmt.Errorf("%w: field \"event\": %w", ErrMalformed, err)
	}
	if ev.Payload, err = decodeHex(m, "event_payload", true); err != nil {
		return err
	}
	if err := decodeU32(m, "version", &ev.Version, false); err != nil {
		return err
	}
	if _, present := m["version"]; present && !isNull(m["version"]) && ev.Version != 1 && ev.Version != 2 {
		return fmt.Errorf("%w: runtime event version %d", ErrUnsupported, ev.Version)
	}
	if ev.Preimage, err = decodeHex(m, "preimage", false); err != nil {
		return err
	}
	*e = ev
	return nil
}

// plainString returns the contents of the JSON string literal raw when it
// is printable ASCII without escapes or quotes, where the contents are
// the bytes between the quotes; ok is false for anything else, which the
// caller decodes with encoding/json. It saves two scans of every hex
// field.
func plainString(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(body), true
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// decodeU32 decodes a JSON non-negative integer below 2^32. A missing
// optional field or a null optional field leaves *dst unchanged.
func decodeU32(m map[string]json.RawMessage, key string, dst *uint32, required bool) error {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		if required {
			return fmt.Errorf("%w: missing field %q", ErrMalformed, key)
		}
		return nil
	}
	v, err := strconv.ParseUint(string(raw), 10, 32)
	if err != nil {
		return fmt.Errorf("%w: field %q: not an unsigned 32-bit integer", ErrMalformed, key)
	}
	*dst = uint32(v)
	return nil
}

// decodeHex decodes a JSON string of hex digits (either case). It returns
// nil for a missing optional field or a null optional field, and a non-nil
// slice otherwise.
func decodeHex(m map[string]json.RawMessage, key string, required bool) ([]byte, error) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		if required {
			return nil, fmt.Errorf("%w: missing field %q", ErrMalformed, key)
		}
		return nil, nil
	}
	s, ok := plainString(raw)
	if !ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: field %q: not a string", ErrMalformed, key)
		}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: field %q: %w", ErrMalformed, key, err)
	}
	return b, nil
}

// MarshalEvents encodes events as a compact JSON array in the exact byte
// form dstack emits: members in the order imr, event_type, digest, event,
// event_payload, then version (only if non-zero) and preimage (only if
// non-nil); lowercase hex; strings escaped as serde_json does (which is
// the RFC 8785 string escaping). Parsing dstack output with [ParseJSON]
// and encoding it again reproduces the input bytes.
//
// Use MarshalEvents rather than json.Marshal: encoding/json escapes '<',
// '>' and '&' in names, which dstack does not.
func MarshalEvents(events []Event) []byte {
	n := 2
	for i := range events {
		n += events[i].encodedLen() + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i := range events {
		if i > 0 {
			out = append(out, ',')
		}
		out = events[i].appendJSON(out)
	}
	return append(out, ']')
}

// MarshalJSON implements json.Marshaler with the encoding of
// [MarshalEvents]. Note that json.Marshal re-escapes HTML characters in
// the result.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.appendJSON(make([]byte, 0, e.encodedLen())), nil
}

func (e *Event) encodedLen() int {
	return 96 + 2*(len(e.Digest)+len(e.Payload)+len(e.Preimage)) + len(e.Name)
}

func (e *Event) appendJSON(out []byte) []byte {
	out = append(out, `{"imr":`...)
	out = strconv.AppendUint(out, uint64(e.IMR), 10)
	out = append(out, `,"event_type":`...)
	out = strconv.AppendUint(out, uint64(e.Type), 10)
	out = append(out, `,"digest":"`...)
	out = hex.AppendEncode(out, e.Digest)
	out = append(out, `","event":`...)
	out = appendJSONString(out, e.Name)
	out = append(out, `,"event_payload":"`...)
	out = hex.AppendEncode(out, e.Payload)
	out = append(out, '"')
	if e.Version != 0 {
		out = append(out, `,"version":`...)
		out = strconv.AppendUint(out, uint64(e.Version), 10)
	}
	if e.Preimage != nil {
		out = append(out, `,"preimage":"`...)
		out = hex.AppendEncode(out, e.Preimage)
		out = append(out, '"')
	}
	return append(out, '}')
}

// appendJSONString writes s as a JSON string the way serde_json does:
// '"' and '\\' escaped, \b \t \n \f \r for those controls, \u00xx
// (lowercase) for other controls, everything else verbatim. Invalid UTF-8
// is replaced with U+FFFD, as Rust strings cannot hold it.
func appendJSONString(out []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
		i++
	}
	return append(out, '"')
}

// Strip returns a copy of events reduced the way the dstack guest agent
// reduces the log it returns from GetQuote: boot events keep their digest
// and lose their payload, except the RTMR0 "ACPI DATA" events, which keep
// their 9-byte marker; runtime events keep their payload and lose their
// digest. Name, Version and Preimage are kept. The result shares no
// slices with events except payloads and preimages that are kept.
func Strip(events []Event) []Event {
	out := make([]Event, len(events))
	for i, e := range events {
		switch {
		case e.IsRuntime():
			e.Digest = []byte{}
		case e.IMR == 0 && e.Type == EvPlatformConfigFlags && string(e.Payload) == acpiDataMarker:
			// keep the marker
		default:
			e.Payload = []byte{}
		}
		out[i] = e
	}
	return out
}
