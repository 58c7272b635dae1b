package dcap_test

// A test PKI with Intel's certificate names, so both tdproof
// (dcap.Options.TrustedRoot) and go-tdx-guest (verify.Options.TrustedRoots)
// verify quotes and collateral we sign ourselves. It shows the dcap.md §2.8
// differences that real Intel collateral cannot: the quote is the real
// tdx-v4-b0c06f quote re-signed (new attestation key, QE report signed by
// our PCK key, PCK chain replaced), the PCK leaf carries the real leaf's SGX
// extension, and the TCB info and QE identity are the vector's documents,
// edited per case and signed by our TCB signing key.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

var (
	gotdxNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	gotdxNotAfter  = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	// gotdxNow is the verification time of the synthetic cases; every
	// document and CRL is valid from gotdxIssueDate to gotdxNextUpdate.
	gotdxNow        = time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)
	gotdxIssueDate  = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	gotdxNextUpdate = time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
)

const gotdxRootCRLURL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

func gotdxIntelName(cn string) pkix.Name {
	return pkix.Name{
		CommonName: cn, Organization: []string{"Intel Corporation"}, Locality: []string{"Santa Clara"},
		Province: []string{"CA"}, Country: []string{"US"},
	}
}

type gotdxCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (c gotdxCert) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
}

// gotdxPKI holds the keys and certificates shared by all cases.
type gotdxPKI struct {
	root, platformCA, processorCA, tcbSigner gotdxCert
	pckKey, attKey                           *ecdsa.PrivateKey

	// From the real tdx-v4-b0c06f vector.
	base          *quote.Quote
	sgxExtension  []byte
	tcbInfoRaw    []byte
	qeIdentityRaw []byte
}

func gotdxKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func gotdxIssue(t testing.TB, tmpl *x509.Certificate, parent *gotdxCert) gotdxCert {
	t.Helper()
	key := gotdxKey(t)
	tmpl.NotBefore, tmpl.NotAfter = gotdxNotBefore, gotdxNotAfter
	p, signer := tmpl, key
	if parent != nil {
		p, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return gotdxCert{c, key}
}

func newGotdxPKI(t testing.TB) *gotdxPKI {
	t.Helper()
	q, c := loadVector(t, "tdx-v4-b0c06f")
	certs, err := pckcert.ParseChainPEM(q.Signature.Certification.PCKChain)
	if err != nil {
		t.Fatal(err)
	}
	p := &gotdxPKI{base: q, tcbInfoRaw: c.TCBInfo.Raw, qeIdentityRaw: c.QEIdentity.Raw, pckKey: gotdxKey(t), attKey: gotdxKey(t)}
	for _, e := range certs[0].Extensions {
		if e.Id.Equal(pckcert.OIDSGXExtension) {
			p.sgxExtension = e.Value
		}
	}
	if p.sgxExtension == nil {
		t.Fatal("real PCK leaf has no SGX extension")
	}
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: gotdxIntelName(cn),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true,
			CRLDistributionPoints: []string{gotdxRootCRLURL},
		}
	}
	p.root = gotdxIssue(t, ca(1, "Intel SGX Root CA"), nil)
	platform := ca(2, pckcert.PlatformCACN)
	platform.MaxPathLenZero = true
	p.platformCA = gotdxIssue(t, platform, &p.root)
	processor := ca(3, pckcert.ProcessorCACN)
	processor.MaxPathLenZero = true
	p.processorCA = gotdxIssue(t, processor, &p.root)
	p.tcbSigner = gotdxIssue(t, &x509.Certificate{
		SerialNumber: big.NewInt(4), Subject: gotdxIntelName("Intel SGX TCB Signing"),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true, CRLDistributionPoints: []string{gotdxRootCRLURL},
	}, &p.root)
	return p
}

// gotdxSpec describes one synthetic case.
type gotdxSpec struct {
	processorCA  bool // PCK leaf issued by the Processor CA
	standardSGX  bool // SGX type Standard instead of the real leaf's Scalable
	extraLeafExt bool // a seventh, harmless X.509 extension on the PCK leaf
	revokeLeaf   bool // PCK CRL lists the leaf
	// quote edits the TD body or the QE report (REPORTDATA[0:32] is already
	// the attestation key binding) before signing.
	quote      func(*quote.Quote)
	tcbInfo    func(map[string]any)
	qeIdentity func(map[string]any)
}

const gotdxLeafSerial = 100

func (p *gotdxPKI) pckLeaf(t testing.TB, spec gotdxSpec) (*gotdxCert, gotdxCert) {
	t.Helper()
	ca := &p.platformCA
	caName := "platform"
	if spec.processorCA {
		ca, caName = &p.processorCA, "processor"
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(gotdxLeafSerial), Subject: gotdxIntelName("Intel SGX PCK Certificate"),
		NotBefore: gotdxNotBefore, NotAfter: gotdxNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true, SubjectKeyId: []byte{1, 2, 3, 4},
		CRLDistributionPoints: []string{"https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=" + caName + "&encoding=der"},
		ExtraExtensions:       []pkix.Extension{{Id: pckcert.OIDSGXExtension, Value: p.sgxExtension}},
	}
	if spec.standardSGX {
		tmpl.ExtraExtensions[0].Value = gotdxStandardSGXType(t, p.sgxExtension)
	}
	if spec.extraLeafExt {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1}, Value: []byte{0x05, 0x00}})
	}
	key := p.pckKey
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, gotdxCert{leaf, key}
}

// gotdxStandardSGXType returns the SGX extension with its SGX type entry
// (OID 1.2.840.113741.1.13.1.5, ENUMERATED Scalable) set to Standard.
func gotdxStandardSGXType(t testing.TB, ext []byte) []byte {
	t.Helper()
	scalable := []byte{0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01, 0x05, 0x0A, 0x01, 0x01}
	if bytes.Count(ext, scalable) != 1 {
		t.Fatal("SGX extension has no single Scalable SGX type entry")
	}
	standard := bytes.Clone(scalable)
	standard[len(standard)-1] = 0x00
	out := bytes.Replace(ext, scalable, standard, 1)
	if x, err := pckcert.ParseExtension(out); err != nil || x.SGXType != pckcert.SGXTypeStandard {
		t.Fatalf("rewritten SGX extension: %v", err)
	}
	return out
}

func gotdxSign(t testing.TB, key *ecdsa.PrivateKey, msg []byte) [64]byte {
	t.Helper()
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	var out [64]byte
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

func gotdxSignJSON(t testing.TB, key *ecdsa.PrivateKey, raw []byte, edit func(map[string]any), defaults func(map[string]any)) ([]byte, [64]byte) {
	t.Helper()
	m := gotdxJSONObject(t, raw)
	m["issueDate"] = gotdxIssueDate.Format(time.RFC3339)
	m["nextUpdate"] = gotdxNextUpdate.Format(time.RFC3339)
	if defaults != nil {
		defaults(m)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out, gotdxSign(t, key, out)
}

func (p *gotdxPKI) crl(t testing.TB, issuer gotdxCert, revoked ...int64) *collateral.CRL {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: gotdxIssueDate, NextUpdate: gotdxNextUpdate}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: gotdxIssueDate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, issuer.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := collateral.ParseCRL(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func gotdxChain(t testing.TB, pems ...string) *collateral.Chain {
	t.Helper()
	c, err := collateral.ParseChain(strings.Join(pems, ""))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// build returns the raw quote, its parse and the collateral for spec.
func (p *gotdxPKI) build(t testing.TB, spec gotdxSpec) ([]byte, *quote.Quote, *collateral.Collateral) {
	t.Helper()
	ca, leaf := p.pckLeaf(t, spec)
	chain := leaf.pem() + ca.pem() + p.root.pem()

	b := p.base
	td := *b.TD
	td.Raw = nil
	q := &quote.Quote{Header: b.Header, BodyType: b.BodyType, TD: &td}
	sd := &quote.SignatureData{
		OuterType: quote.CertQEReport, QEReport: b.Signature.QEReport,
		QEAuthData:    append([]byte(nil), b.Signature.QEAuthData...),
		Certification: quote.CertificationData{Type: quote.CertPCKChain, Data: []byte(chain)},
	}
	sd.QEReport.Raw = nil
	q.Signature = sd
	p.attKey.X.FillBytes(sd.AttestationKey[:32])
	p.attKey.Y.FillBytes(sd.AttestationKey[32:])
	binding := sha256.Sum256(append(append([]byte(nil), sd.AttestationKey[:]...), sd.QEAuthData...))
	sd.QEReport.ReportData = [64]byte{}
	copy(sd.QEReport.ReportData[:], binding[:])
	if spec.quote != nil {
		spec.quote(q)
	}
	sd.QEReportSignature = gotdxSign(t, leaf.key, quote.AppendEnclaveReport(nil, &sd.QEReport))
	signed, err := q.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	sd.Signature = gotdxSign(t, p.attKey, signed)
	raw, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := quote.Parse(raw)
	if err != nil {
		t.Fatalf("synthetic quote does not parse: %v", err)
	}

	// go-tdx-guest v0.3.1 compares the FMSPC case-sensitively with the
	// certificate's lowercase hex (TestGotdxDifferences/fmspc-case); the
	// synthetic TCB info spells it in lowercase, as Intel did in 2023.
	tcbRaw, tcbSig := gotdxSignJSON(t, p.tcbSigner.key, p.tcbInfoRaw, spec.tcbInfo, gotdxLowerFMSPC)
	tcb, err := collateral.NewSignedTCBInfo(tcbRaw, tcbSig[:])
	if err != nil {
		t.Fatalf("synthetic TCB info: %v", err)
	}
	qeRaw, qeSig := gotdxSignJSON(t, p.tcbSigner.key, p.qeIdentityRaw, spec.qeIdentity, nil)
	qe, err := collateral.NewSignedQEIdentity(qeRaw, qeSig[:])
	if err != nil {
		t.Fatalf("synthetic QE identity: %v", err)
	}
	var revoked []int64
	if spec.revokeLeaf {
		revoked = append(revoked, gotdxLeafSerial)
	}
	c := &collateral.Collateral{
		PCKCRLIssuerChain:     gotdxChain(t, ca.pem(), p.root.pem()),
		RootCACRL:             p.crl(t, p.root),
		PCKCRL:                p.crl(t, *ca, revoked...),
		TCBInfoIssuerChain:    gotdxChain(t, p.tcbSigner.pem(), p.root.pem()),
		TCBInfo:               tcb,
		QEIdentityIssuerChain: gotdxChain(t, p.tcbSigner.pem(), p.root.pem()),
		QEIdentity:            qe,
	}
	return raw, parsed, c
}

func gotdxModuleIdentities(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, x := range m["tdxModuleIdentities"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}
