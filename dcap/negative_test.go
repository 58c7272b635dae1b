package dcap_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

var (
	sharedPKIOnce sync.Once
	sharedPKI     *dcaptest.PKI
	otherPKI      *dcaptest.PKI
	sharedPKIErr  error
)

// pkis returns two unrelated fake Intel PKIs shared by the tests.
func pkis(t testing.TB) (*dcaptest.PKI, *dcaptest.PKI) {
	t.Helper()
	sharedPKIOnce.Do(func() {
		if sharedPKI, sharedPKIErr = dcaptest.NewPKI(dcaptest.PKIOptions{}); sharedPKIErr == nil {
			otherPKI, sharedPKIErr = dcaptest.NewPKI(dcaptest.PKIOptions{})
		}
	})
	if sharedPKIErr != nil {
		t.Fatal(sharedPKIErr)
	}
	return sharedPKI, otherPKI
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// negCase changes one thing in a default fixture and names the error.
type negCase struct {
	name string
	kind dcaptest.QuoteKind
	// pki, if set, builds the fixture on a PKI made for the case.
	pki func(t *testing.T) *dcaptest.PKI
	// setup changes the fixture before anything is built.
	setup  func(t *testing.T, f *dcaptest.Fixture)
	strict bool
	// root replaces the trust anchor.
	root func(f *dcaptest.Fixture) *x509.Certificate
	// policy: verification must succeed and the policy reject with rule.
	policy *dcap.Policy
	rule   string
	// wantErr is the sentinel the build, parse or verification fails with.
	wantErr error
}

const tdxV4 = dcaptest.TDXQuoteV4

// sigDataOffset returns the offset of the signature data (after its
// length field) of a default quote of kind k.
func sigDataOffset(k dcaptest.QuoteKind) int {
	switch k {
	case dcaptest.SGXQuoteV3, dcaptest.SGXQuoteV4:
		return 48 + 384 + 4
	case dcaptest.SGXQuoteV5:
		return 54 + 384 + 4
	case dcaptest.TDXQuoteV5TD10:
		return 54 + 584 + 4
	case dcaptest.TDXQuoteV5TD15:
		return 54 + 648 + 4
	}
	return 48 + 584 + 4
}

func patch(off int, b ...byte) func([]byte) []byte {
	return func(q []byte) []byte { copy(q[off:], b); return q }
}

func negativeCases() []negCase {
	later := dcaptest.ReferenceTime.Add(365 * 24 * time.Hour)
	earlier := dcaptest.ReferenceTime.Add(-365 * 24 * time.Hour)
	return []negCase{
		// Header and body shape.
		{name: "version 2", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(0, 2, 0) }, wantErr: quote.ErrVersion},
		{name: "version 6", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(0, 6, 0) }, wantErr: quote.ErrVersion},
		{name: "TDX in a v3 quote", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(0, 3, 0) }, wantErr: quote.ErrVersion},
		{name: "key type 3 (P-384)", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(2, 3, 0) }, wantErr: quote.ErrKeyType},
		{name: "key type 1", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(2, 1, 0) }, wantErr: quote.ErrKeyType},
		{name: "TEE type 0x82", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(4, 0x82) }, wantErr: quote.ErrTEEType},
		{name: "QE vendor ID", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.Header.QEVendorID[0] ^= 0xFF }, wantErr: dcap.ErrQEVendor},
		{name: "QE vendor ID (SGX)", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.Header.QEVendorID = [16]byte{} }, wantErr: dcap.ErrQEVendor},
		{name: "v5 body type 4 (TD 1.5 EX)", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(48, 4, 0) }, wantErr: quote.ErrBodyType},
		{name: "v5 body type 9", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(48, 9, 0) }, wantErr: quote.ErrBodyType},
		{name: "v5 SGX body in a TDX quote", kind: dcaptest.TDXQuoteV5TD10, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(48, 1, 0) }, wantErr: quote.ErrBodyType},
		{name: "v5 TD body in an SGX quote", kind: dcaptest.SGXQuoteV5, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(48, 2, 0) }, wantErr: quote.ErrBodyType},
		{name: "v5 body size", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.MutateBytes = patch(50, 0x49, 0x02) }, wantErr: quote.ErrBodySize},
		{name: "outer certification type 5", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateBytes = patch(sigDataOffset(tdxV4)+128, 5, 0)
		}, wantErr: quote.ErrCertificationType},
		{name: "inner certification type 7", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.Certification = &quote.CertificationData{Type: quote.CertPlatformManifest, Data: []byte("manifest")}
		}, wantErr: quote.ErrCertificationType},
		{name: "inner certification type 6", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.Certification = &quote.CertificationData{Type: quote.CertQEReport, Data: []byte{}}
		}, wantErr: quote.ErrCertificationType},
		{name: "signature data size past the end", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateBytes = patch(sigDataOffset(tdxV4)-4, 0xFF, 0xFF, 0, 0)
		}, wantErr: quote.ErrTruncated},
		// Signatures and binding.
		{name: "body changed after signing", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateAfterSign = func(q *quote.Quote) { q.TD.MRTD[0] ^= 1 }
		}, wantErr: dcap.ErrQuoteSignature},
		{name: "header changed after signing", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateAfterSign = func(q *quote.Quote) { q.Header.UserData[19] ^= 1 }
		}, wantErr: dcap.ErrQuoteSignature},
		{name: "quote signature byte", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateAfterSign = func(q *quote.Quote) { q.Signature.Signature[5] ^= 1 }
		}, wantErr: dcap.ErrQuoteSignature},
		{name: "QE report changed after signing", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateAfterSign = func(q *quote.Quote) { q.Signature.QEReport.ISVSVN++ }
		}, wantErr: dcap.ErrQEReportSignature},
		{name: "QE report signed by another key", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.PCKKey = newKey(t)
		}, wantErr: dcap.ErrQEReportSignature},
		{name: "QE report data mismatch", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.KeepQEReportData = true
			f.QuoteSpec.QEReport.ReportData = [64]byte{1}
		}, wantErr: dcap.ErrQEReportData},
		{name: "QE auth data changed", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateBeforeSign = func(q *quote.Quote) { q.Signature.QEAuthData = append([]byte(nil), q.Signature.QEAuthData[1:]...) }
		}, wantErr: dcap.ErrQEReportData},
		{name: "attestation key swapped", kind: dcaptest.TDXQuoteV5TD10, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.MutateAfterSign = func(q *quote.Quote) { q.Signature.AttestationKey[0] ^= 1 }
		}, wantErr: dcap.ErrQEReportData},
		// PCK chain.
		{name: "PCK chain to a different root", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			_, other := pkis(t)
			p, err := other.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
			if err != nil {
				t.Fatal(err)
			}
			f.QuoteSpec.Certification = &quote.CertificationData{Type: quote.CertPCKChain, Data: p.ChainPEM(true)}
			f.QuoteSpec.PCKKey = p.PCK.Key
		}, wantErr: dcap.ErrChain},
		{name: "whole trust anchor replaced", kind: tdxV4, root: func(f *dcaptest.Fixture) *x509.Certificate {
			return dcap.IntelRoot()
		}, wantErr: dcap.ErrChain},
		{name: "PCK chain of two certificates", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			pem := dcaptest.ChainPEM(f.Platform.Chain[0], f.Platform.Chain[1])
			f.QuoteSpec.Certification = &quote.CertificationData{Type: quote.CertPCKChain, Data: pem}
		}, wantErr: dcap.ErrChain},
		{name: "PCK CA from another PKI", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			_, other := pkis(t)
			pem := dcaptest.ChainPEM(f.Platform.Chain[0], other.PlatformCA.Certificate, f.PKI.Root.Certificate)
			f.QuoteSpec.Certification = &quote.CertificationData{Type: quote.CertPCKChain, Data: pem}
		}, wantErr: dcap.ErrChain},
		// Names: Intel requires the CNs to contain "SGX PCK Certificate",
		// "SGX PCK Platform CA" / "SGX PCK Processor CA", "SGX TCB Signing"
		// and "SGX Root CA" (TestCertificateNamesContain: containment is
		// enough).
		{name: "PCK leaf CN", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.CommonName = "Intel SGX PCK Cert"
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrChain},
		{name: "PCK leaf CN in lower case", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultSGXPlatformSpec()
			spec.CommonName = "intel sgx pck certificate"
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrChain},
		{name: "PCK CA CN names no CA type", kind: tdxV4, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{PlatformCA: dcaptest.CertOptions{CommonName: "Intel SGX PCK CA"}})
		}, wantErr: dcap.ErrChain},
		{name: "PCK CA CN names both CA types", kind: dcaptest.SGXQuoteV3, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{ProcessorCA: dcaptest.CertOptions{CommonName: "SGX PCK Platform CA / SGX PCK Processor CA"}})
		}, wantErr: dcap.ErrChain},
		{name: "TCB signing CN", kind: tdxV4, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{TCBSigning: dcaptest.CertOptions{CommonName: "Intel SGX TCB Signer"}})
		}, wantErr: dcap.ErrChain},
		{name: "root CN", kind: dcaptest.SGXQuoteV3, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{Root: dcaptest.CertOptions{CommonName: "Intel SGX Root"}})
		}, wantErr: dcap.ErrChain},
		{name: "Scalable platform with a Processor CA PCK", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.CA = pckcert.CAProcessor
			replacePlatform(t, f, spec)
			f.CollateralSpec.CA = pckcert.CAProcessor
		}, wantErr: dcap.ErrPCKCertUnsupported},
		{name: "PCK leaf without SGX extension", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.OmitExtension = true
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrChain},
		{name: "encrypted PPID without a PCK chain in collateral", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			cd, err := f.Platform.EncryptedPPIDCertification(quote.CertPPIDRSA3072)
			if err != nil {
				t.Fatal(err)
			}
			f.QuoteSpec.Certification = &cd
		}, wantErr: dcap.ErrCollateral},
		{name: "expired PCK leaf (strict)", kind: tdxV4, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.NotBefore, spec.NotAfter = earlier.Add(-time.Hour), earlier
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrExpired},
		{name: "not yet valid PCK leaf (strict)", kind: tdxV4, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.NotBefore, spec.NotAfter = later, later.Add(time.Hour)
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrNotYetValid},
		{name: "expired PCK CA (strict)", kind: tdxV4, strict: true, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{PlatformCA: dcaptest.CertOptions{NotBefore: earlier.Add(-time.Hour), NotAfter: earlier}})
		}, wantErr: dcap.ErrExpired},
		{name: "expired TCB signing certificate (strict)", kind: dcaptest.SGXQuoteV3, strict: true, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{TCBSigning: dcaptest.CertOptions{NotBefore: earlier.Add(-time.Hour), NotAfter: earlier}})
		}, wantErr: dcap.ErrExpired},
		{name: "not yet valid root (strict)", kind: tdxV4, strict: true, pki: func(t *testing.T) *dcaptest.PKI {
			return newPKI(t, dcaptest.PKIOptions{Root: dcaptest.CertOptions{NotBefore: later, NotAfter: later.Add(time.Hour)}})
		}, wantErr: dcap.ErrNotYetValid},
		// Revocation and CRLs.
		{name: "revoked PCK leaf", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.PCKCRL.Revoked = append(f.CollateralSpec.PCKCRL.Revoked, f.Platform.PCK.Certificate.SerialNumber)
		}, wantErr: dcap.ErrRevoked},
		{name: "revoked PCK leaf (SGX, Processor CA)", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.PCKCRL.Revoked = append(f.CollateralSpec.PCKCRL.Revoked, f.Platform.PCK.Certificate.SerialNumber)
		}, wantErr: dcap.ErrRevoked},
		{name: "revoked PCK CA", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.RootCRL.Revoked = append(f.CollateralSpec.RootCRL.Revoked, f.PKI.PlatformCA.Certificate.SerialNumber)
		}, wantErr: dcap.ErrRevoked},
		{name: "revoked TCB signing certificate", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.RootCRL.Revoked = append(f.CollateralSpec.RootCRL.Revoked, f.PKI.TCBSigning.Certificate.SerialNumber)
		}, wantErr: dcap.ErrRevoked},
		{name: "PCK CRL signed by the wrong key", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.PCKCRL.SignerKey = newKey(t)
		}, wantErr: dcap.ErrCRL},
		{name: "root CA CRL signed by the wrong key", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.RootCRL.SignerKey = newKey(t)
		}, wantErr: dcap.ErrCRL},
		{name: "PCK CRL of the other CA", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.CA = pckcert.CAProcessor
		}, wantErr: dcap.ErrCRL},
		{name: "root CA CRL issued by the PCK CA", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.RootCRL.Issuer = f.PKI.PlatformCA.Certificate
			f.CollateralSpec.RootCRL.SignerKey = f.PKI.PlatformCA.Key
		}, wantErr: dcap.ErrCRL},
		// TCB info.
		{name: "TCB info byte changed after signing", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.MutateTCBInfoAfterSign = func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"tcbEvaluationDataNumber":17`), []byte(`"tcbEvaluationDataNumber":18`), 1)
			}
		}, wantErr: dcap.ErrCollateralSignature},
		{name: "TCB info whitespace added after signing", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.MutateTCBInfoAfterSign = func(b []byte) []byte { return bytes.Replace(b, []byte(`,"version"`), []byte(`, "version"`), 1) }
		}, wantErr: dcap.ErrCollateralSignature},
		{name: "TCB info signed by the wrong key", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfoKey = newKey(t) }, wantErr: dcap.ErrCollateralSignature},
		{name: "TCB info issuer chain of another PKI", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			_, other := pkis(t)
			f.CollateralSpec.TCBInfoIssuerChain = other.TCBSigningChain()
		}, wantErr: dcap.ErrChain},
		{name: "TCB info signed by the PCK CA", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfoIssuerChain = f.PKI.PCKCRLIssuerChain(pckcert.CAPlatform)
			f.CollateralSpec.TCBInfoKey = f.PKI.PlatformCA.Key
		}, wantErr: dcap.ErrChain},
		{name: "TCB info id SGX for a TDX quote", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			ti := &f.CollateralSpec.TCBInfo
			ti.ID, ti.TDXModule, ti.TDXModuleIdentities = "SGX", nil, nil
			for i := range ti.TCBLevels {
				ti.TCBLevels[i].TDXComponents = [16]uint8{}
			}
		}, wantErr: dcap.ErrCollateral},
		{name: "TCB info id TDX for an SGX quote", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.ID = "TDX"
			f.CollateralSpec.TCBInfo.TDXModule = &collateral.TDXModule{AttributesMask: [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}
		}, wantErr: dcap.ErrCollateral},
		{name: "TCB info version 4", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.Version = 4 }, wantErr: collateral.ErrMalformed},
		{name: "TCB info version 2 for TDX", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.Version = 2 }, wantErr: collateral.ErrMalformed},
		{name: "TCB info FMSPC mismatch", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.FMSPC[5] ^= 1 }, wantErr: dcap.ErrFMSPCMismatch},
		{name: "TCB info FMSPC mismatch (SGX)", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.FMSPC[0] ^= 1 }, wantErr: dcap.ErrFMSPCMismatch},
		{name: "TCB info PCE-ID mismatch", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.PCEID[1] = 1 }, wantErr: dcap.ErrPCEIDMismatch},
		{name: "TCB info duplicate levels", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			ti := &f.CollateralSpec.TCBInfo
			ti.TCBLevels = append(ti.TCBLevels, ti.TCBLevels[0])
		}, wantErr: collateral.ErrMalformed},
		{name: "TCB info tcbType 1", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.TCBInfo.TCBType = 1 }, wantErr: dcap.ErrCollateral},
		{name: "TCB info issued in the future (strict)", kind: tdxV4, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.IssueDate = f.Now.Add(time.Hour)
		}, wantErr: dcap.ErrNotYetValid},
		{name: "TCB info expired (strict)", kind: tdxV4, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.NextUpdate = f.Now.Add(-time.Hour)
		}, wantErr: dcap.ErrExpired},
		{name: "PCK CRL expired (strict)", kind: dcaptest.SGXQuoteV3, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.PCKCRL.NextUpdate = f.Now
		}, wantErr: dcap.ErrExpired},
		// QE identity.
		{name: "QE identity byte changed after signing", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.MutateQEIdentityAfterSign = func(b []byte) []byte { return bytes.Replace(b, []byte(`"isvprodid":2`), []byte(`"isvprodid":3`), 1) }
		}, wantErr: dcap.ErrCollateralSignature},
		{name: "QE identity signed by the wrong key", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.QEIdentityKey = newKey(t) }, wantErr: dcap.ErrCollateralSignature},
		{name: "QE identity issuer chain of another PKI", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			_, other := pkis(t)
			f.CollateralSpec.QEIdentityIssuerChain = other.TCBSigningChain()
		}, wantErr: dcap.ErrChain},
		{name: "QE identity id QE for a TDX quote", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.QEIdentity.ID = "QE" }, wantErr: dcap.ErrCollateral},
		{name: "QE identity id TD_QE for an SGX quote", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.QEIdentity.ID = "TD_QE" }, wantErr: dcap.ErrCollateral},
		{name: "QE identity version 3", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.CollateralSpec.QEIdentity.Version = 3 }, wantErr: collateral.ErrMalformed},
		{name: "QE identity issued in the future (strict)", kind: tdxV4, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.QEIdentity.IssueDate = f.Now.Add(time.Minute)
		}, wantErr: dcap.ErrNotYetValid},
		{name: "QE identity expired (strict)", kind: dcaptest.SGXQuoteV3, strict: true, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.QEIdentity.NextUpdate = f.Now
		}, wantErr: dcap.ErrExpired},
		{name: "QE MRSIGNER", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.QEReport.MRSigner[0] ^= 1 }, wantErr: dcap.ErrQEIdentity},
		{name: "QE ISVPRODID", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVProdID = 7 }, wantErr: dcap.ErrQEIdentity},
		{name: "QE MISCSELECT", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.QEReport.MiscSelect = 1 }, wantErr: dcap.ErrQEIdentity},
		{name: "QE DEBUG attribute", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.QEReport.Attributes[0] |= 0x02 }, wantErr: dcap.ErrQEIdentity},
		{name: "QE attributes outside the mask ignored, inside rejected", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.QEReport.Attributes[0] &^= 0x10 // PROVISIONKEY, inside the mask
		}, wantErr: dcap.ErrQEIdentity},
		{name: "QE ISVSVN below every level", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 1 }, wantErr: dcap.ErrTCBNotSupported},
		{name: "QE ISVSVN below every level (SGX)", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.QEReport.ISVSVN = 0 }, wantErr: dcap.ErrTCBNotSupported},
		// TDX module.
		{name: "module identity missing", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.TEETCBSVN[1] = 7 }, wantErr: dcap.ErrTDXModuleMismatch},
		{name: "module identities absent from TCB info", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TDXModuleIdentities = nil
		}, wantErr: dcap.ErrTDXModuleMismatch},
		{name: "MRSIGNERSEAM", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.MRSignerSEAM[47] = 1 }, wantErr: dcap.ErrTDXModuleMismatch},
		{name: "MRSIGNERSEAM with module version 0", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN = [16]byte{5, 0, 2}
			f.QuoteSpec.TD.MRSignerSEAM[0] = 1
		}, wantErr: dcap.ErrTDXModuleMismatch},
		{name: "SEAMATTRIBUTES non-zero", kind: dcaptest.TDXQuoteV5TD10, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.SEAMAttributes[0] = 1 }, wantErr: dcap.ErrTDXModuleMismatch},
		{name: "module SVN below every level", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.TEETCBSVN[0] = 1 }, wantErr: dcap.ErrTCBNotSupported},
		// TD 1.5 current TCB (TEE_TCB_SVN2): Intel evaluates it on every
		// TD 1.5 quote; a failure is terminal even when the launch TCB is
		// UpToDate.
		{name: "TD 1.5 current module without identity", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN2[1] = 7
		}, wantErr: dcap.ErrTCBNotSupported},
		{name: "TD 1.5 current module SVN below every level", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN2[0] = 1
		}, wantErr: dcap.ErrTCBNotSupported},
		{name: "TD 1.5 current TCB below every platform level", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN2[2] = 0
		}, wantErr: dcap.ErrTCBNotSupported},
		{name: "TD 1.5 current module without identity, launch OutOfDate", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[0] = 2
			f.QuoteSpec.TD.TEETCBSVN2 = [16]byte{3, 0x0A, 2}
		}, wantErr: dcap.ErrTCBNotSupported},
		// Platform TCB level.
		{name: "no platform level (PCESVN)", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultTDXPlatformSpec()
			spec.PCESVN = 0
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrTCBNotSupported},
		{name: "no platform level (TDX component)", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN[2] = 0
		}, wantErr: dcap.ErrTCBNotSupported},
		{name: "no platform level (TDX module version 0 compares bytes 0-1)", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.QuoteSpec.TD.TEETCBSVN = [16]byte{3, 0, 2}
		}, wantErr: dcap.ErrTCBNotSupported},
		{name: "no platform level (SGX component)", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			spec := dcaptest.DefaultSGXPlatformSpec()
			spec.Components = [16]uint8{}
			replacePlatform(t, f, spec)
		}, wantErr: dcap.ErrTCBNotSupported},
		// Appraisal (policy) on authentic quotes.
		{name: "DEBUG TD", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }, policy: &dcap.Policy{}, rule: "td_debug"},
		{name: "DEBUG TD 1.5", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[0] |= 1 }, policy: &dcap.Policy{}, rule: "td_debug"},
		{name: "DEBUG enclave", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.Enclave.Attributes[0] |= 2 }, policy: &dcap.Policy{}, rule: "enclave_debug"},
		{name: "SEPT_VE_DISABLE missing", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.TDAttributes[3] &^= 0x10 }, policy: &dcap.Policy{}, rule: "sept_ve_disable"},
		{name: "MRSERVICETD non-zero", kind: dcaptest.TDXQuoteV5TD15, setup: func(t *testing.T, f *dcaptest.Fixture) { f.QuoteSpec.TD.MRServiceTD[0] = 1 }, policy: &dcap.Policy{}, rule: "mr_service_td"},
		{name: "OutOfDate platform", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.OutOfDate
		}, policy: &dcap.Policy{}, rule: "tcb_status"},
		{name: "Revoked TCB level is never acceptable", kind: dcaptest.SGXQuoteV3, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.TCBInfo.TCBLevels[0].TCBStatus = collateral.Revoked
		}, policy: &dcap.Policy{AcceptedStatuses: collateral.AllStatuses()}, rule: "tcb_status"},
		{name: "expired collateral rejected on request", kind: tdxV4, setup: func(t *testing.T, f *dcaptest.Fixture) {
			f.CollateralSpec.QEIdentity.NextUpdate = f.Now
		}, policy: &dcap.Policy{RejectExpiredCollateral: true}, rule: "collateral_expired"},
		{name: "collateral older than the maximum age", kind: tdxV4, policy: &dcap.Policy{MaxCollateralAge: time.Hour}, rule: "max_collateral_age"},
	}
}

func newPKI(t *testing.T, o dcaptest.PKIOptions) *dcaptest.PKI {
	t.Helper()
	p, err := dcaptest.NewPKI(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// replacePlatform swaps the fixture's platform for one built from spec on
// the same PKI, keeping the quote's attestation key and body.
func replacePlatform(t *testing.T, f *dcaptest.Fixture, spec dcaptest.PlatformSpec) {
	t.Helper()
	p, err := f.PKI.NewPlatform(spec)
	if err != nil {
		t.Fatal(err)
	}
	f.Platform = p
}

func TestNegativeCases(t *testing.T) {
	cases := negativeCases()
	if len(cases) < 60 {
		t.Fatalf("only %d negative cases", len(cases))
	}
	shared, _ := pkis(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pki := shared
			if tc.pki != nil {
				pki = tc.pki(t)
			}
			f, err := dcaptest.NewFixture(tc.kind, dcaptest.FixtureOptions{PKI: pki})
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, f)
			}
			res, err := verifyFixture(t, f, tc.strict, tc.root)
			if tc.policy != nil {
				if err != nil {
					t.Fatalf("verification failed: %v; want an authentic quote the policy rejects", err)
				}
				perr := tc.policy.Appraise(res)
				pe, ok := errors.AsType[*dcap.PolicyError](perr)
				if !ok || !errors.Is(perr, dcap.ErrRejected) {
					t.Fatalf("Appraise = %v, want a *PolicyError", perr)
				}
				found := false
				for _, v := range pe.Violations {
					found = found || v.Rule == tc.rule
				}
				if !found {
					t.Errorf("violations %+v do not name rule %q", pe.Violations, tc.rule)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got (%v, %v), want error %v", res, err, tc.wantErr)
			}
			if res != nil {
				t.Fatal("non-nil result with an error")
			}
		})
	}
}

// verifyFixture builds the fixture's quote and collateral and verifies
// them with the fixture root; build and parse errors are returned as the
// verification error.
func verifyFixture(t *testing.T, f *dcaptest.Fixture, strict bool, root func(*dcaptest.Fixture) *x509.Certificate) (*dcap.Result, error) {
	t.Helper()
	qb, err := f.BuildQuote()
	if err != nil {
		t.Fatalf("BuildQuote: %v", err)
	}
	if qb.Parsed == nil {
		return nil, qb.ParseErr
	}
	c, err := f.BuildCollateral()
	if err != nil {
		if errors.Is(err, collateral.ErrMalformed) {
			return nil, err
		}
		t.Fatalf("BuildCollateral: %v", err)
	}
	anchor := f.PKI.Root.Certificate
	if root != nil {
		anchor = root(f)
	}
	return dcap.Verify(qb.Parsed, c, dcap.Options{TrustedRoot: anchor, Now: f.Now, Strict: strict})
}

// TestFixturesVerify checks that every default fixture is UpToDate and
// acceptable, so each negative case changes exactly one thing.
func TestFixturesVerify(t *testing.T) {
	shared, _ := pkis(t)
	for _, kind := range dcaptest.QuoteKinds() {
		t.Run(kind.String(), func(t *testing.T) {
			f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{PKI: shared})
			if err != nil {
				t.Fatal(err)
			}
			res, err := verifyFixture(t, f, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != collateral.UpToDate || len(res.AdvisoryIDs) != 0 || res.IntelRoot || res.CollateralExpired {
				t.Errorf("status %v advisories %v intelRoot %v expired %v", res.Status, res.AdvisoryIDs, res.IntelRoot, res.CollateralExpired)
			}
			if err := (dcap.Policy{}).Appraise(res); err != nil {
				t.Errorf("default policy: %v", err)
			}
		})
	}
}

// TestExpiryIsAFlag: expired collateral and certificates are reported,
// not errors, unless Strict (Intel semantics).
func TestExpiryIsAFlag(t *testing.T) {
	shared, _ := pkis(t)
	for _, name := range []string{"tcb info", "pck crl", "pck leaf"} {
		t.Run(name, func(t *testing.T) {
			f, err := dcaptest.NewFixture(tdxV4, dcaptest.FixtureOptions{PKI: shared})
			if err != nil {
				t.Fatal(err)
			}
			exp := f.Now.Add(-time.Minute)
			switch name {
			case "tcb info":
				f.CollateralSpec.TCBInfo.NextUpdate = exp
			case "pck crl":
				f.CollateralSpec.PCKCRL.NextUpdate = exp
			case "pck leaf":
				spec := dcaptest.DefaultTDXPlatformSpec()
				spec.NotBefore, spec.NotAfter = exp.Add(-time.Hour), exp
				replacePlatform(t, f, spec)
			}
			res, err := verifyFixture(t, f, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.CollateralExpired || !res.EarliestExpiration.Equal(exp) || res.Status != collateral.UpToDate {
				t.Errorf("expired=%v earliest=%v status=%v", res.CollateralExpired, res.EarliestExpiration, res.Status)
			}
			if _, err := verifyFixture(t, f, true, nil); !errors.Is(err, dcap.ErrExpired) {
				t.Errorf("strict: %v, want ErrExpired", err)
			}
		})
	}
}

// TestTruncation cuts a quote of every kind at every structure boundary
// (and every byte in between): Parse must fail, never panic.
func TestTruncation(t *testing.T) {
	shared, _ := pkis(t)
	for _, kind := range dcaptest.QuoteKinds() {
		t.Run(kind.String(), func(t *testing.T) {
			f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{PKI: shared})
			if err != nil {
				t.Fatal(err)
			}
			qb, err := f.BuildQuote()
			if err != nil || qb.Parsed == nil {
				t.Fatal(err, qb.ParseErr)
			}
			raw := qb.Raw
			for n := 0; n < len(raw); n++ {
				q, err := quote.Parse(raw[:n])
				if err == nil || q != nil || !errors.Is(err, quote.ErrMalformed) {
					t.Fatalf("Parse(first %d of %d bytes) = %v, %v; want ErrMalformed", n, len(raw), q, err)
				}
			}
		})
	}
}

func ExampleVerify() {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		panic(err)
	}
	qb, _ := f.BuildQuote()
	c, _ := f.BuildCollateral()
	res, err := dcap.Verify(qb.Parsed, c, dcap.Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Status, res.TDXModuleIdentity, res.IntelRoot, dcap.Policy{}.Appraise(res))
	// Output: UpToDate TDX_01 false <nil>
}
