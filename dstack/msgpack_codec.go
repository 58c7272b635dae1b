package dstack

import (
	"bytes"
	"io"
	"math"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Strict msgpack reading and shortest-form writing on top of
// github.com/vmihailenco/msgpack/v5's low-level coder. Every value's type
// code is checked before it is decoded (the library's decoders convert
// between types), lengths are checked against the remaining input before
// anything is allocated, and nesting is bounded.

const mpMaxDepth = 32

type mpReader struct {
	b   []byte // the whole input, for offsets
	end int    // end of the region being read
	r   *bytes.Reader
	d   *msgpack.Decoder
}

// newMPReader reads b[start:end]; offsets stay relative to b.
func newMPReader(b []byte, start, end int) *mpReader {
	r := bytes.NewReader(b[start:end])
	return &mpReader{b: b, end: end, r: r, d: msgpack.NewDecoder(r)}
}

func (m *mpReader) off() int { return m.end - m.r.Len() }

func (m *mpReader) peek(field string) (byte, error) {
	c, err := m.d.PeekCode()
	if err != nil {
		return 0, malformed(field, m.off(), "truncated")
	}
	return c, nil
}

func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }
func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func (m *mpReader) mapLen(field string) (int, error) {
	off := m.off()
	c, err := m.peek(field)
	if err != nil {
		return 0, err
	}
	if !isMap(c) {
		return 0, malformed(field, off, "expected a map, found code 0x%02x", c)
	}
	n, err := m.d.DecodeMapLen()
	if err != nil {
		return 0, malformed(field, off, "truncated map header")
	}
	if n > m.r.Len()/2 {
		return 0, malformed(field, off, "map of %d entries exceeds the input", n)
	}
	return n, nil
}

func (m *mpReader) arrayLen(field string) (int, error) {
	off := m.off()
	c, err := m.peek(field)
	if err != nil {
		return 0, err
	}
	if !isArray(c) {
		return 0, malformed(field, off, "expected an array, found code 0x%02x", c)
	}
	n, err := m.d.DecodeArrayLen()
	if err != nil {
		return 0, malformed(field, off, "truncated array header")
	}
	if n > m.r.Len() {
		return 0, malformed(field, off, "array of %d elements exceeds the input", n)
	}
	return n, nil
}

// lenBytes reads a str or bin value whose code has been checked.
func (m *mpReader) lenBytes(field string, off int) ([]byte, error) {
	n, err := m.d.DecodeBytesLen()
	if err != nil {
		return nil, malformed(field, off, "truncated length")
	}
	if n < 0 || n > m.r.Len() {
		return nil, malformed(field, off, "length %d exceeds the input", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(m.r, b); err != nil {
		return nil, malformed(field, off, "truncated")
	}
	return b, nil
}

func (m *mpReader) str(field string) (string, error) {
	off := m.off()
	c, err := m.peek(field)
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", malformed(field, off, "expected a string, found code 0x%02x", c)
	}
	b, err := m.lenBytes(field, off)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", malformed(field, off, "string is not valid UTF-8")
	}
	return string(b), nil
}

// binary reads a byte string given as bin or as an array of integers
// 0–255; it reports which. An empty result is nil.
func (m *mpReader) binary(field string) ([]byte, bool, error) {
	off := m.off()
	c, err := m.peek(field)
	if err != nil {
		return nil, false, err
	}
	switch {
	case msgpcode.IsBin(c):
		b, err := m.lenBytes(field, off)
		if len(b) == 0 {
			b = nil
		}
		return b, false, err
	case isArray(c):
		n, err := m.arrayLen(field)
		if err != nil {
			return nil, true, err
		}
		var b []byte
		if n > 0 {
			b = make([]byte, n)
		}
		for i := range b {
			v, err := m.uint(field, math.MaxUint8)
			if err != nil {
				return nil, true, err
			}
			b[i] = byte(v)
		}
		return b, true, nil
	default:
		return nil, false, malformed(field, off, "expected bytes, found code 0x%02x", c)
	}
}

func (m *mpReader) uint(field string, limit uint64) (uint64, error) {
	off := m.off()
	c, err := m.peek(field)
	if err != nil {
		return 0, err
	}
	var v uint64
	switch c {
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
		v, err = m.d.DecodeUint64()
	case msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		var i int64
		i, err = m.d.DecodeInt64()
		if err == nil && i < 0 {
			return 0, malformed(field, off, "negative integer %d", i)
		}
		v = uint64(i)
	default:
		if c > msgpcode.PosFixedNumHigh {
			return 0, malformed(field, off, "expected an unsigned integer, found code 0x%02x", c)
		}
		v, err = m.d.DecodeUint64()
	}
	if err != nil {
		return 0, malformed(field, off, "truncated integer")
	}
	if v > limit {
		return 0, malformed(field, off, "integer %d out of range", v)
	}
	return v, nil
}

// skip skips one value of any type except extensions.
func (m *mpReader) skip(field string, depth int) error {
	off := m.off()
	if depth > mpMaxDepth {
		return malformed(field, off, "nesting deeper than %d", mpMaxDepth)
	}
	c, err := m.peek(field)
	if err != nil {
		return err
	}
	switch {
	case isMap(c), isArray(c):
		var n int
		if isMap(c) {
			n, err = m.mapLen(field)
			n *= 2
		} else {
			n, err = m.arrayLen(field)
		}
		if err != nil {
			return err
		}
		for range n {
			if err := m.skip(field, depth+1); err != nil {
				return err
			}
		}
		return nil
	case msgpcode.IsString(c), msgpcode.IsBin(c):
		_, err := m.lenBytes(field, off)
		return err
	case msgpcode.IsExt(c):
		return malformed(field, off, "msgpack extension types are not supported")
	default:
		if err := m.d.Skip(); err != nil {
			return malformed(field, off, "invalid value code 0x%02x", c)
		}
		return nil
	}
}

// raw returns the bounds of the next value and skips it.
func (m *mpReader) raw(field string) ([2]int, error) {
	start := m.off()
	if err := m.skip(field, 1); err != nil {
		return [2]int{}, err
	}
	return [2]int{start, m.off()}, nil
}

// fields reads a map with string keys and calls fn for each; a key fn
// does not handle is skipped. It returns the keys seen.
func (m *mpReader) fields(field string, fn func(key string) (bool, error)) (map[string]bool, error) {
	n, err := m.mapLen(field)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, n)
	for range n {
		off := m.off()
		k, err := m.str(field + " key")
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, malformed(field, off, "duplicate field %q", k)
		}
		seen[k] = true
		ok, err := fn(k)
		if err != nil {
			return nil, err
		}
		if !ok {
			if err := m.skip(field+"."+k, 1); err != nil {
				return nil, err
			}
		}
	}
	return seen, nil
}

func (m *mpReader) require(field string, off int, seen map[string]bool, keys ...string) error {
	for _, k := range keys {
		if !seen[k] {
			return malformed(field, off, "missing field %q", k)
		}
	}
	return nil
}

// sub returns a reader for a value captured by raw.
func (m *mpReader) sub(bounds [2]int) *mpReader { return newMPReader(m.b, bounds[0], bounds[1]) }

// tagged reads an adjacently tagged enum {"kind": …, "data": …}.
func (m *mpReader) tagged(field string) (string, *mpReader, error) {
	off := m.off()
	var kind string
	var data [2]int
	seen, err := m.fields(field, func(k string) (bool, error) {
		var err error
		switch k {
		case "kind":
			kind, err = m.str(field + ".kind")
		case "data":
			data, err = m.raw(field + ".data")
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return "", nil, err
	}
	if err := m.require(field, off, seen, "kind"); err != nil {
		return "", nil, err
	}
	if !seen["data"] {
		return kind, nil, nil
	}
	return kind, m.sub(data), nil
}

// mpWriter writes msgpack with the shortest encodings, as rmp does, and
// keeps the first error.
type mpWriter struct {
	buf bytes.Buffer
	e   *msgpack.Encoder
	err error
}

func (w *mpWriter) keep(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *mpWriter) mapLen(n int)   { w.keep(w.e.EncodeMapLen(n)) }
func (w *mpWriter) arrayLen(n int) { w.keep(w.e.EncodeArrayLen(n)) }
func (w *mpWriter) str(s string)   { w.keep(w.e.EncodeString(s)) }
func (w *mpWriter) uint(v uint64)  { w.keep(w.e.EncodeUint(v)) }

func (w *mpWriter) bytes(b []byte, asArray bool) {
	if asArray {
		w.arrayLen(len(b))
		for _, c := range b {
			w.uint(uint64(c))
		}
		return
	}
	w.keep(w.e.EncodeBytesLen(len(b)))
	w.buf.Write(b)
}
