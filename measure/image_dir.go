package measure

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxImageFile bounds each file LoadImage reads.
const maxImageFile = 1 << 30

// optionalMeasurementFiles are listed in sha256sum.txt after
// measurement.tdx.cbor when an image has them (§5).
var optionalMeasurementFiles = []string{"measurement.snp.cbor", "measurement.gcp.cbor", "measurement.aws.cbor", "measurement.aws.replay.json"}

// ImageDir is an OS image directory as dstack publishes it: metadata.json
// naming the firmware, kernel and initrd, optionally sha256sum.txt and
// measurement.tdx.cbor.
type ImageDir struct {
	Metadata     *Metadata
	MetadataJSON []byte
	Image        Image
	// ChecksumFile is sha256sum.txt, nil when the directory has none.
	ChecksumFile []byte
	// LiteDocument is measurement.tdx.cbor, nil when absent.
	LiteDocument []byte
	// Extra holds the other measurement documents present, by name.
	Extra map[string][]byte
}

// LoadImage reads an image directory. Files are opened through an
// os.Root, so names in metadata.json cannot reach outside dir. It is the
// only function of this package that does I/O. Errors wrap [ErrMalformed]
// (metadata.json) or the fs error.
func LoadImage(dir string) (*ImageDir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("measure: image directory: %w", err)
	}
	defer root.Close()
	d := &ImageDir{Extra: map[string][]byte{}}
	if d.MetadataJSON, err = readRootFile(root, MetadataFile); err != nil {
		return nil, err
	}
	if d.Metadata, err = ParseMetadata(d.MetadataJSON); err != nil {
		return nil, err
	}
	if err := checkVariant(d.Metadata.OVMFVariant); err != nil {
		return nil, err
	}
	d.Image.Cmdline = d.Metadata.Cmdline
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{d.Metadata.Bios, &d.Image.Firmware}, {d.Metadata.Kernel, &d.Image.Kernel}, {d.Metadata.Initrd, &d.Image.Initrd}} {
		if *f.dst, err = readRootFile(root, f.name); err != nil {
			return nil, err
		}
	}
	if d.ChecksumFile, err = readOptional(root, ChecksumFile); err != nil {
		return nil, err
	}
	if d.LiteDocument, err = readOptional(root, LiteFile); err != nil {
		return nil, err
	}
	for _, name := range optionalMeasurementFiles {
		b, err := readOptional(root, name)
		if err != nil {
			return nil, err
		}
		if b != nil {
			d.Extra[name] = b
		}
	}
	return d, nil
}

func readOptional(root *os.Root, name string) ([]byte, error) {
	b, err := readRootFile(root, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func readRootFile(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("measure: image: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, fmt.Errorf("measure: image: %s: %w", name, err)
	}
	if len(b) > maxImageFile {
		return nil, fmt.Errorf("measure: image: %w: %s is larger than %d bytes", ErrMalformed, name, maxImageFile)
	}
	return b, nil
}

// files returns the directory's files by name.
func (d *ImageDir) files() map[string][]byte {
	m := map[string][]byte{
		d.Metadata.Bios:   d.Image.Firmware,
		d.Metadata.Kernel: d.Image.Kernel,
		d.Metadata.Initrd: d.Image.Initrd,
		MetadataFile:      d.MetadataJSON,
	}
	if d.LiteDocument != nil {
		m[LiteFile] = d.LiteDocument
	}
	for k, v := range d.Extra {
		m[k] = v
	}
	return m
}

// CheckFiles verifies every line of sha256sum.txt against the files read,
// as `sha256sum -c` would, and returns os_image_hash. A listed file that
// was not read (not one of the image's files) or that differs is
// [ErrImageFile]; a directory without sha256sum.txt is [ErrImageFile] too.
func (d *ImageDir) CheckFiles() ([32]byte, error) {
	if d.ChecksumFile == nil {
		return [32]byte{}, fmt.Errorf("%w: the directory has no %s", ErrImageFile, ChecksumFile)
	}
	entries, err := ParseChecksumFile(d.ChecksumFile)
	if err != nil {
		return [32]byte{}, err
	}
	files := d.files()
	for _, e := range entries {
		b, ok := files[e.Name]
		if !ok {
			return [32]byte{}, fmt.Errorf("%w: %s lists %s, which is not an image file", ErrImageFile, ChecksumFile, e.Name)
		}
		if sha256Sum(b) != e.SHA256 {
			return [32]byte{}, fmt.Errorf("%w: %s", ErrImageFile, e.Name)
		}
	}
	return OSImageHash(d.ChecksumFile), nil
}

// PublishLite computes measurement.tdx.cbor for the image and the
// sha256sum.txt that lists it (files per [ImageFileList], then any other
// measurement documents present), and returns both with os_image_hash.
// The directory's version must be 0.6.0 or later.
func (d *ImageDir) PublishLite() (document, checksumFile []byte, osImageHash [32]byte, err error) {
	names, err := ImageFileList(d.Metadata)
	if err != nil {
		return nil, nil, [32]byte{}, err
	}
	if names[len(names)-1] != LiteFile {
		return nil, nil, [32]byte{}, fmt.Errorf("measure: %w: image version %s predates %s", ErrUnsupported, d.Metadata.Version, LiteFile)
	}
	lite, err := NewLiteMeasurement(&d.Image)
	if err != nil {
		return nil, nil, [32]byte{}, err
	}
	if document, err = lite.Marshal(); err != nil {
		return nil, nil, [32]byte{}, err
	}
	files := d.files()
	files[LiteFile] = document
	for _, name := range optionalMeasurementFiles {
		if _, ok := d.Extra[name]; ok {
			names = append(names, name)
		}
	}
	entries := make([]ChecksumEntry, len(names))
	for i, n := range names {
		entries[i] = ChecksumEntry{SHA256: sha256Sum(files[n]), Name: n}
	}
	checksumFile = FormatChecksumFile(entries)
	return document, checksumFile, OSImageHash(checksumFile), nil
}
