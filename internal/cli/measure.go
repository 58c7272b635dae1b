package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
)

const measureExitCodes = `  0  computed (diagnose: every register matches)
  1  internal error
  2  usage, or an input file cannot be read
  3  malformed or unsupported input (firmware without TDX metadata, PE image, lite document,
     event log, image files that do not match sha256sum.txt, RTMR0 layout other than pre202505)
  5  diagnose: the evidence does not match the reference values`

// measureImageFlags select the image: a directory or explicit files.
type measureImageFlags struct {
	dir                       string
	firmware, kernel, initrd  string
	cmdline                   string
	acpiDir, acpiLog, fwDigLg string
}

func (f *measureImageFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.dir, "image", "", "dstack image `DIR` with metadata.json (and sha256sum.txt, checked when present)")
	fl.StringVar(&f.firmware, "firmware", "", "TDVF firmware `FILE` (ovmf.fd), instead of --image")
	fl.StringVar(&f.kernel, "kernel", "", "kernel `FILE` (bzImage), instead of --image")
	fl.StringVar(&f.initrd, "initrd", "", "initrd `FILE`, instead of --image")
	fl.StringVar(&f.cmdline, "cmdline", "", "kernel command line `STRING` as in metadata.json (\" initrd=initrd\" is appended), instead of --image")
	fl.StringVar(&f.acpiDir, "acpi-dir", "", "`DIR` with the fw_cfg ACPI blobs: tables, and optionally rsdp and table-loader (synthesised otherwise)")
	fl.StringVar(&f.acpiLog, "acpi-from-eventlog", "", "take the three ACPI digests from the event log in `FILE` (JSON, GetQuote response or binary CCEL); the ACPI tables are then not verified")
	fl.StringVar(&f.fwDigLg, "firmware-digests-from-eventlog", "", "take the CFV and Boot0000 digests from the event log in `FILE` instead of the dstack OVMF constants")
}

// loadedImage is an image read from disk.
type loadedImage struct {
	img      *measure.Image
	dir      *measure.ImageDir // nil for explicit files
	paths    [3]string
	osHash   *[32]byte
	variant  string
	metadata *measure.Metadata
}

func (f *measureImageFlags) load(requireImage bool) (*loadedImage, error) {
	explicit := f.firmware != "" || f.kernel != "" || f.initrd != "" || f.cmdline != ""
	switch {
	case f.dir != "" && explicit:
		return nil, &usageError{err: errors.New("--image and --firmware/--kernel/--initrd/--cmdline exclude each other")}
	case f.dir == "" && !explicit:
		if !requireImage {
			return nil, nil
		}
		return nil, &usageError{err: errors.New("missing image: --image DIR, or --firmware, --kernel, --initrd and --cmdline")}
	case f.dir == "" && (f.firmware == "" || f.kernel == "" || f.initrd == ""):
		return nil, &usageError{err: errors.New("--firmware, --kernel and --initrd are all required without --image")}
	}
	if f.dir != "" {
		d, err := measure.LoadImage(f.dir)
		if err != nil {
			return nil, measureErr(err)
		}
		l := &loadedImage{img: &d.Image, dir: d, variant: d.Metadata.OVMFVariant, metadata: d.Metadata,
			paths: [3]string{filepath.Join(f.dir, d.Metadata.Bios), filepath.Join(f.dir, d.Metadata.Kernel), filepath.Join(f.dir, d.Metadata.Initrd)}}
		if d.ChecksumFile != nil {
			h, err := d.CheckFiles()
			if err != nil {
				return nil, measureErr(err)
			}
			l.osHash = &h
		}
		return l, nil
	}
	l := &loadedImage{img: &measure.Image{Cmdline: f.cmdline}, paths: [3]string{f.firmware, f.kernel, f.initrd}}
	var err error
	for i, dst := range []*[]byte{&l.img.Firmware, &l.img.Kernel} {
		if *dst, err = readImageFile([]string{"firmware", "kernel"}[i], l.paths[i]); err != nil {
			return nil, err
		}
	}
	// The initrd is hashed while read (SHA-384 is all the measurements
	// need), never held whole.
	if l.img.InitrdDigests, err = hashImageFile("initrd", l.paths[2]); err != nil {
		return nil, err
	}
	return l, nil
}

// measureDigestOptions reads --acpi-dir, --acpi-from-eventlog and
// --firmware-digests-from-eventlog.
func (a *app) measureDigestOptions(f *measureImageFlags) (*measure.ACPIDigests, *measure.FirmwareDigests, error) {
	if f.acpiDir != "" && f.acpiLog != "" {
		return nil, nil, &usageError{err: errors.New("--acpi-dir and --acpi-from-eventlog exclude each other")}
	}
	var acpi *measure.ACPIDigests
	var fw *measure.FirmwareDigests
	var err error
	if f.acpiDir != "" {
		if acpi, err = readACPIDir(f.acpiDir); err != nil {
			return nil, nil, err
		}
	}
	if f.acpiLog != "" {
		events, err := a.readMeasureEventLog(f.acpiLog)
		if err != nil {
			return nil, nil, err
		}
		if acpi, err = measure.ACPIFromEventLog(events); err != nil {
			return nil, nil, measureErr(err)
		}
	}
	if f.fwDigLg != "" {
		events, err := a.readMeasureEventLog(f.fwDigLg)
		if err != nil {
			return nil, nil, err
		}
		if fw, err = measure.FirmwareFromEventLog(events); err != nil {
			return nil, nil, measureErr(err)
		}
	}
	return acpi, fw, nil
}

func (a *app) measureCommand() *cobra.Command {
	var img measureImageFlags
	var mach tdMachineFlags
	var lint bool
	var snpf measureSNPFlags
	var platform string
	c := &cobra.Command{
		Use:   "measure (--image DIR | --firmware FILE --kernel FILE --initrd FILE --cmdline STRING) --memory SIZE [flags]",
		Short: "Compute reference values (MRTD, RTMR0-2) of a TDX guest image",
		Long: `Compute the MRTD and RTMR0-RTMR2 a TD reports when QEMU boots the image (TDVF firmware,
kernel, initrd, command line) with the given RAM size and QEMU version, each register with
its expected event list, as dstack-mr does (docs/reference-values.md).

RTMR0 also needs the three ACPI digests: --acpi-dir gives the fw_cfg blobs (tables, and
rsdp and table-loader, which are synthesised for QEMU's q35 TDX table set when absent);
--acpi-from-eventlog takes the digests from a reference event log, which leaves the ACPI
tables' contents unverified; the vCPU count is still bound, through the MADT size the
measured table loader describes. Without either, RTMR0 is reported as
incomplete. Only the pre202505 OVMF RTMR0 layout (13 events) is modelled.

--lint checks the measured command line and metadata.json against the hardened-CVM
baseline; findings are warnings with stable ids.

"measure lite" publishes the lite measurement document; "measure diagnose" compares
evidence with the reference values event by event.

--platform snp computes the AMD SEV-SNP launch digest of the image instead, for --cpus
vCPUs of --vcpu-type with --guest-features, as "measure snp" does (which also takes
measurement.snp.cbor, a vm_config or evidence, and diagnoses a mismatch).`,
		Example: `  tdproof measure --image dstack-0.6.0/ --cpus 2 --memory 2G --qemu-version 8.2.2 \
      --acpi-from-eventlog getquote.json
  tdproof measure --firmware ovmf.fd --kernel bzImage --initrd initramfs.cpio.gz \
      --cmdline "console=ttyS0 ..." --memory 4G --acpi-dir acpi/ --format json
  tdproof measure --image dstack-0.6.0/ --memory 4G --lint`,
		Annotations: map[string]string{"exit_codes": measureExitCodes},
		Args:        unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			switch platform {
			case "snp":
				return a.runMeasurePlatformSNP(cmd, &img, &mach, &snpf)
			case "tdx":
				return a.runMeasure(cmd, &img, &mach, lint)
			}
			return &usageError{err: fmt.Errorf("--platform %q: want tdx or snp", platform)}
		},
	}
	img.register(c.Flags())
	mach.register(c.Flags())
	c.Flags().BoolVar(&lint, "lint", false, "also check the image against the hardened-CVM baseline")
	c.Flags().StringVar(&platform, "platform", "tdx", "`PLATFORM`: tdx, or snp for the AMD SEV-SNP launch digest")
	c.Flags().StringVar(&snpf.vcpuType, "vcpu-type", "", "with --platform snp: QEMU vCPU `TYPE` (EPYC-v4, EPYC-Milan, EPYC-Genoa, …)")
	c.Flags().Uint64Var(&snpf.guestFeatures, "guest-features", 1, "with --platform snp: SEV_FEATURES `VALUE`")
	c.AddCommand(a.measureLiteCommand(), a.measureDiagnoseCommand(), a.measureSNPCommand())
	return c
}

func (a *app) runMeasure(cmd *cobra.Command, f *measureImageFlags, mf *tdMachineFlags, lint bool) error {
	l, err := f.load(true)
	if err != nil {
		return err
	}
	if !cmd.Flags().Changed("memory") {
		return &usageError{err: errors.New("missing --memory SIZE")}
	}
	acpi, fw, err := a.measureDigestOptions(f)
	if err != nil {
		return err
	}
	var m measure.Machine
	mf.apply(cmd.Flags(), &m)
	res, err := measure.MeasureImage(l.img, m, measure.Options{ACPI: acpi, Firmware: fw, OVMFVariant: l.variant, AllPageOrders: true})
	if err != nil {
		return measureErr(err)
	}
	out := newMeasureOutput(l, m, res, acpi)
	if lint {
		findings := measure.Lint(res.KernelCmdline, l.metadata)
		if findings == nil {
			findings = []measure.Finding{}
		}
		out.Lint = &findings
	}
	if outputFormat(cmd) == formatJSON {
		return writeJSON(a.stdout, out)
	}
	return printMeasure(a.stdout, out)
}

func (a *app) readMeasureEventLog(path string) ([]eventlog.Event, error) {
	b, err := a.readInput("event log", path)
	if err != nil {
		return nil, err
	}
	events, err := parseMeasureEventLog(b)
	if err != nil {
		return nil, measureErr(err)
	}
	return events, nil
}

func (a *app) measureLiteCommand() *cobra.Command {
	var dir, out string
	c := &cobra.Command{
		Use:   "lite --image DIR [--out DIR]",
		Short: "Publish the lite measurement document (measurement.tdx.cbor, sha256sum.txt)",
		Long: `Compute measurement.tdx.cbor (version 3: both MRTD candidates, the TD HOB witness, the
kernel digest at 2.75 GiB, the command line and initrd digests) for a dstack image directory
of version 0.6.0 or later, and write it with the sha256sum.txt that lists it. SHA-256 of that
sha256sum.txt is the image's os_image_hash, which a verifier allowlists; a vm_config in lite
mode carries both files as tdx_measurement.

Files are written to --out (default: the image directory), replacing existing ones.`,
		Example:     `  tdproof measure lite --image dstack-0.6.0/ --out publish/`,
		Annotations: map[string]string{"exit_codes": measureExitCodes},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			if dir == "" {
				return &usageError{err: errors.New("missing --image DIR")}
			}
			if out == "" {
				out = dir
			}
			d, err := measure.LoadImage(dir, measure.WithInitrdSHA256())
			if err != nil {
				return measureErr(err)
			}
			doc, sums, hash, err := d.PublishLite()
			if err != nil {
				return measureErr(err)
			}
			lite, err := measure.ParseLiteMeasurement(doc)
			if err != nil {
				return err
			}
			res := newMeasureLiteOutput(lite, hash, filepath.Join(out, measure.LiteFile), filepath.Join(out, measure.ChecksumFile))
			for _, w := range []struct {
				path string
				b    []byte
			}{{res.Files.Document, doc}, {res.Files.ChecksumFile, sums}} {
				if err := os.WriteFile(w.path, w.b, 0o644); err != nil {
					return &usageError{err: fmt.Errorf("writing %w", err)}
				}
			}
			if outputFormat(cmd) == formatJSON {
				return writeJSON(a.stdout, res)
			}
			return printLite(a.stdout, res)
		},
	}
	c.Flags().StringVar(&dir, "image", "", "dstack image `DIR` (version 0.6.0 or later)")
	c.Flags().StringVar(&out, "out", "", "output `DIR` (default: the image directory)")
	return c
}

func (a *app) measureDiagnoseCommand() *cobra.Command {
	var img measureImageFlags
	var mach tdMachineFlags
	var evidence string
	var lite bool
	c := &cobra.Command{
		Use:   "diagnose --evidence FILE (--image DIR | --lite) [flags]",
		Short: "Compare evidence with the reference values, event by event",
		Long: `Compare a TD's evidence (a dstack GetQuote response: quote, event log, vm_config) with the
reference values, and show per register each expected event beside the event log's, marked
match, mismatch, missing or extra, with the likely cause: RAM, vCPUs, QEMU version (MRTD page
order), firmware, kernel, command line, initrd or ACPI tables.

With --image DIR (or explicit --firmware/--kernel/--initrd/--cmdline) the expectation comes
from the image; with --lite (or "lite" as argument, the default when vm_config has a
tdx_measurement) from vm_config.tdx_measurement, whose checksum file and document are first
checked against os_image_hash. The TD configuration comes from vm_config; --cpus, --memory,
--qemu-version and --qemu-single-pass-add-pages override it. ACPI digests come from the event
log unless --acpi-dir is given.

The quote's signature is not checked here: use "tdproof quote verify" for that.`,
		Example: `  tdproof measure diagnose --evidence getquote.json lite
  tdproof measure diagnose --evidence getquote.json --image dstack-0.6.0/ --format json`,
		Annotations: map[string]string{"exit_codes": measureExitCodes},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] == "lite" {
				lite = true
				return nil
			}
			if len(args) > 0 {
				return &usageError{err: fmt.Errorf("unexpected argument %q (only \"lite\" is accepted)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return a.runDiagnose(cmd, evidence, lite, &img, &mach)
		},
	}
	img.register(c.Flags())
	mach.register(c.Flags())
	c.Flags().StringVar(&evidence, "evidence", "", "evidence `FILE`: dstack GetQuote response JSON (- reads stdin)")
	c.Flags().BoolVar(&lite, "lite", false, "take the expectation from vm_config.tdx_measurement")
	return c
}

func (a *app) runDiagnose(cmd *cobra.Command, evidencePath string, lite bool, f *measureImageFlags, mf *tdMachineFlags) error {
	if evidencePath == "" {
		return &usageError{err: errors.New("missing --evidence FILE")}
	}
	if f.acpiLog != "" {
		return &usageError{err: errors.New("diagnose takes the ACPI digests from the evidence's event log; --acpi-from-eventlog does not apply")}
	}
	l, err := f.load(false)
	if err != nil {
		return err
	}
	if l != nil && lite {
		return &usageError{err: errors.New("--lite and an image exclude each other")}
	}
	b, err := a.readInput("evidence", evidencePath)
	if err != nil {
		return err
	}
	ev, err := parseMeasureEvidence(b)
	if err != nil {
		return err
	}
	var m measure.Machine
	if ev.vm != nil {
		m = ev.vm.machine()
	}
	mf.apply(cmd.Flags(), &m)
	if m.MemorySize == 0 {
		return &usageError{err: errors.New("the evidence has no vm_config: give --memory SIZE (and --cpus, --qemu-version)")}
	}
	if l == nil && (ev.vm == nil || ev.vm.TDXMeasurement == nil) {
		return &usageError{err: errors.New("no expectation: give --image DIR, or evidence whose vm_config has a tdx_measurement")}
	}
	out := &measureDiagnoseOutput{MediaType: DiagnoseMediaType, QuoteVerified: false, Machine: newMeasureMachineJSON(m)}
	var d *measure.Diagnosis
	if l == nil {
		out.Mode = "lite"
		h, err := hex.DecodeString(ev.vm.OSImageHash)
		if err != nil {
			return fmt.Errorf("%w: vm_config os_image_hash: %w", errMalformedInput, err)
		}
		out.OSImageHash = ev.vm.OSImageHash
		if d, err = measure.DiagnoseLite(h, ev.vm.TDXMeasurement.ChecksumFile, ev.vm.TDXMeasurement.Measurement, m, ev.evidence()); err != nil {
			return measureErr(err)
		}
		out.ACPISource = measure.SourceEventLog
	} else {
		out.Mode = "image"
		acpi, fw, err := a.measureDigestOptions(f)
		if err != nil {
			return err
		}
		out.ACPISource = measure.SourceEventLog
		if acpi != nil {
			out.ACPISource = acpi.Source
		}
		if l.osHash != nil {
			out.OSImageHash = hex.EncodeToString(l.osHash[:])
			if ev.vm != nil && ev.vm.OSImageHash != "" && ev.vm.OSImageHash != out.OSImageHash {
				out.Notes = append(out.Notes, fmt.Sprintf("vm_config os_image_hash %s is not this image's %s", ev.vm.OSImageHash, out.OSImageHash))
			}
		}
		if d, err = measure.DiagnoseImage(l.img, m, ev.evidence(), measure.Options{ACPI: acpi, Firmware: fw, OVMFVariant: l.variant}); err != nil {
			return measureErr(err)
		}
	}
	out.fill(d)
	if outputFormat(cmd) == formatJSON {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else if err := printDiagnose(a.stdout, out); err != nil {
		return err
	}
	if !d.Match {
		return &measureMismatchError{msg: "the evidence does not match the reference values: " + diagnosisSummary(d)}
	}
	return nil
}

// errMeasurementMismatch: diagnose found differences between the evidence
// and the reference values (exit 5, JSON code "measurement_mismatch").
var errMeasurementMismatch = errors.New("measurement mismatch")

// measureMismatchError is a diagnosis that found differences.
type measureMismatchError struct{ msg string }

func (e *measureMismatchError) Error() string { return e.msg }
func (e *measureMismatchError) Unwrap() error { return errMeasurementMismatch }

func diagnosisSummary(d *measure.Diagnosis) string {
	if len(d.Causes) == 0 {
		return "no cause found"
	}
	c := d.Causes[0]
	s := string(c.Input) + ": " + c.Detail
	if n := len(d.Causes) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more)", n)
	}
	return s
}

func measureSHA256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
