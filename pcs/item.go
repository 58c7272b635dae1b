package pcs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/pckcert"
)

// ClockSkew is how far before its issue date (or a certificate's
// notBefore) an item is still accepted, for clocks running slightly
// behind the service's.
const ClockSkew = 5 * time.Minute

// tcbSigningCN is the subject CN of the certificate that signs TCB infos
// and QE identities.
const tcbSigningCN = "Intel SGX TCB Signing"

// Item is one verified PCS response. Items are immutable once decoded
// and safe for concurrent use; Body and the parsed objects must not be
// modified.
type Item struct {
	// Key is the (normalised) key the item answers.
	Key ItemKey
	// Body is the response body: the exact JSON served for TCB info and
	// QE identity, the DER of CRLs (served DER, PEM or hex text).
	Body []byte
	// Header holds the issuer-chain header exactly as served, under
	// Intel's spelling of the name that carried it (nil for the root CA
	// CRL, which has none).
	Header map[string]string
	// Exactly one of TCBInfo (KindTCBInfo), QEIdentity (KindQEIdentity,
	// KindQvEIdentity, KindQAEIdentity) and CRL (KindPCKCRL,
	// KindRootCACRL) is set, parsed and verified.
	TCBInfo *collateral.SignedTCBInfo
	// QEIdentity is set for the enclave identity kinds.
	QEIdentity *collateral.SignedQEIdentity
	// CRL is set for KindPCKCRL and KindRootCACRL.
	CRL *collateral.CRL
	// Chain is the verified issuer chain, leaf first (nil for the root CA
	// CRL, which the trust anchor signs).
	Chain *collateral.Chain
	// IssueDate is the document's issueDate or the CRL's thisUpdate;
	// NextUpdate its nextUpdate.
	IssueDate, NextUpdate time.Time
	// ValidFrom and ValidUntil bound the window in which the item is
	// usable: the document's window intersected with the validity of
	// every certificate it depends on.
	ValidFrom, ValidUntil time.Time
	// EvalNumber is the tcbEvaluationDataNumber of TCB info and QE
	// identity (0 for CRLs).
	EvalNumber int

	fromWhat, untilWhat string
}

// CheckValidity reports whether now is inside the item's validity window
// (tolerating ClockSkew before its start). The error wraps ErrExpired.
func (it *Item) CheckValidity(now time.Time) error {
	if now.Before(it.ValidFrom.Add(-ClockSkew)) {
		return invalid(ErrExpired, "%s is not valid before %s (%s)", it.Key, it.ValidFrom.UTC().Format(time.RFC3339), it.fromWhat)
	}
	if !now.Before(it.ValidUntil) {
		return invalid(ErrExpired, "%s expired at %s (%s)", it.Key, it.ValidUntil.UTC().Format(time.RFC3339), it.untilWhat)
	}
	return nil
}

// window narrows the item's validity window.
func (it *Item) window(from time.Time, fromWhat string, until time.Time, untilWhat string) {
	if it.ValidFrom.IsZero() || from.After(it.ValidFrom) {
		it.ValidFrom, it.fromWhat = from, fromWhat
	}
	if it.ValidUntil.IsZero() || until.Before(it.ValidUntil) {
		it.ValidUntil, it.untilWhat = until, untilWhat
	}
}

func (it *Item) certWindow(c *x509.Certificate) {
	it.window(c.NotBefore, "notBefore of "+c.Subject.CommonName, c.NotAfter, "notAfter of "+c.Subject.CommonName)
}

// DecodeItem parses and verifies a response for k: body and header as
// served. root is the trust anchor; if nil, the pinned Intel SGX Root
// CA. DecodeItem does not look at the time: see [Item.CheckValidity].
//
// Errors wrap ErrInvalidResponse: ErrIssuerChain, ErrSignature,
// ErrMismatch, or a parse error of package collateral. On error the
// item is nil.
func DecodeItem(k ItemKey, body []byte, h http.Header, root *x509.Certificate) (*Item, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if root == nil {
		root = dcap.IntelRoot()
	}
	it := &Item{Key: k.Normalize()}
	var err error
	switch k.Kind {
	case KindTCBInfo:
		err = it.decodeTCBInfo(body, h, root)
	case KindQEIdentity, KindQvEIdentity, KindQAEIdentity:
		err = it.decodeQEIdentity(body, h, root)
	case KindPCKCRL:
		err = it.decodePCKCRL(body, h, root)
	case KindRootCACRL:
		err = it.decodeRootCRL(body, root)
	}
	if err != nil {
		return nil, err
	}
	it.certWindow(root)
	return it, nil
}

func malformed(err error) error { return fmt.Errorf("%w: %w", ErrInvalidResponse, err) }

func (it *Item) decodeTCBInfo(body []byte, h http.Header, root *x509.Certificate) error {
	s, err := collateral.ParseTCBInfoResponse(body)
	if err != nil {
		return malformed(err)
	}
	k := it.Key
	want := "SGX"
	if k.TEE == TEETDX {
		want = "TDX"
	}
	switch {
	case s.Info.ID != want:
		return invalid(ErrMismatch, "tcb info id %q, want %q", s.Info.ID, want)
	case s.Info.FMSPC != k.FMSPC:
		return invalid(ErrMismatch, "tcb info FMSPC %X, want %X", s.Info.FMSPC[:], k.FMSPC[:])
	case k.EvalNumber > 0 && s.Info.TCBEvaluationDataNumber != k.EvalNumber:
		return invalid(ErrMismatch, "tcb info evaluation data number %d, want %d", s.Info.TCBEvaluationDataNumber, k.EvalNumber)
	}
	chain, name, err := issuerChain(h, root, []string{tcbSigningCN},
		collateral.HeaderTCBInfoIssuerChain, collateral.HeaderTCBInfoIssuerChainV3)
	if err != nil {
		return err
	}
	if !verifyRawP256(chain.Certs[0], s.Raw, &s.Signature) {
		return invalid(ErrSignature, "tcb info signature does not verify over the bytes served")
	}
	it.Body, it.TCBInfo, it.Chain = body, s, chain
	it.Header = map[string]string{name: h.Get(name)}
	it.IssueDate, it.NextUpdate, it.EvalNumber = s.Info.IssueDate, s.Info.NextUpdate, s.Info.TCBEvaluationDataNumber
	it.window(s.Info.IssueDate, "issueDate", s.Info.NextUpdate, "nextUpdate")
	it.certWindow(chain.Certs[0])
	return nil
}

func (it *Item) decodeQEIdentity(body []byte, h http.Header, root *x509.Certificate) error {
	s, err := collateral.ParseQEIdentityResponse(body)
	if err != nil {
		return malformed(err)
	}
	k := it.Key
	want := "QE"
	switch {
	case k.Kind == KindQvEIdentity:
		want = "QVE"
	case k.Kind == KindQAEIdentity:
		want = "QAE"
	case k.TEE == TEETDX:
		want = "TD_QE"
	}
	switch {
	case s.Identity.ID != want:
		return invalid(ErrMismatch, "%s id %q, want %q", k.Kind, s.Identity.ID, want)
	case k.EvalNumber > 0 && s.Identity.TCBEvaluationDataNumber != k.EvalNumber:
		return invalid(ErrMismatch, "qe identity evaluation data number %d, want %d", s.Identity.TCBEvaluationDataNumber, k.EvalNumber)
	}
	chain, name, err := issuerChain(h, root, []string{tcbSigningCN}, collateral.HeaderEnclaveIdentityChain)
	if err != nil {
		return err
	}
	if !verifyRawP256(chain.Certs[0], s.Raw, &s.Signature) {
		return invalid(ErrSignature, "qe identity signature does not verify over the bytes served")
	}
	it.Body, it.QEIdentity, it.Chain = body, s, chain
	it.Header = map[string]string{name: h.Get(name)}
	it.IssueDate, it.NextUpdate, it.EvalNumber = s.Identity.IssueDate, s.Identity.NextUpdate, s.Identity.TCBEvaluationDataNumber
	it.window(s.Identity.IssueDate, "issueDate", s.Identity.NextUpdate, "nextUpdate")
	it.certWindow(chain.Certs[0])
	return nil
}

func (it *Item) decodePCKCRL(body []byte, h http.Header, root *x509.Certificate) error {
	crl, err := collateral.ParseCRL(body)
	if err != nil {
		return malformed(err)
	}
	cn := pckcert.PlatformCACN
	if it.Key.CA == pckcert.CAProcessor {
		cn = pckcert.ProcessorCACN
	}
	chain, name, err := issuerChain(h, root, []string{cn}, collateral.HeaderPCKCRLIssuerChain)
	if err != nil {
		return err
	}
	ca := chain.Certs[0]
	if !bytes.Equal(crl.List.RawIssuer, ca.RawSubject) {
		return invalid(ErrMismatch, "pck crl is not issued by the %s of its issuer chain", cn)
	}
	if err := crl.List.CheckSignatureFrom(ca); err != nil {
		return invalid(ErrSignature, "pck crl: %v", err)
	}
	if crl.List.NextUpdate.IsZero() {
		return invalid(ErrInvalidResponse, "pck crl has no nextUpdate")
	}
	it.Body, it.CRL, it.Chain = crl.DER, crl, chain
	it.Header = map[string]string{name: h.Get(name)}
	it.IssueDate, it.NextUpdate = crl.List.ThisUpdate, crl.List.NextUpdate
	it.window(crl.List.ThisUpdate, "thisUpdate", crl.List.NextUpdate, "nextUpdate")
	it.certWindow(ca)
	return nil
}

func (it *Item) decodeRootCRL(body []byte, root *x509.Certificate) error {
	crl, err := collateral.ParseCRL(body)
	if err != nil {
		return malformed(err)
	}
	if !bytes.Equal(crl.List.RawIssuer, root.RawSubject) {
		return invalid(ErrMismatch, "root ca crl is not issued by the trust anchor %q", root.Subject.CommonName)
	}
	if err := crl.List.CheckSignatureFrom(root); err != nil {
		return invalid(ErrSignature, "root ca crl: %v", err)
	}
	if crl.List.NextUpdate.IsZero() {
		return invalid(ErrInvalidResponse, "root ca crl has no nextUpdate")
	}
	it.Body, it.CRL = crl.DER, crl
	it.IssueDate, it.NextUpdate = crl.List.ThisUpdate, crl.List.NextUpdate
	it.window(crl.List.ThisUpdate, "thisUpdate", crl.List.NextUpdate, "nextUpdate")
	return nil
}

// issuerChain finds the first of names in h, parses it and checks that
// it is [signer, anchor] with the signer issued and signed by the anchor
// and named one of cns. It returns the chain and the name (in the
// spelling of names) that carried it.
func issuerChain(h http.Header, root *x509.Certificate, cns []string, names ...string) (*collateral.Chain, string, error) {
	var name, value string
	for _, n := range names {
		if v := h.Get(n); v != "" {
			name, value = n, v
			break
		}
	}
	if name == "" {
		return nil, "", invalid(ErrIssuerChain, "no %s header", names[0])
	}
	chain, err := collateral.ParseChain(value)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s header: %w", ErrIssuerChain, name, err)
	}
	if len(chain.Certs) != 2 {
		return nil, "", invalid(ErrIssuerChain, "%s header holds %d certificates, want 2 (signer, root)", name, len(chain.Certs))
	}
	if !bytes.Equal(chain.Certs[1].Raw, root.Raw) {
		sum := sha256.Sum256(chain.Certs[1].Raw)
		return nil, "", invalid(ErrIssuerChain, "%s header does not end in the trust anchor (its root has sha256 %x)", name, sum)
	}
	signer := chain.Certs[0]
	if !bytes.Equal(signer.RawIssuer, root.RawSubject) {
		return nil, "", invalid(ErrIssuerChain, "%s header: %q is not issued by the trust anchor", name, signer.Subject.CommonName)
	}
	if err := signer.CheckSignatureFrom(root); err != nil {
		return nil, "", invalid(ErrIssuerChain, "%s header: %q: %v", name, signer.Subject.CommonName, err)
	}
	ok := false
	for _, cn := range cns {
		ok = ok || signer.Subject.CommonName == cn
	}
	if !ok {
		return nil, "", invalid(ErrIssuerChain, "%s header: signer %q, want %q", name, signer.Subject.CommonName, cns[0])
	}
	return chain, name, nil
}

// verifyRawP256 checks a raw r‖s ECDSA P-256 signature over SHA-256(msg)
// by cert's key.
func verifyRawP256(cert *x509.Certificate, msg []byte, sig *[64]byte) bool {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return false
	}
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}
