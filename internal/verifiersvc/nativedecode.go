package verifiersvc

// decodeFast decodes the common POST /v1/verify body without
// encoding/json: one object whose members are among quote, cc_eventlog,
// nonce and policy_id (strings of printable ASCII without escapes, as hex
// and base64 are) and details (true or false), each at most once, spelled
// exactly so, with JSON whitespace between tokens and nothing after the
// object. It reports whether the body was of that form; when it was not,
// r is left unchanged and the caller decodes the body with encoding/json,
// whose result and errors are then the reference (FuzzNativeDecodeFast
// checks that both agree wherever decodeFast succeeds). encoding/json
// reads a 20 KB hex quote with its byte-at-a-time scanner twice; this
// reads it once, a byte at a time, with a tighter loop.
func (r *NativeRequest) decodeFast(b []byte) bool {
	var out NativeRequest
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false // an empty object: let encoding/json answer
	}
	var seen [5]bool
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		var k int
		var dst **string
		switch key {
		case "quote":
			k, dst = 0, &out.Quote
		case "cc_eventlog":
			k, dst = 1, &out.CCEventLog
		case "nonce":
			k = 2
		case "policy_id":
			k = 3
		case "details":
			k = 4
		default:
			return false
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		if k == 4 {
			switch {
			case hasPrefixAt(b, i, "true"):
				out.Details, i = true, i+4
			case hasPrefixAt(b, i, "false"):
				out.Details, i = false, i+5
			default:
				return false
			}
		} else {
			v, j, ok := plainString(b, i)
			if !ok {
				return false
			}
			i = j
			switch k {
			case 2:
				out.Nonce = v
			case 3:
				out.PolicyID = v
			default:
				*dst = &v
			}
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return false
	}
	*r = out
	return true
}

// plainString reads the JSON string at b[i:] if it holds only printable
// ASCII other than '"' and '\\', and returns it and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasPrefixAt(b []byte, i int, p string) bool {
	return len(b)-i >= len(p) && string(b[i:i+len(p)]) == p
}
