package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
)

// maxMeasureFileSize bounds firmware, kernel and initrd files.
const maxMeasureFileSize = 1 << 30

// readImageFile reads an image file; a file that cannot be read is a
// usage error, as for every input file.
func readImageFile(what, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("reading %s: %w", what, err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMeasureFileSize+1))
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("reading %s %s: %w", what, path, err)}
	}
	if len(b) > maxMeasureFileSize {
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", errMalformedInput, what, path, maxMeasureFileSize)
	}
	return b, nil
}

// hashImageFile hashes the file at path while reading it
// (measure.HashFile: SHA-384 only).
func hashImageFile(what, path string) (*measure.FileDigests, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("reading %s: %w", what, err)}
	}
	defer f.Close()
	d, err := measure.HashFile(f, maxMeasureFileSize, false)
	switch {
	case errors.Is(err, measure.ErrMalformed):
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", errMalformedInput, what, path, maxMeasureFileSize)
	case err != nil:
		return nil, &usageError{err: fmt.Errorf("reading %s %s: %w", what, path, err)}
	}
	return &d, nil
}

// measureErr maps errors of package measure to exit codes: unreadable
// files are usage errors, everything else is malformed input.
func measureErr(err error) error {
	var pe *fs.PathError
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*usageError)), errors.Is(err, errMalformedInput):
		return err
	case errors.As(err, &pe):
		return &usageError{err: err}
	}
	return fmt.Errorf("%w: %w", errMalformedInput, err)
}

// memorySizeValue is a RAM size: bytes, or a number with K, M, G or T (binary
// multiples, optionally followed by "iB" or "B"), e.g. 4G, 2048M, 2.75G.
type memorySizeValue struct{ n uint64 }

func (m *memorySizeValue) String() string {
	if m.n == 0 {
		return ""
	}
	return strconv.FormatUint(m.n, 10)
}

func (m *memorySizeValue) Type() string { return "size" }

func (m *memorySizeValue) Set(s string) error {
	n, err := parseMemorySize(s)
	if err != nil {
		return err
	}
	m.n = n
	return nil
}

func parseMemorySize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	shift := 0
	if t != "" {
		switch strings.ToUpper(t[len(t)-1:]) {
		case "K":
			shift = 10
		case "M":
			shift = 20
		case "G":
			shift = 30
		case "T":
			shift = 40
		}
		if shift > 0 {
			t = t[:len(t)-1]
		}
	}
	if n, err := strconv.ParseUint(t, 10, 64); err == nil && n > 0 && n <= math.MaxUint64>>shift {
		return n << shift, nil
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil && f > 0 && shift > 0 {
		if v := f * float64(uint64(1)<<shift); v == math.Trunc(v) && v < 1<<62 {
			return uint64(v), nil
		}
	}
	return 0, fmt.Errorf("invalid memory size %q (want bytes or a size such as 4G, 2048M, 2.75G)", s)
}

// tdMachineFlags are the TD configuration flags shared by measure and
// diagnose.
type tdMachineFlags struct {
	cpus        int
	memory      memorySizeValue
	qemuVersion string
	singlePass  bool
}

func (f *tdMachineFlags) register(c *pflag.FlagSet) {
	c.IntVar(&f.cpus, "cpus", 0, "vCPU count `N` (enters only through the ACPI tables; checked against their MADT)")
	c.Var(&f.memory, "memory", "RAM `SIZE`: bytes or 4G, 2048M, 2.75G")
	c.StringVar(&f.qemuVersion, "qemu-version", "", "QEMU `VERSION` MAJOR.MINOR.PATCH (default "+measure.DefaultQEMUVersion+"); selects the MRTD page order")
	c.BoolVar(&f.singlePass, "qemu-single-pass-add-pages", false, "vm_config's qemu_single_pass_add_pages; as in dstack, true selects TWO-pass page adding")
}

// apply overrides m with the flags that were set.
func (f *tdMachineFlags) apply(c *pflag.FlagSet, m *measure.Machine) {
	if c.Changed("cpus") {
		m.CPUs = f.cpus
	}
	if c.Changed("memory") {
		m.MemorySize = f.memory.n
	}
	if c.Changed("qemu-version") {
		m.QEMUVersion = f.qemuVersion
	}
	if c.Changed("qemu-single-pass-add-pages") {
		v := f.singlePass
		m.QEMUSinglePassAddPages = &v
	}
}

// readACPIDir reads the fw_cfg ACPI blobs from a directory: tables
// (required), rsdp and table-loader (synthesised when absent), each
// either under its fw_cfg name (etc/acpi/tables, etc/acpi/rsdp,
// etc/table-loader) or by its base name.
func readACPIDir(dir string) (*measure.ACPIDigests, error) {
	read := func(name string, required bool) ([]byte, error) {
		for _, p := range []string{filepath.Join(dir, filepath.FromSlash(name)), filepath.Join(dir, filepath.Base(name))} {
			if _, err := os.Stat(p); err == nil {
				return readImageFile("ACPI "+filepath.Base(name), p)
			}
		}
		if required {
			return nil, &usageError{err: fmt.Errorf("--acpi-dir %s has no %s (or %s)", dir, name, filepath.Base(name))}
		}
		return nil, nil
	}
	tables, err := read(measure.FwCfgACPITables, true)
	if err != nil {
		return nil, err
	}
	rsdp, err := read(measure.FwCfgACPIRSDP, false)
	if err != nil {
		return nil, err
	}
	loader, err := read(measure.FwCfgTableLoader, false)
	if err != nil {
		return nil, err
	}
	a, err := measure.ACPITables(tables, rsdp, loader)
	return a, measureErr(err)
}

// parseMeasureEventLog reads an event log: a JSON array of dstack events, a
// JSON object with an "event_log" string (a GetQuote response), or a
// binary CCEL.
func parseMeasureEventLog(b []byte) ([]eventlog.Event, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) > 0 && t[0] == '[':
		return eventlog.ParseJSON(t)
	case len(t) > 0 && t[0] == '{':
		var obj struct {
			EventLog *string `json:"event_log"`
		}
		if err := json.Unmarshal(t, &obj); err != nil || obj.EventLog == nil {
			return nil, fmt.Errorf("%w: JSON object without an \"event_log\" string", errMalformedInput)
		}
		return eventlog.ParseJSON([]byte(*obj.EventLog))
	}
	return eventlog.ParseCCELEvents(b)
}

// measureVMConfig is the part of dstack's vm_config that measure reads.
type measureVMConfig struct {
	OSImageHash            string `json:"os_image_hash"`
	CPUCount               int    `json:"cpu_count"`
	MemorySize             uint64 `json:"memory_size"`
	QEMUVersion            string `json:"qemu_version"`
	QEMUSinglePassAddPages *bool  `json:"qemu_single_pass_add_pages"`
	Image                  string `json:"image"`
	OVMFVariant            string `json:"ovmf_variant"`
	AttestationVariant     string `json:"tdx_attestation_variant"`
	TDXMeasurement         *struct {
		ChecksumFile []byte `json:"checksum_file"`
		Measurement  []byte `json:"measurement"`
	} `json:"tdx_measurement"`
}

func (vm *measureVMConfig) machine() measure.Machine {
	return measure.Machine{CPUs: vm.CPUCount, MemorySize: vm.MemorySize, QEMUVersion: vm.QEMUVersion, QEMUSinglePassAddPages: vm.QEMUSinglePassAddPages}
}

// measureEvidence is a dstack GetQuote response (or verifier request) read
// for diagnose.
type measureEvidence struct {
	quote  *quote.Quote
	events []eventlog.Event
	vm     *measureVMConfig // nil when absent
}

// parseMeasureEvidence decodes {"quote": hex, "event_log": JSON string,
// "vm_config": JSON string or object}.
func parseMeasureEvidence(b []byte) (*measureEvidence, error) {
	var raw struct {
		Quote       string          `json:"quote"`
		EventLog    *string         `json:"event_log"`
		VMConfig    json.RawMessage `json:"vm_config"`
		Attestation string          `json:"attestation"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, withHints(fmt.Errorf("%w: evidence: %w", errMalformedInput, err),
			`--evidence takes a dstack GetQuote response: {"quote": hex, "event_log": JSON string, "vm_config": JSON string}`)
	}
	if raw.Quote == "" {
		if raw.Attestation != "" {
			return nil, fmt.Errorf("%w: evidence carries only an \"attestation\" (VersionedAttestation), which measure does not decode; pass the GetQuote response", errMalformedInput)
		}
		return nil, fmt.Errorf("%w: evidence has no \"quote\"", errMalformedInput)
	}
	qb, err := hex.DecodeString(strings.TrimPrefix(raw.Quote, "0x"))
	if err != nil {
		return nil, fmt.Errorf("%w: evidence quote: %w", errMalformedInput, err)
	}
	q, err := quote.Parse(qb)
	if err != nil {
		return nil, err
	}
	if q.TD == nil {
		return nil, fmt.Errorf("%w: evidence quote is not a TD quote", errMalformedInput)
	}
	e := &measureEvidence{quote: q}
	if raw.EventLog != nil {
		if e.events, err = eventlog.ParseJSON([]byte(*raw.EventLog)); err != nil {
			return nil, fmt.Errorf("%w: evidence event_log: %w", errMalformedInput, err)
		}
	}
	if len(raw.VMConfig) > 0 && string(raw.VMConfig) != "null" {
		doc := []byte(raw.VMConfig)
		var s string
		if json.Unmarshal(doc, &s) == nil {
			doc = []byte(s)
		}
		e.vm = new(measureVMConfig)
		if err := json.Unmarshal(doc, e.vm); err != nil {
			return nil, fmt.Errorf("%w: evidence vm_config: %w", errMalformedInput, err)
		}
	}
	return e, nil
}

func (e *measureEvidence) evidence() measure.Evidence {
	return measure.Evidence{MRTD: e.quote.TD.MRTD, RTMRs: e.quote.TD.RTMRs, Events: e.events}
}
