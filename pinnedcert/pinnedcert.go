// Package pinnedcert parses the trust anchors the verifiers embed (the
// Intel SGX Root CA, the AWS Nitro Enclaves root, Google's EK/AK CA) and
// checks each against the SHA-256 fingerprint of its DER pinned in the
// code, so that a changed embedded file stops the program at start
// instead of changing what is trusted.
package pinnedcert

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// MustParse returns the certificate of the single PEM block in pemBytes
// whose DER has SHA-256 sha256Hex (lower-case hex). It panics otherwise:
// the input is embedded in the binary, so a mismatch is a build error.
// name says whose certificate it is in the panic message.
func MustParse(name string, pemBytes []byte, sha256Hex string) *x509.Certificate {
	c, err := Parse(pemBytes, sha256Hex)
	if err != nil {
		panic(fmt.Sprintf("%s: embedded certificate: %v", name, err))
	}
	return c
}

// Parse is MustParse returning an error.
func Parse(pemBytes []byte, sha256Hex string) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	sum := sha256.Sum256(b.Bytes)
	if got := hex.EncodeToString(sum[:]); got != sha256Hex {
		return nil, fmt.Errorf("SHA-256 %s, pinned %s", got, sha256Hex)
	}
	return x509.ParseCertificate(b.Bytes)
}
