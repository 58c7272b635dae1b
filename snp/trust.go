package snp

import (
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// The AMD certificate bundles in trust/ are the public ASK/ASVK + ARK
// chains AMD KDS serves at /vcek/v1/{product}/cert_chain and
// /vlek/v1/{product}/cert_chain (taken from go-sev-guest v0.15.0
// verify/trust/; ASK or ASVK first, then the ARK).
//
//go:embed trust/*.pem
var trustFS embed.FS

// ARKFingerprint is the SHA-256 of the DER of each pinned AMD root key
// (multi-tee.md §8). The embedded ARKs must match them, or the package
// panics at init.
var ARKFingerprint = map[Product]string{
	ProductMilan: "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
	ProductGenoa: "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
	ProductTurin: "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
}

// askFingerprint pins the embedded ASKs (VCEK chains) too.
var askFingerprint = map[Product]string{
	ProductMilan: "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
	ProductGenoa: "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
	ProductTurin: "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
}

// productTrust is one product line's embedded certificates.
type productTrust struct {
	ark, ask, asvk *x509.Certificate
}

var embedded = loadEmbedded()

func loadEmbedded() map[Product]productTrust {
	out := map[Product]productTrust{}
	for _, p := range Products {
		name := map[Product]string{ProductMilan: "milan", ProductGenoa: "genoa", ProductTurin: "turin"}[p]
		ask, ark := mustBundle("trust/ask_ark_" + name + ".pem")
		asvk, ark2 := mustBundle("trust/ask_ark_" + name + "_vlek.pem")
		if !ark.Equal(ark2) {
			panic("snp: embedded VCEK and VLEK bundles of " + name + " carry different ARKs")
		}
		if fp := fingerprint(ark); fp != ARKFingerprint[p] {
			panic(fmt.Sprintf("snp: embedded ARK-%s fingerprint %s is not the pinned %s", p, fp, ARKFingerprint[p]))
		}
		if fp := fingerprint(ask); fp != askFingerprint[p] {
			panic(fmt.Sprintf("snp: embedded ASK-%s fingerprint %s is not the pinned %s", p, fp, askFingerprint[p]))
		}
		out[p] = productTrust{ark: ark, ask: ask, asvk: asvk}
	}
	return out
}

func mustBundle(name string) (first, second *x509.Certificate) {
	b, err := trustFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	certs, err := ParseCertificates(b)
	if err != nil || len(certs) != 2 {
		panic(fmt.Sprintf("snp: embedded %s: %d certificates, %v", name, len(certs), err))
	}
	return certs[0], certs[1]
}

// ARK returns the pinned AMD root key certificate of p, or nil.
func ARK(p Product) *x509.Certificate { return embedded[p].ark }

// ASK returns the embedded AMD SEV key certificate of p (the VCEK
// issuer), or nil.
func ASK(p Product) *x509.Certificate { return embedded[p].ask }

// ASVK returns the embedded AMD SEV VLEK key certificate of p (the VLEK
// issuer), or nil.
func ASVK(p Product) *x509.Certificate { return embedded[p].asvk }

func fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// ParseCertificates parses one or more certificates, PEM (every block
// must be a CERTIFICATE) or a single DER certificate.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: PEM block %q is not a certificate", ErrMalformed, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
		}
		out = append(out, c)
	}
	if out != nil {
		return out, nil
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate is neither PEM nor DER: %v", ErrMalformed, err)
	}
	return []*x509.Certificate{c}, nil
}
