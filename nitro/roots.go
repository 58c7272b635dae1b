package nitro

import (
	"crypto/x509"
	_ "embed"

	"github.com/tdproof/tdproof/pinnedcert"
)

//go:embed aws_nitro_enclaves_root_g1.pem
var awsRootPEM []byte

// RootSHA256 is the SHA-256 of the DER of the AWS Nitro Enclaves Root-G1
// (CN=aws.nitro-enclaves, P-384, 2019-10-28 … 2049-10-28), the root of
// both Nitro Enclave and NitroTPM documents (multi-tee.md §8).
const RootSHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

var awsRoot = pinnedcert.MustParse("nitro: AWS Nitro Enclaves Root-G1", awsRootPEM, RootSHA256)

// Root returns the pinned AWS Nitro Enclaves Root-G1 certificate.
func Root() *x509.Certificate { return awsRoot }
