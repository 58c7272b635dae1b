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
)

// String appends s as a JSON string: HTML-escaped, invalid UTF-8 replaced,
// U+2028 and U+2029 escaped, as json.Marshal does.
func String(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

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
