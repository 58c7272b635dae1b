package jcs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects.
const maxDepth = 1000

// Canonicalize returns the RFC 8785 canonical form of the JSON text in
// data. Leading and trailing JSON whitespace is allowed; anything else
// after the value is an error. On error the result is nil and the error is
// a [*SyntaxError].
//
// The result never aliases data.
func Canonicalize(data []byte) ([]byte, error) {
	v, err := parse(data)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data))
	return v.appendTo(out), nil
}

// Validate reports whether data would be accepted by [Canonicalize],
// without producing the canonical form. It returns nil or the same error
// Canonicalize would return.
func Validate(data []byte) error {
	_, err := parse(data)
	return err
}

// Marshal returns the canonical JSON encoding of v: the output of
// json.Marshal(v) passed through [Canonicalize]. Integers beyond ±2^53
// lose precision, as RFC 8785 requires.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("jcs: %w", err)
	}
	return Canonicalize(b)
}

type kind uint8

const (
	kindLiteral kind = iota // true, false, null, or a number: text is emitted as is
	kindString              // text is the decoded string
	kindArray
	kindObject
)

type member struct {
	key string
	val value
}

type value struct {
	kind    kind
	text    string
	elems   []value  // kindArray
	members []member // kindObject, sorted after parsing
}

func (v *value) appendTo(dst []byte) []byte {
	switch v.kind {
	case kindLiteral:
		return append(dst, v.text...)
	case kindString:
		return appendString(dst, v.text)
	case kindArray:
		dst = append(dst, '[')
		for i := range v.elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = v.elems[i].appendTo(dst)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i := range v.members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, v.members[i].key)
			dst = append(dst, ':')
			dst = v.members[i].val.appendTo(dst)
		}
		return append(dst, '}')
	}
}

// appendString writes s as a JSON string with the escaping of
// RFC 8785 §3.2.2.2: '"' and '\\' are escaped, the control characters
// U+0008, U+0009, U+000A, U+000C and U+000D use their two-character
// escapes, other characters below U+0020 use \u00xx with lowercase hex,
// and everything else is written as UTF-8 unchanged.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785
// §3.2.3). Both strings must be valid UTF-8.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if ua[0] != ub[0] {
				return int(ua[0]) - int(ub[0])
			}
			return int(ua[1]) - int(ub[1])
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Units returns the UTF-16 encoding of r; the second unit is 0 for
// runes in the Basic Multilingual Plane.
func utf16Units(r rune) [2]uint16 {
	if r < 0x10000 {
		return [2]uint16{uint16(r), 0}
	}
	hi, lo := utf16.EncodeRune(r)
	return [2]uint16{uint16(hi), uint16(lo)}
}

type parser struct {
	data []byte
	pos  int
}

func parse(data []byte) (value, error) {
	p := parser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return value{}, p.errorf(ErrSyntax, "unexpected data after top-level value")
	}
	return v, nil
}

func (p *parser) errorf(cat error, format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Err: fmt.Errorf("%w: "+format, append([]any{cat}, args...)...)}
}

func (p *parser) unexpected() error {
	if p.pos >= len(p.data) {
		return p.errorf(ErrSyntax, "unexpected end of input")
	}
	return p.errorf(ErrSyntax, "unexpected character %q", p.data[p.pos])
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (value, error) {
	if p.pos >= len(p.data) {
		return value{}, p.unexpected()
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		return value{kind: kindString, text: s}, err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return value{}, p.unexpected()
	}
}

func (p *parser) literal(lit string) (value, error) {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return value{}, p.errorf(ErrSyntax, "invalid literal")
	}
	p.pos += len(lit)
	return value{kind: kindLiteral, text: lit}, nil
}

func (p *parser) array(depth int) (value, error) {
	if depth > maxDepth {
		return value{}, p.errorf(ErrSyntax, "nesting deeper than %d", maxDepth)
	}
	p.pos++ // '['
	v := value{kind: kindArray}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		e, err := p.value(depth)
		if err != nil {
			return value{}, err
		}
		v.elems = append(v.elems, e)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.unexpected()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return value{}, p.unexpected()
		}
	}
}

func (p *parser) object(depth int) (value, error) {
	if depth > maxDepth {
		return value{}, p.errorf(ErrSyntax, "nesting deeper than %d", maxDepth)
	}
	start := p.pos
	p.pos++ // '{'
	v := value{kind: kindObject}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return value{}, p.unexpected()
		}
		key, err := p.str()
		if err != nil {
			return value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return value{}, p.unexpected()
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return value{}, err
		}
		v.members = append(v.members, member{key: key, val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return value{}, p.unexpected()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			continue
		case '}':
			p.pos++
		default:
			return value{}, p.unexpected()
		}
		break
	}
	slices.SortFunc(v.members, func(a, b member) int { return compareUTF16(a.key, b.key) })
	for i := 1; i < len(v.members); i++ {
		if v.members[i-1].key == v.members[i].key {
			return value{}, &SyntaxError{Offset: start, Err: fmt.Errorf("%w: %q", ErrDuplicateKey, v.members[i].key)}
		}
	}
	return v, nil
}

// str parses a string starting at the opening quote and returns its
// decoded value.
func (p *parser) str() (string, error) {
	p.pos++ // opening '"'
	// Fast path: no escapes.
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			if !utf8.Valid(s) {
				return "", p.invalidUTF8(start)
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := make([]byte, 0, p.pos-start+16)
	p.pos = start
	for {
		if p.pos >= len(p.data) {
			return "", p.errorf(ErrSyntax, "unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf(ErrSyntax, "control character %#02x in string", c)
		case c == '\\':
			var err error
			if buf, err = p.escape(buf); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.pos++
		default:
			r, n := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && n <= 1 {
				return "", p.errorf(ErrSyntax, "invalid UTF-8")
			}
			buf = append(buf, p.data[p.pos:p.pos+n]...)
			p.pos += n
		}
	}
}

// invalidUTF8 reports the offset of the first invalid UTF-8 sequence at or
// after start.
func (p *parser) invalidUTF8(start int) error {
	for i := start; i < p.pos; {
		r, n := utf8.DecodeRune(p.data[i:p.pos])
		if r == utf8.RuneError && n <= 1 {
			p.pos = i
			break
		}
		i += n
	}
	return p.errorf(ErrSyntax, "invalid UTF-8")
}

// escape decodes the escape sequence at p.pos (a backslash) and appends
// its UTF-8 encoding to buf.
func (p *parser) escape(buf []byte) ([]byte, error) {
	if p.pos+1 >= len(p.data) {
		return nil, p.errorf(ErrSyntax, "unterminated escape")
	}
	c := p.data[p.pos+1]
	var out byte
	switch c {
	case '"', '\\', '/':
		out = c
	case 'b':
		out = '\b'
	case 'f':
		out = '\f'
	case 'n':
		out = '\n'
	case 'r':
		out = '\r'
	case 't':
		out = '\t'
	case 'u':
		r, ok := p.hex4(p.pos + 2)
		if !ok {
			return nil, p.errorf(ErrSyntax, "invalid \\u escape")
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00:
			// A high surrogate must be followed by an escaped low one.
			lo, ok := rune(0), false
			if p.pos+7 < len(p.data) && p.data[p.pos+6] == '\\' && p.data[p.pos+7] == 'u' {
				lo, ok = p.hex4(p.pos + 8)
			}
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return nil, p.errorf(ErrSyntax, "unpaired surrogate \\u%04x", r)
			}
			p.pos += 12
			return utf8.AppendRune(buf, utf16.DecodeRune(r, lo)), nil
		case utf16.IsSurrogate(r):
			return nil, p.errorf(ErrSyntax, "unpaired surrogate \\u%04x", r)
		}
		p.pos += 6
		return utf8.AppendRune(buf, r), nil
	default:
		return nil, p.errorf(ErrSyntax, "invalid escape character %q", c)
	}
	p.pos += 2
	return append(buf, out), nil
}

// hex4 decodes four hex digits at offset i.
func (p *parser) hex4(i int) (rune, bool) {
	if i+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[i : i+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// number parses a JSON number (RFC 8259 §6 grammar) and returns its
// canonical serialization.
func (p *parser) number() (value, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return value{}, p.errorf(ErrSyntax, "invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return value{}, p.errorf(ErrSyntax, "invalid number: no digits after decimal point")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return value{}, p.errorf(ErrSyntax, "invalid number: no digits in exponent")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	f, err := strconv.ParseFloat(string(d[start:i]), 64)
	if err != nil {
		// The grammar was checked above, so the only failure is overflow.
		return value{}, p.errorf(ErrNumber, "%s", d[start:i])
	}
	s, err := formatNumber(f)
	if err != nil {
		return value{}, p.errorf(ErrNumber, "%s", d[start:i])
	}
	p.pos = i
	return value{kind: kindLiteral, text: s}, nil
}
