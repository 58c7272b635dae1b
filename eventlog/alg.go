package eventlog

import "fmt"

// Alg is a TPM 2.0 hash algorithm identifier (TPM_ALG_ID) as used in
// crypto-agile event logs.
type Alg uint16

// Hash algorithms seen in event logs. TDX RTMRs use [AlgSHA384].
const (
	AlgSHA1   Alg = 0x0004
	AlgSHA256 Alg = 0x000B
	AlgSHA384 Alg = 0x000C
	AlgSHA512 Alg = 0x000D
	AlgSM3    Alg = 0x0012 // SM3_256
)

// Size returns the digest size in bytes of a known algorithm, or 0.
func (a Alg) Size() int {
	switch a {
	case AlgSHA1:
		return 20
	case AlgSHA256, AlgSM3:
		return 32
	case AlgSHA384:
		return 48
	case AlgSHA512:
		return 64
	}
	return 0
}

// String returns the TPM name of a ("SHA384"), or "0x" and four hex
// digits for an unknown algorithm.
func (a Alg) String() string {
	switch a {
	case AlgSHA1:
		return "SHA1"
	case AlgSHA256:
		return "SHA256"
	case AlgSHA384:
		return "SHA384"
	case AlgSHA512:
		return "SHA512"
	case AlgSM3:
		return "SM3_256"
	}
	return fmt.Sprintf("0x%04x", uint16(a))
}
