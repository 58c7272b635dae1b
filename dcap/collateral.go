package dcap

import (
	"bytes"
	"crypto/x509"
	"strings"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
)

// What Intel's QVL requires the certificates' common names to contain
// (containment, not equality: Intel's own are "Intel SGX Root CA",
// "Intel SGX TCB Signing", "Intel SGX PCK Platform CA", …, and a private
// PKI may use other names that contain these).
const (
	cnRoot        = "SGX Root CA"
	cnTCBSigning  = "SGX TCB Signing"
	cnPCKLeaf     = "SGX PCK Certificate"
	cnPlatformCA  = "SGX PCK Platform CA"
	cnProcessorCA = "SGX PCK Processor CA"
)

// checkRootName checks the trusted root's CN as Intel checks the root of
// every chain.
func (s *session) checkRootName(step string) error {
	if !strings.Contains(s.root.Subject.CommonName, cnRoot) {
		return stepErr(step, ErrChain, "trusted root CN %q does not contain %q", s.root.Subject.CommonName, cnRoot)
	}
	return nil
}

// pckCAType names a PCK CA by its CN as Intel does: it contains "SGX PCK
// Platform CA" or "SGX PCK Processor CA". ok is false when it contains
// neither, or both.
func pckCAType(c *x509.Certificate) (t pckcert.CAType, ok bool) {
	platform := strings.Contains(c.Subject.CommonName, cnPlatformCA)
	processor := strings.Contains(c.Subject.CommonName, cnProcessorCA)
	switch {
	case platform && !processor:
		return pckcert.CAPlatform, true
	case processor && !platform:
		return pckcert.CAProcessor, true
	}
	return pckcert.CAUnknown, false
}

// verifiedCollateral is collateral whose signatures and chains have been
// checked against a root. It depends only on the bytes it holds copies
// of, so it can be reused for any quote and time; validity windows are
// kept as data and checked per call.
type verifiedCollateral struct {
	root *x509.Certificate
	// exact bytes (digests for the CRLs), for cache identity
	rootCRLSum, pckCRLSum       [32]byte
	tcbRaw, qeRaw               []byte
	tcbSig, qeSig               [64]byte
	tcbChain, qeChain, crlChain [][]byte

	tcbInfo    *collateral.TCBInfo
	qeIdentity *collateral.QEIdentity
	rootCRL    *x509.RevocationList
	pckCRL     *x509.RevocationList
	// pckCRLIssuer is the intermediate that signed the PCK CRL.
	pckCRLIssuer *x509.Certificate
	rootRevoked  map[string]bool
	pckRevoked   map[string]bool
	// certs of the three issuer chains, for validity windows
	certs []*x509.Certificate
	// window covers the CRLs, documents and issuer chains.
	window window
}

func serialSet(l *x509.RevocationList) map[string]bool {
	m := make(map[string]bool, len(l.RevokedCertificateEntries))
	for _, e := range l.RevokedCertificateEntries {
		if e.SerialNumber != nil {
			m[string(e.SerialNumber.Bytes())+"/"+signOf(e.SerialNumber.Sign())] = true
		}
	}
	return m
}

func signOf(s int) string {
	if s < 0 {
		return "-"
	}
	return "+"
}

func serialKey(c *x509.Certificate) string {
	return string(c.SerialNumber.Bytes()) + "/" + signOf(c.SerialNumber.Sign())
}

func revoked(m map[string]bool, c *x509.Certificate) bool { return m[serialKey(c)] }

func chainDER(c *collateral.Chain) [][]byte {
	out := make([][]byte, len(c.Certs))
	for i, x := range c.Certs {
		out[i] = x.Raw
	}
	return out
}

// sameBytes reports whether v was built from exactly the bytes of c.
func (v *verifiedCollateral) sameBytes(c *collateral.Collateral, root *x509.Certificate) bool {
	eqChain := func(a [][]byte, b *collateral.Chain) bool {
		if len(a) != len(b.Certs) {
			return false
		}
		for i := range a {
			if !bytes.Equal(a[i], b.Certs[i].Raw) {
				return false
			}
		}
		return true
	}
	return bytes.Equal(v.root.Raw, root.Raw) &&
		v.tcbSig == c.TCBInfo.Signature && v.qeSig == c.QEIdentity.Signature &&
		bytes.Equal(v.tcbRaw, c.TCBInfo.Raw) && bytes.Equal(v.qeRaw, c.QEIdentity.Raw) &&
		v.rootCRLSum == c.RootCACRL.Digest() && v.pckCRLSum == c.PCKCRL.Digest() &&
		eqChain(v.tcbChain, c.TCBInfoIssuerChain) && eqChain(v.qeChain, c.QEIdentityIssuerChain) &&
		eqChain(v.crlChain, c.PCKCRLIssuerChain)
}

// collateralKey keys a collateral set by its TCB info and QE identity
// signatures; sameBytes confirms every other byte (a new CRL with the same
// documents replaces the entry).
func collateralKey(c *collateral.Collateral) [128]byte {
	var k [128]byte
	copy(k[:64], c.TCBInfo.Signature[:])
	copy(k[64:], c.QEIdentity.Signature[:])
	return k
}

// verifyCollateral checks every signature and chain of c against root.
// It does not look at the time: see checkTimes.
func (s *session) verifyCollateral(c *collateral.Collateral) (*verifiedCollateral, error) {
	if c == nil || c.RootCACRL == nil || c.PCKCRL == nil || c.TCBInfo == nil || c.QEIdentity == nil ||
		c.TCBInfoIssuerChain == nil || c.QEIdentityIssuerChain == nil || c.PCKCRLIssuerChain == nil {
		return nil, stepErr("collateral", ErrCollateral, "incomplete collateral")
	}
	if err := s.checkRootName("collateral"); err != nil {
		return nil, err
	}
	root := s.root
	v := &verifiedCollateral{
		root:       root,
		rootCRLSum: c.RootCACRL.Digest(), pckCRLSum: c.PCKCRL.Digest(),
		tcbRaw: c.TCBInfo.Raw, qeRaw: c.QEIdentity.Raw,
		tcbSig: c.TCBInfo.Signature, qeSig: c.QEIdentity.Signature,
		tcbChain: chainDER(c.TCBInfoIssuerChain), qeChain: chainDER(c.QEIdentityIssuerChain),
		crlChain: chainDER(c.PCKCRLIssuerChain),
		tcbInfo:  c.TCBInfo.Info, qeIdentity: c.QEIdentity.Identity,
		rootCRL: c.RootCACRL.List, pckCRL: c.PCKCRL.List,
	}
	// Every issuer chain must end in the trusted root (cheap, and the
	// clearest error when collateral comes from another PKI).
	for _, ch := range []struct {
		step  string
		chain *collateral.Chain
	}{{"tcb info", c.TCBInfoIssuerChain}, {"qe identity", c.QEIdentityIssuerChain}, {"pck crl issuer chain", c.PCKCRLIssuerChain}} {
		if n := len(ch.chain.Certs); n == 0 || !bytes.Equal(ch.chain.Certs[n-1].Raw, root.Raw) {
			return nil, stepErr(ch.step, ErrChain, "issuer chain does not end in the trusted root")
		}
	}
	// Root CA CRL: issued and signed by the root.
	if !bytes.Equal(v.rootCRL.RawIssuer, root.RawSubject) {
		return nil, stepErr("root CA CRL", ErrCRL, "issuer is not the trusted root")
	}
	if err := s.checkCRLSignature(v.rootCRL, v.rootCRLSum, root); err != nil {
		return nil, stepErr("root CA CRL", ErrCRL, "signature: %w", err)
	}
	v.rootRevoked = serialSet(v.rootCRL)

	// TCB info and QE identity: chain [TCB Signing, root], not revoked,
	// signature over the exact bytes.
	for _, d := range []struct {
		step  string
		chain *collateral.Chain
		raw   []byte
		sig   *[64]byte
	}{
		{"tcb info", c.TCBInfoIssuerChain, c.TCBInfo.Raw, &c.TCBInfo.Signature},
		{"qe identity", c.QEIdentityIssuerChain, c.QEIdentity.Raw, &c.QEIdentity.Signature},
	} {
		signer, err := s.verifyTwoCertChain(d.step, d.chain, v.rootRevoked)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(signer.Subject.CommonName, cnTCBSigning) {
			return nil, stepErr(d.step, ErrChain, "signer CN %q does not contain %q", signer.Subject.CommonName, cnTCBSigning)
		}
		if !verifyRawP256(ecdsaKey(signer), d.raw, d.sig) {
			return nil, stepErr(d.step, ErrCollateralSignature, "signature does not verify over the exact bytes")
		}
		v.certs = append(v.certs, d.chain.Certs...)
	}

	// PCK CRL: chain [PCK CA, root], CA not revoked, CRL issued and
	// signed by it.
	ca, err := s.verifyTwoCertChain("pck crl issuer chain", c.PCKCRLIssuerChain, v.rootRevoked)
	if err != nil {
		return nil, err
	}
	v.certs = append(v.certs, c.PCKCRLIssuerChain.Certs...)
	if !bytes.Equal(v.pckCRL.RawIssuer, ca.RawSubject) {
		return nil, stepErr("pck crl", ErrCRL, "issuer is not the PCK CA of its issuer chain")
	}
	if err := s.checkCRLSignature(v.pckCRL, v.pckCRLSum, ca); err != nil {
		return nil, stepErr("pck crl", ErrCRL, "signature: %w", err)
	}
	v.pckCRLIssuer = ca
	v.pckRevoked = serialSet(v.pckCRL)

	// Static checks on the documents.
	if v.tcbInfo.TCBType != 0 {
		return nil, stepErr("tcb info", ErrCollateral, "tcbType %d, want 0", v.tcbInfo.TCBType)
	}
	if err := checkIdentityLevels(v.tcbInfo, v.qeIdentity); err != nil {
		return nil, err
	}
	v.window = collateralWindow(v)
	return v, nil
}

// checkIdentityLevels rejects a QE identity or TDX module identity with a
// level whose status is not UpToDate, OutOfDate or Revoked, wherever it is
// in the list: Intel's QVL fails such an identity
// (QEIDENTITY_UNSUPPORTED_FORMAT) whichever level the quote matches. The
// collateral package already rejects it when parsing; this keeps
// hand-built documents to the same rule.
func checkIdentityLevels(info *collateral.TCBInfo, qe *collateral.QEIdentity) error {
	for _, l := range qe.TCBLevels {
		if !collateral.IdentityLevelStatus(l.TCBStatus) {
			return stepErr("qe identity", ErrCollateral, "level isvsvn %d has status %v; an enclave identity level must be UpToDate, OutOfDate or Revoked", l.ISVSVN, l.TCBStatus)
		}
	}
	for _, m := range info.TDXModuleIdentities {
		for _, l := range m.TCBLevels {
			if !collateral.IdentityLevelStatus(l.TCBStatus) {
				return stepErr("tcb info", ErrCollateral, "module identity %s level isvsvn %d has status %v; a module identity level must be UpToDate, OutOfDate or Revoked", m.ID, l.ISVSVN, l.TCBStatus)
			}
		}
	}
	return nil
}

// verifyTwoCertChain checks [leaf, root] where root must be the trusted
// root (exact DER) and leaf is signed by it and not revoked.
func (s *session) verifyTwoCertChain(step string, ch *collateral.Chain, rootRevoked map[string]bool) (*x509.Certificate, error) {
	if len(ch.Certs) != 2 {
		return nil, stepErr(step, ErrChain, "issuer chain has %d certificates, want 2", len(ch.Certs))
	}
	if !bytes.Equal(ch.Certs[1].Raw, s.root.Raw) {
		return nil, stepErr(step, ErrChain, "issuer chain does not end in the trusted root")
	}
	leaf := ch.Certs[0]
	if err := leaf.CheckSignatureFrom(s.root); err != nil {
		return nil, stepErr(step, ErrChain, "%s: %w", leaf.Subject.CommonName, err)
	}
	if revoked(rootRevoked, leaf) {
		return nil, stepErr(step, ErrRevoked, "%s (serial %x) is revoked by the root CA CRL", leaf.Subject.CommonName, leaf.SerialNumber)
	}
	return leaf, nil
}

// window summarises validity windows: the earliest expiration, the
// earliest and latest issue (notBefore, thisUpdate, issueDate) and what
// was issued last. It depends only on the documents, so it is computed
// once per verified object and merged per call.
type window struct {
	earliestExpiration, earliestIssue, latestIssue time.Time
	latestIssueWhat                                string
}

func (w *window) expiry(x time.Time) {
	if w.earliestExpiration.IsZero() || x.Before(w.earliestExpiration) {
		w.earliestExpiration = x
	}
}

func (w *window) issue(what string, x time.Time) {
	if w.earliestIssue.IsZero() || x.Before(w.earliestIssue) {
		w.earliestIssue = x
	}
	if x.After(w.latestIssue) {
		w.latestIssue, w.latestIssueWhat = x, what
	}
}

func (w *window) cert(c *x509.Certificate) {
	w.expiry(c.NotAfter)
	w.issue("certificate "+c.Subject.CommonName, c.NotBefore)
}

// merge returns the window covering both.
func (w window) merge(o window) window {
	if !o.earliestExpiration.IsZero() {
		w.expiry(o.earliestExpiration)
	}
	if !o.earliestIssue.IsZero() {
		w.issue(o.latestIssueWhat, o.latestIssue)
		if o.earliestIssue.Before(w.earliestIssue) {
			w.earliestIssue = o.earliestIssue
		}
	}
	return w
}

func collateralWindow(v *verifiedCollateral) window {
	var w window
	for _, l := range []*x509.RevocationList{v.rootCRL, v.pckCRL} {
		w.expiry(l.NextUpdate)
		w.issue("CRL", l.ThisUpdate)
	}
	w.expiry(v.tcbInfo.NextUpdate)
	w.issue("tcb info", v.tcbInfo.IssueDate)
	w.expiry(v.qeIdentity.NextUpdate)
	w.issue("qe identity", v.qeIdentity.IssueDate)
	for _, c := range v.certs {
		w.cert(c)
	}
	return w
}

// notYetValid names the collateral issued after now: a CRL whose
// thisUpdate (Intel flags it as expired collateral) or a TCB info or QE
// identity whose issueDate (Intel does not look at it; tdproof flags it
// the same way) is after the verification time. TDX module identities
// have no dates of their own.
func (v *verifiedCollateral) notYetValid(now time.Time) (what []string, crl bool) {
	for _, d := range []struct {
		what  string
		issue time.Time
		crl   bool
	}{
		{"root CA CRL", v.rootCRL.ThisUpdate, true},
		{"PCK CRL", v.pckCRL.ThisUpdate, true},
		{"TCB info", v.tcbInfo.IssueDate, false},
		{"QE identity", v.qeIdentity.IssueDate, false},
	} {
		if now.Before(d.issue) {
			what = append(what, d.what)
			crl = crl || d.crl
		}
	}
	return what, crl
}

type collateralArg = *collateral.Collateral

// detach replaces the byte slices v shares with the caller by copies, so
// a cached entry cannot change under it.
func (v *verifiedCollateral) detach() {
	v.tcbRaw = bytes.Clone(v.tcbRaw)
	v.qeRaw = bytes.Clone(v.qeRaw)
	for _, ch := range [][][]byte{v.tcbChain, v.qeChain, v.crlChain} {
		for i := range ch {
			ch[i] = bytes.Clone(ch[i])
		}
	}
}
