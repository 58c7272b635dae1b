package snp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"time"
)

// Certificates is the endorsement chain that comes with a report.
type Certificates struct {
	// ARK, when set, must be byte-identical to the trusted root of the
	// product (a supplied ARK is never trusted by itself).
	ARK *x509.Certificate
	// ASK is the ASK (VCEK-signed reports) or ASVK (VLEK-signed). If nil,
	// the embedded one of the product is used (it is verified against the
	// ARK like a supplied one).
	ASK *x509.Certificate
	// VCEK is the VCEK or VLEK. It is required.
	VCEK *x509.Certificate
	// CRLs are CRLs obtained with the certificates (AMD KDS
	// {product}/crl, a bundle's crl.der). They are applied like
	// Options.CRLs (and VerifierOptions.CRLs), in addition to them.
	CRLs [][]byte
}

// Options configure Verify.
type Options struct {
	// Now is the verification time for certificate and CRL validity. If
	// zero, time.Now().
	Now time.Time
	// Product forces the product line. If zero, it comes from the
	// report's CPUID (version 3 and later); version 2 reports try Genoa,
	// Milan and Turin in that order, as dstack does, and take the first
	// whose chain verifies.
	Product Product
	// Roots replaces the pinned ARK of a product (tests, private PKIs).
	// A result made with a replaced root has AMDRoot false.
	Roots map[Product]*x509.Certificate
	// CRLs are DER CRLs as AMD KDS serves them ({product}/crl). Each CRL
	// issued by the product's ARK must verify and be current; the ASK and
	// VCEK serials are looked up in it. CRLs of other issuers are
	// ignored.
	CRLs [][]byte
	// RequireCRL fails verification (ErrCRL) when no CRL of the
	// product's ARK is supplied.
	RequireCRL bool
}

// Result is a verified report. Fields are data; Policy decides.
type Result struct {
	Report     *Report
	Product    Product
	SigningKey SigningKey
	// TCBStatus is dstack's status: UpToDate iff CURRENT = REPORTED =
	// COMMITTED = LAUNCH; TCB gives each field.
	TCBStatus TCBStatus
	TCB       TCBDetail
	// AdvisoryIDs is always empty: AMD publishes no per-TCB advisories in
	// KDS (dstack returns []).
	AdvisoryIDs []string
	// AMDRoot is true when the chain ends in the pinned AMD ARK.
	AMDRoot bool
	// CRLChecked is true when a CRL of the product's ARK was applied;
	// CRL then describes it (the one issued last when several were).
	CRLChecked bool
	CRL        *CRLInfo
	ARK, ASK   *x509.Certificate
	VCEK       *x509.Certificate
	Extensions *Extensions
	// ChainNotAfter is the earliest end of validity in the chain.
	ChainNotAfter time.Time
}

// Verify verifies r with its endorsement certificates: product, chain to
// the pinned (or configured) ARK, validity at opts.Now, CRLs, report
// signature, product name, VCEK TCB extensions against REPORTED_TCB and
// hwID against CHIP_ID. It does no I/O.
func Verify(r *Report, certs Certificates, opts Options) (*Result, error) {
	return verify(r, certs, opts, nil)
}

// chain is a verified endorsement chain (signatures and names only; the
// time-dependent checks run on every use).
type chain struct {
	product             Product
	key                 SigningKey
	ark, ask, vcek      *x509.Certificate
	ext                 *Extensions
	pub                 *ecdsa.PublicKey
	notBefore, notAfter time.Time
	amdRoot             bool
}

func verify(r *Report, certs Certificates, opts Options, c *cache) (*Result, error) {
	if r == nil || len(r.Raw) != ReportSize {
		return nil, stepErr("report", ErrMalformed, "no parsed report")
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	key := r.SigningKey()
	if key != SigningKeyVCEK && key != SigningKeyVLEK {
		return nil, stepErr("signing key", ErrSigningKey, "KEY_INFO.SIGNING_KEY is %s", key)
	}
	if certs.VCEK == nil {
		return nil, stepErr("chain", ErrChain, "no %s certificate", key)
	}
	var candidates []Product
	switch {
	case r.Version >= 3:
		p, err := ProductFromCPUID(r.CPUIDFamily, r.CPUIDModel)
		if err != nil {
			return nil, &VerifyError{Step: "product", Err: err}
		}
		if opts.Product != ProductUnknown && opts.Product != p {
			return nil, stepErr("product", ErrProduct, "report CPUID names %s, %s was requested", p, opts.Product)
		}
		candidates = []Product{p}
	case opts.Product != ProductUnknown:
		candidates = []Product{opts.Product}
	default:
		candidates = []Product{ProductGenoa, ProductMilan, ProductTurin}
	}
	var ch *chain
	var firstErr error
	for _, p := range candidates {
		var err error
		ch, err = c.chain(p, key, certs, opts.Roots)
		if err == nil {
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if ch == nil {
		return nil, firstErr
	}
	if now.Before(ch.notBefore) {
		return nil, stepErr("validity", ErrNotYetValid, "chain valid from %s, verification time %s", ch.notBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(ch.notAfter) {
		return nil, stepErr("validity", ErrExpired, "chain valid until %s, verification time %s", ch.notAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	crls := opts.CRLs
	if len(certs.CRLs) > 0 {
		crls = append(append(make([][]byte, 0, len(crls)+len(certs.CRLs)), crls...), certs.CRLs...)
	}
	crlInfo, err := c.checkCRLs(ch, crls, now)
	if err != nil {
		return nil, err
	}
	crlChecked := crlInfo != nil
	if !crlChecked && opts.RequireCRL {
		return nil, stepErr("crl", ErrCRL, "no CRL of ARK-%s supplied", ch.product)
	}
	digest := sha512.Sum384(r.SignedBytes())
	rr, ss := r.SignatureInts()
	if !ecdsa.Verify(ch.pub, digest[:], rr, ss) {
		return nil, stepErr("signature", ErrSignature, "ECDSA P-384 signature does not verify with the %s", key)
	}
	if err := checkEndorsement(r, ch); err != nil {
		return nil, err
	}
	return &Result{
		Report:        r,
		Product:       ch.product,
		SigningKey:    key,
		TCBStatus:     tcbStatus(r),
		TCB:           tcbDetail(r, ch.product),
		AdvisoryIDs:   []string{},
		AMDRoot:       ch.amdRoot,
		CRLChecked:    crlChecked,
		CRL:           crlInfo,
		ARK:           ch.ark,
		ASK:           ch.ask,
		VCEK:          ch.vcek,
		Extensions:    ch.ext,
		ChainNotAfter: ch.notAfter,
	}, nil
}

// checkEndorsement compares the signed report with what its endorsement
// key certificate was issued for.
func checkEndorsement(r *Report, ch *chain) error {
	e := ch.ext
	if want := e.TCB(ch.product); want != r.ReportedTCB || ch.product == ProductTurin && e.Reserved != [4]uint8{} {
		return stepErr("tcb", ErrTCBMismatch, "%s TCB %s, REPORTED_TCB %s", ch.key, fmtTCB(want, ch.product), fmtTCB(r.ReportedTCB, ch.product))
	}
	if ch.product == ProductTurin && !e.HasFMC {
		return stepErr("tcb", ErrTCBMismatch, "Turin %s has no fmcSPL extension", ch.key)
	}
	if ch.product != ProductTurin && e.HasFMC {
		return stepErr("tcb", ErrTCBMismatch, "%s %s has an fmcSPL extension", ch.product, ch.key)
	}
	if ch.key == SigningKeyVCEK {
		switch len(e.HWID) {
		case 64:
			if !bytes.Equal(e.HWID, r.ChipID[:]) {
				return stepErr("chip id", ErrChipID, "VCEK hwID %x, CHIP_ID %x", e.HWID, r.ChipID)
			}
		case 8:
			if ch.product != ProductTurin || !bytes.Equal(e.HWID, r.ChipID[:8]) {
				return stepErr("chip id", ErrChipID, "VCEK hwID %x, CHIP_ID %x", e.HWID, r.ChipID)
			}
		default:
			return stepErr("chip id", ErrChipID, "VCEK has no hwID")
		}
	}
	return nil
}

func fmtTCB(t TCBVersion, p Product) string {
	tp := t.Parts(p)
	s := fmt.Sprintf("%016x (bl=%d tee=%d snp=%d ucode=%d", uint64(t), tp.BootLoader, tp.TEE, tp.SNP, tp.Microcode)
	if p == ProductTurin {
		s += fmt.Sprintf(" fmc=%d", tp.FMC)
	}
	return s + ")"
}

// buildChain verifies the names and signatures of ARK → ASK → VCEK for
// product p and key kind key.
func buildChain(p Product, key SigningKey, certs Certificates, roots map[Product]*x509.Certificate) (*chain, error) {
	step := "chain " + p.String()
	root, amd := roots[p], false
	if root == nil {
		root, amd = embedded[p].ark, true
		if root == nil {
			return nil, stepErr(step, ErrUnsupported, "no ARK for product %s", p)
		}
	} else if err := checkCertSig(root, root); err != nil {
		return nil, stepErr(step, ErrChain, "ARK is not self-signed: %v", err)
	}
	if certs.ARK != nil && !bytes.Equal(certs.ARK.Raw, root.Raw) {
		return nil, stepErr(step, ErrRootMismatch, "supplied ARK %q (sha256 %s)", certs.ARK.Subject.CommonName, fingerprint(certs.ARK))
	}
	ask := certs.ASK
	askCN, leafCN := "SEV-"+p.String(), "SEV-VCEK"
	if key == SigningKeyVLEK {
		askCN, leafCN = "SEV-VLEK-"+p.String(), "SEV-VLEK"
	}
	if ask == nil {
		ask = embedded[p].ask
		if key == SigningKeyVLEK {
			ask = embedded[p].asvk
		}
		if roots[p] != nil {
			return nil, stepErr(step, ErrChain, "no ASK supplied for a replaced ARK")
		}
	}
	if !root.IsCA || !root.BasicConstraintsValid {
		return nil, stepErr(step, ErrChain, "ARK is not a CA")
	}
	if !ask.IsCA || !ask.BasicConstraintsValid {
		return nil, stepErr(step, ErrChain, "%s %q is not a CA", askName(key), ask.Subject.CommonName)
	}
	if ask.Subject.CommonName != askCN {
		return nil, stepErr(step, ErrChain, "%s subject CN %q, want %q", askName(key), ask.Subject.CommonName, askCN)
	}
	if !bytes.Equal(ask.RawIssuer, root.RawSubject) {
		return nil, stepErr(step, ErrChain, "%s issuer %q is not the ARK %q", askName(key), ask.Issuer.CommonName, root.Subject.CommonName)
	}
	if err := checkCertSig(ask, root); err != nil {
		return nil, stepErr(step, ErrChain, "%s signature: %v", askName(key), err)
	}
	leaf := certs.VCEK
	if leaf.Subject.CommonName != leafCN {
		return nil, stepErr(step, ErrChain, "endorsement key certificate CN %q, want %q for a %s-signed report", leaf.Subject.CommonName, leafCN, key)
	}
	if !bytes.Equal(leaf.RawIssuer, ask.RawSubject) {
		return nil, stepErr(step, ErrChain, "%s issuer %q is not the %s %q", key, leaf.Issuer.CommonName, askName(key), ask.Subject.CommonName)
	}
	if err := checkCertSig(leaf, ask); err != nil {
		return nil, stepErr(step, ErrChain, "%s signature: %v", key, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, stepErr(step, ErrChain, "%s key is not ECDSA P-384", key)
	}
	ext, err := ParseExtensions(leaf)
	if err != nil {
		return nil, &VerifyError{Step: step, Err: err}
	}
	if ext.ProductLine() != p.String() {
		return nil, stepErr(step, ErrProduct, "%s product name %q, chain product %s", key, ext.ProductName, p)
	}
	if key == SigningKeyVCEK && (ext.HWID == nil || ext.CSPID != "") {
		return nil, stepErr(step, ErrSigningKey, "VCEK-signed report, certificate is not a VCEK (no hwID)")
	}
	if key == SigningKeyVLEK && (ext.HWID != nil || ext.CSPID == "") {
		return nil, stepErr(step, ErrSigningKey, "VLEK-signed report, certificate is not a VLEK (no CSP_ID)")
	}
	ch := &chain{product: p, key: key, ark: root, ask: ask, vcek: leaf, ext: ext, pub: pub, amdRoot: amd,
		notBefore: root.NotBefore, notAfter: root.NotAfter}
	for _, c := range []*x509.Certificate{ask, leaf} {
		if c.NotBefore.After(ch.notBefore) {
			ch.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(ch.notAfter) {
			ch.notAfter = c.NotAfter
		}
	}
	return ch, nil
}

func askName(k SigningKey) string {
	if k == SigningKeyVLEK {
		return "ASVK"
	}
	return "ASK"
}

// checkCertSig checks that parent signed c with RSA-PSS/SHA-384 or
// ECDSA/SHA-384, the algorithms AMD uses.
func checkCertSig(c, parent *x509.Certificate) error {
	switch c.SignatureAlgorithm {
	case x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
	default:
		return fmt.Errorf("signature algorithm %s (want RSA-PSS or ECDSA with SHA-384)", c.SignatureAlgorithm)
	}
	return parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
}
