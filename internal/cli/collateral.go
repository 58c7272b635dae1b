package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/quote"
)

// FetchMediaType identifies the JSON schema of collateral fetch.
const FetchMediaType = "application/vnd.tdproof.collateral-fetch.v1+json"

const collateralExitCodes = `  0  every item fetched (or skipped: not served for that TEE) and verified
  2  usage
  3  a quote does not parse
  6  an item could not be fetched or failed verification (the others are kept)`

func (a *app) collateralCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "collateral",
		Short: "Fetch collateral bundles and show what they hold",
		Long: `Fetch verified collateral (TCB info, QE identity, PCK CRLs, root CA CRL) from Intel PCS or a
PCCS into a bundle directory for offline verification, and show what a bundle or a
collateral file holds.`,
	}
	return a.group(c, a.fetchCommand(), a.showCommand())
}

// fetchFlags are the flags of collateral fetch.
type fetchFlags struct {
	source      sourceFlags
	out         string
	fmspcs      []string
	all         bool
	tees, cas   []string
	trustedRoot string
	at          timeValue
	parallel    int
	// SEV-SNP (--platform snp).
	platform, kdsURL string
	products         []string
}

// fetchOutput is the JSON output of collateral fetch.
type fetchOutput struct {
	MediaType string      `json:"media_type"`
	Dir       string      `json:"dir"`
	Source    string      `json:"source"`
	Items     []fetchItem `json:"items"`
	Fetched   int         `json:"fetched"`
	Skipped   int         `json:"skipped"`
	Failed    int         `json:"failed"`
	Error     *errorJSON  `json:"error"`
}

// fetchItem is one item of a fetch.
type fetchItem struct {
	Path       string     `json:"path"`
	Item       string     `json:"item"`
	Status     string     `json:"status"` // ok, skipped, failed
	IssueDate  *time.Time `json:"issue_date,omitempty"`
	NextUpdate *time.Time `json:"next_update,omitempty"`
	EvalNumber int        `json:"tcb_evaluation_data_number,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// fetchTask is an item to fetch; optional items are skipped on 404.
type fetchTask struct {
	key      pcs.ItemKey
	optional bool
}

func (a *app) fetchCommand() *cobra.Command {
	f := &fetchFlags{parallel: 4}
	c := &cobra.Command{
		Use:   "fetch [QUOTE...] (--fmspc LIST | --all) -o DIR",
		Short: "Fetch verified collateral into a bundle directory",
		Long: `Fetch collateral from --pccs-url (default Intel PCS), verify every response (issuer chain to
the pinned Intel SGX Root CA, signature over the exact bytes, validity) and write it to the
bundle directory DIR, for the platforms of the given quotes, of an --fmspc list, or of every
FMSPC the service lists (--all). Items already in DIR and still valid are kept.

The bundle holds the raw responses as served: NAME.body plus NAME.headers.json with the
issuer-chain header (IntelSGXRootCA.der, sgx-pckcrl-{platform,processor}-der,
{sgx,tdx}-qe-identity, {sgx,tdx}-tcb-fmspc-FMSPC; early/ and eval-N/ for other TCB
evaluations; pckcert/ for PCK certificates of quotes carrying an encrypted PPID). Verify
against it offline with "tdproof quote verify QUOTE --collateral-dir DIR"; --collateral DIR
reads it too, and "tdproof pccs serve --collateral-dir DIR" serves it.

For --fmspc and --all, TCB info is fetched for each --tee (default sgx and tdx; a TEE the
service has no TCB info for is skipped) and PCK CRLs for each --ca (default both). A
progress bar is drawn on stderr when it is a terminal.`,
		Example: `  tdproof collateral fetch quote.bin -o bundle/
  tdproof collateral fetch --fmspc 50806F000000,90C06F000000 --tee tdx -o bundle/
  tdproof collateral fetch --all --update early -o bundle-early/
  tdproof collateral fetch quote.bin --pccs-url https://pccs.example:8081 -o bundle/`,
		Annotations: map[string]string{"exit_codes": collateralExitCodes},
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runFetch(cmd, args, f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.out, "out", "o", "", "bundle `DIR` to write (created if missing; required)")
	fl.StringSliceVar(&f.fmspcs, "fmspc", nil, "fetch for these FMSPCs (12 hex digits; repeatable or comma-separated)")
	fl.BoolVar(&f.all, "all", false, "fetch for every FMSPC the service lists")
	fl.StringSliceVar(&f.tees, "tee", nil, "TEEs for --fmspc and --all: sgx, tdx (default both)")
	fl.StringSliceVar(&f.cas, "ca", nil, "PCK CRLs for --fmspc and --all: platform, processor (default both)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "verify responses up to the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA")
	fl.Var(&f.at, "at", "check validity windows at `TIME`: RFC 3339 or unix seconds (default now)")
	fl.IntVar(&f.parallel, "parallel", 4, "fetch up to `N` items at once")
	f.source.register(fl, "", false)
	fl.StringVar(&f.platform, "platform", "tdx", "`PLATFORM`: tdx (Intel PCS/PCCS collateral) or snp (AMD KDS certificates and CRLs)")
	fl.StringVar(&f.kdsURL, "amd-kds-url", amdkds.DefaultBaseURL, "--platform snp: AMD KDS base `URL`")
	fl.StringSliceVar(&f.products, "product", nil, "--platform snp: also fetch cert_chain and CRL of these product lines (Milan, Genoa, Turin)")
	commandLineOnly(fl, "trusted-root")
	return c
}

func (a *app) runFetch(cmd *cobra.Command, args []string, f *fetchFlags) error {
	switch f.platform {
	case "tdx", "":
	case "snp":
		return a.runFetchSNP(cmd, args, f)
	default:
		return &usageError{err: fmt.Errorf("--platform: %q is neither tdx nor snp", f.platform)}
	}
	if f.out == "" {
		return withHints(&usageError{err: errors.New("missing -o/--out DIR")}, "name the bundle directory to write with -o DIR")
	}
	if len(args) == 0 && len(f.fmspcs) == 0 && !f.all {
		return &usageError{err: errors.New("nothing to fetch: give QUOTE files, --fmspc or --all")}
	}
	if f.parallel < 1 {
		return &usageError{err: fmt.Errorf("invalid --parallel %d", f.parallel)}
	}
	ch, err := f.source.channel()
	if err != nil {
		return err
	}
	tees, err := parseList(f.tees, []string{"sgx", "tdx"}, pcs.ParseTEE)
	if err != nil {
		return &usageError{err: fmt.Errorf("--tee: %w", err)}
	}
	cas, err := parseList(f.cas, []string{"platform", "processor"}, parseCA)
	if err != nil {
		return &usageError{err: fmt.Errorf("--ca: %w", err)}
	}
	root, err := a.readTrustedRoot(f.trustedRoot)
	if err != nil {
		return err
	}
	now := clockAt(f.at.t)
	client, err := f.source.client(root, now)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return &usageError{err: fmt.Errorf("-o: %w", err)}
	}
	cache, err := pcscache.New(client, f.out, pcscache.WithClock(now), pcscache.WithTrustedRoot(client.TrustedRoot()))
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	out := &fetchOutput{MediaType: FetchMediaType, Dir: f.out, Source: client.BaseURL(), Items: []fetchItem{}}
	tasks, err := a.fetchTasks(ctx, cache, args, f, ch, tees, cas)
	if err == nil {
		err = a.runTasks(ctx, cache, tasks, f.parallel, out)
	}
	if errors.As(err, new(*usageError)) {
		return err
	}
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		return errors.Join(err, writeJSON(a.stdout, out))
	}
	return errors.Join(err, printFetch(a.stdout, out))
}

// parseList parses a list flag (default def when empty), without
// duplicates.
func parseList[T comparable](vals, def []string, parse func(string) (T, error)) ([]T, error) {
	if len(vals) == 0 {
		vals = def
	}
	var out []T
	for _, v := range vals {
		x, err := parse(v)
		if err != nil {
			return nil, err
		}
		if !containsValue(out, x) {
			out = append(out, x)
		}
	}
	return out, nil
}

func containsValue[T comparable](l []T, x T) bool {
	for _, y := range l {
		if y == x {
			return true
		}
	}
	return false
}

func parseCA(s string) (pckcert.CAType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "platform":
		return pckcert.CAPlatform, nil
	case "processor":
		return pckcert.CAProcessor, nil
	}
	return 0, fmt.Errorf("unknown PCK CA %q (want platform or processor)", s)
}

// fetchTasks lists the items to fetch, in order, without duplicates.
func (a *app) fetchTasks(ctx context.Context, cache *pcscache.Cache, quotes []string, f *fetchFlags, ch pcs.Channel, tees []pcs.TEE, cas []pckcert.CAType) ([]fetchTask, error) {
	var tasks []fetchTask
	seen := map[pcs.ItemKey]int{}
	add := func(k pcs.ItemKey, optional bool) {
		k = k.Normalize()
		if i, ok := seen[k]; ok {
			tasks[i].optional = tasks[i].optional && optional
			return
		}
		seen[k] = len(tasks)
		tasks = append(tasks, fetchTask{key: k, optional: optional})
	}
	for _, file := range quotes {
		q, err := a.readQuote(file)
		if err != nil {
			return nil, err
		}
		var chain *pcs.PCKCert
		if t := q.Signature.Certification.Type; t == quote.CertPPIDRSA2048 || t == quote.CertPPIDRSA3072 {
			req, err := pcs.PCKCertRequestForQuote(q)
			if err != nil {
				return nil, err
			}
			if chain, err = cache.PCKCert(ctx, req); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
		certs := pckChainCerts(chain)
		k, err := pcs.KeyForQuote(q, certs)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errMalformedInput, file, err)
		}
		k.Update, k.EvalNumber = ch.Update, ch.EvalNumber
		for _, ik := range k.Items() {
			add(ik, false)
		}
	}
	var fmspcs [][6]byte
	for _, s := range f.fmspcs {
		fm, err := pcs.ParseFMSPC(s)
		if err != nil {
			return nil, &usageError{err: fmt.Errorf("--fmspc: %w", err)}
		}
		fmspcs = append(fmspcs, fm)
	}
	if f.all {
		l, err := cache.FMSPCs(ctx)
		if err != nil {
			return nil, err
		}
		for _, e := range l {
			fmspcs = append(fmspcs, e.FMSPC)
		}
	}
	if len(fmspcs) > 0 {
		// TCB info for a TEE the user did not name may be absent.
		optional := f.all || len(f.tees) == 0
		for _, tee := range tees {
			add(pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: tee, Update: ch.Update, EvalNumber: ch.EvalNumber}, false)
		}
		for _, ca := range cas {
			add(pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: ca}, false)
		}
		add(pcs.ItemKey{Kind: pcs.KindRootCACRL}, false)
		for _, fm := range fmspcs {
			for _, tee := range tees {
				add(pcs.ItemKey{Kind: pcs.KindTCBInfo, TEE: tee, FMSPC: fm, Update: ch.Update, EvalNumber: ch.EvalNumber}, optional)
			}
		}
	}
	return tasks, nil
}

func pckChainCerts(p *pcs.PCKCert) []*x509.Certificate {
	if p == nil {
		return nil
	}
	return p.Chain.Certs
}

// runTasks fetches the tasks with up to n workers and records each
// outcome in out. It returns an error when an item failed.
func (a *app) runTasks(ctx context.Context, cache *pcscache.Cache, tasks []fetchTask, n int, out *fetchOutput) error {
	results := make([]fetchItem, len(tasks))
	errs := make([]error, len(tasks))
	bar := a.progress(len(tasks))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, len(tasks)) {
		wg.Go(func() {
			for i := range next {
				results[i], errs[i] = fetchOne(ctx, cache, tasks[i])
				if bar != nil {
					bar.Add(1)
				}
			}
		})
	}
	for i := range tasks {
		next <- i
	}
	close(next)
	wg.Wait()
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
	out.Items = results
	var failed []error
	for i, r := range results {
		switch r.Status {
		case "ok":
			out.Fetched++
		case "skipped":
			out.Skipped++
		default:
			out.Failed++
			failed = append(failed, errs[i])
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d items could not be fetched; first: %w", len(failed), len(tasks), failed[0])
	}
	return nil
}

func fetchOne(ctx context.Context, cache *pcscache.Cache, t fetchTask) (fetchItem, error) {
	r := fetchItem{Path: t.key.Path(), Item: t.key.String()}
	it, err := cache.Fetch(ctx, t.key)
	switch {
	case err == nil:
		r.Status = "ok"
		iss, next := it.IssueDate.UTC(), it.NextUpdate.UTC()
		r.IssueDate, r.NextUpdate, r.EvalNumber = &iss, &next, it.EvalNumber
	case t.optional && errors.Is(err, pcs.ErrNotFound):
		r.Status, r.Error = "skipped", "not served (404)"
		err = nil
	default:
		r.Status, r.Error = "failed", oneLine(err.Error())
	}
	return r, err
}

// progress returns a progress bar on stderr when it is a terminal.
func (a *app) progress(n int) *progressbar.ProgressBar {
	f, ok := a.stderr.(*os.File)
	if !ok || n < 2 {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("fetching collateral"),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond))
}

func printFetch(w io.Writer, out *fetchOutput) error {
	p := &printer{w: w}
	for _, it := range out.Items {
		switch it.Status {
		case "ok":
			p.printf("%-8s %-40s issued %s, next update %s", "ok", it.Path, ts(*it.IssueDate), ts(*it.NextUpdate))
			if it.EvalNumber > 0 {
				p.printf(", evaluation data number %d", it.EvalNumber)
			}
			p.printf("\n")
		default:
			p.printf("%-8s %-40s %s\n", it.Status, it.Path, it.Error)
		}
	}
	p.printf("%d fetched, %d skipped, %d failed into %s from %s\n", out.Fetched, out.Skipped, out.Failed, out.Dir, out.Source)
	return p.err
}
