package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/tdproof/tdproof/revocation"
)

// AlgSHA256 is TPM_ALG_SHA256, the only bank dstack quotes.
const AlgSHA256 = 0x000B

// PCRValue is one quoted PCR value of the SHA-256 bank.
type PCRValue struct {
	Index int
	Value []byte
}

// Event is one (PCR, SHA-256 digest) pair of the event log, as dstack's
// TpmQuote carries it.
type Event struct {
	PCR    int
	Digest []byte
}

// Quote is the evidence: dstack's TpmQuote without its platform tag.
type Quote struct {
	// Message is the marshalled TPMS_ATTEST, Signature the marshalled
	// TPMT_SIGNATURE over it.
	Message   []byte
	Signature []byte
	// PCRs are the quoted values, in the quote's selection order.
	PCRs []PCRValue
	// AKCert is the DER AK certificate.
	AKCert []byte
	// Events are the event-log digests, in log order.
	Events []Event
}

// Options configure [Verify]. The zero value verifies against the pinned
// Google root and intermediate at the current time and expects no
// particular extraData.
type Options struct {
	// Time is the verification time (zero: time.Now()).
	Time time.Time
	// Root replaces the pinned Google EK/AK CA Root.
	Root *x509.Certificate
	// Intermediates replace the pinned Google intermediate.
	Intermediates []*x509.Certificate
	// ExtraData, when non-nil, must equal the quote's extraData.
	ExtraData []byte
	// Revocation, when set, is called with the verified AK chain (AK
	// certificate first, root last) and returns the CRLs to check it
	// against (revocation/crlcache fetches and caches them): every
	// certificate that names a CRL distribution point (Google's EK/AK CA
	// Intermediate names the root's CRL; AK certificates name none) must
	// be covered by a current CRL of its issuer that does not list it.
	// Errors: ErrRevoked; ErrCRL for a list that is missing, invalid or
	// not current, or that the function could not provide (its error is
	// wrapped). Nil: no revocation check.
	Revocation func(chain []*x509.Certificate) ([]*x509.RevocationList, error)
}

// Result is a verified quote.
type Result struct {
	Attest *Attest
	// PCRs maps each quoted PCR index to its verified value.
	PCRs map[int][]byte
	// Replayed lists the quoted PCRs whose events replayed to the quoted
	// value, ascending. A quoted PCR without events is not listed; events
	// of unquoted PCRs are ignored.
	Replayed []int
	// Chain is the verified AK chain, AK certificate first.
	Chain []*x509.Certificate
}

// ekCertificateOID is 2.23.133.8.1 (tcg-kp-EKCertificate), the EKU dstack
// requires of the AK certificate when it has an EKU extension.
var ekCertificateOID = []int{2, 23, 133, 8, 1}

// Verify verifies q as the package documentation describes.
func Verify(q *Quote, opts Options) (*Result, error) {
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	a, err := ParseAttest(q.Message)
	if err != nil {
		return nil, err
	}
	chain, err := verifyAKChain(q.AKCert, opts, now)
	if err != nil {
		return nil, err
	}
	if err := verifySignature(chain[0].PublicKey, q.Message, q.Signature); err != nil {
		return nil, err
	}
	if opts.Revocation != nil {
		if err := revocation.CheckFetched(chain, now, opts.Revocation, ErrRevoked, ErrCRL); err != nil {
			return nil, err
		}
	}
	if len(a.Selections) == 0 {
		return nil, fmt.Errorf("%w: the quote selects no PCR", ErrPCRSelection)
	}
	var idx []int
	for _, s := range a.Selections {
		if s.Hash != AlgSHA256 {
			return nil, fmt.Errorf("%w: bank 0x%04x, want SHA-256", ErrPCRSelection, s.Hash)
		}
		idx = append(idx, s.PCRs...)
	}
	if len(idx) != len(q.PCRs) {
		return nil, fmt.Errorf("%w: quote selects %d PCRs, %d values supplied", ErrPCRSelection, len(idx), len(q.PCRs))
	}
	h := sha256.New()
	pcrs := make(map[int][]byte, len(idx))
	for i, v := range q.PCRs {
		if v.Index != idx[i] {
			return nil, fmt.Errorf("%w: value %d is PCR%d, quote selects PCR%d", ErrPCRSelection, i, v.Index, idx[i])
		}
		if len(v.Value) != sha256.Size {
			return nil, fmt.Errorf("%w: PCR%d value is %d bytes", ErrMalformed, v.Index, len(v.Value))
		}
		if _, dup := pcrs[v.Index]; dup {
			return nil, fmt.Errorf("%w: PCR%d twice", ErrPCRSelection, v.Index)
		}
		h.Write(v.Value)
		pcrs[v.Index] = bytes.Clone(v.Value)
	}
	if !bytes.Equal(h.Sum(nil), a.PCRDigest) {
		return nil, fmt.Errorf("%w: pcrDigest %x", ErrPCRDigest, a.PCRDigest)
	}
	replayed, err := replayQuoted(q.Events, pcrs)
	if err != nil {
		return nil, err
	}
	if opts.ExtraData != nil && !bytes.Equal(a.ExtraData, opts.ExtraData) {
		return nil, fmt.Errorf("%w: extraData %x, want %x", ErrExtraData, a.ExtraData, opts.ExtraData)
	}
	return &Result{Attest: a, PCRs: pcrs, Replayed: replayed, Chain: chain}, nil
}

// replayQuoted replays the events of every quoted PCR that has any and
// compares with the quoted value. Events of PCRs the quote does not cover
// are not verified (a full TCG log has them) and are not reported as
// replayed.
func replayQuoted(events []Event, pcrs map[int][]byte) ([]int, error) {
	for _, e := range events {
		if e.PCR < 0 || e.PCR >= 32 || len(e.Digest) != sha256.Size {
			return nil, fmt.Errorf("%w: event for PCR%d with a %d-byte digest", ErrMalformed, e.PCR, len(e.Digest))
		}
	}
	vals := ReplayEvents(events)
	var out []int
	for i := 0; i < 32; i++ {
		v, ok := vals[i]
		if !ok {
			continue
		}
		q, quoted := pcrs[i]
		if !quoted {
			continue // nothing signed to compare with: not verified
		}
		if !bytes.Equal(v[:], q) {
			return nil, fmt.Errorf("%w: PCR%d quoted %x, replayed %x", ErrReplay, i, q, v)
		}
		out = append(out, i)
	}
	return out, nil
}

// ReplayEvents folds SHA-256 extends of events per PCR from zeros.
// Events with an out-of-range PCR or a digest that is not 32 bytes are
// skipped here; [Verify] refuses them.
func ReplayEvents(events []Event) map[int][32]byte {
	out := map[int][32]byte{}
	for _, e := range events {
		if e.PCR < 0 || e.PCR >= 32 || len(e.Digest) != sha256.Size {
			continue
		}
		out[e.PCR] = Extend(out[e.PCR], e.Digest)
	}
	return out
}

// Extend returns SHA-256(pcr || digest).
func Extend(pcr [32]byte, digest []byte) [32]byte {
	h := sha256.New()
	h.Write(pcr[:])
	h.Write(digest)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func verifyAKChain(der []byte, opts Options, now time.Time) ([]*x509.Certificate, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: no AK certificate", ErrChain)
	}
	ak, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: AK certificate: %v", ErrChain, err)
	}
	root := opts.Root
	if root == nil {
		root = googleRoot
	}
	inters := opts.Intermediates
	if inters == nil {
		inters = []*x509.Certificate{googleIntermediate}
	}
	roots, pool := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range inters {
		pool.AddCert(c)
	}
	if len(ak.UnknownExtKeyUsage) > 0 || len(ak.ExtKeyUsage) > 0 {
		found := false
		for _, o := range ak.UnknownExtKeyUsage {
			if o.Equal(ekCertificateOID) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: AK certificate EKU lacks 2.23.133.8.1", ErrChain)
		}
	}
	chains, err := ak.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var ci x509.CertificateInvalidError
		if errors.As(err, &ci) && ci.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: %v", ErrCertificateTime, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrChain, err)
	}
	return chains[0], nil
}

// verifySignature checks a marshalled TPMT_SIGNATURE over msg with pub:
// RSASSA or RSAPSS with an RSA key, ECDSA with a P-256 key; SHA-256 only.
func verifySignature(pub any, msg, sigBytes []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: TPMT_SIGNATURE: %v", ErrMalformed, r)
		}
	}()
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](sigBytes)
	if err != nil {
		return fmt.Errorf("%w: TPMT_SIGNATURE: %v", ErrMalformed, err)
	}
	if !bytes.Equal(tpm2.Marshal(sig), sigBytes) {
		return fmt.Errorf("%w: TPMT_SIGNATURE has trailing or non-canonical bytes", ErrMalformed)
	}
	digest := sha256.Sum256(msg)
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		key, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: RSA signature, AK key is %T", ErrSignature, pub)
		}
		var s *tpm2.TPMSSignatureRSA
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			s, err = sig.Signature.RSASSA()
		} else {
			s, err = sig.Signature.RSAPSS()
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if s.Hash != tpm2.TPMAlgSHA256 {
			return fmt.Errorf("%w: signature hash 0x%04x, want SHA-256", ErrUnsupported, uint16(s.Hash))
		}
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			err = rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], s.Sig.Buffer)
		} else {
			err = rsa.VerifyPSS(key, crypto.SHA256, digest[:], s.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return nil
	case tpm2.TPMAlgECDSA:
		key, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ECDSA signature, AK key is %T", ErrSignature, pub)
		}
		if key.Curve != elliptic.P256() {
			return fmt.Errorf("%w: AK curve %s, want P-256", ErrUnsupported, key.Curve.Params().Name)
		}
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if s.Hash != tpm2.TPMAlgSHA256 {
			return fmt.Errorf("%w: signature hash 0x%04x, want SHA-256", ErrUnsupported, uint16(s.Hash))
		}
		r, ss := new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(key, digest[:], r, ss) {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: signature scheme 0x%04x", ErrUnsupported, uint16(sig.SigAlg))
}
