// Package nitrosim is a software AWS Nitro attestation document signer
// for tests: a three-level test PKI (root, intermediate, signing
// certificate, all ECDSA P-384) and a COSE_Sign1 ES384 builder for Nitro
// Enclave and NitroTPM documents, with hooks to produce every refusal
// case package nitro must detect (wrong algorithm, bad signature,
// mistyped fields, stale timestamps, foreign roots, …).
//
// Documents are verified with nitro.Options.Root set to [CA.Root]; the
// pinned AWS root never accepts them.
package nitrosim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// CA is a test Nitro PKI.
type CA struct {
	Root         *x509.Certificate
	RootKey      *ecdsa.PrivateKey
	Intermediate *x509.Certificate
	InterKey     *ecdsa.PrivateKey
	Leaf         *x509.Certificate
	LeafKey      *ecdsa.PrivateKey
}

// New makes a test PKI. The root and intermediate are valid from a day
// before at to ten years after; the signing certificate, like AWS's, for
// three hours starting three seconds before at.
func New(at time.Time) (*CA, error) {
	ca := &CA{}
	var err error
	if ca.RootKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if ca.InterKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if ca.LeafKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	caFrom, caTo := at.Add(-24*time.Hour), at.AddDate(10, 0, 0)
	if ca.Root, err = issue(1, "nitrosim root", true, caFrom, caTo, &ca.RootKey.PublicKey, nil, ca.RootKey); err != nil {
		return nil, err
	}
	if ca.Intermediate, err = issue(2, "nitrosim intermediate", true, caFrom, caTo, &ca.InterKey.PublicKey, ca.Root, ca.RootKey); err != nil {
		return nil, err
	}
	if ca.Leaf, err = ca.IssueLeaf(at.Add(-3*time.Second), at.Add(3*time.Hour), &ca.LeafKey.PublicKey); err != nil {
		return nil, err
	}
	return ca, nil
}

// IssueLeaf issues a signing certificate for pub from the intermediate.
func (ca *CA) IssueLeaf(from, to time.Time, pub any) (*x509.Certificate, error) {
	return issue(3, "i-0123456789abcdef0-enc0123456789abcdef.nitrosim", false, from, to, pub, ca.Intermediate, ca.InterKey)
}

func issue(serial int64, cn string, isCA bool, from, to time.Time, pub any, parent *x509.Certificate, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"nitrosim"}},
		NotBefore:             from,
		NotAfter:              to,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Doc holds the fields of a document. [CA.Payload] encodes it; tests
// that need a field of the wrong type edit the map it returns.
type Doc struct {
	ModuleID  string
	Digest    string
	Timestamp time.Time
	// PCRs are the PCR values; NitroTPM selects the key nitrotpm_pcrs.
	PCRs     map[int][]byte
	NitroTPM bool
	// PublicKey, UserData and Nonce are encoded as null when nil.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte
	// Certificate and CABundle default to the CA's signing certificate
	// and [root, intermediate].
	Certificate []byte
	CABundle    [][]byte
}

// Enclave returns a document of a non-debug enclave at at: 16 PCRs,
// PCR0–2 and 4 non-zero, user_data as given.
func Enclave(at time.Time, userData []byte) Doc {
	pcrs := make(map[int][]byte, 16)
	for i := 0; i < 16; i++ {
		v := make([]byte, 48)
		if i <= 4 || i == 8 {
			for j := range v {
				v[j] = byte(i*16 + j + 1)
			}
		}
		pcrs[i] = v
	}
	return Doc{ModuleID: "i-0123456789abcdef0-enc0123456789abcdef", Digest: "SHA384", Timestamp: at, PCRs: pcrs, UserData: userData}
}

// NitroTPM returns a NitroTPM document at at: 24 PCRs, PCR4/7/12/14
// as given (nil leaves the other PCRs' pattern), user_data as given.
func NitroTPM(at time.Time, userData []byte, pcr map[int][]byte) Doc {
	pcrs := make(map[int][]byte, 24)
	for i := 0; i < 24; i++ {
		v := make([]byte, 48)
		for j := range v {
			v[j] = byte(i*7 + j)
		}
		pcrs[i] = v
	}
	for i, v := range pcr {
		pcrs[i] = v
	}
	return Doc{ModuleID: "i-0123456789abcdef0", Digest: "SHA384", Timestamp: at, PCRs: pcrs, NitroTPM: true, UserData: userData}
}

// Payload returns d as the CBOR payload map, ready to edit.
func (ca *CA) Payload(d Doc) map[string]any {
	pcrs := make(map[int][]byte, len(d.PCRs))
	for i, v := range d.PCRs {
		pcrs[i] = v
	}
	cert := d.Certificate
	if cert == nil {
		cert = ca.Leaf.Raw
	}
	bundle := d.CABundle
	if bundle == nil {
		bundle = [][]byte{ca.Root.Raw, ca.Intermediate.Raw}
	}
	key := "pcrs"
	if d.NitroTPM {
		key = "nitrotpm_pcrs"
	}
	return map[string]any{
		"module_id":   d.ModuleID,
		"digest":      d.Digest,
		"timestamp":   uint64(d.Timestamp.UnixMilli()),
		key:           pcrs,
		"certificate": cert,
		"cabundle":    bundle,
		"public_key":  nullable(d.PublicKey),
		"user_data":   nullable(d.UserData),
		"nonce":       nullable(d.Nonce),
	}
}

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// ES384Protected is the protected header NSM emits: {1: -35}.
var ES384Protected = []byte{0xa1, 0x01, 0x38, 0x22}

var encMode = mustEncMode()

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}

// Encode CBOR-encodes v deterministically.
func Encode(v any) ([]byte, error) { return encMode.Marshal(v) }

// Sign signs d with the CA's signing key: an untagged COSE_Sign1 with
// protected header {1: -35}.
func (ca *CA) Sign(d Doc) ([]byte, error) {
	p, err := Encode(ca.Payload(d))
	if err != nil {
		return nil, err
	}
	return ca.SignRaw(ES384Protected, p, ca.LeafKey)
}

// SignRaw builds an untagged COSE_Sign1 over the exact protected header
// and payload bytes given, signed (ES384, r||s) with key.
func (ca *CA) SignRaw(protected, payload []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := SignatureES384(protected, payload, key)
	if err != nil {
		return nil, err
	}
	return Assemble(protected, payload, sig)
}

// SignatureES384 returns the ES384 signature r||s (96 bytes) over the
// COSE Sig_structure ["Signature1", protected, h”, payload].
func SignatureES384(protected, payload []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	tbs, err := Encode([]any{"Signature1", protected, []byte{}, payload})
	if err != nil {
		return nil, err
	}
	h := sha512.Sum384(tbs)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return sig, nil
}

// Assemble encodes [protected, {}, payload, signature] as an untagged
// COSE_Sign1.
func Assemble(protected, payload, signature []byte) ([]byte, error) {
	out, err := Encode([]any{protected, map[int]any{}, payload, signature})
	if err != nil {
		return nil, fmt.Errorf("nitrosim: %w", err)
	}
	return out, nil
}

// SetIntermediateCRL re-issues the intermediate (same key, name, serial
// and validity) naming url as its CRL distribution point, as AWS's
// regional and zonal CA certificates do; the root's CRL (RootCRL) then
// covers it.
func (ca *CA) SetIntermediateCRL(url string) error {
	c, err := reissueWithCRL(ca.Intermediate, url, ca.Root, ca.RootKey)
	if err != nil {
		return err
	}
	ca.Intermediate = c
	return nil
}

// RootCRL returns a CRL (DER) of the root, valid from thisUpdate to
// nextUpdate, listing the given serial numbers.
func (ca *CA) RootCRL(thisUpdate, nextUpdate time.Time, revoked ...*big.Int) ([]byte, error) {
	return signCRL(ca.Root, ca.RootKey, thisUpdate, nextUpdate, revoked)
}

func reissueWithCRL(c *x509.Certificate, url string, parent *x509.Certificate, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{SerialNumber: c.SerialNumber, RawSubject: c.RawSubject, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		BasicConstraintsValid: true, IsCA: c.IsCA, KeyUsage: c.KeyUsage, SubjectKeyId: c.SubjectKeyId,
		UnknownExtKeyUsage: c.UnknownExtKeyUsage, CRLDistributionPoints: []string{url}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, c.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func signCRL(issuer *x509.Certificate, key *ecdsa.PrivateKey, thisUpdate, nextUpdate time.Time, revoked []*big.Int) ([]byte, error) {
	tmpl := &x509.RevocationList{Number: big.NewInt(thisUpdate.Unix()), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
}
