package cli

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/verifier"
)

// dstackMediaType identifies the JSON output of dstack verify. Version 2:
// the verdict comes from the service's pipeline and "result" is the
// service's result (verifier.Result, as in POST /v1/verify; the dstack
// facts are its "dstack" member).
const dstackMediaType = "application/vnd.tdproof.dstack-verification.v2+json"

func (a *app) dstackCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "dstack",
		Short: "Verify dstack evidence",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return &usageError{err: errors.New("missing command: dstack verify")}
		},
	}
	c.AddCommand(a.dstackVerifyCommand(), a.dstackVerifyCertCommand(), a.dstackConnectCommand())
	return c
}

type dstackFlags struct {
	source                              sourceFlags
	appraisal                           appraisalFlags
	collateral, trustedRoot, reportData string
	at                                  timeValue
	strict                              bool
	allowDebug, allowSEAM, allowSvcTD   bool
	image, acpiDir                      string
	dstackCompat                        bool
	snpVCEK                             string
	tpmRoot, tpmIntermediate            string
	crl                                 crlFlags
}

type dstackOutput struct {
	MediaType string `json:"media_type"`
	// Verdict is OK, WARNING or REJECTED ("" without a verdict: Error).
	Verdict string `json:"verdict"`
	// Verified: the evidence is authentic; Accepted: the policy allows it.
	Verified       bool             `json:"verified"`
	Accepted       bool             `json:"accepted"`
	IntelRoot      bool             `json:"intel_root"`
	TrustedRootSHA string           `json:"trusted_root_sha256"`
	Result         *verifier.Result `json:"result"`
	Error          *errorJSON       `json:"error,omitempty"`
	line           string
}

// rules returns the built-in policy changed by dstack verify's switches.
func (f *dstackFlags) rules(fl *pflag.FlagSet) (policy.Rules, []string) {
	var r policy.Rules
	var changed []string
	if fl.Changed("allow-debug-unsafe") {
		r.AllowDebugUnsafe, changed = f.allowDebug, append(changed, "allow-debug-unsafe")
	}
	if fl.Changed("allow-service-td-unsafe") {
		r.AllowServiceTDUnsafe, changed = f.allowSvcTD, append(changed, "allow-service-td-unsafe")
	}
	return r, changed
}

func (a *app) dstackVerifyCommand() *cobra.Command {
	f := &dstackFlags{}
	c := &cobra.Command{
		Use:   "verify FILE [--collateral PATH | --pccs-url URL | --collateral-dir DIR]",
		Short: "Verify dstack evidence: quote, event log and app identity",
		Long: `Verify dstack evidence end to end: the quote with DCAP (Intel semantics, against the
given collateral), RTMR3 against the replay of the runtime events (digests recomputed from
name and payload), RTMR0-2 against the boot events when the log carries them, report-data
bindings, and the app identity (app-id, compose hash, instance id, key provider) read only
from events before the first system-ready. The result is then appraised exactly as
tdproof serve appraises it (the same pipeline and, by default, the same built-in policy:
UpToDate, collateral not expired, no DEBUG TD, no service TD, no RTMR3 event after
system-ready, every reference value matching; MRTD and RTMR0-2 pinned for an affirming
result). A non-Intel TDX module (MRSIGNERSEAM) is rejected (exit 5) unless allowed.

The first line of output is the verdict: OK (affirming; exit 0), WARNING (allowed but not
affirming, e.g. nothing pins the TD's code; exit 0) or REJECTED (not authentic, exit 4, or
denied by the policy, exit 5) with the reason. --policy, --policy-id, --refvalues and --db
choose the policy and reference values as for quote verify.

OS image: with --image DIR (a dstack image directory: metadata.json, the firmware, kernel
and initrd, and sha256sum.txt, checked when present) MRTD and RTMR0-2 are recomputed for
vm_config's memory_size, cpu_count and qemu_version and compared with the quote; the
image's os_image_hash must equal vm_config's. Without --image, evidence whose vm_config
carries tdx_measurement (dstack's lite variant) is checked automatically: the checksum
file must hash to os_image_hash and list the measurement document, from which the
registers are recomputed. ACPI digests come from the event log (cpu_count and the device
topology are then not verified) or, with --acpi-dir, from the VM's fw_cfg ACPI tables. A
register that differs is not authentic (exit 4): the TD did not boot the claimed image.
For SEV-SNP evidence, --image recomputes the launch digest from the image (bios-sev, else
bios; kernel, initrd, cmdline) for vm_config's vCPU configuration and requires MEASUREMENT;
a mismatch names the inputs that differ (as "measure snp" does).

FILE is a GetQuote JSON ({"quote", "event_log", "report_data", "vm_config"}), an
{"attestation": hex} object, raw VersionedAttestation bytes (SCALE V0 or msgpack V1), or a
dstack RA-TLS certificate (PEM or DER). Collateral comes from --collateral (what quote
verify takes) or, without it, from the configured source: --pccs-url (default Intel PCS),
--collateral-dir (an offline bundle or cache) and --offline, as for quote verify.`,
		Example: `  tdproof dstack verify getquote.json --collateral collateral.json
  tdproof dstack verify getquote.json --collateral collateral.json --image dstack-0.5.3/
  tdproof dstack verify cert.pem --collateral pcs/ --format json
  tdproof dstack verify getquote.json --collateral collateral.json --refvalues refvalues.json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runDstackVerify(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.collateral, "collateral", "", "collateral `PATH` (as for quote verify); without it the source flags apply")
	f.source.register(fl, "collateral bundle or cache `DIR` (alone: offline; with --pccs-url: a cache in front of it)", true)
	f.source.registerAMDKDS(fl)
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trust the certificate in `FILE` instead of the Intel SGX Root CA")
	fl.BoolVar(&f.strict, "strict", false, "fail on expired or not yet valid collateral or certificates")
	fl.StringVar(&f.reportData, "report-data", "", "expected REPORTDATA as `HEX` (up to 64 bytes, zero-padded), e.g. your nonce (rule report_data)")
	fl.BoolVar(&f.allowDebug, "allow-debug-unsafe", false, "accept DEBUG TDs (the host can read their memory)")
	fl.BoolVar(&f.allowSEAM, "allow-mrsignerseam-unsafe", false, "accept a TDX module not signed by Intel (non-zero MRSIGNERSEAM)")
	fl.BoolVar(&f.allowSvcTD, "allow-service-td-unsafe", false, "accept a non-zero MRSERVICETD")
	fl.StringVar(&f.image, "image", "", "dstack OS image `DIR`: recompute MRTD and RTMR0-2 from it for vm_config's machine and compare")
	fl.StringVar(&f.acpiDir, "acpi-dir", "", "`DIR` with the VM's fw_cfg ACPI blobs (tables, optionally rsdp and table-loader): verify the ACPI tables instead of taking their digests from the event log")
	f.appraisal.register(fl)
	fl.BoolVar(&f.dstackCompat, "dstack-compat", false, "SEV-SNP evidence: dstack's acceptance (report versions 2 and 3, VCEK only)")
	fl.StringVar(&f.snpVCEK, "vcek", "", "SEV-SNP evidence without a cert_chain: the VCEK certificate `FILE`")
	fl.StringVar(&f.tpmRoot, "tpm-trusted-root", "", "GCP TDX evidence: trust the certificate in `FILE` instead of Google's EK/AK CA Root for the vTPM quote")
	fl.StringVar(&f.tpmIntermediate, "tpm-intermediate", "", "GCP TDX evidence: the AK certificate's intermediate `FILE` (replaces Google's pinned one)")
	f.crl.register(fl)
	commandLineOnly(fl, "trusted-root", "allow-debug-unsafe", "allow-mrsignerseam-unsafe", "allow-service-td-unsafe", "tpm-trusted-root", "tpm-intermediate")
	return c
}

func (a *app) runDstackVerify(cmd *cobra.Command, file string, f *dstackFlags) error {
	var root *x509.Certificate
	if f.trustedRoot != "" {
		r, err := a.readTrustedRoot(f.trustedRoot)
		if err != nil {
			return err
		}
		root = r
	}
	out := &dstackOutput{MediaType: dstackMediaType}
	sha := dcap.IntelRootSHA256
	if root != nil {
		sum := sha256.Sum256(root.Raw)
		sha = hex.EncodeToString(sum[:])
	}
	out.TrustedRootSHA, out.IntelRoot = sha, sha == dcap.IntelRootSHA256
	err := a.dstackVerifyInto(cmd, out, file, f, root)
	if errors.As(err, new(*usageError)) {
		return err
	}
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		if werr := writeJSON(a.stdout, out); werr != nil {
			return errors.Join(err, werr)
		}
	} else if werr := printDstack(a.stdout, out); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

func (a *app) dstackVerifyInto(cmd *cobra.Command, out *dstackOutput, file string, f *dstackFlags, root *x509.Certificate) error {
	rules, changed := f.rules(cmd.Flags())
	ap, err := a.openAppraisal(cmd.Context(), &f.appraisal, rules, changed)
	if err != nil {
		return err
	}
	defer ap.close()
	data, err := a.readInput("evidence", file)
	if err != nil {
		return err
	}
	return a.dstackVerifyData(cmd, out, data, f, root, ap)
}

// dstackVerifyData verifies evidence bytes (dstack verify, verify-cert,
// connect).
func (a *app) dstackVerifyData(cmd *cobra.Command, out *dstackOutput, data []byte, f *dstackFlags, root *x509.Certificate, ap *appraisal) error {
	ev, err := dstack.ParseEvidence(data)
	if err != nil {
		return err
	}
	in := verifier.Evidence{Dstack: data}
	if f.reportData != "" {
		rd, err := hex.DecodeString(strings.TrimPrefix(f.reportData, "0x"))
		if err != nil || len(rd) > 64 {
			return &usageError{err: fmt.Errorf("--report-data: want up to 64 bytes of hex")}
		}
		// Zero-padded: the whole REPORTDATA must match.
		in.Nonce = make([]byte, 64)
		copy(in.Nonce, rd)
	}
	if ev.Attestation != nil && ev.Attestation.SNP != nil {
		var rd *[64]byte
		if in.Nonce != nil {
			rd = (*[64]byte)(in.Nonce)
		}
		return a.dstackVerifySNP(cmd, out, ev, in, f, rd, ap)
	}
	if at := ev.Attestation; at != nil && (at.Platform == dstack.PlatformNitroEnclave || at.Platform == dstack.PlatformAWSNitroTPM) {
		return a.dstackVerifyNitro(cmd, out, in, f, root, ap)
	}
	inputs := &verifier.DstackInputs{AllowMRSignerSEAMUnsafe: f.allowSEAM}
	if f.image != "" {
		d, err := measure.LoadImage(f.image)
		if err != nil {
			return measureErr(err)
		}
		inputs.Image = &d.Image
		if d.ChecksumFile != nil {
			h, err := d.CheckFiles()
			if err != nil {
				return measureErr(err)
			}
			inputs.ImageOSHash = h[:]
		}
	}
	if f.acpiDir != "" {
		if inputs.ACPI, err = readACPIDir(f.acpiDir); err != nil {
			return err
		}
	}
	if inputs.Image != nil || inputs.ACPI != nil || inputs.AllowMRSignerSEAMUnsafe {
		in.DstackInputs = inputs
	}
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	c, _, err := a.quoteCollateral(cmd.Context(), cmd.Flags(), f.collateral, &f.source, ev.Quote, root, now)
	if err != nil {
		return err
	}
	var extra []verifier.Option
	if f.tpmRoot != "" || f.tpmIntermediate != "" {
		// GCP TDX: the vTPM quote's AK chain (tests, another CA).
		tr, err := a.readTrustedRoot(f.tpmRoot)
		if err != nil {
			return err
		}
		ti, err := a.readTrustedRoot(f.tpmIntermediate)
		if err != nil {
			return err
		}
		var inter []*x509.Certificate
		if ti != nil {
			inter = append(inter, ti)
		}
		extra = append(extra, verifier.WithGCPTPMRoots(tr, inter))
	}
	extra = append(extra, f.crl.verifierOptions(f.at.t)...)
	o, err := ap.verify(cmd.Context(), in, c, root, f.strict, now, extra...)
	if err != nil {
		return err
	}
	out.Result = o.Result
	out.Verified, out.Accepted = o.Result.Authentic, o.Result.Allow
	out.Verdict, out.line, err = verdictOf(o)
	return withHints(err, appraisalHints(o.Result, f.appraisal.policyFile == "" && f.appraisal.db == "")...)
}

func printDstack(w io.Writer, out *dstackOutput) error {
	p := &printer{w: w}
	if out.Verdict != "" {
		p.printf("%s: %s\n", out.Verdict, out.line)
	}
	if !out.IntelRoot {
		p.printf("%s\n", nonIntelWarning(out.TrustedRootSHA))
	}
	if out.Result == nil {
		return p.err
	}
	r := out.Result.Dstack
	if r == nil {
		printAppraisal(p, out.Result)
		return p.err
	}
	if r.SNP != nil {
		printDstackSNP(p, r)
		printAppraisal(p, out.Result)
		return p.err
	}
	if r.Nitro != nil {
		p.kv(0, "TEE variant", r.TEEVariant)
		printDstackNitro(p, r)
		printAppraisal(p, out.Result)
		return p.err
	}
	p.kv(0, "quote", "verified ("+r.TCBStatus+"), event log verified")
	p.kv(0, "TCB status", r.TCBStatus)
	p.kv(0, "advisory IDs", listOrNone(r.AdvisoryIDs))
	printAppInfo(p, r.AppInfo)
	p.kv(0, "os image", osImageLine(r))
	for i, rt := range r.RTMRs {
		state := "not replayed (no boot events)"
		if rt.Verified {
			state = fmt.Sprintf("replayed from %d events, matches", rt.Events)
		}
		p.kv(0, fmt.Sprintf("RTMR%d", i), hex.EncodeToString(rt.Quoted)+"  "+state)
	}
	if r.Identity != nil && len(r.Identity.Ignored) > 0 {
		p.kv(0, "ignored for identity", strings.Join(r.Identity.Ignored, ", ")+" (after system-ready)")
	}
	p.kv(0, "report data checks", listOrNone(r.ReportDataChecks))
	printAppraisal(p, out.Result)
	return p.err
}

// printAppInfo prints the identity of a dstack result.
func printAppInfo(p *printer, ai dstack.AppInfo) {
	p.kv(0, "app id", hex.EncodeToString(ai.AppID))
	p.kv(0, "compose hash", hex.EncodeToString(ai.ComposeHash))
	p.kv(0, "instance id", hex.EncodeToString(ai.InstanceID))
	p.kv(0, "device id", hex.EncodeToString(ai.DeviceID))
	p.kv(0, "key provider", string(ai.KeyProviderInfo))
	p.kv(0, "mr_system", hex.EncodeToString(ai.MRSystem))
	p.kv(0, "mr_aggregated", hex.EncodeToString(ai.MRAggregated))
}

// osImageLine describes what was verified of the OS image.
func osImageLine(r *dstack.Result) string {
	h := hex.EncodeToString(r.AppInfo.OSImageHash)
	if h == "" {
		h = "(none)"
	}
	m := r.Measurement
	if m == nil && r.OSImageHashVerified && r.GCP != nil {
		return h + " verified (gcp_measurement: vTPM PCR0 an accepted firmware, UKI in PCR2)"
	}
	if m == nil {
		return h + " (not verified: no --image and no tdx_measurement in vm_config)"
	}
	acpi := "ACPI tables verified"
	switch {
	case m.ACPISource == dstack.ACPIFromEventLog && m.CPUCountVerified:
		acpi = "ACPI digests taken from the event log, cpu_count verified by the table loader's MADT size"
	case m.ACPISource == dstack.ACPIFromEventLog:
		acpi = "ACPI digests taken from the event log, cpu_count not verified"
	}
	state := "verified"
	if !r.OSImageHashVerified {
		state = "not verified (the image has no sha256sum.txt)"
	}
	return fmt.Sprintf("%s %s; MRTD, RTMR0-2 recomputed (%s mode, %s) and match", h, state, m.Mode, acpi)
}
