// Package jsonappend appends JSON values byte for byte as encoding/json's
// Marshal writes them. The verification service's hot encoders (claims,
// appraisals, results, EAR payloads) write their known shapes with it
// instead of going through reflection; each of them is tested against
// json.Marshal.
package jsonappend

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// String appends s as a JSON string: HTML-escaped, invalid UTF-8 replaced,
// U+2028 and U+2029 escaped, as json.Marshal does.
func String(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control bytes, and <, >, &
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes json.Marshal copies as they are: printable ASCII
// but for '"', '\\' and the HTML-escaped '<', '>', '&'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Strings appends a list of strings; nil is null, as json.Marshal writes
// a nil slice.
func Strings(dst []byte, l []string) []byte {
	if l == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = String(dst, s)
	}
	return append(dst, ']')
}

// Bool appends true or false.
func Bool(dst []byte, b bool) []byte { return strconv.AppendBool(dst, b) }

// Int appends a decimal integer.
func Int(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// Time appends t as time.Time's MarshalJSON writes it (RFC 3339 with
// nanoseconds). It fails for the times MarshalJSON refuses (years outside
// 0–9999, zone offsets RFC 3339 cannot write).
func Time(dst []byte, t time.Time) ([]byte, error) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		b, err := json.Marshal(t)
		return append(dst, b...), err
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// Key appends a member name and its colon, preceded by a comma unless the
// member is the object's first.
func Key(dst []byte, first bool, name string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = String(dst, name)
	return append(dst, ':')
}

// IntMember is one member of an object of integers (IntObject).
type IntMember struct {
	Name  string
	Value int64
}

// IntObject appends an object of integer members, in the order given, as
// json.Marshal writes a struct of integer fields.
func IntObject(dst []byte, members ...IntMember) []byte {
	dst = append(dst, '{')
	for i, m := range members {
		dst = Key(dst, i == 0, m.Name)
		dst = Int(dst, m.Value)
	}
	return append(dst, '}')
}
