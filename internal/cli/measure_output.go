package cli

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
)

// JSON schemas of the measure commands.
const (
	MeasureMediaType  = "application/vnd.tdproof.measure.v1+json"
	LiteMediaType     = "application/vnd.tdproof.measure-lite.v1+json"
	DiagnoseMediaType = "application/vnd.tdproof.measure-diagnosis.v1+json"
)

// measureFileJSON describes an input file. The initrd is hashed while it
// is read, with SHA-384 (which RTMR2 measures); its SHA-256 is given only
// when it was computed to check a sha256sum.txt.
type measureFileJSON struct {
	Path   string `json:"path"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	SHA384 string `json:"sha384,omitempty"`
}

type measureMachineJSON struct {
	CPUs                   int    `json:"cpus,omitempty"`
	MemorySize             uint64 `json:"memory_size"`
	QEMUVersion            string `json:"qemu_version"`
	QEMUSinglePassAddPages *bool  `json:"qemu_single_pass_add_pages,omitempty"`
}

func newMeasureMachineJSON(m measure.Machine) measureMachineJSON {
	return measureMachineJSON{CPUs: m.CPUs, MemorySize: m.MemorySize, QEMUVersion: qemuVersionOrDefault(m.QEMUVersion), QEMUSinglePassAddPages: m.QEMUSinglePassAddPages}
}

func qemuVersionOrDefault(v string) string {
	if v == "" {
		return measure.DefaultQEMUVersion
	}
	return v
}

type measureEventJSON struct {
	Index       int             `json:"index"`
	Type        uint32          `json:"type"`
	TypeName    string          `json:"type_name"`
	Digest      string          `json:"digest"`
	Description string          `json:"description"`
	DependsOn   []measure.Input `json:"depends_on"`
	Source      string          `json:"source"`
}

func newMeasureEventJSON(i int, e *measure.Event) *measureEventJSON {
	d := hex.EncodeToString(e.Digest[:])
	if e.Source == measure.SourceUnknown {
		d = ""
	}
	deps := e.DependsOn
	if deps == nil {
		deps = []measure.Input{}
	}
	return &measureEventJSON{Index: i, Type: uint32(e.Type), TypeName: e.Type.String(), Digest: d, Description: e.Description, DependsOn: deps, Source: e.Source}
}

type measureRegisterJSON struct {
	Index      int                `json:"index"`
	Value      string             `json:"value"`
	Incomplete string             `json:"incomplete,omitempty"`
	Events     []measureEventJSON `json:"events"`
}

// measureOutput is the JSON output of measure.
type measureOutput struct {
	MediaType      string                `json:"media_type"`
	ImageDir       string                `json:"image_dir,omitempty"`
	ImageVersion   string                `json:"image_version,omitempty"`
	OSImageHash    string                `json:"os_image_hash,omitempty"`
	Firmware       measureFileJSON       `json:"firmware"`
	Kernel         measureFileJSON       `json:"kernel"`
	Initrd         measureFileJSON       `json:"initrd"`
	KernelCmdline  string                `json:"kernel_cmdline"`
	Machine        measureMachineJSON    `json:"machine"`
	MRTD           string                `json:"mrtd"`
	PageOrder      string                `json:"page_order"`
	MRTDCandidates map[string]string     `json:"mrtd_candidates"`
	RTMRs          []measureRegisterJSON `json:"rtmrs"`
	ACPISource     string                `json:"acpi_source"`
	// CPUCountBound: the vCPU count is bound to RTMR0 through the MADT
	// (of the given tables, or the size the event log's table loader
	// describes).
	CPUCountBound bool `json:"cpu_count_bound"`
	// ACPILayout is the layout the event log's ACPI digests describe.
	ACPILayout *measure.ACPILayout `json:"acpi_layout,omitempty"`
	Notes      []string            `json:"notes"`
	// Lint is present (possibly empty) only with --lint.
	Lint *[]measure.Finding `json:"lint,omitempty"`
}

func newMeasureOutput(l *loadedImage, m measure.Machine, res *measure.Measurement, acpi *measure.ACPIDigests) *measureOutput {
	out := &measureOutput{
		MediaType:     MeasureMediaType,
		KernelCmdline: res.KernelCmdline,
		Machine:       newMeasureMachineJSON(m),
		MRTD:          hex.EncodeToString(res.MRTD[:]),
		PageOrder:     res.PageOrder.String(),
		ACPISource:    "none",
		CPUCountBound: res.CPUsBound,
		ACPILayout:    res.ACPILayout,
		Notes:         res.Notes,
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	if l.dir != nil {
		out.ImageDir = filepath.Dir(l.paths[0])
		out.ImageVersion = l.metadata.Version
	}
	if l.osHash != nil {
		out.OSImageHash = hex.EncodeToString(l.osHash[:])
	}
	for i, dst := range []*measureFileJSON{&out.Firmware, &out.Kernel} {
		b := [][]byte{l.img.Firmware, l.img.Kernel}[i]
		*dst = measureFileJSON{Path: l.paths[i], Size: uint64(len(b)), SHA256: measureSHA256Hex(b)}
	}
	out.Initrd = initrdFileJSON(l.img, l.paths[2])
	if c := res.MRTDCandidates; c != nil {
		out.MRTDCandidates = map[string]string{
			measure.SinglePass.String(): hex.EncodeToString(c[measure.SinglePass][:]),
			measure.TwoPass.String():    hex.EncodeToString(c[measure.TwoPass][:]),
		}
	}
	if acpi != nil {
		out.ACPISource = acpi.Source
	}
	for _, r := range res.RTMRs {
		ro := measureRegisterJSON{Index: r.Index, Incomplete: r.Incomplete, Events: []measureEventJSON{}}
		if r.Incomplete == "" {
			ro.Value = hex.EncodeToString(r.Value[:])
		}
		for i := range r.Events {
			ro.Events = append(ro.Events, *newMeasureEventJSON(i, &r.Events[i]))
		}
		out.RTMRs = append(out.RTMRs, ro)
	}
	return out
}

func printMeasure(w io.Writer, o *measureOutput) error {
	p := &printer{w: w}
	p.printf("Reference values\n")
	p.kv(1, "MRTD", o.MRTD+" ("+o.PageOrder+")")
	for _, r := range o.RTMRs {
		v := r.Value
		if r.Incomplete != "" {
			v = "incomplete: " + r.Incomplete
		}
		p.kv(1, fmt.Sprintf("RTMR%d", r.Index), v)
	}
	p.section("Inputs")
	if o.ImageDir != "" {
		p.kv(1, "image", o.ImageDir+" (version "+o.ImageVersion+")")
	}
	if o.OSImageHash != "" {
		p.kv(1, "os_image_hash", o.OSImageHash+" (sha256sum.txt checked)")
	}
	for _, f := range []struct {
		k string
		v measureFileJSON
	}{{"firmware", o.Firmware}, {"kernel", o.Kernel}, {"initrd", o.Initrd}} {
		if f.v.SHA256 != "" {
			p.kv(1, f.k, fmt.Sprintf("%s (%d bytes, sha256 %s)", f.v.Path, f.v.Size, f.v.SHA256))
		} else {
			p.kv(1, f.k, fmt.Sprintf("%s (%d bytes, sha384 %s)", f.v.Path, f.v.Size, f.v.SHA384))
		}
	}
	p.kv(1, "kernel cmdline", o.KernelCmdline)
	mach := fmt.Sprintf("%s RAM, QEMU %s", measureSizeText(o.Machine.MemorySize), o.Machine.QEMUVersion)
	if o.Machine.CPUs > 0 {
		mach = fmt.Sprintf("%d vCPUs, ", o.Machine.CPUs) + mach
	}
	if v := o.Machine.QEMUSinglePassAddPages; v != nil {
		mach += fmt.Sprintf(", qemu_single_pass_add_pages %v", *v)
	}
	p.kv(1, "machine", mach)
	acpi := o.ACPISource
	if l := o.ACPILayout; l != nil {
		acpi += fmt.Sprintf(" (table loader: %d-byte MADT for %d vCPUs, %d-byte DSDT)", l.MADTLength, l.CPUs, l.DSDTLength)
	}
	p.kv(1, "ACPI digests", acpi)
	for _, c := range []string{measure.SinglePass.String(), measure.TwoPass.String()} {
		if v, ok := o.MRTDCandidates[c]; ok {
			p.kv(1, "MRTD "+c, v)
		}
	}
	for _, r := range o.RTMRs {
		p.section(fmt.Sprintf("RTMR%d events", r.Index))
		for _, e := range r.Events {
			d := e.Digest
			if d == "" {
				d = "(unknown)"
			}
			p.printf("  %2d  %-32s %s\n      %s [%s]\n", e.Index, e.TypeName, d, e.Description, e.Source)
		}
	}
	if len(o.Notes) > 0 {
		p.section("Notes")
		for _, n := range o.Notes {
			p.printf("  %s\n", n)
		}
	}
	if o.Lint != nil {
		p.section("Hardening lint")
		if len(*o.Lint) == 0 {
			p.printf("  no findings\n")
		}
		for _, f := range *o.Lint {
			p.printf("  %s %s: %s\n", f.Severity, f.ID, f.Message)
		}
	}
	return p.err
}

func measureSizeText(b uint64) string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b != 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d bytes", b)
}

// measureLiteOutput is the JSON output of measure lite.
type measureLiteOutput struct {
	MediaType   string `json:"media_type"`
	OSImageHash string `json:"os_image_hash"`
	Files       struct {
		Document     string `json:"measurement_tdx_cbor"`
		ChecksumFile string `json:"sha256sum_txt"`
	} `json:"files"`
	Document struct {
		Version            int               `json:"version"`
		CmdlineSHA384      string            `json:"cmdline_sha384"`
		KernelAuthenticode string            `json:"kernel_authenticode"`
		InitrdSHA384       string            `json:"initrd_sha384"`
		OVMF               string            `json:"ovmf"`
		MRTD               map[string]string `json:"mrtd"`
		TDHOB              string            `json:"td_hob"`
	} `json:"document"`
}

func newMeasureLiteOutput(l *measure.LiteMeasurement, hash [32]byte, doc, sums string) *measureLiteOutput {
	o := &measureLiteOutput{MediaType: LiteMediaType, OSImageHash: hex.EncodeToString(hash[:])}
	o.Files.Document, o.Files.ChecksumFile = doc, sums
	d := &o.Document
	d.Version = measure.LiteVersion
	d.CmdlineSHA384 = hex.EncodeToString(l.CmdlineSHA384[:])
	d.KernelAuthenticode = hex.EncodeToString(l.KernelAuthenticode[:])
	d.InitrdSHA384 = hex.EncodeToString(l.InitrdSHA384[:])
	d.OVMF = l.OVMF
	d.MRTD = map[string]string{
		measure.SinglePass.String(): hex.EncodeToString(l.MRTD[measure.SinglePass][:]),
		measure.TwoPass.String():    hex.EncodeToString(l.MRTD[measure.TwoPass][:]),
	}
	d.TDHOB = hex.EncodeToString(l.TDHOBWitness)
	return o
}

func printLite(w io.Writer, o *measureLiteOutput) error {
	p := &printer{w: w}
	p.printf("Lite measurement published\n")
	p.kv(1, "os_image_hash", o.OSImageHash)
	p.kv(1, "document", o.Files.Document)
	p.kv(1, "checksum file", o.Files.ChecksumFile)
	d := o.Document
	p.kv(1, "MRTD single_pass", d.MRTD["single_pass"])
	p.kv(1, "MRTD two_pass", d.MRTD["two_pass"])
	p.kv(1, "kernel", d.KernelAuthenticode)
	p.kv(1, "cmdline", d.CmdlineSHA384)
	p.kv(1, "initrd", d.InitrdSHA384)
	p.kv(1, "TD HOB witness", d.TDHOB)
	return p.err
}

// measureDiagnoseOutput is the JSON output of measure diagnose.
type measureDiagnoseOutput struct {
	MediaType string `json:"media_type"`
	// Mode is "lite" or "image".
	Mode          string                 `json:"mode"`
	Match         bool                   `json:"match"`
	QuoteVerified bool                   `json:"quote_verified"`
	OSImageHash   string                 `json:"os_image_hash,omitempty"`
	Machine       measureMachineJSON     `json:"machine"`
	ACPISource    string                 `json:"acpi_source"`
	Causes        []measure.Cause        `json:"causes"`
	Notes         []string               `json:"notes"`
	Registers     []diagnoseRegisterJSON `json:"registers"`
}

type diagnoseRegisterJSON struct {
	Name            string              `json:"name"`
	Match           bool                `json:"match"`
	Expected        string              `json:"expected"`
	Actual          string              `json:"actual"`
	Incomplete      string              `json:"incomplete,omitempty"`
	LogReplay       string              `json:"log_replay,omitempty"`
	LogMatchesQuote *bool               `json:"log_matches_quote,omitempty"`
	Causes          []measure.Cause     `json:"causes"`
	Events          []diagnoseEventJSON `json:"events"`
}

type diagnoseEventJSON struct {
	Index    int                   `json:"index"`
	Status   string                `json:"status"`
	Expected *measureEventJSON     `json:"expected"`
	Actual   *diagnoseLogEventJSON `json:"actual"`
}

type diagnoseLogEventJSON struct {
	Type     uint32 `json:"type"`
	TypeName string `json:"type_name"`
	Digest   string `json:"digest"`
	Name     string `json:"name,omitempty"`
}

func (o *measureDiagnoseOutput) fill(d *measure.Diagnosis) {
	o.Match = d.Match
	o.Causes = d.Causes
	o.Notes = append(o.Notes, d.Notes...)
	if o.Causes == nil {
		o.Causes = []measure.Cause{}
	}
	if o.Notes == nil {
		o.Notes = []string{}
	}
	o.Registers = []diagnoseRegisterJSON{}
	for _, r := range d.Registers {
		rd := diagnoseRegisterJSON{Name: r.Name, Match: r.Match, Actual: hex.EncodeToString(r.Actual[:]), Incomplete: r.Incomplete, Causes: r.Causes, Events: []diagnoseEventJSON{}}
		if r.Incomplete == "" {
			rd.Expected = hex.EncodeToString(r.Expected[:])
		}
		if rd.Causes == nil {
			rd.Causes = []measure.Cause{}
		}
		if r.LogReplay != nil {
			rd.LogReplay = hex.EncodeToString(r.LogReplay[:])
			v := r.LogMatchesQuote
			rd.LogMatchesQuote = &v
		}
		for _, e := range r.Events {
			ed := diagnoseEventJSON{Index: e.Index, Status: string(e.Status)}
			if e.Expected != nil {
				ed.Expected = newMeasureEventJSON(e.Index, e.Expected)
			}
			if e.Actual != nil {
				ed.Actual = newDiagnoseLogEventJSON(e.Actual)
			}
			rd.Events = append(rd.Events, ed)
		}
		o.Registers = append(o.Registers, rd)
	}
}

func newDiagnoseLogEventJSON(e *eventlog.Event) *diagnoseLogEventJSON {
	return &diagnoseLogEventJSON{Type: uint32(e.Type), TypeName: e.Type.String(), Digest: hex.EncodeToString(e.Digest), Name: e.Name}
}

func printDiagnose(w io.Writer, o *measureDiagnoseOutput) error {
	p := &printer{w: w}
	verdict := "MISMATCH"
	if o.Match {
		verdict = "match"
	}
	p.printf("Diagnosis (%s mode): %s\n", o.Mode, verdict)
	for _, c := range o.Causes {
		p.printf("  cause: %s: %s\n", c.Input, c.Detail)
	}
	if o.OSImageHash != "" {
		p.kv(1, "os_image_hash", o.OSImageHash)
	}
	p.kv(1, "machine", fmt.Sprintf("%d vCPUs, %s RAM, QEMU %s", o.Machine.CPUs, measureSizeText(o.Machine.MemorySize), o.Machine.QEMUVersion))
	p.kv(1, "ACPI digests", o.ACPISource)
	p.kv(1, "quote signature", "not checked (use tdproof quote verify)")
	for _, r := range o.Registers {
		status := "match"
		if !r.Match {
			status = "MISMATCH"
		}
		p.section(fmt.Sprintf("%s  %s", r.Name, status))
		exp := r.Expected
		if r.Incomplete != "" {
			exp = "incomplete: " + r.Incomplete
		}
		p.kv(1, "expected", exp)
		p.kv(1, "quote", r.Actual)
		if r.LogMatchesQuote != nil && !*r.LogMatchesQuote {
			p.kv(1, "event log replay", r.LogReplay+" (does not match the quote)")
		}
		for _, e := range r.Events {
			exp, desc, got := "-", "", "-"
			if e.Expected != nil {
				exp, desc = shortDigest(e.Expected.Digest), e.Expected.Description
			}
			if e.Actual != nil {
				got = shortDigest(e.Actual.Digest)
			}
			p.printf("  %2d  %-8s  expected %-16s  log %-16s  %s\n", e.Index, e.Status, exp, got, desc)
		}
	}
	if len(o.Notes) > 0 {
		p.section("Notes")
		for _, n := range o.Notes {
			p.printf("  %s\n", n)
		}
	}
	return p.err
}

// shortDigest abbreviates a hex digest for the event table.
func shortDigest(h string) string {
	switch {
	case h == "":
		return "(unknown)"
	case len(h) > 16:
		return h[:16]
	}
	return h
}

// initrdFileJSON describes the initrd from its bytes or, when it was
// hashed while read, from its digests.
func initrdFileJSON(img *measure.Image, path string) measureFileJSON {
	if img.Initrd != nil || img.InitrdDigests == nil {
		sum := sha512.Sum384(img.Initrd)
		return measureFileJSON{Path: path, Size: uint64(len(img.Initrd)), SHA256: measureSHA256Hex(img.Initrd), SHA384: hex.EncodeToString(sum[:])}
	}
	d := img.InitrdDigests
	f := measureFileJSON{Path: path, Size: d.Size, SHA384: hex.EncodeToString(d.SHA384[:])}
	if d.SHA256 != nil {
		f.SHA256 = hex.EncodeToString(d.SHA256[:])
	}
	return f
}
