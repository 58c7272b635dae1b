package pcs

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// Source provides verified collateral for a key. It is what a verifier
// uses; [Client] and pcscache.Cache implement it.
//
// Collateral returns collateral whose every response has been verified
// against the source's trust anchor and is inside its validity window
// (for caches: or inside a configured grace after it). Errors wrap
// ErrUnavailable or ErrInvalidResponse; an invalid key gives
// ErrInvalidKey. The returned Collateral is shared: callers must not
// modify it. Implementations are safe for concurrent use.
type Source interface {
	Collateral(ctx context.Context, k Key) (*collateral.Collateral, error)
}

// Fetcher provides single verified responses. [Client] and
// pcscache.Cache implement it.
type Fetcher interface {
	Fetch(ctx context.Context, k ItemKey) (*Item, error)
}

// PCKCertSource fetches PCK certificates for quotes whose certification
// data carries an encrypted PPID (types 2 and 3) instead of the chain.
// It is an optional capability of a Source.
type PCKCertSource interface {
	PCKCert(ctx context.Context, req PCKCertRequest) (*PCKCert, error)
}

// FMSPCLister lists the FMSPCs the service knows. It is an optional
// capability of a Fetcher.
type FMSPCLister interface {
	FMSPCs(ctx context.Context) ([]FMSPCEntry, error)
}

// NewCollateral assembles collateral from its four verified responses.
// It returns an error if an item is missing or of the wrong kind.
func NewCollateral(tcbInfo, qeIdentity, pckCRL, rootCRL *Item) (*collateral.Collateral, error) {
	for _, x := range []struct {
		it   *Item
		kind Kind
	}{{tcbInfo, KindTCBInfo}, {qeIdentity, KindQEIdentity}, {pckCRL, KindPCKCRL}, {rootCRL, KindRootCACRL}} {
		if x.it == nil || x.it.Key.Kind != x.kind {
			return nil, fmt.Errorf("pcs: assembling collateral: missing %v", x.kind)
		}
	}
	return &collateral.Collateral{
		PCKCRLIssuerChain:     pckCRL.Chain,
		RootCACRL:             rootCRL.CRL,
		PCKCRL:                pckCRL.CRL,
		TCBInfoIssuerChain:    tcbInfo.Chain,
		TCBInfo:               tcbInfo.TCBInfo,
		QEIdentityIssuerChain: qeIdentity.Chain,
		QEIdentity:            qeIdentity.QEIdentity,
	}, nil
}

// FetchCollateral fetches the four responses of k from f concurrently
// and assembles them. On error the first failure is returned.
func FetchCollateral(ctx context.Context, f Fetcher, k Key) (*collateral.Collateral, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	keys := k.Items()
	var items [4]*Item
	g, gctx := errgroup.WithContext(ctx)
	for i := range keys {
		g.Go(func() error {
			it, err := f.Fetch(gctx, keys[i])
			items[i] = it
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return NewCollateral(items[0], items[1], items[2], items[3])
}

// KeyForQuote returns the collateral key of q: its TEE, and the FMSPC
// and CA type of its PCK certificate, taken from pckChain (leaf first)
// or, when pckChain is empty, from the chain in q's certification data
// (type 5). The update channel is standard and the evaluation data
// number latest; set them on the result to choose others.
func KeyForQuote(q *quote.Quote, pckChain []*x509.Certificate) (Key, error) {
	if q == nil || q.Signature == nil {
		return Key{}, fmt.Errorf("%w: incomplete quote", quote.ErrMalformed)
	}
	k := Key{TEE: TEESGX}
	if q.IsTDX() {
		k.TEE = TEETDX
	}
	if len(pckChain) == 0 {
		cd := q.Signature.Certification
		if cd.Type != quote.CertPCKChain {
			return Key{}, fmt.Errorf("%w: the quote carries %v, not a PCK certificate chain; fetch the PCK certificate first (PCKCertSource)", ErrInvalidKey, cd.Type)
		}
		if pk, ok := chainKeys.get(cd.PCKChain); ok {
			k.FMSPC, k.CA = pk.fmspc, pk.ca
			return k, nil
		}
		chain, err := pckcert.ParseChainPEM(cd.PCKChain)
		if err != nil {
			return Key{}, err
		}
		pk, err := platformKeyOf(chain[0])
		if err != nil {
			return Key{}, err
		}
		chainKeys.put(cd.PCKChain, pk)
		k.FMSPC, k.CA = pk.fmspc, pk.ca
		return k, nil
	}
	pk, err := platformKeyOf(pckChain[0])
	if err != nil {
		return Key{}, err
	}
	k.FMSPC, k.CA = pk.fmspc, pk.ca
	return k, nil
}

// platformKey is what a PCK certificate contributes to a Key.
type platformKey struct {
	fmspc [6]byte
	ca    pckcert.CAType
}

func platformKeyOf(leaf *x509.Certificate) (platformKey, error) {
	ext, err := pckcert.FromCertificate(leaf)
	if err != nil {
		return platformKey{}, err
	}
	ca := pckcert.CATypeOf(leaf, false)
	if ca == pckcert.CAUnknown {
		return platformKey{}, fmt.Errorf("%w: PCK certificate issuer %q is not an Intel PCK CA", pckcert.ErrMalformed, leaf.Issuer.CommonName)
	}
	return platformKey{ext.FMSPC, ca}, nil
}

// maxChainKeys bounds chainKeys; it is emptied when full.
const maxChainKeys = 512

// chainKeys memoises the platform key of a quote's PEM PCK certificate
// chain, keyed by the exact PEM bytes, so that a repeat platform's quote
// costs a map lookup rather than parsing its three certificates. It only
// chooses the collateral: the verifier still verifies the chain.
var chainKeys keyMemo

type keyMemo struct {
	mu sync.RWMutex
	m  map[string]platformKey
}

func (c *keyMemo) get(pem []byte) (platformKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.m[string(pem)]
	return k, ok
}

func (c *keyMemo) put(pem []byte, k platformKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxChainKeys {
		c.m = make(map[string]platformKey)
	}
	c.m[string(pem)] = k
}

// Channel selects the TCB update channel and evaluation data number of
// the collateral [CollateralForQuote] gets. The zero value is the
// standard channel, latest evaluation data number.
type Channel struct {
	// Update is the update channel (ignored when EvalNumber is set).
	Update Update
	// EvalNumber pins the TCB evaluation data number (0: latest).
	EvalNumber int
}

// CollateralForQuote gets the collateral for q from src: with the PCK
// chain of q, or, for quotes carrying an encrypted PPID, with the PCK
// certificate fetched through src (which must then implement
// PCKCertSource); that chain is then set as the returned collateral's
// PCKCertChain (a shallow copy: the shared parts stay shared).
func CollateralForQuote(ctx context.Context, src Source, q *quote.Quote, ch Channel) (*collateral.Collateral, Key, error) {
	if q == nil || q.Signature == nil {
		return nil, Key{}, fmt.Errorf("%w: incomplete quote", quote.ErrMalformed)
	}
	var pck *PCKCert
	var chain []*x509.Certificate
	switch t := q.Signature.Certification.Type; t {
	case quote.CertPCKChain:
	case quote.CertPPIDRSA2048, quote.CertPPIDRSA3072:
		ps, ok := src.(PCKCertSource)
		if !ok {
			return nil, Key{}, fmt.Errorf("%w: the quote carries %v and the collateral source cannot fetch PCK certificates", ErrUnavailable, t)
		}
		req, err := PCKCertRequestForQuote(q)
		if err != nil {
			return nil, Key{}, err
		}
		if pck, err = ps.PCKCert(ctx, req); err != nil {
			return nil, Key{}, err
		}
		chain = pck.Chain.Certs
	default:
		return nil, Key{}, fmt.Errorf("%w: the quote carries %v, which names no PCK certificate", ErrInvalidKey, t)
	}
	k, err := KeyForQuote(q, chain)
	if err != nil {
		return nil, Key{}, err
	}
	k.Update, k.EvalNumber = ch.Update, ch.EvalNumber
	c, err := src.Collateral(ctx, k)
	if err != nil {
		return nil, k, err
	}
	if pck != nil {
		cp := *c
		cp.PCKCertChain = pck.Chain
		c = &cp
	}
	return c, k, nil
}

// Compile-time checks.
var (
	_ Source        = (*Client)(nil)
	_ Fetcher       = (*Client)(nil)
	_ PCKCertSource = (*Client)(nil)
	_ FMSPCLister   = (*Client)(nil)
)
