package dstack

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// HexBytes is a byte string that encodes as lowercase hex without a "0x"
// prefix, the encoding dstack uses for every byte field of its JSON
// (AppInfo, VmConfig, event logs). The empty value encodes as "".
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts upper or
// lower case hex without a prefix; the empty string gives nil.
func (h *HexBytes) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*h = nil
		return nil
	}
	b := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(b, text); err != nil {
		return fmt.Errorf("%w: invalid hex: %w", ErrMalformed, err)
	}
	*h = b
	return nil
}

// String returns the lowercase hex encoding.
func (h HexBytes) String() string { return hex.EncodeToString(h) }

// decodeHexField decodes a hex string from JSON evidence, accepting an
// optional "0x" prefix and surrounding white space.
func decodeHexField(field, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, malformed(field, -1, "invalid hex: %v", err)
	}
	return b, nil
}
