package nitro

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by [Parse] and [Verify] wraps
// exactly one of them.
var (
	// ErrMalformed: the bytes are not a well-formed COSE_Sign1 carrying
	// an attestation document (bad CBOR, trailing or leading bytes,
	// missing or mistyped fields, wrong PCR sizes).
	ErrMalformed = errors.New("nitro: malformed attestation document")
	// ErrAlgorithm: the COSE algorithm is not ES384, a critical header
	// other than alg is present, or the digest field is not "SHA384".
	ErrAlgorithm = errors.New("nitro: unsupported algorithm")
	// ErrStale: the document timestamp is older than the freshness
	// window allows.
	ErrStale = errors.New("nitro: attestation document is stale")
	// ErrFuture: the document timestamp is further in the future than
	// the allowed clock skew.
	ErrFuture = errors.New("nitro: attestation document is in the future")
	// ErrChain: the signing certificate does not chain to the trusted
	// root, or the chain is malformed.
	ErrChain = errors.New("nitro: certificate chain invalid")
	// ErrCertificateTime: a certificate of the chain is not valid at the
	// verification time. It wraps ErrChain.
	ErrCertificateTime = fmt.Errorf("%w: certificate not valid at verification time", ErrChain)
	// ErrRevoked: a certificate of the chain is on its issuer's CRL
	// (Options.Revocation). It wraps ErrChain.
	ErrRevoked = fmt.Errorf("%w: certificate revoked", ErrChain)
	// ErrCRL: the chain's revocation status is unknown: a CRL it names is
	// missing, invalid or not current, or could not be obtained
	// (Options.Revocation). Fail closed.
	ErrCRL = errors.New("nitro: CRL unavailable or invalid")
	// ErrKey: the signing certificate's key is not an ECDSA P-384 key.
	ErrKey = errors.New("nitro: signing key is not ECDSA P-384")
	// ErrSignature: the COSE signature does not verify.
	ErrSignature = errors.New("nitro: signature invalid")
	// ErrUserData: user_data is absent or differs from the expected value.
	ErrUserData = errors.New("nitro: user_data does not match")
	// ErrNonce: nonce is absent or differs from the expected value.
	ErrNonce = errors.New("nitro: nonce does not match")
	// ErrPublicKey: public_key is absent or differs from the expected value.
	ErrPublicKey = errors.New("nitro: public_key does not match")
	// ErrDebug: the enclave runs in debug mode (PCR0, PCR1 and PCR2 all
	// zero) and the options do not allow it.
	ErrDebug = errors.New("nitro: enclave is in debug mode (PCR0/1/2 are zeroed)")
	// ErrKind: the document is of the other kind (enclave vs NitroTPM)
	// than the caller requires.
	ErrKind = errors.New("nitro: wrong document kind")
	// ErrPCR: a required PCR is missing, or a replayed or derived value
	// does not match the quoted one.
	ErrPCR = errors.New("nitro: PCR mismatch")
)
