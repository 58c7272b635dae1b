// Package jsonscan reads JSON in place, in one pass, for the fast paths
// that take the usual form of a request body without encoding/json: it
// skips values, checking them as encoding/json would, and reads plain
// strings (printable ASCII without escapes, which encoding/json decodes to
// their bytes). Its callers answer only where they are sure to decode
// what encoding/json decodes and leave every other body to encoding/json;
// FuzzSkipValue holds SkipValue to json.Valid.
package jsonscan

// MaxDepth bounds the nesting SkipValue follows; deeper values are left
// to encoding/json.
const MaxDepth = 64

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte from i on that is not
// JSON white space.
func SkipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// SkipValue returns the end of the JSON value at data[i], which
// encoding/json would accept there; ok is false if it is not one, or nests
// deeper than MaxDepth.
func SkipValue(data []byte, i int) (int, bool) { return skipValue(data, i, 0) }

// skipValue returns the end of the JSON value at data[i], which encoding/json
// would accept there; ok is false if it is not one, or nests deeper than
// MaxDepth.
func skipValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '{' || c == '[':
		if depth >= MaxDepth {
			return 0, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = SkipSpace(data, i+1)
		if i < len(data) && data[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(data) || data[i] != '"' {
					return 0, false
				}
				if i, ok = SkipString(data, i); !ok {
					return 0, false
				}
				i = SkipSpace(data, i)
				if i >= len(data) || data[i] != ':' {
					return 0, false
				}
				i = SkipSpace(data, i+1)
			}
			if i, ok = skipValue(data, i, depth+1); !ok {
				return 0, false
			}
			i = SkipSpace(data, i)
			if i >= len(data) {
				return 0, false
			}
			switch data[i] {
			case ',':
				i = SkipSpace(data, i+1)
			case closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '"':
		return SkipString(data, i)
	case c == 't':
		return SkipWord(data, i, "true")
	case c == 'f':
		return SkipWord(data, i, "false")
	case c == 'n':
		return SkipWord(data, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return SkipNumber(data, i)
	}
	return 0, false
}

// SkipWord returns the index after the word w (true, false, null) at
// data[i]; ok is false if it is not there.
func SkipWord(data []byte, i int, w string) (int, bool) {
	if len(data)-i < len(w) || string(data[i:i+len(w)]) != w {
		return 0, false
	}
	return i + len(w), true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// SkipString returns the end of the string at data[i] (its opening quote):
// bytes from 0x20 on, escapes as RFC 8259 lists them.
func SkipString(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
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

// SkipNumber returns the end of the number at data[i] (RFC 8259's
// grammar, which encoding/json's is); ok is false if none starts there.
func SkipNumber(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
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

// PlainString returns the string at data[i] if it has no escapes and only
// printable ASCII (what encoding/json decodes to its bytes), and its end.
func PlainString(data []byte, i int) (string, int, bool) {
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
