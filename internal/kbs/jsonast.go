package kbs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tdproof/tdproof/jsonscan"
)

// maxJSONDepth bounds the nesting of a document jsonValue decodes (as
// encoding/json does).
const maxJSONDepth = 10000

// jsonValue decodes exactly one JSON document (RFC 8259, surrounding
// whitespace allowed) into the OPA value ast.ValueFromReader makes of it:
// numbers kept as written (ast.NumberChecked), strings as encoding/json
// decodes them (invalid UTF-8 replaced by U+FFFD), the last of duplicate
// object members. It builds the value directly, without the Go values
// (map[string]any) in between.
func jsonValue(data []byte) (ast.Value, error) {
	p := jsonParser{data: data}
	p.space()
	t, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.data) {
		return nil, p.errorf("data after the document")
	}
	return t.Value, nil
}

type jsonParser struct {
	data []byte
	pos  int
}

var errJSONEnd = errors.New("kbs: JSON: unexpected end of input")

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("kbs: JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) space() { p.pos = jsonscan.SkipSpace(p.data, p.pos) }

func (p *jsonParser) value(depth int) (*ast.Term, error) {
	if p.pos >= len(p.data) {
		return nil, errJSONEnd
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return nil, p.errorf("nested too deeply")
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= maxJSONDepth {
			return nil, p.errorf("nested too deeply")
		}
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return ast.StringTerm(s), nil
	case c == 't':
		return p.literal("true", ast.BooleanTerm(true))
	case c == 'f':
		return p.literal("false", ast.BooleanTerm(false))
	case c == 'n':
		return p.literal("null", ast.NullTerm())
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return nil, p.errorf("unexpected %q", p.data[p.pos])
}

func (p *jsonParser) literal(word string, t *ast.Term) (*ast.Term, error) {
	end, ok := jsonscan.SkipWord(p.data, p.pos, word)
	if !ok {
		return nil, p.errorf("invalid literal")
	}
	p.pos = end
	return t, nil
}

func (p *jsonParser) object(depth int) (*ast.Term, error) {
	p.pos++ // '{'
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return ast.NewTerm(ast.NewObject()), nil
	}
	var kvs [][2]*ast.Term
	for {
		if p.pos >= len(p.data) {
			return nil, errJSONEnd
		}
		if p.data[p.pos] != '"' {
			return nil, p.errorf("object key is not a string")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("missing ':' after an object key")
		}
		p.pos++
		p.space()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, [2]*ast.Term{ast.StringTerm(k), v})
		p.space()
		if p.pos >= len(p.data) {
			return nil, errJSONEnd
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.space()
		case '}':
			p.pos++
			return ast.NewTerm(newObject(kvs)), nil
		default:
			return nil, p.errorf("missing ',' or '}' in an object")
		}
	}
}

// newObject is the object of the members kvs (string keys); of duplicate
// keys the last member counts, as in encoding/json's map.
func newObject(kvs [][2]*ast.Term) ast.Object {
	dup := false
	if len(kvs) <= 32 {
		for i := 1; i < len(kvs) && !dup; i++ {
			for j := range i {
				if kvs[i][0].Value.(ast.String) == kvs[j][0].Value.(ast.String) {
					dup = true
					break
				}
			}
		}
	} else {
		seen := make(map[ast.String]struct{}, len(kvs))
		for _, kv := range kvs {
			k := kv[0].Value.(ast.String)
			if _, ok := seen[k]; ok {
				dup = true
				break
			}
			seen[k] = struct{}{}
		}
	}
	if !dup {
		return ast.NewObject(kvs...)
	}
	obj := ast.NewObjectWithCapacity(len(kvs))
	for _, kv := range kvs {
		obj.Insert(kv[0], kv[1])
	}
	return obj
}

func (p *jsonParser) array(depth int) (*ast.Term, error) {
	p.pos++ // '['
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return ast.NewTerm(ast.NewArray()), nil
	}
	var elems []*ast.Term
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		p.space()
		if p.pos >= len(p.data) {
			return nil, errJSONEnd
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.space()
		case ']':
			p.pos++
			return ast.NewTerm(ast.NewArray(elems...)), nil
		default:
			return nil, p.errorf("missing ',' or ']' in an array")
		}
	}
}

// str decodes the string at p.pos (its opening quote), which
// jsonscan.SkipString delimits and checks. A string without escapes of
// valid UTF-8 is its bytes; any other is decoded by encoding/json, whose
// rules (escapes, replacement of invalid UTF-8) it then follows exactly.
func (p *jsonParser) str() (string, error) {
	start := p.pos
	end, ok := jsonscan.SkipString(p.data, start)
	if !ok {
		return "", p.errorf("invalid string")
	}
	p.pos = end
	if s := p.data[start+1 : end-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), nil
	}
	var s string
	if err := json.Unmarshal(p.data[start:end], &s); err != nil {
		return "", fmt.Errorf("kbs: JSON string at offset %d: %w", start, err)
	}
	return s, nil
}

// number decodes the number at p.pos as written (RFC 8259's grammar,
// jsonscan.SkipNumber).
func (p *jsonParser) number() (*ast.Term, error) {
	start := p.pos
	end, ok := jsonscan.SkipNumber(p.data, start)
	if !ok {
		return nil, p.errorf("invalid number")
	}
	p.pos = end
	s := string(p.data[start:p.pos])
	if t := ast.InternedIntNumberTermFromString(s); t != nil {
		return ast.NewTerm(t.Value), nil
	}
	n, err := ast.NumberChecked(s)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(n), nil
}
