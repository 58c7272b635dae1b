package pckcert

import (
	"encoding/asn1"
	"fmt"
)

// DER tags used by the SGX extension.
const (
	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagOID         = 0x06
	tagEnumerated  = 0x0A
	tagSequence    = 0x30
)

// derReader walks DER TLVs strictly: definite, minimal lengths only.
type derReader struct{ b []byte }

func (r *derReader) empty() bool { return len(r.b) == 0 }

// next returns the next element's tag and value.
func (r *derReader) next() (byte, []byte, error) {
	if len(r.b) < 2 {
		return 0, nil, fmt.Errorf("%w: truncated DER element", ErrMalformed)
	}
	tag := r.b[0]
	if tag&0x1F == 0x1F {
		return 0, nil, fmt.Errorf("%w: high-tag-number form", ErrMalformed)
	}
	n := int(r.b[1])
	hdr := 2
	if n&0x80 != 0 {
		k := n & 0x7F
		if k == 0 || k > 3 || len(r.b) < 2+k {
			return 0, nil, fmt.Errorf("%w: bad DER length", ErrMalformed)
		}
		n = 0
		for _, c := range r.b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		if n < 0x80 || (k > 1 && r.b[2] == 0) {
			return 0, nil, fmt.Errorf("%w: non-minimal DER length", ErrMalformed)
		}
		hdr += k
	}
	if n > len(r.b)-hdr {
		return 0, nil, fmt.Errorf("%w: DER element longer than its container", ErrMalformed)
	}
	v := r.b[hdr : hdr+n]
	r.b = r.b[hdr+n:]
	return tag, v, nil
}

// expect reads the next element and requires its tag.
func (r *derReader) expect(tag byte, what string) ([]byte, error) {
	t, v, err := r.next()
	if err != nil {
		return nil, err
	}
	if t != tag {
		return nil, fmt.Errorf("%w: %s has tag %#x, want %#x", ErrMalformed, what, t, tag)
	}
	return v, nil
}

// derUint decodes a non-negative DER INTEGER (or ENUMERATED) value of at
// most max.
func derUint(v []byte, max int, what string) (int, error) {
	if len(v) == 0 {
		return 0, fmt.Errorf("%w: %s: empty integer", ErrMalformed, what)
	}
	if v[0]&0x80 != 0 {
		return 0, fmt.Errorf("%w: %s: negative", ErrMalformed, what)
	}
	if len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0 {
		return 0, fmt.Errorf("%w: %s: non-minimal integer", ErrMalformed, what)
	}
	if len(v) > 4 {
		return 0, fmt.Errorf("%w: %s out of range", ErrMalformed, what)
	}
	n := 0
	for _, c := range v {
		n = n<<8 | int(c)
	}
	if n > max {
		return 0, fmt.Errorf("%w: %s %d out of range [0, %d]", ErrMalformed, what, n, max)
	}
	return n, nil
}

// oidContent returns the DER content octets of an OID.
func oidContent(oid asn1.ObjectIdentifier) string {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return string(b[2:])
}
