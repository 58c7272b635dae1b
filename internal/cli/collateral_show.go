package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
)

// ShowMediaType identifies the JSON schema of collateral show.
const ShowMediaType = "application/vnd.tdproof.collateral-show.v1+json"

// showOutput is the JSON output of collateral show.
type showOutput struct {
	MediaType string     `json:"media_type"`
	Path      string     `json:"path"`
	At        time.Time  `json:"at"`
	Items     []showItem `json:"items"`
	Error     *errorJSON `json:"error"`
}

// showItem describes one collateral document or CRL.
type showItem struct {
	File       string    `json:"file"`
	Item       string    `json:"item"`
	Kind       string    `json:"kind"`
	TEE        string    `json:"tee,omitempty"`
	FMSPC      string    `json:"fmspc,omitempty"`
	CA         string    `json:"ca,omitempty"`
	Update     string    `json:"update,omitempty"`
	EvalNumber int       `json:"tcb_evaluation_data_number,omitempty"`
	IssueDate  time.Time `json:"issue_date"`
	NextUpdate time.Time `json:"next_update"`
	// Validity is "valid", "expired" or "not yet valid" at At, judged by
	// the document's dates and, once verified, its signing certificates
	// (ValidUntil).
	Validity   string    `json:"validity"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Verified: the issuer chain leads to the trusted root and the
	// signature covers the bytes.
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
	// TCB info.
	TCBLevels           []showLevel  `json:"tcb_levels,omitempty"`
	TDXModuleIdentities []showModule `json:"tdx_module_identities,omitempty"`
	// QE identity.
	MRSigner  string `json:"mrsigner,omitempty"`
	ISVProdID *int   `json:"isvprodid,omitempty"`
	// CRLs.
	CRLNumber string `json:"crl_number,omitempty"`
	Revoked   *int   `json:"revoked,omitempty"`
}

type showLevel struct {
	Status      string    `json:"status"`
	TCBDate     time.Time `json:"tcb_date"`
	PCESVN      *uint16   `json:"pcesvn,omitempty"`
	ISVSVN      *uint16   `json:"isvsvn,omitempty"`
	AdvisoryIDs []string  `json:"advisory_ids,omitempty"`
}

type showModule struct {
	ID     string      `json:"id"`
	Levels []showLevel `json:"levels"`
}

// response is a collateral response to show, with the key it is for.
type response struct {
	file   string
	key    pcs.ItemKey
	body   []byte
	header http.Header
}

func (a *app) showCommand() *cobra.Command {
	var trustedRoot string
	var at timeValue
	c := &cobra.Command{
		Use:   "show DIR|FILE",
		Short: "Summarise a collateral bundle or file",
		Long: `Show what a collateral bundle directory (as written by "tdproof collateral fetch", a
directory of PCS responses, or one holding collateral.json) or a single file (a NAME.body
response, a dcap-qvl QuoteCollateralV3 JSON file) holds: for each TCB info, QE identity and
CRL its FMSPC, TCB evaluation data number, issue and next update dates, whether it is
valid at --at (default now), whether it verifies up to the Intel SGX Root CA (or
--trusted-root), and its TCB levels.`,
		Example: `  tdproof collateral show bundle/
  tdproof collateral show bundle/tdx-tcb-fmspc-50806f000000.body --at 2023-07-01T00:00:00Z
  tdproof collateral show collateral.json --format json`,
		Annotations: map[string]string{"exit_codes": `  0  everything parsed and verified (expired items are reported, not failed)
  2  usage, or DIR|FILE cannot be read
  3  an item does not parse
  6  no collateral found, or an item does not verify (the others are still shown)`},
		Args: exactArgs("DIR|FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			root, err := a.readTrustedRoot(trustedRoot)
			if err != nil {
				return err
			}
			now := at.t
			if now.IsZero() {
				now = time.Now().UTC()
			}
			out := &showOutput{MediaType: ShowMediaType, Path: args[0], At: now, Items: []showItem{}}
			resps, err := readResponses(args[0])
			if err == nil {
				out.Items, err = describeAll(resps, root, now)
			}
			if errors.As(err, new(*usageError)) {
				return err
			}
			out.Error = newErrorJSON(err)
			if outputFormat(cmd) == formatJSON {
				return errors.Join(err, writeJSON(a.stdout, out))
			}
			return errors.Join(err, printShow(a.stdout, out, root))
		},
	}
	c.Flags().StringVar(&trustedRoot, "trusted-root", "", "verify up to the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA")
	c.Flags().Var(&at, "at", "judge validity at `TIME`: RFC 3339 or unix seconds (default now)")
	commandLineOnly(c.Flags(), "trusted-root")
	return c
}

// readResponses reads a bundle directory or one file.
func readResponses(path string) ([]response, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("reading collateral: %w", err)}
	}
	if !st.IsDir() {
		if strings.HasSuffix(path, pcs.BodySuffix) {
			r, err := readBody(filepath.Dir(path), filepath.Base(path))
			if err != nil {
				return nil, err
			}
			return []response{r}, nil
		}
		b, err := readCollateralFile(path)
		if err != nil {
			return nil, err
		}
		resps, err := qvlResponses(path, b)
		if err != nil {
			// Not QuoteCollateralV3: a single response under another name?
			if r, rerr := readBody(filepath.Dir(path), filepath.Base(path)); rerr == nil {
				return []response{r}, nil
			}
		}
		return resps, err
	}
	if b, err := os.ReadFile(filepath.Join(path, qvlFileName)); err == nil {
		return qvlResponses(filepath.Join(path, qvlFileName), b)
	}
	var out []response
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, pcs.BodySuffix) || strings.HasPrefix(d.Name(), ".tmp-") {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		if strings.HasPrefix(filepath.ToSlash(rel), "pckcert/") {
			return nil
		}
		r, err := readBody(filepath.Dir(p), d.Name())
		if err != nil {
			return err
		}
		r.file = filepath.ToSlash(rel)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s holds no collateral (%s, *%s)", errCollateralUnavailable, path, qvlFileName, pcs.BodySuffix)
	}
	return out, nil
}

// readBody reads NAME.body (and NAME.headers.json) and works out which
// item it is: from its path in a bundle, else from its content.
func readBody(dir, name string) (response, error) {
	base := strings.TrimSuffix(name, pcs.BodySuffix)
	r := response{file: name, header: http.Header{}}
	body, err := readCollateralFile(filepath.Join(dir, name))
	if err != nil {
		return r, err
	}
	r.body = body
	if hb, err := os.ReadFile(filepath.Join(dir, base+pcs.HeadersSuffix)); err == nil {
		var m map[string]string
		if err := json.Unmarshal(hb, &m); err != nil {
			return r, fmt.Errorf("%w: %s%s: %w", collateral.ErrMalformed, base, pcs.HeadersSuffix, err)
		}
		for k, v := range m {
			r.header.Set(k, v)
		}
	}
	for _, cand := range []string{filepath.Base(dir) + "/" + base, base} {
		if k, err := pcs.ParseItemPath(cand); err == nil {
			r.key = k
			return r, nil
		}
	}
	if base == "rootcacrl" {
		r.key = pcs.ItemKey{Kind: pcs.KindRootCACRL}
		return r, nil
	}
	r.key, err = sniffKey(body, r.header)
	return r, err
}

// sniffKey works out the item key of a response from its content.
func sniffKey(body []byte, h http.Header) (pcs.ItemKey, error) {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		if s, err := collateral.ParseTCBInfoResponse(body); err == nil {
			return pcs.ItemKey{Kind: pcs.KindTCBInfo, TEE: teeOf(s.Info.ID), FMSPC: s.Info.FMSPC}, nil
		}
		s, err := collateral.ParseQEIdentityResponse(body)
		if err != nil {
			return pcs.ItemKey{}, err
		}
		return pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: teeOf(s.Identity.ID)}, nil
	}
	crl, err := collateral.ParseCRL(body)
	if err != nil {
		return pcs.ItemKey{}, err
	}
	switch crl.List.Issuer.CommonName {
	case pckcert.PlatformCACN:
		return pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: pckcert.CAPlatform}, nil
	case pckcert.ProcessorCACN:
		return pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: pckcert.CAProcessor}, nil
	}
	return pcs.ItemKey{Kind: pcs.KindRootCACRL}, nil
}

func teeOf(id string) pcs.TEE {
	if id == "TDX" || id == "TD_QE" {
		return pcs.TEETDX
	}
	return pcs.TEESGX
}

// qvlResponses turns a QuoteCollateralV3 file into the four responses.
func qvlResponses(file string, b []byte) ([]response, error) {
	c, err := collateral.ParseQVLJSON(b)
	if err != nil {
		return nil, fmt.Errorf("collateral %s: %w", file, err)
	}
	name := filepath.Base(file)
	hdr := func(n, v string) http.Header { h := http.Header{}; h.Set(n, v); return h }
	ca := pckcert.CATypeOf(c.PCKCRLIssuerChain.Leaf(), true)
	return []response{
		{file: name, key: pcs.ItemKey{Kind: pcs.KindTCBInfo, TEE: teeOf(c.TCBInfo.Info.ID), FMSPC: c.TCBInfo.Info.FMSPC},
			body: c.TCBInfo.TCBInfoResponse(), header: hdr(collateral.HeaderTCBInfoIssuerChain, c.TCBInfoIssuerChain.PEM)},
		{file: name, key: pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: teeOf(c.QEIdentity.Identity.ID)},
			body: c.QEIdentity.Response(), header: hdr(collateral.HeaderEnclaveIdentityChain, c.QEIdentityIssuerChain.PEM)},
		{file: name, key: pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: ca},
			body: c.PCKCRL.DER, header: hdr(collateral.HeaderPCKCRLIssuerChain, c.PCKCRLIssuerChain.PEM)},
		{file: name, key: pcs.ItemKey{Kind: pcs.KindRootCACRL}, body: c.RootCACRL.DER, header: http.Header{}},
	}, nil
}

// describeAll describes every response; the error is the first parse
// failure, else the first verification failure.
func describeAll(resps []response, root *x509.Certificate, now time.Time) ([]showItem, error) {
	slices.SortStableFunc(resps, func(a, b response) int { return strings.Compare(a.file, b.file) })
	var items []showItem
	var parseErr, verifyErr error
	for _, r := range resps {
		it, perr, verr := describe(r, root, now)
		if perr != nil {
			parseErr = cmpOr(parseErr, fmt.Errorf("%s: %w", r.file, perr))
			continue
		}
		items = append(items, it)
		if verr != nil {
			verifyErr = cmpOr(verifyErr, fmt.Errorf("%s: %w", r.file, verr))
		}
	}
	return items, cmpOr(parseErr, verifyErr)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// describe parses a response for display (without trusting it), then
// verifies it.
func describe(r response, root *x509.Certificate, now time.Time) (showItem, error, error) {
	k := r.key
	it := showItem{File: r.file, Item: k.String(), Kind: k.Kind.String()}
	if k.Kind == pcs.KindTCBInfo || k.Kind == pcs.KindQEIdentity {
		it.TEE = k.TEE.String()
		it.Update = k.Update.String()
	}
	switch k.Kind {
	case pcs.KindTCBInfo:
		s, err := collateral.ParseTCBInfoResponse(r.body)
		if err != nil {
			return it, err, nil
		}
		info := s.Info
		it.FMSPC = strings.ToUpper(hex.EncodeToString(info.FMSPC[:]))
		it.EvalNumber, it.IssueDate, it.NextUpdate = info.TCBEvaluationDataNumber, info.IssueDate, info.NextUpdate
		for _, l := range info.TCBLevels {
			pce := l.PCESVN
			it.TCBLevels = append(it.TCBLevels, showLevel{Status: l.TCBStatus.String(), TCBDate: l.TCBDate, PCESVN: &pce, AdvisoryIDs: l.AdvisoryIDs})
		}
		for _, m := range info.TDXModuleIdentities {
			it.TDXModuleIdentities = append(it.TDXModuleIdentities, showModule{ID: m.ID, Levels: isvLevels(m.TCBLevels)})
		}
	case pcs.KindQEIdentity:
		s, err := collateral.ParseQEIdentityResponse(r.body)
		if err != nil {
			return it, err, nil
		}
		id := s.Identity
		it.EvalNumber, it.IssueDate, it.NextUpdate = id.TCBEvaluationDataNumber, id.IssueDate, id.NextUpdate
		it.MRSigner = strings.ToUpper(hex.EncodeToString(id.MRSigner[:]))
		prod := int(id.ISVProdID)
		it.ISVProdID = &prod
		it.TCBLevels = isvLevels(id.TCBLevels)
	default:
		crl, err := collateral.ParseCRL(r.body)
		if err != nil {
			return it, err, nil
		}
		if k.Kind == pcs.KindPCKCRL {
			it.CA = k.CA.String()
		}
		it.IssueDate, it.NextUpdate = crl.List.ThisUpdate, crl.List.NextUpdate
		if crl.List.Number != nil {
			it.CRLNumber = crl.List.Number.String()
		}
		n := len(crl.List.RevokedCertificateEntries)
		it.Revoked = &n
	}
	switch {
	case now.Before(it.IssueDate):
		it.Validity = "not yet valid"
	case !now.Before(it.NextUpdate):
		it.Validity = "expired"
	default:
		it.Validity = "valid"
	}
	v, verr := pcs.DecodeItem(k, r.body, r.header, root)
	if verr != nil {
		it.VerifyError = oneLine(verr.Error())
		return it, nil, verr
	}
	it.Verified, it.ValidUntil = true, v.ValidUntil
	if err := v.CheckValidity(now); err != nil && it.Validity == "valid" {
		it.Validity = "expired"
	}
	return it, nil, nil
}

// validityNote says how an item stands at the check time at: "valid at
// AT", "expired at EXPIRY, checked at AT" (EXPIRY: the end of its window,
// its next update or an earlier certificate expiry) or "not yet valid,
// checked at AT".
func validityNote(it showItem, at time.Time) string {
	switch it.Validity {
	case "expired":
		exp := it.NextUpdate
		if !it.ValidUntil.IsZero() && it.ValidUntil.Before(exp) {
			exp = it.ValidUntil
		}
		return fmt.Sprintf("expired at %s, checked at %s", ts(exp), ts(at))
	case "not yet valid":
		return "not yet valid, checked at " + ts(at)
	}
	return "valid at " + ts(at)
}

func isvLevels(ls []collateral.ISVSVNLevel) []showLevel {
	out := make([]showLevel, len(ls))
	for i, l := range ls {
		svn := l.ISVSVN
		out[i] = showLevel{Status: l.TCBStatus.String(), TCBDate: l.TCBDate, ISVSVN: &svn, AdvisoryIDs: l.AdvisoryIDs}
	}
	return out
}

func printShow(w io.Writer, out *showOutput, root *x509.Certificate) error {
	p := &printer{w: w}
	anchor := "Intel SGX Root CA"
	if root != nil {
		anchor = "trusted root " + root.Subject.CommonName
		if sum := collateralRootSHA256(root.Raw); sum != dcap.IntelRootSHA256 {
			p.printf("%s\n\n", nonIntelWarning(sum))
		}
	}
	for i, it := range out.Items {
		if i > 0 {
			p.printf("\n")
		}
		p.printf("%s\n", it.Item)
		p.kv(1, "file", it.File)
		if it.Verified {
			p.kv(1, "signature", "verified up to the "+anchor)
		} else {
			p.kv(1, "signature", "NOT VERIFIED: "+it.VerifyError)
		}
		if it.FMSPC != "" {
			p.kv(1, "FMSPC", it.FMSPC)
		}
		if it.CA != "" {
			p.kv(1, "PCK CA", it.CA)
		}
		if it.EvalNumber > 0 {
			p.kv(1, "evaluation data", fmt.Sprintf("%d (%s update)", it.EvalNumber, it.Update))
		}
		p.kv(1, "issued", ts(it.IssueDate))
		p.kv(1, "next update", fmt.Sprintf("%s (%s)", ts(it.NextUpdate), validityNote(it, out.At)))
		if !it.ValidUntil.IsZero() && it.ValidUntil.Before(it.NextUpdate) {
			p.kv(1, "valid until", ts(it.ValidUntil)+" (a signing certificate expires first)")
		}
		if it.MRSigner != "" {
			p.kv(1, "MRSIGNER", it.MRSigner)
			p.kv(1, "ISVPRODID", *it.ISVProdID)
		}
		if it.CRLNumber != "" {
			p.kv(1, "CRL number", it.CRLNumber)
		}
		if it.Revoked != nil {
			p.kv(1, "revoked", *it.Revoked)
		}
		if len(it.TCBLevels) > 0 {
			p.kv(1, "TCB levels", len(it.TCBLevels))
			for _, l := range it.TCBLevels {
				p.printf("    %s\n", levelLine(l))
			}
		}
		for _, m := range it.TDXModuleIdentities {
			p.kv(1, "module "+m.ID, fmt.Sprintf("%d levels", len(m.Levels)))
			for _, l := range m.Levels {
				p.printf("    %s\n", levelLine(l))
			}
		}
	}
	return p.err
}

func levelLine(l showLevel) string {
	s := fmt.Sprintf("%-34s tcb date %s", l.Status, l.TCBDate.UTC().Format(time.DateOnly))
	if l.PCESVN != nil {
		s += fmt.Sprintf("  pcesvn %d", *l.PCESVN)
	}
	if l.ISVSVN != nil {
		s += fmt.Sprintf("  isvsvn %d", *l.ISVSVN)
	}
	if len(l.AdvisoryIDs) > 0 {
		s += "  " + strings.Join(l.AdvisoryIDs, ", ")
	}
	return s
}

func collateralRootSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
