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
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/verifier"
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
	return parseSNPReportInput(b)
}

// parseSNPReportInput parses a binary or hex (optionally 0x-prefixed)
// report.
func parseSNPReportInput(b []byte) (*snp.Report, error) {
	if len(b) != snp.ReportSize {
		if h, herr := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")); herr == nil {
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
		p.printf("WARNING: SEV-SNP report verified (%s, %s); not appraised: no reference value pins its measurement (for a verdict, send it as dstack evidence to /v1/verify)\n", r.Product, r.TCBStatus)
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
// dstackVerifySNP verifies dstack SEV-SNP evidence: first with the
// command's own switches (--dstack-compat's report versions and VCEK-only
// rule, --report-data, --vcek), then through the service's pipeline
// (verifier.Verifier, the policy's tee snp rules and reference values)
// for the verdict, so that the CLI accepts exactly what the service does.
func (a *app) dstackVerifySNP(cmd *cobra.Command, out *dstackOutput, ev *dstack.Evidence, in verifier.Evidence, f *dstackFlags, rd *[64]byte, ap *appraisal) error {
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	// VCEK, ASK and AMD CRL from the source flags, as serve gets them;
	// with --collateral FILE (as for a TDX quote) nothing is fetched.
	var src amdkds.Source = noSNPSource{}
	if f.collateral == "" {
		src = f.source.snpSource(cmd.Flags(), func() time.Time { return now })
	}
	endorse := snpEndorsement(src)
	opts := dstack.SNPOptions{Now: f.at.t, ReportData: rd, Policy: snp.Policy{DstackCompat: f.dstackCompat},
		Endorsement: func(r *snp.Report) (snp.Certificates, error) { return endorse(cmd.Context(), r) }}
	if f.snpVCEK != "" {
		c, err := readCert(f.snpVCEK)
		if err != nil {
			return err
		}
		opts.VCEK = c
		endorse = func(context.Context, *snp.Report) (snp.Certificates, error) { return snp.Certificates{VCEK: c}, nil }
	}
	// --image: the launch digest must also come out of the image (the
	// service takes no image with SEV-SNP evidence, so it is checked here).
	if f.acpiDir != "" {
		return &usageError{err: errors.New("--acpi-dir applies to TDX evidence only")}
	}
	if f.image != "" {
		d, err := measure.LoadSNPImage(f.image)
		if err != nil {
			return err
		}
		opts.Image = &d.Image
	}
	extra := []verifier.Option{verifier.WithSNPEndorsement(endorse), verifier.WithSNPCRLs(snpCRLs(src))}
	if _, err := dstack.VerifySNP(ev, opts); err != nil {
		return err
	}
	o, err := ap.verify(cmd.Context(), in, nil, nil, f.strict, now, extra...)
	if err != nil {
		return err
	}
	out.Result = o.Result
	out.Verified, out.Accepted = o.Result.Authentic, o.Result.Allow
	var verr error
	out.Verdict, out.line, verr = verdictOf(o)
	return withHints(verr, appraisalHints(o.Result, f.appraisal.policyFile == "" && f.appraisal.db == "")...)
}

func printDstackSNP(p *printer, r *dstack.Result) {
	p.kv(0, "TEE variant", r.TEEVariant)
	p.kv(0, "TCB status", r.TCBStatus)
	ai := r.AppInfo
	printAppInfo(p, ai)
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
	return parseSNPReportInput(b)
}

type measureSNPFlags struct {
	vmConfig, evidence, document, reference, expect string
	image, firmware, kernel, initrd, cmdline        string
	writeDocument                                   string
	vcpus                                           uint32
	vcpuType                                        string
	guestFeatures                                   uint64
}

type measureSNPOutput struct {
	MediaType   string             `json:"media_type"`
	Measurement string             `json:"measurement"`
	Inputs      *measure.SNPLaunch `json:"inputs"`
	// Source is where the inputs come from: "image", "vm_config" or
	// "measurement_document".
	Source string `json:"source"`
	// Firmware is the OVMF's SEV metadata when the inputs come from an
	// image.
	Firmware  *measure.SNPFirmware  `json:"firmware,omitempty"`
	Expected  string                `json:"expected,omitempty"`
	Match     *bool                 `json:"match,omitempty"`
	Reference string                `json:"reference,omitempty"`
	Differ    []string              `json:"differing_inputs,omitempty"`
	Diagnosis *measure.SNPDiagnosis `json:"diagnosis,omitempty"`
}

const measureSNPMediaType = "application/vnd.tdproof.snp-measurement.v1+json"

func (a *app) measureSNPCommand() *cobra.Command {
	f := &measureSNPFlags{}
	c := &cobra.Command{
		Use:   "snp (--image DIR | --firmware F --kernel F [--initrd F] [--cmdline S] | --vm-config FILE | --evidence FILE | --measurement-doc FILE) [flags]",
		Short: "Compute the SEV-SNP launch digest (MEASUREMENT) from an image or dstack's inputs",
		Long: `Compute the AMD SEV-SNP launch digest a guest reports as MEASUREMENT: the OVMF firmware
pages, the OVMF SEV metadata pages, the kernel hashes table (SHA-256 of the command line, initrd
and kernel) and one VMSA per vCPU for the vCPU type and SEV features.

The image inputs come from an image directory (--image: metadata.json's bios-sev, else bios,
kernel, initrd and cmdline), from explicit files (--firmware, --kernel, --initrd, --cmdline), or
from measurement.snp.cbor (--measurement-doc, or the sev_snp_measurement of a vm_config given
with --vm-config or of dstack SEV-SNP evidence given with --evidence). The kernel and initrd
are hashed while read. The vCPU count, QEMU vCPU type and SEV features come from --vcpus,
--vcpu-type and --guest-features, else from the vm_config (guest features default to 1).

--expect HEX (or the report's MEASUREMENT with --evidence) is compared with the result (exit 4
on a mismatch), and a mismatch is diagnosed: the inputs that differ from a reference and
whether restoring one alone reproduces MEASUREMENT, or the vCPU count, vCPU type or SEV features
that reproduce it. The reference is --reference (a known-good vm_config), else, when an image
is measured, the vm_config's or evidence's measurement.snp.cbor, else the image directory's
own measurement.snp.cbor. --write-document FILE writes measurement.snp.cbor for the image.`,
		Example: `  tdproof measure snp --image dstack-0.6.0/ --vcpus 2 --vcpu-type EPYC-v4
  tdproof measure snp --firmware ovmf-sev.fd --kernel bzImage --initrd initramfs.cpio.gz \
      --cmdline "console=ttyS0 ..." --vcpus 4 --vcpu-type EPYC-Genoa --format json
  tdproof measure snp --evidence attestation.json --image dstack-0.6.0/
  tdproof measure snp --evidence attestation.json --reference good-vm_config.json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runMeasureSNP(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.image, "image", "", "image `DIR` (metadata.json, firmware, kernel, initrd)")
	fl.StringVar(&f.firmware, "firmware", "", "AmdSev OVMF `FILE` (ovmf-sev.fd)")
	fl.StringVar(&f.firmware, "ovmf", "", "alias of --firmware")
	_ = fl.MarkHidden("ovmf")
	fl.StringVar(&f.kernel, "kernel", "", "kernel `FILE` (bzImage)")
	fl.StringVar(&f.initrd, "initrd", "", "initrd `FILE` (none: an empty initrd)")
	fl.StringVar(&f.cmdline, "cmdline", "", "kernel command `LINE` (QEMU's -append)")
	fl.StringVar(&f.vmConfig, "vm-config", "", "vm_config JSON `FILE` with sev_snp_measurement")
	fl.StringVar(&f.evidence, "evidence", "", "dstack SEV-SNP evidence `FILE`")
	fl.StringVar(&f.document, "measurement-doc", "", "measurement.snp.cbor `FILE`")
	fl.Uint32Var(&f.vcpus, "vcpus", 0, "vCPU `COUNT`")
	fl.StringVar(&f.vcpuType, "vcpu-type", "", "QEMU vCPU `TYPE` (EPYC-v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, …)")
	fl.StringVar(&f.vcpuType, "cpu-type", "", "alias of --vcpu-type")
	_ = fl.MarkHidden("cpu-type")
	fl.Uint64Var(&f.guestFeatures, "guest-features", 0, "SEV_FEATURES `VALUE` (default 1 without a vm_config)")
	fl.StringVar(&f.expect, "expect", "", "expected MEASUREMENT as `HEX`")
	fl.StringVar(&f.reference, "reference", "", "known-good vm_config `FILE`: name the inputs that differ")
	fl.StringVar(&f.writeDocument, "write-document", "", "write the image's measurement.snp.cbor to `FILE`")
	return c
}

func (a *app) snpLaunchFromVMConfig(what, file string) (*measure.SNPLaunch, error) {
	b, err := a.readInput(what, file)
	if err != nil {
		return nil, err
	}
	cfg, err := dstack.ParseVMConfig(b)
	if err != nil {
		return nil, err
	}
	l, err := dstack.SNPLaunchInputs(cfg)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, &usageError{err: fmt.Errorf("%s %s has no sev_snp_measurement", what, file)}
	}
	return l, nil
}

// snpImageInputs reads the image of --image or --firmware/--kernel/
// --initrd; nil without either. dir is the directory read, for its own
// measurement.snp.cbor.
func (a *app) snpImageInputs(f *measureSNPFlags) (img *measure.SNPImage, dir *measure.SNPImageDir, err error) {
	switch {
	case f.image != "" && (f.firmware != "" || f.kernel != "" || f.initrd != ""):
		return nil, nil, &usageError{err: errors.New("--image and --firmware/--kernel/--initrd are exclusive")}
	case f.image != "":
		if dir, err = measure.LoadSNPImage(f.image); err != nil {
			return nil, nil, err
		}
		if f.cmdline != "" {
			dir.Image.Cmdline = f.cmdline
		}
		return &dir.Image, dir, nil
	case f.firmware == "" && f.kernel == "" && f.initrd == "":
		return nil, nil, nil
	case f.firmware == "" || f.kernel == "":
		return nil, nil, &usageError{err: errors.New("--firmware and --kernel are both needed (--initrd and --cmdline are optional)")}
	}
	fw, err := a.readInput("firmware", f.firmware)
	if err != nil {
		return nil, nil, err
	}
	kernel, err := os.Open(f.kernel)
	if err != nil {
		return nil, nil, &usageError{err: err}
	}
	defer kernel.Close()
	var initrd io.Reader
	if f.initrd != "" {
		fi, err := os.Open(f.initrd)
		if err != nil {
			return nil, nil, &usageError{err: err}
		}
		defer fi.Close()
		initrd = fi
	}
	img, err = measure.NewSNPImage(fw, kernel, initrd, f.cmdline)
	return img, nil, err
}

func (a *app) runMeasureSNP(cmd *cobra.Command, f *measureSNPFlags) error {
	img, dir, err := a.snpImageInputs(f)
	if err != nil {
		return err
	}
	// The inputs of a vm_config, evidence or measurement document.
	var doc *measure.SNPLaunch
	expect := f.expect
	switch {
	case f.vmConfig != "":
		doc, err = a.snpLaunchFromVMConfig("vm_config", f.vmConfig)
	case f.evidence != "":
		var b []byte
		if b, err = a.readInput("evidence", f.evidence); err != nil {
			return err
		}
		ev, perr := dstack.ParseEvidence(b)
		if perr != nil {
			return perr
		}
		if ev.Attestation == nil || ev.Attestation.SNP == nil || ev.VMConfig == nil {
			return &usageError{err: errors.New("--evidence: not dstack SEV-SNP evidence with a vm_config")}
		}
		r, perr := snp.ParseReport(ev.Attestation.SNP.Report)
		if perr != nil {
			return perr
		}
		if expect == "" {
			expect = hex.EncodeToString(r.Measurement[:])
		}
		if doc, err = dstack.SNPLaunchInputs(ev.VMConfig); err == nil && doc == nil {
			err = &usageError{err: errors.New("--evidence: vm_config has no sev_snp_measurement")}
		}
	case f.document != "":
		var b []byte
		if b, err = a.readInput("measurement document", f.document); err != nil {
			return err
		}
		doc, err = measure.ParseSNPMeasurement(b)
	case img == nil:
		return &usageError{err: errors.New("give --image, --firmware and --kernel, --vm-config, --evidence or --measurement-doc")}
	}
	if err != nil {
		return err
	}
	// The VM configuration: flags, else the vm_config's.
	fl := cmd.Flags()
	vcpus, vcpuType, features := f.vcpus, f.vcpuType, f.guestFeatures
	if doc != nil && doc.VCPUType != "" {
		if !fl.Changed("vcpus") {
			vcpus = doc.VCPUs
		}
		if !fl.Changed("vcpu-type") && !fl.Changed("cpu-type") {
			vcpuType = doc.VCPUType
		}
		if !fl.Changed("guest-features") {
			features = doc.GuestFeatures
		}
	} else if !fl.Changed("guest-features") {
		features = 1
	}
	if vcpus == 0 || vcpuType == "" {
		return &usageError{err: errors.New("give --vcpus and --vcpu-type (or a vm_config that has them)")}
	}
	out := &measureSNPOutput{MediaType: measureSNPMediaType}
	var l, ref *measure.SNPLaunch
	switch {
	case img != nil:
		out.Source, out.Firmware = "image", img.Firmware
		if l, err = img.Launch(vcpus, vcpuType, features); err != nil {
			return err
		}
		if doc != nil {
			ref, out.Reference = doc, "vm_config"
			if f.document != "" {
				out.Reference = "measurement_document"
			}
			ref.VCPUs, ref.VCPUType, ref.GuestFeatures = vcpus, vcpuType, features
		} else if dir != nil {
			if ref, err = dir.PublishedLaunch(vcpus, vcpuType, features); err != nil {
				return err
			}
			if ref != nil {
				out.Reference = "image " + measure.SNPFile
			}
		}
	default:
		out.Source = "vm_config"
		if f.document != "" {
			out.Source = "measurement_document"
		}
		l = doc
		l.VCPUs, l.VCPUType, l.GuestFeatures = vcpus, vcpuType, features
	}
	if f.reference != "" {
		if ref, err = a.snpLaunchFromVMConfig("reference vm_config", f.reference); err != nil {
			return err
		}
		out.Reference = "reference vm_config"
	}
	d, err := l.Digest()
	if err != nil {
		return err
	}
	out.Measurement, out.Inputs = hex.EncodeToString(d[:]), l
	if f.writeDocument != "" {
		if img == nil {
			return &usageError{err: errors.New("--write-document needs an image (--image or --firmware and --kernel)")}
		}
		b, err := l.Document()
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.writeDocument, b, 0o644); err != nil {
			return err
		}
	}
	if ref != nil {
		out.Differ = nonNilStrings(measure.DiagnoseSNP(ref, l))
	}
	var mismatch error
	if expect != "" {
		var want [48]byte
		raw, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(expect), "0x"))
		if err != nil || len(raw) != len(want) {
			return &usageError{err: fmt.Errorf("--expect: not 48 bytes of hex: %q", expect)}
		}
		copy(want[:], raw)
		out.Expected = hex.EncodeToString(want[:])
		m := want == d
		out.Match = &m
		if !m {
			if out.Diagnosis, err = measure.DiagnoseSNPLaunch(want, l, ref); err != nil {
				return err
			}
			mismatch = fmt.Errorf("%w: SEV-SNP launch digest %s, expected %s; likely cause: %s", dstack.ErrOSImageHash, out.Measurement, out.Expected, out.Diagnosis)
		}
	}
	if outputFormat(cmd) == formatJSON {
		return errors.Join(mismatch, writeJSON(a.stdout, out))
	}
	p := &printer{w: a.stdout}
	p.kv(0, "MEASUREMENT", out.Measurement)
	if out.Match != nil {
		state := "matches"
		if !*out.Match {
			state = "DIFFERS from " + out.Expected
		}
		p.kv(0, "expected", state)
	}
	if out.Reference != "" {
		p.kv(0, "differing inputs", listOrNone(out.Differ)+" (vs the "+out.Reference+")")
	}
	if out.Diagnosis != nil {
		for _, c := range out.Diagnosis.Causes {
			p.kv(0, "likely cause", string(c.Input)+": "+c.Detail)
		}
		for _, n := range out.Diagnosis.Notes {
			p.kv(0, "note", n)
		}
	}
	p.kv(0, "source", out.Source)
	p.kv(0, "ovmf_hash", hex.EncodeToString(l.OVMFHash[:]))
	p.kv(0, "kernel_hash", hex.EncodeToString(l.KernelHash[:]))
	p.kv(0, "initrd_hash", hex.EncodeToString(l.InitrdHash[:]))
	p.kv(0, "cmdline", l.Cmdline)
	p.kv(0, "vcpus", fmt.Sprint(l.VCPUs))
	p.kv(0, "vcpu_type", l.VCPUType)
	p.kv(0, "guest_features", fmt.Sprintf("0x%x", l.GuestFeatures))
	p.kv(0, "hashes_table_gpa", fmt.Sprintf("0x%x", l.HashesTableGPA))
	p.kv(0, "reset_eip", fmt.Sprintf("0x%x", l.ResetEIP))
	p.kv(0, "ovmf_sections", fmt.Sprint(len(l.Sections)))
	return errors.Join(mismatch, p.err)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// snpSource is where SEV-SNP endorsement material (VCEK, ASK, AMD CRL)
// comes from, online or offline as for DCAP collateral: --collateral-dir
// alone (or with --offline) is an amdkds bundle, read as it is on every
// use; with --pccs-url or --amd-kds-url too it caches AMD KDS on disk;
// without it AMD KDS is asked directly. Online sources are kept in
// memory too (a CRL until its nextUpdate), so that a service does not
// ask KDS for every report.
func (s *sourceFlags) snpSource(fl *pflag.FlagSet, now func() time.Time) amdkds.Source {
	client := &amdkds.Client{BaseURL: s.amdKDSURL}
	online := !s.offline && (s.dir == "" || fl.Changed("pccs-url") || fl.Changed("amd-kds-url"))
	switch {
	case s.dir == "" && !online:
		return noSNPSource{}
	case s.dir != "" && !online:
		return amdkds.Bundle{Dir: s.dir}
	case s.dir != "":
		return &amdkds.Memory{Upstream: &amdkds.Cache{Dir: s.dir, Upstream: client, Now: now}, Now: now}
	default:
		return &amdkds.Memory{Upstream: client, Now: now}
	}
}

// noSNPSource is --offline without --collateral-dir: nothing is
// available.
type noSNPSource struct{}

var errNoSNPSource = fmt.Errorf("%w: --offline without --collateral-dir", amdkds.ErrUnavailable)

func (noSNPSource) CertChain(context.Context, snp.Product) ([]byte, error) {
	return nil, errNoSNPSource
}
func (noSNPSource) CRL(context.Context, snp.Product) ([]byte, error) { return nil, errNoSNPSource }
func (noSNPSource) VCEK(context.Context, snp.Product, [64]byte, snp.TCBVersion) ([]byte, error) {
	return nil, errNoSNPSource
}

// registerAMDKDS adds --amd-kds-url (commands that verify SEV-SNP
// evidence through the service's pipeline).
func (s *sourceFlags) registerAMDKDS(fl *pflag.FlagSet) {
	fl.StringVar(&s.amdKDSURL, "amd-kds-url", amdkds.DefaultBaseURL, "SEV-SNP: AMD KDS base `URL` for VCEKs and CRLs")
}

// snpEndorsement obtains the certificates of SEV-SNP evidence without a
// cert_chain from src.
func snpEndorsement(src amdkds.Source) func(ctx context.Context, r *snp.Report) (snp.Certificates, error) {
	return func(ctx context.Context, r *snp.Report) (snp.Certificates, error) {
		m, err := amdkds.Fetch(ctx, src, r, snp.ProductUnknown, false, nil)
		if err != nil {
			return snp.Certificates{}, err
		}
		return snp.Certificates{ASK: m.ASK, ARK: m.ARK, VCEK: m.VCEK}, nil
	}
}

// snpCRLs obtains the AMD CRLs for a report from src.
func snpCRLs(src amdkds.Source) func(ctx context.Context, r *snp.Report) ([][]byte, error) {
	return func(ctx context.Context, r *snp.Report) ([][]byte, error) {
		return amdkds.CRLs(ctx, src, r, snp.ProductUnknown)
	}
}

// snpOptions are the verifier options for SEV-SNP material from the
// source flags.
func (s *sourceFlags) snpOptions(fl *pflag.FlagSet, now func() time.Time) []verifier.Option {
	src := s.snpSource(fl, now)
	return []verifier.Option{verifier.WithSNPEndorsement(snpEndorsement(src)), verifier.WithSNPCRLs(snpCRLs(src))}
}
