package pckcert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// maxChainCerts bounds the number of certificates accepted in one chain.
const maxChainCerts = 8

// ParseChainPEM decodes a concatenation of PEM "CERTIFICATE" blocks, leaf
// first, tolerating trailing NUL bytes and white space. Any other content
// between or after the blocks is an error.
func ParseChainPEM(data []byte) ([]*x509.Certificate, error) {
	rest := bytes.TrimRight(data, "\x00")
	var certs []*x509.Certificate
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: certificate chain: data that is not a PEM block", ErrMalformed)
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: certificate chain: unexpected PEM block %q", ErrMalformed, block.Type)
		}
		if len(certs) == maxChainCerts {
			return nil, fmt.Errorf("%w: certificate chain: more than %d certificates", ErrMalformed, maxChainCerts)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate chain: %w", ErrMalformed, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: certificate chain: no certificate", ErrMalformed)
	}
	return certs, nil
}
