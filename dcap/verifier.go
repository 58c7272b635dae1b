package dcap

import (
	"crypto/x509"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/quote"
)

// DefaultCacheEntries bounds each of a Verifier's caches.
const DefaultCacheEntries = 4096

// VerifierOptions configure a Verifier. The zero value trusts the pinned
// Intel root and uses Intel's expiry semantics.
type VerifierOptions struct {
	// TrustedRoot replaces the pinned Intel SGX Root CA. If nil, the
	// Intel root is used.
	TrustedRoot *x509.Certificate
	// Strict: see Options.Strict.
	Strict bool
	// CacheEntries bounds each cache (collateral sets, platforms, PCK CAs,
	// CRL signatures). If zero, DefaultCacheEntries.
	CacheEntries int
}

// Verifier verifies quotes like [Verify] but remembers collateral and
// platforms it has already verified, keyed by signature and confirmed by
// comparing every byte they were built from. A repeat quote from a known
// platform under known collateral costs one ECDSA verification (the quote
// signature) plus hashing, byte comparisons and CRL lookups; revocation,
// TCB matching and validity windows are evaluated on every call.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	session *session
	strict  bool
}

// NewVerifier returns a Verifier.
func NewVerifier(opts VerifierOptions) *Verifier {
	root := opts.TrustedRoot
	if root == nil {
		root = intelRoot
	}
	n := opts.CacheEntries
	if n <= 0 {
		n = DefaultCacheEntries
	}
	return &Verifier{session: newSession(root, newCache(n)), strict: opts.Strict}
}

// Verify verifies q against c at time now (time.Now() if zero).
func (v *Verifier) Verify(q *quote.Quote, c *collateral.Collateral, now time.Time) (*Result, error) {
	return v.session.verify(q, c, now, v.strict)
}

// VerifySignatures checks what can be checked without collateral: the PCK
// chain from the quote to the trusted root (signatures and names, no
// revocation, no validity window), the QE report signature, the QE report
// binding of the attestation key and the quote signature. It does not
// establish a TCB status; use Verify for that.
func VerifySignatures(q *quote.Quote, opts Options) error {
	root := opts.TrustedRoot
	if root == nil {
		root = intelRoot
	}
	if q == nil || q.Signature == nil {
		return stepErr("quote", quote.ErrMalformed, "incomplete quote")
	}
	if q.Header.QEVendorID != quote.IntelQEVendorID {
		return stepErr("quote", ErrQEVendor, "QE vendor ID %x", q.Header.QEVendorID)
	}
	s := newSession(root, nil)
	chainPEM, err := pckChainPEM(q, nil)
	if err != nil {
		return err
	}
	vp, err := s.verifyPlatform(q, chainPEM)
	if err != nil {
		return err
	}
	if !verifyRawP256(vp.attKey, q.Signed(), &q.Signature.Signature) {
		return stepErr("quote", ErrQuoteSignature, "not signed by the attestation key")
	}
	return nil
}
