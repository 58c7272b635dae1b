package protocol

import (
	"encoding/json"
	"slices"
)

// This file reads the usual form of an Attestation and of TDX evidence —
// the members under their exact names, once each, plain ASCII strings —
// in one pass that takes the base64 quote, most of the message, as it
// stands, where encoding/json scans it byte by byte several times. Any
// other form (escapes, other or repeated names, non-ASCII bytes, deep
// nesting) is left to encoding/json: the fast path answers only where it
// is sure to decode what encoding/json decodes (FuzzAttestationFast,
// FuzzTDXEvidenceFast).

// maxFastDepth bounds the nesting skipJSON follows; deeper values are
// left to encoding/json.
const maxFastDepth = 64

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skipJSON returns the end of the JSON value at data[i], which encoding/json
// would accept there; ok is false if it is not one, or nests deeper than
// maxFastDepth.
func skipJSON(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '{' || c == '[':
		if depth >= maxFastDepth {
			return 0, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(data) || data[i] != '"' {
					return 0, false
				}
				if i, ok = skipString(data, i); !ok {
					return 0, false
				}
				i = skipSpace(data, i)
				if i >= len(data) || data[i] != ':' {
					return 0, false
				}
				i = skipSpace(data, i+1)
			}
			if i, ok = skipJSON(data, i, depth+1); !ok {
				return 0, false
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return 0, false
			}
			switch data[i] {
			case ',':
				i = skipSpace(data, i+1)
			case closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '"':
		return skipString(data, i)
	case c == 't':
		return skipWord(data, i, "true")
	case c == 'f':
		return skipWord(data, i, "false")
	case c == 'n':
		return skipWord(data, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return skipNumber(data, i)
	}
	return 0, false
}

func skipWord(data []byte, i int, w string) (int, bool) {
	if len(data)-i < len(w) || string(data[i:i+len(w)]) != w {
		return 0, false
	}
	return i + len(w), true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// skipString returns the end of the string at data[i] (its opening quote):
// bytes from 0x20 on, escapes as RFC 8259 lists them.
func skipString(data []byte, i int) (int, bool) {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(data) {
				return 0, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-i < 5 || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return 0, false
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

func skipNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// plainString returns the string at data[i] if it has no escapes and only
// printable ASCII (what encoding/json decodes to its bytes), and its end.
func plainString(data []byte, i int) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return string(data[i+1 : j]), j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// member is one member of a JSON object: its plain name and the span of
// its value.
type member struct {
	name       string
	start, end int
}

// plainObject returns the members of the object that is all of data
// (surrounding whitespace allowed), whose names must be plain strings
// among names, each at most once; ok is false otherwise or if a value is
// not JSON.
func plainObject(data []byte, names ...string) ([]member, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	var ms []member
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return ms, skipSpace(data, i+1) == len(data)
	}
	for {
		name, j, ok := plainString(data, i)
		if !ok || !slices.Contains(names, name) || slices.ContainsFunc(ms, func(m member) bool { return m.name == name }) {
			return nil, false
		}
		i = skipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		start := skipSpace(data, i+1)
		end, ok := skipJSON(data, start, 1)
		if !ok {
			return nil, false
		}
		ms = append(ms, member{name, start, end})
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return ms, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// plainValue returns the string a member's value is, when it is a plain
// string; isNull when it is null.
func plainValue(data []byte, m member) (s string, isNull, ok bool) {
	v := data[m.start:m.end]
	if string(v) == "null" {
		return "", true, true
	}
	s, end, ok := plainString(data, m.start)
	return s, false, ok && end == m.end
}

// attestationFast decodes data as decodeStrict would into an Attestation
// when it has the usual form; ok is false otherwise.
func attestationFast(data []byte) (a Attestation, ok bool) {
	top, ok := plainObject(data, "runtime-data", "tee-evidence")
	if !ok {
		return Attestation{}, false
	}
	for _, m := range top {
		v := data[m.start:m.end]
		switch m.name {
		case "runtime-data":
			// Small (a nonce and a key): encoding/json, as decodeStrict.
			if string(v) == "null" || json.Unmarshal(v, &a.RuntimeData) != nil {
				return Attestation{}, false
			}
		case "tee-evidence":
			ev, ok := plainObject(v, "primary_evidence", "additional_evidence")
			if !ok {
				return Attestation{}, false
			}
			for _, e := range ev {
				switch e.name {
				case "primary_evidence":
					a.TeeEvidence.PrimaryEvidence = json.RawMessage(slices.Clone(v[e.start:e.end]))
				case "additional_evidence":
					s, isNull, ok := plainValue(v, e)
					if !ok {
						return Attestation{}, false
					}
					if !isNull {
						a.TeeEvidence.AdditionalEvidence = s
					}
				}
			}
		}
	}
	return a, true
}

// tdxEvidenceFast decodes primary evidence as json.Unmarshal would into a
// TDXEvidence when it has the usual form; ok is false otherwise.
func tdxEvidenceFast(data []byte) (ev TDXEvidence, ok bool) {
	ms, ok := plainObject(data, "cc_eventlog", "quote", "event_log", "vm_config")
	if !ok {
		return TDXEvidence{}, false
	}
	for _, m := range ms {
		s, isNull, ok := plainValue(data, m)
		if !ok {
			return TDXEvidence{}, false
		}
		switch m.name {
		case "cc_eventlog":
			if !isNull {
				ev.CCEventLog = &s
			}
		case "quote":
			ev.Quote = s
		case "event_log":
			ev.EventLog = s
		case "vm_config":
			ev.VMConfig = s
		}
	}
	return ev, true
}

// ParseTDXEvidence decodes the primary evidence of a TDX attestation as
// json.Unmarshal does into a TDXEvidence (members matched as encoding/json
// matches them).
func ParseTDXEvidence(primary []byte) (*TDXEvidence, error) {
	if ev, ok := tdxEvidenceFast(primary); ok {
		return &ev, nil
	}
	var ev TDXEvidence
	if err := json.Unmarshal(primary, &ev); err != nil {
		return nil, newErr(ErrMalformed, "TDX evidence", err)
	}
	return &ev, nil
}
