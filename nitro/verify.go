package nitro

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/revocation"
	"github.com/veraison/go-cose"
)

// Default freshness window, as dstack's nsm-qvl applies it.
const (
	DefaultMaxAge  = time.Hour
	DefaultMaxSkew = 5 * time.Minute
)

// Options configure [Verify]. The zero value verifies against the pinned
// AWS root at the current time with dstack's freshness window, requires
// no particular user_data, nonce or public_key, and refuses debug
// enclaves.
type Options struct {
	// Time is the verification time: certificate validity and freshness
	// are judged at it. Zero means time.Now().
	Time time.Time
	// MaxAge is how old the timestamp may be; zero means DefaultMaxAge.
	MaxAge time.Duration
	// MaxSkew is how far in the future the timestamp may be; zero means
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// Root replaces the pinned AWS root (tests, other partitions).
	Root *x509.Certificate
	// Kind, when set, requires the document to be of that kind.
	Kind Kind
	// UserData, Nonce and PublicKey, when non-nil, must equal the
	// document's fields exactly (an absent field never matches).
	UserData  []byte
	Nonce     []byte
	PublicKey []byte
	// AllowDebug accepts enclaves whose PCR0, PCR1 and PCR2 are all zero.
	// Callers that must report a verified debug document (dstack's
	// /verify refuses it at the OS-image step) set it and check
	// [Document.Debug] themselves.
	AllowDebug bool
	// Revocation, when set, is called with the verified chain (signing
	// certificate first, root last) once the signature verified, and
	// returns the CRLs to check it against (revocation/crlcache fetches
	// and caches them): every certificate that names a CRL distribution
	// point (AWS's regional and zonal CAs) must be covered by a current
	// CRL of its issuer that does not list it (package revocation).
	// Errors: ErrRevoked; ErrCRL for a list that is missing, invalid or
	// not current, or that the function could not provide (its error is
	// wrapped). Nil: no revocation check.
	Revocation func(chain []*x509.Certificate) ([]*x509.RevocationList, error)
}

// Result is a verified document with its chain.
type Result struct {
	*Document
	// Chain is the verified chain, signing certificate first, root last.
	Chain []*x509.Certificate
	// Time is the verification time used.
	Time time.Time
}

// Verify parses data ([Parse]) and verifies it as the package
// documentation describes. On error it returns nil and an error wrapping
// one of the package's sentinels.
func Verify(data []byte, opts Options) (*Result, error) {
	d, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return d.Verify(opts)
}

// Verify verifies a parsed document. See [Verify].
func (d *Document) Verify(opts Options) (*Result, error) {
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	maxAge, maxSkew := opts.MaxAge, opts.MaxSkew
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	root := opts.Root
	if root == nil {
		root = awsRoot
	}
	if d.msg == nil {
		return nil, fmt.Errorf("%w: document was not produced by Parse", ErrMalformed)
	}
	if err := checkHeaders(&d.msg.Headers); err != nil {
		return nil, err
	}
	if d.Digest != "SHA384" {
		return nil, fmt.Errorf("%w: digest %q, want SHA384", ErrAlgorithm, d.Digest)
	}
	if opts.Kind != "" && d.Kind != opts.Kind {
		return nil, fmt.Errorf("%w: document is %s, want %s", ErrKind, d.Kind, opts.Kind)
	}
	ts := d.Timestamp()
	if now.Sub(ts) > maxAge {
		return nil, fmt.Errorf("%w: timestamp %s is more than %s before %s", ErrStale, ts.Format(time.RFC3339Nano), maxAge, now.UTC().Format(time.RFC3339Nano))
	}
	if ts.Sub(now) > maxSkew {
		return nil, fmt.Errorf("%w: timestamp %s is more than %s after %s", ErrFuture, ts.Format(time.RFC3339Nano), maxSkew, now.UTC().Format(time.RFC3339Nano))
	}
	chain, err := d.verifyChain(root, now)
	if err != nil {
		return nil, err
	}
	pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, ErrKey
	}
	if len(d.Signature) != 96 {
		return nil, fmt.Errorf("%w: signature is %d bytes, want 96", ErrSignature, len(d.Signature))
	}
	v, err := cose.NewVerifier(cose.AlgorithmES384, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	if err := d.msg.Verify(nil, v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if opts.Revocation != nil {
		if err := revocation.CheckFetched(chain, now, opts.Revocation, ErrRevoked, ErrCRL); err != nil {
			return nil, err
		}
	}
	if err := expect(ErrUserData, "user_data", d.UserData, opts.UserData); err != nil {
		return nil, err
	}
	if err := expect(ErrNonce, "nonce", d.Nonce, opts.Nonce); err != nil {
		return nil, err
	}
	if err := expect(ErrPublicKey, "public_key", d.PublicKey, opts.PublicKey); err != nil {
		return nil, err
	}
	if d.Kind == KindEnclave {
		// Debug is read from PCR0–2 and callers bind the image to them:
		// a document without one of them can be neither.
		for i := 0; i < 3; i++ {
			if d.PCRs[i] == nil {
				return nil, fmt.Errorf("%w: enclave document without PCR%d", ErrPCR, i)
			}
		}
	}
	if d.Kind == KindEnclave && d.Debug() && !opts.AllowDebug {
		return nil, ErrDebug
	}
	return &Result{Document: d, Chain: chain, Time: now}, nil
}

func expect(sentinel error, field string, got, want []byte) error {
	if want == nil {
		return nil
	}
	if got == nil {
		return fmt.Errorf("%w: %s absent", sentinel, field)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s is %x, want %x", sentinel, field, got, want)
	}
	return nil
}

// checkHeaders requires alg ES384 in the protected header and allows no
// critical header other than alg (label 1 or "alg").
func checkHeaders(h *cose.Headers) error {
	alg, err := h.Protected.Algorithm()
	if err != nil {
		return fmt.Errorf("%w: protected header: %v", ErrAlgorithm, err)
	}
	if alg != cose.AlgorithmES384 {
		return fmt.Errorf("%w: COSE algorithm %d, want ES384 (-35)", ErrAlgorithm, alg)
	}
	if _, ok := h.Unprotected[cose.HeaderLabelAlgorithm]; ok {
		return fmt.Errorf("%w: alg in the unprotected header", ErrAlgorithm)
	}
	if c, ok := h.Protected[cose.HeaderLabelCritical]; ok {
		list, ok := c.([]any)
		if !ok {
			return fmt.Errorf("%w: crit header is not an array", ErrAlgorithm)
		}
		for _, l := range list {
			switch l {
			case int64(1), "alg":
			default:
				return fmt.Errorf("%w: unsupported critical header %v", ErrAlgorithm, l)
			}
		}
	}
	return nil
}

// verifyChain builds signing certificate → cabundle[len-1] … cabundle[1]
// → root at now. cabundle[0] (the root AWS ships in the document) is not
// trusted.
func (d *Document) verifyChain(root *x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(d.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrChain, err)
	}
	inter := x509.NewCertPool()
	for i, der := range d.CABundle[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: cabundle[%d]: %v", ErrChain, i+1, err)
		}
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0 {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Intermediates: inter,
		Roots:         roots,
		CurrentTime:   now,
		KeyUsages:     usage,
	})
	if err != nil {
		var ci x509.CertificateInvalidError
		if errors.As(err, &ci) && ci.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: %v", ErrCertificateTime, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrChain, err)
	}
	return chains[0], nil
}
