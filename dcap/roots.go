package dcap

import (
	"crypto/x509"
	_ "embed"

	"github.com/tdproof/tdproof/pinnedcert"
)

//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// IntelRootSHA256 is the SHA-256 of the DER of the Intel SGX Root CA.
const IntelRootSHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

var intelRoot = pinnedcert.MustParse("dcap: Intel SGX Root CA", intelRootPEM, IntelRootSHA256)

// IntelRoot returns the pinned Intel SGX Root CA certificate.
func IntelRoot() *x509.Certificate { return intelRoot }
