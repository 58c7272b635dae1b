package dstack

import (
	"crypto/sha3"
	"encoding/hex"
	"testing"
)

func TestKeccak256(t *testing.T) {
	t.Parallel()
	msg := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	// Reference digests from golang.org/x/crypto/sha3.NewLegacyKeccak256
	// (the first two are also the well-known Ethereum test vectors).
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
		{[]byte("abc"), "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
		{msg(135), "154f5dc27520a599653a2b10189cf53f5ce03b7c594d11fd98f67012ea304b6c"},
		{msg(136), "81e7ecb492d033f1692e770a6eb874e70aac45ec10da93483fc8d3537805c097"},
		{msg(137), "a595973359b39ba1fec5cf8f40710c5a213e76281dd4f174f1ea83106ee7759b"},
		{msg(272), "99d5a295c114ab3f94028d25825ea798399dacfc613f0193fb32c3c4973f1777"},
		{msg(1000), "82bc59cea7b5eac6d5e84cfabd1450ecba233bc6c0b375bda57dd7848a088ce6"},
	} {
		if got := keccak256(tc.in); hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("keccak256(%d bytes) = %x, want %s", len(tc.in), got, tc.want)
		}
	}
	// The same sponge with SHA-3's domain byte is the standard library's
	// SHA3-256.
	for n := range 300 {
		if got, want := keccakSponge256(msg(n), 0x06), sha3.Sum256(msg(n)); got != want {
			t.Fatalf("sponge(0x06) of %d bytes = %x, SHA3-256 %x", n, got, want)
		}
	}
	if keccak256([]byte("ab"), []byte("c")) != keccak256([]byte("abc")) {
		t.Error("keccak256 does not concatenate its parts")
	}
}
