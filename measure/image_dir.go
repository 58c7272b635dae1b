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

// LoadOption configures [LoadImage].
type LoadOption func(*loadConfig)

type loadConfig struct{ sha256 bool }

// WithInitrdSHA256 makes LoadImage compute the initrd's SHA-256 even when
// the directory has no sha256sum.txt ([ImageDir.PublishLite] needs it).
func WithInitrdSHA256() LoadOption { return func(c *loadConfig) { c.sha256 = true } }

// LoadImage reads an image directory. Files are opened through an
// os.Root, so names in metadata.json cannot reach outside dir. With
// [LoadSNPImage] it is the only function of this package that does I/O.
// Errors wrap [ErrMalformed] (metadata.json) or the fs error.
//
// The initrd is not kept: it is hashed while it is read, in one pass
// (Image.InitrdDigests: SHA-384, and SHA-256 when the directory has a
// sha256sum.txt to check or [WithInitrdSHA256] asks for it), so memory
// does not grow with its size. The other files are read whole.
func LoadImage(dir string, opts ...LoadOption) (*ImageDir, error) {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
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
	if d.ChecksumFile, err = readOptional(root, ChecksumFile); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{d.Metadata.Bios, &d.Image.Firmware}, {d.Metadata.Kernel, &d.Image.Kernel}} {
		if *f.dst, err = readRootFile(root, f.name); err != nil {
			return nil, err
		}
	}
	if d.Image.InitrdDigests, err = hashRootFile(root, d.Metadata.Initrd, cfg.sha256 || d.ChecksumFile != nil); err != nil {
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

// hashRootFile hashes a file of root while reading it ([HashFile]).
func hashRootFile(root *os.Root, name string, withSHA256 bool) (*FileDigests, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("measure: image: %w", err)
	}
	defer f.Close()
	d, err := HashFile(f, maxImageFile, withSHA256)
	if err != nil {
		return nil, fmt.Errorf("measure: image: %s: %w", name, err)
	}
	return &d, nil
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
	var b []byte
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() <= maxImageFile {
		// One allocation of the file's size (io.ReadAll would grow and
		// copy its buffer); a file that grew meanwhile is still bounded.
		b = make([]byte, 0, st.Size()+1)
	}
	b, err = readAllInto(b, io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, fmt.Errorf("measure: image: %s: %w", name, err)
	}
	if len(b) > maxImageFile {
		return nil, fmt.Errorf("measure: image: %w: %s is larger than %d bytes", ErrMalformed, name, maxImageFile)
	}
	return b, nil
}

// readAllInto is io.ReadAll appending to b.
func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// fileSHA256 returns the SHA-256 of the directory's files by name: the
// initrd's from its digests (hashed while read), the others computed now.
func (d *ImageDir) fileSHA256() (map[string][32]byte, error) {
	m := map[string][32]byte{
		d.Metadata.Bios:   sha256Sum(d.Image.Firmware),
		d.Metadata.Kernel: sha256Sum(d.Image.Kernel),
		MetadataFile:      sha256Sum(d.MetadataJSON),
	}
	switch {
	case d.Image.Initrd != nil:
		m[d.Metadata.Initrd] = sha256Sum(d.Image.Initrd)
	case d.Image.InitrdDigests != nil && d.Image.InitrdDigests.SHA256 != nil:
		m[d.Metadata.Initrd] = *d.Image.InitrdDigests.SHA256
	default:
		return nil, fmt.Errorf("measure: the initrd's SHA-256 was not computed (load the image with WithInitrdSHA256)")
	}
	if d.LiteDocument != nil {
		m[LiteFile] = sha256Sum(d.LiteDocument)
	}
	for k, v := range d.Extra {
		m[k] = sha256Sum(v)
	}
	return m, nil
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
	files, err := d.fileSHA256()
	if err != nil {
		return [32]byte{}, err
	}
	for _, e := range entries {
		sum, ok := files[e.Name]
		if !ok {
			return [32]byte{}, fmt.Errorf("%w: %s lists %s, which is not an image file", ErrImageFile, ChecksumFile, e.Name)
		}
		if sum != e.SHA256 {
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
	files, err := d.fileSHA256()
	if err != nil {
		return nil, nil, [32]byte{}, err
	}
	files[LiteFile] = sha256Sum(document)
	for _, name := range optionalMeasurementFiles {
		if _, ok := d.Extra[name]; ok {
			names = append(names, name)
		}
	}
	entries := make([]ChecksumEntry, len(names))
	for i, n := range names {
		sum, ok := files[n]
		if !ok {
			return nil, nil, [32]byte{}, fmt.Errorf("measure: %w: the image has no %s", ErrImageFile, n)
		}
		entries[i] = ChecksumEntry{SHA256: sum, Name: n}
	}
	checksumFile = FormatChecksumFile(entries)
	return document, checksumFile, OSImageHash(checksumFile), nil
}
