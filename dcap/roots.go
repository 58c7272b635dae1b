package dcap

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// IntelRootSHA256 is the SHA-256 of the DER of the Intel SGX Root CA.
const IntelRootSHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

var intelRoot = mustIntelRoot()

func mustIntelRoot() *x509.Certificate {
	b, _ := pem.Decode(intelRootPEM)
	if b == nil {
		panic("dcap: embedded Intel root is not PEM")
	}
	sum := sha256.Sum256(b.Bytes)
	if hex.EncodeToString(sum[:]) != IntelRootSHA256 {
		panic(fmt.Sprintf("dcap: embedded Intel root has SHA-256 %x", sum))
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("dcap: embedded Intel root: " + err.Error())
	}
	return c
}

// IntelRoot returns the pinned Intel SGX Root CA certificate.
func IntelRoot() *x509.Certificate { return intelRoot }
