package cli

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// maxInputSize bounds every file the CLI reads (quotes, certificates,
// collateral documents): real ones are a few KiB to a few hundred KiB.
const maxInputSize = 16 << 20

// readInput reads a named input file, or stdin for "-". A file that cannot
// be read is a usage error: the argument names no readable file.
func (a *app) readInput(what, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = a.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, &usageError{err: fmt.Errorf("reading %s: %w", what, err)}
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("reading %s %s: %w", what, path, err)}
	}
	if len(b) > maxInputSize {
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", errMalformedInput, what, path, maxInputSize)
	}
	return b, nil
}

// readQuote reads and parses a quote given as binary, hex or 0x-hex.
func (a *app) readQuote(path string) (*quote.Quote, error) {
	b, err := a.readInput("quote", path)
	if err != nil {
		return nil, err
	}
	raw, err := quote.DecodeInput(b)
	if err != nil {
		return nil, err
	}
	q, err := quote.Parse(raw)
	if err != nil {
		return nil, withHints(err, "the quote must be a binary DCAP quote or its hex text (an optional 0x prefix is fine)")
	}
	return q, nil
}

// readTrustedRoot reads a certificate in PEM (the first CERTIFICATE block)
// or DER.
func (a *app) readTrustedRoot(path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	b, err := a.readInput("trusted root", path)
	if err != nil {
		return nil, err
	}
	der := b
	if rest := b; strings.Contains(string(b), "-----BEGIN") {
		der = nil
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				der = blk.Bytes
				break
			}
		}
		if der == nil {
			return nil, fmt.Errorf("%w: trusted root %s: no PEM CERTIFICATE block", errMalformedInput, path)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted root %s: %w", errMalformedInput, path, err)
	}
	return cert, nil
}

// pckInfo is what the PCK certificate chain inside a quote says.
type pckInfo struct {
	chain []*x509.Certificate
	leaf  *x509.Certificate
	ext   *pckcert.Extension
	ca    pckcert.CAType
}

// pckFromQuote decodes the PCK chain of a quote with certification data
// type 5. It returns nil, nil for quotes without a chain.
func pckFromQuote(q *quote.Quote) (*pckInfo, error) {
	cd := q.Signature.Certification
	if cd.Type != quote.CertPCKChain {
		return nil, nil
	}
	chain, err := pckcert.ParseChainPEM(cd.PCKChain)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: empty PCK chain", pckcert.ErrMalformed)
	}
	p := &pckInfo{chain: chain, leaf: chain[0], ca: pckcert.CATypeOf(chain[0], false)}
	if p.ext, err = pckcert.FromCertificate(p.leaf); err != nil {
		return nil, err
	}
	return p, nil
}

// Names in a collateral directory.
const (
	qvlFileName = "collateral.json"
	pcsSubdir   = "pcs"
	pcsBody     = ".body"
)

// collateralSource says where collateral came from, for the outputs.
type collateralSource struct {
	Path string `json:"path"`
	// Kind is "qvl-json" or "pcs-dir" (--collateral), "pccs" (Path is
	// the service URL) or "collateral-dir" (offline bundle).
	Kind string `json:"kind"`
	// Cache is the --collateral-dir used as a cache in front of a PCCS.
	Cache string `json:"cache,omitempty"`
}

// loadCollateral reads --collateral: a QuoteCollateralV3 JSON file, a
// directory holding collateral.json, or a directory of raw PCS responses
// (directly or in its pcs/ subdirectory) selected for q.
func loadCollateral(path string, q *quote.Quote, pck *pckInfo) (*collateral.Collateral, collateralSource, error) {
	src := collateralSource{Path: path}
	st, err := os.Stat(path)
	if err != nil {
		return nil, src, unavailable(fmt.Errorf("collateral %s: %w", path, err))
	}
	file := path
	if st.IsDir() {
		file = filepath.Join(path, qvlFileName)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return loadPCSDir(path, q, pck)
		}
	}
	src.Path, src.Kind = file, "qvl-json"
	b, err := readCollateralFile(file)
	if err != nil {
		return nil, src, err
	}
	c, err := collateral.ParseQVLJSON(b)
	if err != nil {
		return nil, src, withHints(fmt.Errorf("collateral %s: %w", file, err),
			"--collateral takes a dcap-qvl QuoteCollateralV3 JSON file, a directory with collateral.json, or a directory of PCS responses (*.body, *.headers.json)")
	}
	return c, src, nil
}

func readCollateralFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, unavailable(fmt.Errorf("collateral: %w", err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInputSize+1))
	if err != nil {
		return nil, unavailable(fmt.Errorf("collateral %s: %w", file, err))
	}
	if len(b) > maxInputSize {
		return nil, fmt.Errorf("%w: collateral %s is larger than %d bytes", collateral.ErrMalformed, file, maxInputSize)
	}
	return b, nil
}

func unavailable(err error) error {
	return withHints(fmt.Errorf("%w: %w", errCollateralUnavailable, err),
		"--collateral takes a dcap-qvl QuoteCollateralV3 JSON file, a directory with collateral.json, or a directory of PCS responses (*.body, *.headers.json)")
}

// pcsSelector chooses the PCS responses that apply to q: its TEE, and the
// FMSPC and CA type of its PCK certificate when the quote carries one.
func pcsSelector(q *quote.Quote, pck *pckInfo) collateral.PCSSelector {
	sel := collateral.PCSSelector{TEE: "sgx"}
	if q.IsTDX() {
		sel.TEE = "tdx"
	}
	if pck != nil {
		sel.FMSPC = hex.EncodeToString(pck.ext.FMSPC[:])
		if pck.ca != pckcert.CAUnknown {
			sel.CA = pck.ca.String()
		}
	}
	return sel
}

func loadPCSDir(dir string, q *quote.Quote, pck *pckInfo) (*collateral.Collateral, collateralSource, error) {
	src := collateralSource{Path: dir, Kind: "pcs-dir"}
	bodies, err := fs.Glob(os.DirFS(dir), "*"+pcsBody)
	if err != nil {
		return nil, src, unavailable(fmt.Errorf("collateral %s: %w", dir, err))
	}
	if len(bodies) == 0 {
		sub := filepath.Join(dir, pcsSubdir)
		if st, err := os.Stat(sub); err == nil && st.IsDir() {
			dir, src.Path = sub, sub
			bodies, _ = fs.Glob(os.DirFS(dir), "*"+pcsBody)
		}
	}
	if len(bodies) == 0 {
		return nil, src, unavailable(fmt.Errorf("collateral %s: no %s and no PCS responses (*%s)", dir, qvlFileName, pcsBody))
	}
	sel := pcsSelector(q, pck)
	c, err := collateral.ReadPCSDir(os.DirFS(dir), sel)
	if err != nil {
		return nil, src, fmt.Errorf("collateral %s: %w", dir, err)
	}
	return c, src, nil
}
