package measure

import (
	"strings"
)

// Finding is one hardening lint result.
type Finding struct {
	// ID is stable across releases; see the Lint* constants.
	ID string `json:"id"`
	// Severity is "warning".
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// Lint finding IDs. They never change meaning.
const (
	LintEntropyTrustCPU        = "entropy-trust-cpu"
	LintEntropyTrustBootloader = "entropy-trust-bootloader"
	LintClockTSCReliable       = "clock-tsc-reliable"
	LintClockNoKVMClock        = "clock-no-kvmclock"
	LintRootfsUnbound          = "rootfs-unbound"
	LintOopsNoPanic            = "oops-no-panic"
	LintDevImage               = "dev-image"
)

// Lint checks a measured kernel command line (and metadata.json, when
// not nil) against the hardened-CVM baseline of dstack images: only CPU
// entropy is trusted (random.trust_cpu=y, random.trust_bootloader=n), the
// TSC is the only clock (tsc=reliable, no-kvmclock), the root file system
// is bound by the measured command line (dstack.rootfs_hash=), an oops
// panics (oops=panic), and the image is not a development image. Every
// deviation is a warning with a stable ID.
//
// The command line is split as the kernel does (spaces, double quotes,
// arguments after "--" go to init); '-' and '_' are the same in
// parameter names, and for a repeated parameter the last value wins.
func Lint(kernelCmdline string, meta *Metadata) []Finding {
	p := parseCmdline(kernelCmdline)
	var out []Finding
	warn := func(id, msg string) { out = append(out, Finding{ID: id, Severity: "warning", Message: msg}) }
	if v, ok := p.last("random.trust_cpu"); !ok || !kernelBool(v, true) {
		warn(LintEntropyTrustCPU, "random.trust_cpu=y is not set: the RNG may not be seeded from RDRAND/RDSEED alone")
	}
	if v, ok := p.last("random.trust_bootloader"); !ok || kernelBool(v, true) {
		warn(LintEntropyTrustBootloader, "random.trust_bootloader=n is not set: the host-controlled bootloader seed is credited as entropy")
	}
	if !p.has("tsc", "reliable") {
		warn(LintClockTSCReliable, "tsc=reliable is not set: the kernel may distrust the TSC and fall back to a host-controlled clock")
	}
	if _, ok := p.last("no-kvmclock"); !ok {
		warn(LintClockNoKVMClock, "no-kvmclock is not set: the host-controlled kvmclock can be used as a clock source")
	}
	if v, ok := p.last("dstack.rootfs_hash"); !ok || v == "" {
		warn(LintRootfsUnbound, "dstack.rootfs_hash= is not in the measured command line: the root file system is not bound to the measurements")
	}
	if v, _ := p.last("oops"); v != "panic" {
		warn(LintOopsNoPanic, "oops=panic is not set: the kernel keeps running after an oops")
	}
	if meta != nil && meta.IsDev {
		warn(LintDevImage, "metadata.json marks a development image (is_dev: true)")
	}
	return out
}

type cmdlineParams struct {
	names  []string
	values []string
}

// parseCmdline splits a kernel command line like the kernel's next_arg:
// whitespace separates, double quotes group (and are removed), "--" ends
// the kernel's parameters.
func parseCmdline(s string) *cmdlineParams {
	p := &cmdlineParams{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t\n")
		if s == "" {
			break
		}
		i, quoted := 0, false
		for ; i < len(s); i++ {
			if s[i] == '"' {
				quoted = !quoted
			} else if !quoted && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
				break
			}
		}
		arg := strings.ReplaceAll(s[:i], `"`, "")
		s = s[i:]
		if arg == "--" {
			break
		}
		name, value, _ := strings.Cut(arg, "=")
		p.names = append(p.names, strings.ReplaceAll(name, "_", "-"))
		p.values = append(p.values, value)
	}
	return p
}

// last returns the value of the last occurrence of name.
func (p *cmdlineParams) last(name string) (string, bool) {
	name = strings.ReplaceAll(name, "_", "-")
	for i := len(p.names) - 1; i >= 0; i-- {
		if p.names[i] == name {
			return p.values[i], true
		}
	}
	return "", false
}

// has reports whether any occurrence of name has the given value
// (parameters like tsc= act on each occurrence).
func (p *cmdlineParams) has(name, value string) bool {
	name = strings.ReplaceAll(name, "_", "-")
	for i, n := range p.names {
		if n == name && p.values[i] == value {
			return true
		}
	}
	return false
}

// kernelBool parses a value as the kernel's kstrtobool does (y/n, 1/0,
// on/off); want is what an empty value means.
func kernelBool(v string, want bool) bool {
	switch strings.ToLower(v) {
	case "":
		return want
	case "y", "yes", "1", "on", "true":
		return true
	}
	return false
}
