package dstack

import (
	"encoding/binary"
	"math/bits"
)

// Keccak-256 as Ethereum and dstack's MR_CONFIG_ID version 2 use it: the
// Keccak[c=512] sponge of the original submission, with pad10*1 and
// domain byte 0x01 (SHA3-256 differs only in using 0x06). The standard
// library implements SHA-3 but not this variant.

var keccakRC = [24]uint64{
	0x0000000000000001, 0x0000000000008082, 0x800000000000808a, 0x8000000080008000,
	0x000000000000808b, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
	0x000000000000008a, 0x0000000000000088, 0x0000000080008009, 0x000000008000000a,
	0x000000008000808b, 0x800000000000008b, 0x8000000000008089, 0x8000000000008003,
	0x8000000000008002, 0x8000000000000080, 0x000000000000800a, 0x800000008000000a,
	0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
}

// keccakRho are the rotation offsets and keccakPi the lane order of the
// combined ρ and π steps, walking the lanes from (1,0).
var (
	keccakRho = [24]int{1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44}
	keccakPi  = [24]int{10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1}
)

// keccakF1600 applies the 24-round Keccak-f[1600] permutation. Lane
// (x, y) is a[x+5y].
func keccakF1600(a *[25]uint64) {
	var c [5]uint64
	for round := range 24 {
		// θ
		for x := range 5 {
			c[x] = a[x] ^ a[x+5] ^ a[x+10] ^ a[x+15] ^ a[x+20]
		}
		for x := range 5 {
			d := c[(x+4)%5] ^ bits.RotateLeft64(c[(x+1)%5], 1)
			for y := 0; y < 25; y += 5 {
				a[y+x] ^= d
			}
		}
		// ρ and π
		t := a[1]
		for i := range 24 {
			j := keccakPi[i]
			t, a[j] = a[j], bits.RotateLeft64(t, keccakRho[i])
		}
		// χ
		for y := 0; y < 25; y += 5 {
			copy(c[:], a[y:y+5])
			for x := range 5 {
				a[y+x] = c[x] ^ (^c[(x+1)%5] & c[(x+2)%5])
			}
		}
		// ι
		a[0] ^= keccakRC[round]
	}
}

// keccakSponge256 hashes msg with rate 136 bytes and the given domain
// padding byte, returning 32 bytes.
func keccakSponge256(msg []byte, domain byte) [32]byte {
	const rate = 136
	var a [25]uint64
	absorb := func(block []byte) {
		for i := 0; i < rate/8; i++ {
			a[i] ^= binary.LittleEndian.Uint64(block[8*i:])
		}
		keccakF1600(&a)
	}
	for len(msg) >= rate {
		absorb(msg[:rate])
		msg = msg[rate:]
	}
	var last [rate]byte
	copy(last[:], msg)
	last[len(msg)] ^= domain
	last[rate-1] ^= 0x80
	absorb(last[:])
	var out [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(out[8*i:], a[i])
	}
	return out
}

// keccak256 returns the Keccak-256 digest of the concatenation of parts.
func keccak256(parts ...[]byte) [32]byte {
	var msg []byte
	for _, p := range parts {
		msg = append(msg, p...)
	}
	return keccakSponge256(msg, 0x01)
}
