package protocol

import (
	"encoding/json"
	"slices"

	"github.com/tdproof/tdproof/jsonscan"
)

// This file reads the usual form of an Attestation and of TDX evidence —
// the members under their exact names, once each, plain ASCII strings —
// in one pass that takes the base64 quote, most of the message, as it
// stands, where encoding/json scans it byte by byte several times. Any
// other form (escapes, other or repeated names, non-ASCII bytes, deep
// nesting) is left to encoding/json: the fast path answers only where it
// is sure to decode what encoding/json decodes (FuzzAttestationFast,
// FuzzTDXEvidenceFast).

// plainOrNull returns the plain string (jsonscan.PlainString) or null at
// data[i].
func plainOrNull(data []byte, i int) (s string, isNull bool, end int, ok bool) {
	if end, ok := jsonscan.SkipWord(data, i, "null"); ok {
		return "", true, end, true
	}
	s, end, ok = jsonscan.PlainString(data, i)
	return s, false, end, ok
}

// objectAt reads the object at data[i]: member names must be plain
// strings among names, each at most once, and value reads each member's
// value at start and returns its end. It returns the object's end; ok is
// false for any other form.
func objectAt(data []byte, i int, names []string, value func(name string, start int) (int, bool)) (int, bool) {
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	var seen []string
	i = jsonscan.SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		name, j, ok := jsonscan.PlainString(data, i)
		if !ok || !slices.Contains(names, name) || slices.Contains(seen, name) {
			return 0, false
		}
		seen = append(seen, name)
		i = jsonscan.SkipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		end, ok := value(name, jsonscan.SkipSpace(data, i+1))
		if !ok {
			return 0, false
		}
		i = jsonscan.SkipSpace(data, end)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = jsonscan.SkipSpace(data, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// document reads the JSON document data with read (its value at start,
// returning its end): ok only if only whitespace surrounds the value.
func document(data []byte, read func(start int) (int, bool)) bool {
	end, ok := read(jsonscan.SkipSpace(data, 0))
	return ok && jsonscan.SkipSpace(data, end) == len(data)
}

// jwkNames are the members of a JWK JWK.UnmarshalJSON reads, by kty.
var jwkNames = map[string][]string{
	KtyEC:  {"crv", "alg", "x", "y"},
	KtyRSA: {"alg", "n", "e"},
	KtyAKP: {"alg", "pub"},
}

// jwkAt reads a JWK at data[i] as JWK.UnmarshalJSON does, when its members
// are plain strings named as in jwkNames and "kty"; ok is false otherwise
// (including every JWK UnmarshalJSON refuses).
func jwkAt(data []byte, i int, k *JWK) (int, bool) {
	vals := make(map[string]string, 5)
	end, ok := objectAt(data, i, []string{"kty", "crv", "alg", "x", "y", "n", "e", "pub"}, func(name string, start int) (int, bool) {
		s, end, ok := jsonscan.PlainString(data, start)
		vals[name] = s
		return end, ok
	})
	if !ok {
		return 0, false
	}
	kty, ok := vals["kty"]
	names := jwkNames[kty]
	if !ok || names == nil {
		return 0, false
	}
	for _, n := range names {
		if _, ok := vals[n]; !ok {
			return 0, false
		}
	}
	*k = JWK{Kty: kty}
	for _, n := range names {
		switch v := vals[n]; n {
		case "alg":
			k.Alg = v
		case "crv":
			k.Crv = v
		case "x":
			k.X = v
		case "y":
			k.Y = v
		case "n":
			k.N = v
		case "e":
			k.E = v
		case "pub":
			k.Pub = v
		}
	}
	return end, true
}

// attestationFast decodes data as decodeStrict would into an Attestation
// when it has the usual form; ok is false otherwise.
func attestationFast(data []byte) (Attestation, bool) {
	var a Attestation
	ok := document(data, func(i int) (int, bool) {
		return objectAt(data, i, []string{"runtime-data", "tee-evidence"}, func(name string, i int) (int, bool) {
			if name == "runtime-data" {
				return objectAt(data, i, []string{"nonce", "tee-pubkey"}, func(name string, i int) (int, bool) {
					if name == "tee-pubkey" {
						return jwkAt(data, i, &a.RuntimeData.TeePubKey)
					}
					s, _, end, ok := plainOrNull(data, i)
					a.RuntimeData.Nonce = s
					return end, ok
				})
			}
			return objectAt(data, i, []string{"primary_evidence", "additional_evidence"}, func(name string, i int) (int, bool) {
				if name == "primary_evidence" {
					end, ok := jsonscan.SkipValue(data, i)
					if ok {
						a.TeeEvidence.PrimaryEvidence = json.RawMessage(slices.Clone(data[i:end]))
					}
					return end, ok
				}
				s, _, end, ok := plainOrNull(data, i)
				a.TeeEvidence.AdditionalEvidence = s
				return end, ok
			})
		})
	})
	if !ok {
		return Attestation{}, false
	}
	return a, true
}

// tdxEvidenceFast decodes primary evidence as json.Unmarshal would into a
// TDXEvidence when it has the usual form; ok is false otherwise.
func tdxEvidenceFast(data []byte) (TDXEvidence, bool) {
	var ev TDXEvidence
	ok := document(data, func(i int) (int, bool) {
		return objectAt(data, i, []string{"cc_eventlog", "quote", "event_log", "vm_config"}, func(name string, i int) (int, bool) {
			s, isNull, end, ok := plainOrNull(data, i)
			switch name {
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
			return end, ok
		})
	})
	if !ok {
		return TDXEvidence{}, false
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
