package dcap

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"sync"
)

// session carries the trust anchor of one verification and, for a
// Verifier, the caches of already verified objects. With a nil cache
// everything is verified from scratch.
type session struct {
	root    *x509.Certificate
	rootSHA string // hex SHA-256 of root.Raw
	cache   *cache
}

func newSession(root *x509.Certificate, c *cache) *session {
	sum := sha256.Sum256(root.Raw)
	return &session{root: root, rootSHA: hex.EncodeToString(sum[:]), cache: c}
}

// cache holds objects verified against one root, each keyed by
// signature bytes and confirmed by comparing every byte it was built from.
type cache struct {
	mu            sync.RWMutex
	collateral    map[[128]byte]*verifiedCollateral
	platforms     map[[64]byte]*verifiedPlatform
	intermediates map[string]*x509.Certificate // DER → verified PCK CA
	crlBy         map[[64]byte]bool            // SHA-256 of CRL DER ‖ of signer DER → signature ok
	pemBlocks     map[string][]byte            // exact PEM text of a verified CA → DER
	maxEntries    int
}

func newCache(maxEntries int) *cache {
	return &cache{
		collateral:    map[[128]byte]*verifiedCollateral{},
		platforms:     map[[64]byte]*verifiedPlatform{},
		intermediates: map[string]*x509.Certificate{},
		crlBy:         map[[64]byte]bool{},
		pemBlocks:     map[string][]byte{},
		maxEntries:    maxEntries,
	}
}

// evictIfFull drops a map's entries when it reached the bound (simple and
// safe: entries are only an optimisation). Callers hold mu.
func evictIfFull[K comparable, V any](m map[K]V, limit int) {
	if len(m) >= limit {
		clear(m)
	}
}

// intermediate parses and verifies a PCK CA certificate (DER) against the
// root, once per distinct DER for a cached session.
func (s *session) intermediate(der []byte) (*x509.Certificate, error) {
	if s.cache != nil {
		s.cache.mu.RLock()
		c := s.cache.intermediates[string(der)]
		s.cache.mu.RUnlock()
		if c != nil {
			return c, nil
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, stepErr("pck chain", ErrChain, "PCK CA certificate: %w", err)
	}
	if !bytes.Equal(c.RawIssuer, s.root.RawSubject) {
		return nil, stepErr("pck chain", ErrChain, "PCK CA is not issued by the trusted root")
	}
	if err := c.CheckSignatureFrom(s.root); err != nil {
		return nil, stepErr("pck chain", ErrChain, "PCK CA signature: %w", err)
	}
	if _, ok := pckCAType(c); !ok {
		return nil, stepErr("pck chain", ErrChain, "PCK CA CN %q contains neither %q nor %q", c.Subject.CommonName, cnPlatformCA, cnProcessorCA)
	}
	if s.cache != nil {
		s.cache.mu.Lock()
		evictIfFull(s.cache.intermediates, s.cache.maxEntries)
		s.cache.intermediates[string(bytes.Clone(der))] = c
		s.cache.mu.Unlock()
	}
	return c, nil
}

// checkCRLSignature verifies that signer signed the CRL whose DER has
// SHA-256 crlSum, once per (CRL, signer) pair for a cached session. The
// key costs nothing proportional to the CRL's size.
func (s *session) checkCRLSignature(l *x509.RevocationList, crlSum [32]byte, signer *x509.Certificate) error {
	var key [64]byte
	if s.cache != nil {
		copy(key[:32], crlSum[:])
		signerSum := sha256.Sum256(signer.Raw)
		copy(key[32:], signerSum[:])
		s.cache.mu.RLock()
		ok := s.cache.crlBy[key]
		s.cache.mu.RUnlock()
		if ok {
			return nil
		}
	}
	if err := l.CheckSignatureFrom(signer); err != nil {
		return err
	}
	if s.cache != nil {
		s.cache.mu.Lock()
		evictIfFull(s.cache.crlBy, s.cache.maxEntries)
		s.cache.crlBy[key] = true
		s.cache.mu.Unlock()
	}
	return nil
}

func (s *session) collateral(c collateralArg) (*verifiedCollateral, error) {
	if s.cache == nil {
		return s.verifyCollateral(c)
	}
	key := collateralKey(c)
	s.cache.mu.RLock()
	v := s.cache.collateral[key]
	s.cache.mu.RUnlock()
	if v != nil && v.sameBytes(c, s.root) {
		return v, nil
	}
	v, err := s.verifyCollateral(c)
	if err != nil {
		return nil, err
	}
	v.detach()
	s.cache.mu.Lock()
	evictIfFull(s.cache.collateral, s.cache.maxEntries)
	s.cache.collateral[key] = v
	s.cache.mu.Unlock()
	return v, nil
}
