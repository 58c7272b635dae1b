package cli

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/snp"
)

// snpMediaType identifies the JSON output of snp verify.
const snpMediaType = "application/vnd.tdproof.snp-verification.v1+json"

func (a *app) snpCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "snp",
		Short: "Verify AMD SEV-SNP attestation reports",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return &usageError{err: errors.New("missing command: snp verify")}
		},
	}
	c.AddCommand(a.snpVerifyCommand())
	return c
}

type snpFlags struct {
	certs, vcek, ask, kdsURL, product string
	crls                              []string
	at                                timeValue
	requireCRL, dstackCompat          bool
	allowVLEK, requireUpToDate        bool
}

type snpOutput struct {
	MediaType string      `json:"media_type"`
	Verified  bool        `json:"verified"`
	Accepted  bool        `json:"accepted"`
	Result    *snp.Result `json:"result"`
	Error     *errorJSON  `json:"error,omitempty"`
}

func (a *app) snpVerifyCommand() *cobra.Command {
	f := &snpFlags{}
	c := &cobra.Command{
		Use:   "verify REPORT [--certs DIR | --vcek FILE [--ask FILE]] [--at TIME]",
		Short: "Verify an SEV-SNP attestation report and appraise it",
		Long: `Verify an AMD SEV-SNP ATTESTATION_REPORT (version 2, 3 or 5; 1184 bytes, binary or hex):
the ECDSA P-384 signature over its exact signed bytes, the ARK -> ASK -> VCEK (or VLEK)
chain to the AMD root pinned for the product (Milan, Genoa, Turin; from the report's CPUID),
every certificate's validity at --at, the ARK-signed CRL when given, the VCEK's TCB
extensions against REPORTED_TCB (FMC on Turin) and its hwID against CHIP_ID. Then the
policy: VMPL 0, no DEBUG, no MIGRATE_MA, no MASK_CHIP_KEY, POLICY consistent with
PLATFORM_INFO (SMT, RAPL, ciphertext hiding), VCEK only unless --allow-vlek;
--dstack-compat also refuses report version 5 as dstack does.

Certificates: --vcek (PEM or DER) with --ask (default: the embedded ASK of the product),
or --certs DIR holding ask.pem, vcek.pem or vcek.der and crl.der, or an offline bundle
written by "tdproof collateral fetch --platform snp" (the VCEK is looked up by CHIP_ID and
REPORTED_TCB). Without any, the VCEK and CRL are fetched from AMD KDS (--amd-kds-url).
The TCB status is dstack's: UpToDate iff CURRENT = REPORTED = COMMITTED = LAUNCH.`,
		Example: `  tdproof snp verify report.bin --vcek vcek.pem --ask ask.pem --at 2026-06-18T00:00:00Z
  tdproof snp verify report.bin --certs snp-bundle/ --format json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("REPORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runSNPVerify(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.certs, "certs", "", "certificate `DIR`: ask.pem, vcek.pem|vcek.der, crl.der, or an offline bundle")
	fl.StringVar(&f.vcek, "vcek", "", "VCEK or VLEK certificate `FILE` (PEM or DER)")
	fl.StringVar(&f.ask, "ask", "", "ASK or ASVK certificate `FILE` (default: the embedded one of the product)")
	fl.StringSliceVar(&f.crls, "crl", nil, "ARK-signed CRL `FILE` (DER or PEM; repeatable)")
	fl.BoolVar(&f.requireCRL, "require-crl", false, "fail when no CRL of the product's ARK is available")
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.StringVar(&f.product, "product", "", "product line for version 2 reports: Milan, Genoa or Turin")
	fl.BoolVar(&f.dstackCompat, "dstack-compat", false, "dstack's acceptance: report versions 2 and 3, VCEK only")
	fl.BoolVar(&f.allowVLEK, "allow-vlek", false, "accept VLEK-signed reports")
	fl.BoolVar(&f.requireUpToDate, "require-up-to-date", false, "accept only TCB status UpToDate")
	fl.StringVar(&f.kdsURL, "amd-kds-url", amdkds.DefaultBaseURL, "AMD KDS base `URL` for certificates not given")
	return c
}

func (a *app) runSNPVerify(cmd *cobra.Command, file string, f *snpFlags) error {
	out := &snpOutput{MediaType: snpMediaType}
	err := a.snpVerifyInto(cmd.Context(), out, file, f)
	out.Accepted = err == nil
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		if werr := writeJSON(a.stdout, out); werr != nil {
			return werr
		}
	} else if werr := printSNP(a.stdout, out, err); werr != nil {
		return werr
	}
	return err
}

// readSNPReport reads a binary or hex report.
func (a *app) readSNPReport(file string) (*snp.Report, error) {
	b, err := a.readInput("report", file)
	if err != nil {
		return nil, err
	}
	if len(b) != snp.ReportSize {
		s := strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
		if h, herr := hex.DecodeString(s); herr == nil {
			b = h
		}
	}
	return snp.ParseReport(b)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &usageError{err: err}
	}
	cs, err := snp.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cs) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d certificates", snp.ErrMalformed, path, len(cs))
	}
	return cs[0], nil
}

func firstExisting(dir string, names ...string) string {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func (a *app) snpVerifyInto(ctx context.Context, out *snpOutput, file string, f *snpFlags) error {
	r, err := a.readSNPReport(file)
	if err != nil {
		return err
	}
	var product snp.Product
	if f.product != "" {
		if product, err = snp.ParseProduct(f.product); err != nil {
			return &usageError{err: fmt.Errorf("--product: %w", err)}
		}
	}
	var certs snp.Certificates
	var crls [][]byte
	for _, p := range f.crls {
		b, err := os.ReadFile(p)
		if err != nil {
			return &usageError{err: err}
		}
		crls = append(crls, b)
	}
	if f.vcek != "" {
		if certs.VCEK, err = readCert(f.vcek); err != nil {
			return err
		}
	}
	if f.ask != "" {
		if certs.ASK, err = readCert(f.ask); err != nil {
			return err
		}
	}
	if f.certs != "" && certs.VCEK == nil {
		if p := firstExisting(f.certs, "vcek.pem", "vcek.der", "vlek.pem", "vlek.der"); p != "" {
			if certs.VCEK, err = readCert(p); err != nil {
				return err
			}
			if p := firstExisting(f.certs, "ask.pem", "ask.der", "asvk.pem"); p != "" && certs.ASK == nil {
				if certs.ASK, err = readCert(p); err != nil {
					return err
				}
			}
			if p := firstExisting(f.certs, "crl.der", "crl.pem"); p != "" && len(f.crls) == 0 {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				crls = append(crls, b)
			}
		} else {
			m, err := amdkds.Fetch(ctx, amdkds.Bundle{Dir: f.certs}, r, product, false, nil)
			if err != nil {
				return err
			}
			certs = snp.Certificates{ASK: m.ASK, ARK: m.ARK, VCEK: m.VCEK}
			if crl, err := (amdkds.Bundle{Dir: f.certs}).CRL(ctx, m.Product); err == nil && len(f.crls) == 0 {
				crls = append(crls, crl)
			}
		}
	}
	if certs.VCEK == nil {
		m, err := amdkds.Fetch(ctx, &amdkds.Client{BaseURL: f.kdsURL}, r, product, true, nil)
		if err != nil {
			return err
		}
		certs = snp.Certificates{ASK: m.ASK, ARK: m.ARK, VCEK: m.VCEK}
		crls = append(crls, m.CRL)
	}
	res, err := snp.Verify(r, certs, snp.Options{Now: f.at.t, Product: product, CRLs: crls, RequireCRL: f.requireCRL})
	if err != nil {
		return err
	}
	out.Verified, out.Result = true, res
	return snpPolicy(f).Check(res)
}

func snpPolicy(f *snpFlags) snp.Policy {
	return snp.Policy{DstackCompat: f.dstackCompat, AllowVLEK: f.allowVLEK, RequireUpToDate: f.requireUpToDate}
}

func printSNP(w io.Writer, out *snpOutput, err error) error {
	p := &printer{w: w}
	if err != nil && !out.Verified {
		p.printf("NOT VERIFIED: %s\n", oneLine(err.Error()))
		return p.err
	}
	r := out.Result
	if err != nil {
		p.printf("REJECTED: %s\n", oneLine(err.Error()))
	} else {
		p.printf("OK: SEV-SNP report verified (%s, %s)\n", r.Product, r.TCBStatus)
	}
	printSNPResult(p, r)
	return p.err
}

func printSNPResult(p *printer, r *snp.Result) {
	rep := r.Report
	p.kv(0, "product", r.Product.String())
	p.kv(0, "signing key", r.SigningKey.String())
	root := "AMD ARK-" + r.Product.String() + " (pinned)"
	if !r.AMDRoot {
		root = "NOT the AMD root: " + r.ARK.Subject.CommonName
	}
	p.kv(0, "root", root)
	crl := "not checked"
	if r.CRLChecked {
		crl = "checked"
	}
	p.kv(0, "CRL", crl)
	p.kv(0, "VCEK valid until", r.VCEK.NotAfter.UTC().Format(time.RFC3339))
	p.kv(0, "TCB status", string(r.TCBStatus))
	t := r.TCB
	p.kv(0, "TCB current", fmt.Sprintf("%+v", t.Current))
	p.kv(0, "TCB reported", fmt.Sprintf("%+v", t.Reported))
	p.kv(0, "TCB committed", fmt.Sprintf("%+v", t.Committed))
	p.kv(0, "TCB launch", fmt.Sprintf("%+v", t.Launch))
	p.kv(0, "report version", fmt.Sprint(rep.Version))
	p.kv(0, "policy", fmt.Sprintf("0x%x", rep.Policy))
	p.kv(0, "VMPL", fmt.Sprint(rep.VMPL))
	p.kv(0, "measurement", hex.EncodeToString(rep.Measurement[:]))
	p.kv(0, "host data", hex.EncodeToString(rep.HostData[:]))
	p.kv(0, "report data", hex.EncodeToString(rep.ReportData[:]))
	p.kv(0, "chip id", hex.EncodeToString(rep.ChipID[:]))
}

// dstackVerifySNP verifies dstack SEV-SNP evidence for dstack verify.
func (a *app) dstackVerifySNP(out *dstackOutput, ev *dstack.Evidence, f *dstackFlags, rd *[64]byte) error {
	opts := dstack.SNPOptions{Now: f.at.t, ReportData: rd, Policy: snp.Policy{DstackCompat: f.dstackCompat}}
	if f.snpVCEK != "" {
		c, err := readCert(f.snpVCEK)
		if err != nil {
			return err
		}
		opts.VCEK = c
	}
	res, err := dstack.VerifySNP(ev, opts)
	if err != nil {
		return err
	}
	out.Other, out.Verified = res, true
	// The verifier service does not appraise SEV-SNP evidence yet: no
	// reference value pins it here, so it is at most a warning.
	out.Verdict = "WARNING"
	out.line = fmt.Sprintf("SEV-SNP report verified (%s), mr_config bound by HOST_DATA; not appraised against reference values", res.TCBStatus)
	return nil
}

func printDstackSNP(p *printer, r *dstack.Result) {
	p.kv(0, "TEE variant", r.TEEVariant)
	p.kv(0, "TCB status", r.TCBStatus)
	ai := r.AppInfo
	p.kv(0, "app id", hex.EncodeToString(ai.AppID))
	p.kv(0, "compose hash", hex.EncodeToString(ai.ComposeHash))
	p.kv(0, "instance id", hex.EncodeToString(ai.InstanceID))
	p.kv(0, "device id", hex.EncodeToString(ai.DeviceID))
	p.kv(0, "key provider", string(ai.KeyProviderInfo))
	p.kv(0, "mr_system", hex.EncodeToString(ai.MRSystem))
	p.kv(0, "mr_aggregated", hex.EncodeToString(ai.MRAggregated))
	os := hex.EncodeToString(ai.OSImageHash) + " not verified (no sev_snp_measurement in vm_config)"
	if r.OSImageHashVerified && r.SNPLaunch != nil {
		os = hex.EncodeToString(ai.OSImageHash) + " verified; launch digest recomputed and matches MEASUREMENT"
	}
	p.kv(0, "os image", os)
	p.kv(0, "report data checks", listOrNone(r.ReportDataChecks))
	if r.SNP != nil {
		printSNPResult(p, r.SNP)
	}
}

// runFetchSNP is collateral fetch --platform snp: for each report (raw
// or hex SEV-SNP report, or dstack SEV-SNP evidence) the product's
// cert_chain and CRL and the chip's VCEK at REPORTED_TCB, plus cert_chain
// and CRL of each --product, into the bundle DIR (amdkds layout).
func (a *app) runFetchSNP(cmd *cobra.Command, args []string, f *fetchFlags) error {
	if f.out == "" {
		return withHints(&usageError{err: errors.New("missing -o/--out DIR")}, "name the bundle directory to write with -o DIR")
	}
	if len(args) == 0 && len(f.products) == 0 {
		return &usageError{err: errors.New("nothing to fetch: give SEV-SNP REPORT files or --product")}
	}
	var products []snp.Product
	for _, s := range f.products {
		p, err := snp.ParseProduct(s)
		if err != nil {
			return &usageError{err: fmt.Errorf("--product: %w", err)}
		}
		products = append(products, p)
	}
	var reports []*snp.Report
	for _, file := range args {
		r, err := a.readSNPReportOrEvidence(file)
		if err != nil {
			return err
		}
		reports = append(reports, r)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return &usageError{err: fmt.Errorf("-o: %w", err)}
	}
	client := &amdkds.Client{BaseURL: f.kdsURL}
	cache := &amdkds.Cache{Dir: f.out, Upstream: client, Now: clockAt(f.at.t)}
	ctx := cmd.Context()
	out := &fetchOutput{MediaType: FetchMediaType, Dir: f.out, Source: client.CertChainURL(snp.ProductMilan), Items: []fetchItem{}}
	out.Source = strings.TrimSuffix(out.Source, "/Milan/cert_chain")
	var errs []error
	record := func(path, item string, err error) {
		it := fetchItem{Path: path, Item: item, Status: "ok"}
		if err != nil {
			it.Status, it.Error = "failed", oneLine(err.Error())
			out.Failed++
			errs = append(errs, err)
		} else {
			out.Fetched++
		}
		out.Items = append(out.Items, it)
	}
	for _, p := range products {
		_, err := cache.CertChain(ctx, p)
		record(p.String()+"/cert_chain.pem", "cert_chain "+p.String(), err)
		_, err = cache.CRL(ctx, p)
		record(p.String()+"/crl.der", "crl "+p.String(), err)
	}
	for _, r := range reports {
		m, err := amdkds.Fetch(ctx, cache, r, snp.ProductUnknown, true, nil)
		item := "vcek " + hex.EncodeToString(r.ChipID[:8]) + "…"
		path := ""
		if m != nil {
			path = m.Product.String() + "/vcek/"
		}
		record(path, item, err)
	}
	err := errors.Join(errs...)
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		return errors.Join(err, writeJSON(a.stdout, out))
	}
	return errors.Join(err, printFetch(a.stdout, out))
}

// readSNPReportOrEvidence reads an SEV-SNP report, or the report of dstack
// SEV-SNP evidence.
func (a *app) readSNPReportOrEvidence(file string) (*snp.Report, error) {
	b, err := a.readInput("report", file)
	if err != nil {
		return nil, err
	}
	if ev, derr := dstack.ParseEvidence(b); derr == nil && ev.Attestation != nil && ev.Attestation.SNP != nil {
		return snp.ParseReport(ev.Attestation.SNP.Report)
	}
	if len(b) != snp.ReportSize {
		if h, herr := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")); herr == nil {
			b = h
		}
	}
	return snp.ParseReport(b)
}
