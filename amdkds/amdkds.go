package amdkds

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tdproof/tdproof/snp"
)

// DefaultBaseURL is AMD KDS's VCEK service.
const DefaultBaseURL = "https://kdsintf.amd.com/vcek/v1"

// MaxResponseSize bounds a KDS response (certificates and CRLs are a few
// KiB).
const MaxResponseSize = 1 << 20

var (
	// ErrUnavailable: the item could not be obtained (network, timeout,
	// non-200 status, missing from a bundle).
	ErrUnavailable = errors.New("amdkds: unavailable")
	// ErrNotFound: KDS answered 404 or the bundle lacks the item. It wraps
	// ErrUnavailable.
	ErrNotFound = fmt.Errorf("%w: not found", ErrUnavailable)
	// ErrInvalidResponse: a response was received but does not parse or
	// does not carry the pinned ARK.
	ErrInvalidResponse = errors.New("amdkds: invalid response")
)

// Material is what a verifier needs for one report: the product's ASK
// (and ARK as served), the VCEK for the chip and TCB, and the product's
// CRL (nil if not obtained).
type Material struct {
	Product snp.Product
	ASK     *x509.Certificate
	ARK     *x509.Certificate
	VCEK    *x509.Certificate
	CRL     []byte
}

// Source obtains material.
type Source interface {
	CertChain(ctx context.Context, p snp.Product) ([]byte, error)
	CRL(ctx context.Context, p snp.Product) ([]byte, error)
	VCEK(ctx context.Context, p snp.Product, chipID [64]byte, tcb snp.TCBVersion) ([]byte, error)
}

// Client fetches from KDS.
type Client struct {
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string
	// HTTP defaults to a client with a 2-minute timeout.
	HTTP *http.Client
	// Roots replaces the pinned ARK a cert_chain must carry (tests,
	// private mirrors of a test PKI).
	Roots map[snp.Product]*x509.Certificate
}

func (c *Client) base() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

func (c *Client) get(ctx context.Context, url string) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, url)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s: HTTP %d", ErrUnavailable, url, resp.StatusCode)
	case len(body) > MaxResponseSize:
		return nil, fmt.Errorf("%w: %s: response above %d bytes", ErrInvalidResponse, url, MaxResponseSize)
	}
	return body, nil
}

// CertChainURL, CRLURL and VCEKURL build the KDS URLs.
func (c *Client) CertChainURL(p snp.Product) string {
	return c.base() + "/" + p.String() + "/cert_chain"
}

// CRLURL is the product's CRL URL.
func (c *Client) CRLURL(p snp.Product) string { return c.base() + "/" + p.String() + "/crl" }

// VCEKURL is the VCEK URL for chipID at tcb (REPORTED_TCB).
func (c *Client) VCEKURL(p snp.Product, chipID [64]byte, tcb snp.TCBVersion) string {
	t := tcb.Parts(p)
	if p == snp.ProductTurin {
		return fmt.Sprintf("%s/%s/%s?fmcSPL=%d&blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", c.base(), p, hex.EncodeToString(chipID[:8]),
			t.FMC, t.BootLoader, t.TEE, t.SNP, t.Microcode)
	}
	return fmt.Sprintf("%s/%s/%s?blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", c.base(), p, hex.EncodeToString(chipID[:]),
		t.BootLoader, t.TEE, t.SNP, t.Microcode)
}

// CertChain fetches and checks the product's cert_chain.
func (c *Client) CertChain(ctx context.Context, p snp.Product) ([]byte, error) {
	b, err := c.get(ctx, c.CertChainURL(p))
	if err != nil {
		return nil, err
	}
	if _, _, err := ParseCertChain(p, b, c.Roots); err != nil {
		return nil, err
	}
	return b, nil
}

// CRL fetches the product's CRL (DER).
func (c *Client) CRL(ctx context.Context, p snp.Product) ([]byte, error) {
	b, err := c.get(ctx, c.CRLURL(p))
	if err != nil {
		return nil, err
	}
	if _, err := x509.ParseRevocationList(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidResponse, c.CRLURL(p), err)
	}
	return b, nil
}

// VCEK fetches the VCEK (DER) for chipID at tcb.
func (c *Client) VCEK(ctx context.Context, p snp.Product, chipID [64]byte, tcb snp.TCBVersion) ([]byte, error) {
	u := c.VCEKURL(p, chipID, tcb)
	b, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidResponse, u, err)
	}
	return b, nil
}

// ParseCertChain parses a cert_chain response (ASK then ARK). The ARK
// must be roots[p], or the pinned one of p when roots has none.
func ParseCertChain(p snp.Product, b []byte, roots map[snp.Product]*x509.Certificate) (ask, ark *x509.Certificate, err error) {
	cs, err := snp.ParseCertificates(b)
	if err != nil || len(cs) != 2 {
		return nil, nil, fmt.Errorf("%w: %s cert_chain: %d certificates, %v", ErrInvalidResponse, p, len(cs), err)
	}
	pinned := roots[p]
	if pinned == nil {
		pinned = snp.ARK(p)
	}
	if pinned == nil || !bytes.Equal(cs[1].Raw, pinned.Raw) {
		return nil, nil, fmt.Errorf("%w: %s cert_chain ARK is not the pinned AMD root", ErrInvalidResponse, p)
	}
	return cs[0], cs[1], nil
}

// Bundle is an offline directory (see the package documentation).
type Bundle struct{ Dir string }

func vcekName(chipID [64]byte, tcb snp.TCBVersion) string {
	b := tcb.Bytes()
	return hex.EncodeToString(chipID[:]) + "-" + hex.EncodeToString(b[:]) + ".der"
}

func (b Bundle) read(rel ...string) ([]byte, error) {
	p := filepath.Join(append([]string{b.Dir}, rel...)...)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return data, nil
}

// CertChain reads {product}/cert_chain.pem.
func (b Bundle) CertChain(_ context.Context, p snp.Product) ([]byte, error) {
	return b.read(p.String(), "cert_chain.pem")
}

// CRL reads {product}/crl.der.
func (b Bundle) CRL(_ context.Context, p snp.Product) ([]byte, error) {
	return b.read(p.String(), "crl.der")
}

// VCEK reads {product}/vcek/{hwid}-{tcb}.der.
func (b Bundle) VCEK(_ context.Context, p snp.Product, chipID [64]byte, tcb snp.TCBVersion) ([]byte, error) {
	return b.read(p.String(), "vcek", vcekName(chipID, tcb))
}

func (b Bundle) write(data []byte, rel ...string) error {
	p := filepath.Join(append([]string{b.Dir}, rel...)...)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// PutCertChain, PutCRL and PutVCEK store items in the bundle layout.
func (b Bundle) PutCertChain(p snp.Product, data []byte) error {
	return b.write(data, p.String(), "cert_chain.pem")
}

// PutCRL stores the product's CRL.
func (b Bundle) PutCRL(p snp.Product, data []byte) error { return b.write(data, p.String(), "crl.der") }

// PutVCEK stores a VCEK.
func (b Bundle) PutVCEK(p snp.Product, chipID [64]byte, tcb snp.TCBVersion, data []byte) error {
	return b.write(data, p.String(), "vcek", vcekName(chipID, tcb))
}

// Cache reads through to Upstream and stores what it fetched in Dir (the
// bundle layout). With Upstream nil it is an offline bundle. The CRL is
// refetched when the cached one is past its NextUpdate.
type Cache struct {
	Dir      string
	Upstream Source
	// Now is the clock for CRL freshness; time.Now if nil.
	Now func() time.Time
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) through(ctx context.Context, read func() ([]byte, error), fetch func() ([]byte, error), put func([]byte) error, fresh func([]byte) bool) ([]byte, error) {
	b, err := read()
	if err == nil && (fresh == nil || fresh(b)) {
		return b, nil
	}
	if c.Upstream == nil {
		if err == nil {
			return b, nil
		}
		return nil, err
	}
	nb, ferr := fetch()
	if ferr != nil {
		if err == nil {
			return b, nil // stale beats nothing; snp checks the CRL's dates
		}
		return nil, ferr
	}
	if perr := put(nb); perr != nil {
		return nil, fmt.Errorf("%w: caching: %v", ErrUnavailable, perr)
	}
	return nb, nil
}

// CertChain implements Source.
func (c *Cache) CertChain(ctx context.Context, p snp.Product) ([]byte, error) {
	bd := Bundle{c.Dir}
	return c.through(ctx, func() ([]byte, error) { return bd.CertChain(ctx, p) },
		func() ([]byte, error) { return c.Upstream.CertChain(ctx, p) },
		func(b []byte) error { return bd.PutCertChain(p, b) }, nil)
}

// CRL implements Source.
func (c *Cache) CRL(ctx context.Context, p snp.Product) ([]byte, error) {
	bd := Bundle{c.Dir}
	return c.through(ctx, func() ([]byte, error) { return bd.CRL(ctx, p) },
		func() ([]byte, error) { return c.Upstream.CRL(ctx, p) },
		func(b []byte) error { return bd.PutCRL(p, b) },
		func(b []byte) bool {
			crl, err := x509.ParseRevocationList(b)
			return err == nil && (crl.NextUpdate.IsZero() || c.now().Before(crl.NextUpdate))
		})
}

// VCEK implements Source.
func (c *Cache) VCEK(ctx context.Context, p snp.Product, chipID [64]byte, tcb snp.TCBVersion) ([]byte, error) {
	bd := Bundle{c.Dir}
	return c.through(ctx, func() ([]byte, error) { return bd.VCEK(ctx, p, chipID, tcb) },
		func() ([]byte, error) { return c.Upstream.VCEK(ctx, p, chipID, tcb) },
		func(b []byte) error { return bd.PutVCEK(p, chipID, tcb, b) }, nil)
}

// ReportProduct is the product of a report: from CPUID (version 3 and
// later), or want when set; version 2 reports need want.
func ReportProduct(r *snp.Report, want snp.Product) (snp.Product, error) {
	if r.Version >= 3 {
		p, err := snp.ProductFromCPUID(r.CPUIDFamily, r.CPUIDModel)
		if err != nil {
			return snp.ProductUnknown, err
		}
		if want != snp.ProductUnknown && want != p {
			return snp.ProductUnknown, fmt.Errorf("%w: report CPUID names %s, %s requested", snp.ErrProduct, p, want)
		}
		return p, nil
	}
	if want == snp.ProductUnknown {
		return snp.ProductUnknown, fmt.Errorf("%w: version 2 report: name the product", snp.ErrUnsupported)
	}
	return want, nil
}

// Fetch obtains the material for report r from src: the product's
// cert_chain, the VCEK for CHIP_ID at REPORTED_TCB and, if withCRL, the
// CRL; roots as for ParseCertChain. VLEK-signed reports are not served by KDS without a CSP secret and
// fail with ErrUnavailable.
func Fetch(ctx context.Context, src Source, r *snp.Report, product snp.Product, withCRL bool, roots map[snp.Product]*x509.Certificate) (*Material, error) {
	if r.SigningKey() != snp.SigningKeyVCEK {
		return nil, fmt.Errorf("%w: report is signed by the %s; KDS serves VCEKs only", ErrUnavailable, r.SigningKey())
	}
	p, err := ReportProduct(r, product)
	if err != nil {
		return nil, err
	}
	m := &Material{Product: p}
	chain, err := src.CertChain(ctx, p)
	if err != nil {
		return nil, err
	}
	if m.ASK, m.ARK, err = ParseCertChain(p, chain, roots); err != nil {
		return nil, err
	}
	der, err := src.VCEK(ctx, p, r.ChipID, r.ReportedTCB)
	if err != nil {
		return nil, err
	}
	if m.VCEK, err = x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("%w: VCEK: %v", ErrInvalidResponse, err)
	}
	if withCRL {
		if m.CRL, err = src.CRL(ctx, p); err != nil {
			return nil, err
		}
	}
	return m, nil
}
