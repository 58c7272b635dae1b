package quote

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// DecodeInput returns the binary quote held in b, which may be the raw
// bytes or hex text (optionally prefixed with "0x" and surrounded by white
// space, as quotes are often stored). Binary input is returned as is.
func DecodeInput(b []byte) ([]byte, error) {
	t := bytes.TrimSpace(b)
	t = bytes.TrimPrefix(bytes.TrimPrefix(t, []byte("0x")), []byte("0X"))
	if len(t) == 0 || !isHexText(t) {
		return b, nil
	}
	out := make([]byte, hex.DecodedLen(len(t)))
	if _, err := hex.Decode(out, t); err != nil {
		return nil, fmt.Errorf("%w: hex input: %w", ErrMalformed, err)
	}
	return out, nil
}

// isHexText reports whether t consists only of hex digits. A binary quote
// never does: its version field starts with bytes 0x03..0x05.
func isHexText(t []byte) bool {
	for _, c := range t {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
