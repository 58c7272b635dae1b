package verifiersvc

import "github.com/tdproof/tdproof/jsonscan"

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
	i := jsonscan.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = jsonscan.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false // an empty object: let encoding/json answer
	}
	var seen [5]bool
	for {
		key, j, ok := jsonscan.PlainString(b, i)
		if !ok {
			return false
		}
		i = jsonscan.SkipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = jsonscan.SkipSpace(b, i+1)
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
			case hasWord(b, i, "true"):
				out.Details, i = true, i+4
			case hasWord(b, i, "false"):
				out.Details, i = false, i+5
			default:
				return false
			}
		} else {
			v, j, ok := jsonscan.PlainString(b, i)
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
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return false
		}
		i = jsonscan.SkipSpace(b, i+1)
	}
	if jsonscan.SkipSpace(b, i+1) != len(b) {
		return false
	}
	*r = out
	return true
}

// hasWord reports whether the word w (true, false, null) is at b[i].
func hasWord(b []byte, i int, w string) bool {
	_, ok := jsonscan.SkipWord(b, i, w)
	return ok
}
