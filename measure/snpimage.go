package measure

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// SNPFile is the name of the SEV-SNP measurement document of an image
// directory.
const SNPFile = "measurement.snp.cbor"

// SNPImage is an OS image as the SEV-SNP launch digest sees it: the
// firmware's SEV inputs and the SHA-256 digests QEMU puts in the kernel
// hashes table. The kernel and initrd are not kept.
type SNPImage struct {
	Firmware   *SNPFirmware
	KernelHash [32]byte
	InitrdHash [32]byte
	// Cmdline is the kernel command line (metadata.json's cmdline, QEMU's
	// -append).
	Cmdline string
}

// NewSNPImage parses the firmware ([ParseSNPFirmware]) and hashes the
// kernel and initrd while reading them, holding one buffer at a time;
// a nil initrd is an empty one (QEMU then hashes zero bytes).
func NewSNPImage(firmware []byte, kernel, initrd io.Reader, cmdline string) (*SNPImage, error) {
	fw, err := ParseSNPFirmware(firmware)
	if err != nil {
		return nil, err
	}
	img := &SNPImage{Firmware: fw, Cmdline: cmdline}
	if kernel == nil {
		return nil, fmt.Errorf("measure: sev image: %w: no kernel", ErrMalformed)
	}
	if img.KernelHash, err = sha256Stream(kernel, maxImageFile); err != nil {
		return nil, fmt.Errorf("measure: sev image: kernel: %w", err)
	}
	if initrd == nil {
		img.InitrdHash = sha256.Sum256(nil)
	} else if img.InitrdHash, err = sha256Stream(initrd, maxImageFile); err != nil {
		return nil, fmt.Errorf("measure: sev image: initrd: %w", err)
	}
	return img, nil
}

// sha256Stream hashes r to its end, at most limit bytes ([ErrMalformed]
// beyond), through a fixed-size buffer.
func sha256Stream(r io.Reader, limit int64) ([32]byte, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(r, limit+1), make([]byte, 64<<10))
	if err != nil {
		return [32]byte{}, err
	}
	if n > limit {
		return [32]byte{}, fmt.Errorf("%w: file is larger than %d bytes", ErrMalformed, limit)
	}
	return [32]byte(h.Sum(nil)), nil
}

// Launch combines the image with the VM's vCPU count, QEMU vCPU type and
// SEV_FEATURES into the launch inputs, and validates them
// ([SNPLaunch.Validate]). A firmware without a kernel hashes section or
// table GPA (not an AmdSev build) is [ErrUnsupported]: dstack boots
// SEV-SNP guests by measured direct boot only.
func (img *SNPImage) Launch(vcpus uint32, vcpuType string, guestFeatures uint64) (*SNPLaunch, error) {
	fw := img.Firmware
	if !fw.KernelHashes() {
		return nil, fmt.Errorf("measure: sev image: %w: the firmware has no kernel hashes table (an OvmfPkgX64 rather than AmdSev build)", ErrUnsupported)
	}
	l := &SNPLaunch{
		OVMFHash: fw.OVMFHash, Cmdline: img.Cmdline, KernelHash: img.KernelHash, InitrdHash: img.InitrdHash,
		HashesTableGPA: fw.HashesTableGPA, ResetEIP: fw.ResetEIP, Sections: append([]SNPSection(nil), fw.Sections...),
		VCPUs: vcpus, VCPUType: vcpuType, GuestFeatures: guestFeatures,
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// SNPImageDir is an image directory read for SEV-SNP ([LoadSNPImage]).
type SNPImageDir struct {
	Metadata *Metadata
	// FirmwareFile is the firmware's name: metadata.json's bios-sev, else
	// bios.
	FirmwareFile string
	Image        SNPImage
	// Document is the directory's measurement.snp.cbor and ChecksumFile
	// its sha256sum.txt; nil when absent.
	Document     []byte
	ChecksumFile []byte
}

// LoadSNPImage reads an image directory as dstack publishes it for
// SEV-SNP: metadata.json names the firmware (bios-sev, the AmdSev OVMF,
// when present, else bios), the kernel, the initrd and the command
// line; measurement.snp.cbor and sha256sum.txt are read when present.
// Files are opened through an os.Root, so names cannot reach outside
// dir. The kernel and initrd are hashed while read and not kept, so
// memory does not grow with their size.
func LoadSNPImage(dir string) (*SNPImageDir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("measure: image directory: %w", err)
	}
	defer root.Close()
	mj, err := readRootFile(root, MetadataFile)
	if err != nil {
		return nil, err
	}
	d := &SNPImageDir{}
	if d.Metadata, err = ParseMetadata(mj); err != nil {
		return nil, err
	}
	d.FirmwareFile = d.Metadata.Bios
	if d.Metadata.BiosSEV != "" {
		if err := checkFileName(d.Metadata.BiosSEV); err != nil {
			return nil, fmt.Errorf("measure: metadata.json: %w: \"bios-sev\": %w", ErrMalformed, err)
		}
		d.FirmwareFile = d.Metadata.BiosSEV
	}
	fw, err := readRootFile(root, d.FirmwareFile)
	if err != nil {
		return nil, err
	}
	open := func(name string) (*os.File, error) {
		f, err := root.Open(name)
		if err != nil {
			return nil, fmt.Errorf("measure: image: %w", err)
		}
		return f, nil
	}
	kernel, err := open(d.Metadata.Kernel)
	if err != nil {
		return nil, err
	}
	defer kernel.Close()
	initrd, err := open(d.Metadata.Initrd)
	if err != nil {
		return nil, err
	}
	defer initrd.Close()
	img, err := NewSNPImage(fw, kernel, initrd, d.Metadata.Cmdline)
	if err != nil {
		return nil, fmt.Errorf("%w (firmware %s)", err, d.FirmwareFile)
	}
	d.Image = *img
	if d.Document, err = readOptional(root, SNPFile); err != nil {
		return nil, err
	}
	if d.ChecksumFile, err = readOptional(root, ChecksumFile); err != nil {
		return nil, err
	}
	return d, nil
}

// PublishedLaunch returns the launch inputs of the directory's own
// measurement.snp.cbor with the given VM configuration: the reference
// the image's publisher committed to. When the directory has a
// sha256sum.txt, it must list the document with its SHA-256
// ([ErrMeasurementBinding]). It returns (nil, nil) without a document.
func (d *SNPImageDir) PublishedLaunch(vcpus uint32, vcpuType string, guestFeatures uint64) (*SNPLaunch, error) {
	if d.Document == nil {
		return nil, nil
	}
	if d.ChecksumFile != nil {
		entries, err := ParseChecksumFile(d.ChecksumFile)
		if err != nil {
			return nil, err
		}
		want, listed := sha256.Sum256(d.Document), false
		for _, e := range entries {
			if e.Name == SNPFile {
				if e.SHA256 != want {
					return nil, fmt.Errorf("%w: %s lists %x for %s, the document hashes to %x", ErrMeasurementBinding, ChecksumFile, e.SHA256, SNPFile, want)
				}
				listed = true
			}
		}
		if !listed {
			return nil, fmt.Errorf("%w: %s has no %s line", ErrMeasurementBinding, ChecksumFile, SNPFile)
		}
	}
	l, err := ParseSNPMeasurement(d.Document)
	if err != nil {
		return nil, err
	}
	l.VCPUs, l.VCPUType, l.GuestFeatures = vcpus, vcpuType, guestFeatures
	return l, nil
}
