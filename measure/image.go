package measure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Metadata is an image's metadata.json (§5). Field names follow the file;
// fields a version lacks are zero.
type Metadata struct {
	Bios        string `json:"bios"`
	BiosSEV     string `json:"bios-sev,omitempty"`
	Kernel      string `json:"kernel"`
	Cmdline     string `json:"cmdline"`
	Initrd      string `json:"initrd"`
	Rootfs      string `json:"rootfs,omitempty"`
	RootfsHash  string `json:"rootfs_hash,omitempty"` // ≤ 0.4.x only
	Version     string `json:"version"`
	GitRevision string `json:"git_revision,omitempty"`
	SharedRO    bool   `json:"shared_ro,omitempty"`
	IsDev       bool   `json:"is_dev"`
	// OVMFVariant is the RTMR0 layout; empty in images before May 2026,
	// which all use [OVMFVariantPre202505].
	OVMFVariant string `json:"ovmf_variant,omitempty"`
}

// ParseMetadata decodes metadata.json. bios, kernel and initrd must name
// plain files in the image directory (no path separators). Unknown keys
// are ignored, as dstack does. Errors wrap [ErrMalformed].
func ParseMetadata(b []byte) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("measure: metadata.json: %w: %w", ErrMalformed, err)
	}
	for _, f := range []struct{ key, v string }{{"bios", m.Bios}, {"kernel", m.Kernel}, {"initrd", m.Initrd}} {
		if err := checkFileName(f.v); err != nil {
			return nil, fmt.Errorf("measure: metadata.json: %w: %q: %w", ErrMalformed, f.key, err)
		}
	}
	return &m, nil
}

func checkFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00\n") {
		return fmt.Errorf("%q is not a file name in the image directory", name)
	}
	return nil
}

// Image file names written by dstack's image build.
const (
	MetadataFile  = "metadata.json"
	ChecksumFile  = "sha256sum.txt"
	LiteFile      = "measurement.tdx.cbor"
	defaultBios   = "ovmf.fd"
	defaultKernel = "bzImage"
	defaultInitrd = "initramfs.cpio.gz"
)

// ChecksumEntry is one line of sha256sum.txt.
type ChecksumEntry struct {
	SHA256 [32]byte
	Name   string
}

// ParseChecksumFile parses GNU sha256sum output: lines "<64 hex>  <name>"
// (or "<hex> *<name>", binary mode), each ending in "\n". Blank lines,
// comments, escaped names, duplicate names and a missing final newline
// are rejected ([ErrMalformed]) so that every accepted file has one
// meaning.
func ParseChecksumFile(b []byte) ([]ChecksumEntry, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("measure: %s: %w: empty or no final newline", ChecksumFile, ErrMalformed)
	}
	var out []ChecksumEntry
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b[:len(b)-1]), "\n") {
		if len(line) < 67 || (line[64:66] != "  " && line[64:66] != " *") {
			return nil, fmt.Errorf("measure: %s: %w: line %d is not \"<sha256>  <name>\"", ChecksumFile, ErrMalformed, i+1)
		}
		var e ChecksumEntry
		if _, err := hex.Decode(e.SHA256[:], []byte(line[:64])); err != nil {
			return nil, fmt.Errorf("measure: %s: %w: line %d: %w", ChecksumFile, ErrMalformed, i+1, err)
		}
		e.Name = line[66:]
		if strings.ContainsAny(e.Name, "\r\\") || seen[e.Name] {
			return nil, fmt.Errorf("measure: %s: %w: line %d: name %q", ChecksumFile, ErrMalformed, i+1, e.Name)
		}
		seen[e.Name] = true
		out = append(out, e)
	}
	return out, nil
}

// FormatChecksumFile writes entries in GNU sha256sum text-mode format.
func FormatChecksumFile(entries []ChecksumEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%x  %s\n", e.SHA256, e.Name)
	}
	return b.Bytes()
}

// OSImageHash returns dstack's os_image_hash of an image: SHA-256 of the
// bytes of its sha256sum.txt.
func OSImageHash(checksumFile []byte) [32]byte { return sha256.Sum256(checksumFile) }

// ImageFileList returns the files sha256sum.txt lists, in order, for an
// image of the given version with the given metadata (§5): bios, kernel,
// initrd and metadata.json, and from 0.6.0 on also measurement.tdx.cbor.
// Versions before 0.5.1 hashed every file and are [ErrUnsupported].
func ImageFileList(m *Metadata) ([]string, error) {
	v, err := parseImageVersion(m.Version)
	if err != nil {
		return nil, err
	}
	if v.less3(0, 5, 1) {
		return nil, fmt.Errorf("measure: %w: image version %s (sha256sum.txt lists every file before 0.5.1)", ErrUnsupported, m.Version)
	}
	files := []string{orDefault(m.Bios, defaultBios), orDefault(m.Kernel, defaultKernel), orDefault(m.Initrd, defaultInitrd), MetadataFile}
	if !v.less3(0, 6, 0) {
		files = append(files, LiteFile)
	}
	return files, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func parseImageVersion(s string) (semver, error) {
	v, err := parseSemver(strings.TrimPrefix(s, "v"))
	if err != nil {
		return semver{}, fmt.Errorf("measure: image version %q: %w", s, ErrMalformed)
	}
	return v, nil
}

func (v semver) less3(a, b, c uint64) bool {
	w := [3]uint64{a, b, c}
	for i := range 3 {
		if v.v[i] != w[i] {
			return v.v[i] < w[i]
		}
	}
	return v.pre
}

// VerifyLiteMaterial checks a vm_config.tdx_measurement against
// os_image_hash and returns the document: SHA-256 of the checksum file
// must be osImageHash ([ErrOSImageHash]), and its measurement.tdx.cbor
// line must be SHA-256 of the document ([ErrMeasurementBinding]); then
// the document is parsed ([ParseLiteMeasurement]).
//
// Only the document is bound this way: a requester can mint a new
// os_image_hash for any self-consistent pair, so the trust comes from
// allowlisting os_image_hash, never from this check alone (dstack #1266).
func VerifyLiteMaterial(osImageHash []byte, checksumFile, document []byte) (*LiteMeasurement, error) {
	got := OSImageHash(checksumFile)
	if !bytes.Equal(got[:], osImageHash) {
		return nil, fmt.Errorf("%w: sha256(%s) = %x, os_image_hash = %x", ErrOSImageHash, ChecksumFile, got, osImageHash)
	}
	entries, err := ParseChecksumFile(checksumFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMeasurementBinding, err)
	}
	want := sha256.Sum256(document)
	for _, e := range entries {
		if e.Name != LiteFile {
			continue
		}
		if e.SHA256 != want {
			return nil, fmt.Errorf("%w: %s lists %x for %s, the document hashes to %x", ErrMeasurementBinding, ChecksumFile, e.SHA256, LiteFile, want)
		}
		return ParseLiteMeasurement(document)
	}
	return nil, fmt.Errorf("%w: %s has no %s line", ErrMeasurementBinding, ChecksumFile, LiteFile)
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
