package quote

import "encoding/binary"

// cursor reads little-endian fields from b; base is b's offset in the
// whole quote, used for error offsets.
type cursor struct {
	b    []byte
	pos  int
	base int
}

func (c *cursor) off() int { return c.base + c.pos }

func (c *cursor) take(field string, n int) ([]byte, error) {
	if n < 0 || n > len(c.b)-c.pos {
		return nil, perrf(field, c.off(), ErrTruncated, "need %d bytes, have %d", n, len(c.b)-c.pos)
	}
	s := c.b[c.pos : c.pos+n : c.pos+n]
	c.pos += n
	return s, nil
}

func (c *cursor) array(field string, dst []byte) error {
	s, err := c.take(field, len(dst))
	if err != nil {
		return err
	}
	copy(dst, s)
	return nil
}

func (c *cursor) u16(field string) (uint16, error) {
	s, err := c.take(field, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

func (c *cursor) u32(field string) (uint32, error) {
	s, err := c.take(field, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

// certData reads a certification data block: type u16, size u32, data.
// It returns the offset of the type field.
func (c *cursor) certData(field string) (CertificationType, []byte, int, error) {
	off := c.off()
	t, err := c.u16(field + ".type")
	if err != nil {
		return 0, nil, off, err
	}
	n, err := c.u32(field + ".size")
	if err != nil {
		return 0, nil, off, err
	}
	if n > maxCertificationDataSize {
		return 0, nil, off, perrf(field+".size", off+2, ErrMalformed, "size %d exceeds limit %d", n, maxCertificationDataSize)
	}
	data, err := c.take(field, int(n))
	if err != nil {
		return 0, nil, off, err
	}
	return CertificationType(t), data, off, nil
}

// end fails unless every byte was consumed.
func (c *cursor) end(field string) error {
	if c.pos != len(c.b) {
		return perrf(field, c.off(), ErrMalformed, "%d unexpected bytes after the last field", len(c.b)-c.pos)
	}
	return nil
}
