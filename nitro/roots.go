package nitro

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

//go:embed aws_nitro_enclaves_root_g1.pem
var awsRootPEM []byte

// RootSHA256 is the SHA-256 of the DER of the AWS Nitro Enclaves Root-G1
// (CN=aws.nitro-enclaves, P-384, 2019-10-28 … 2049-10-28), the root of
// both Nitro Enclave and NitroTPM documents (multi-tee.md §8).
const RootSHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

var awsRoot = mustRoot()

func mustRoot() *x509.Certificate {
	b, _ := pem.Decode(awsRootPEM)
	if b == nil {
		panic("nitro: embedded AWS root is not PEM")
	}
	sum := sha256.Sum256(b.Bytes)
	if hex.EncodeToString(sum[:]) != RootSHA256 {
		panic(fmt.Sprintf("nitro: embedded AWS root has SHA-256 %x", sum))
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("nitro: embedded AWS root: " + err.Error())
	}
	return c
}

// Root returns the pinned AWS Nitro Enclaves Root-G1 certificate.
func Root() *x509.Certificate { return awsRoot }
