package measure

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// LiteVersion is the version of the lite measurement document this
// package reads and writes.
const LiteVersion = 3

// LiteMeasurement is the TDX lite measurement document,
// measurement.tdx.cbor (dstack TdxOsImageMeasurement, §4.7): what a
// verifier needs to recompute MRTD and RTMR0–2 without the image, given
// the RAM size, the QEMU version and the three ACPI digests of the event
// log.
type LiteMeasurement struct {
	// CmdlineSHA384 is the RTMR2 command line digest ([CmdlineDigest] of
	// the command line with " initrd=initrd").
	CmdlineSHA384 [48]byte
	// KernelAuthenticode is the RTMR1 kernel digest for a kernel patched
	// at 2.75 GiB of RAM ([KernelAuthenticode] with [LiteMemoryMin]); it
	// is the same for exactly 2 GiB.
	KernelAuthenticode [48]byte
	// InitrdSHA384 is SHA-384 of the initrd.
	InitrdSHA384 [48]byte
	// OVMF is the RTMR0 layout, [OVMFVariantPre202505].
	OVMF string
	// MRTD holds both MRTD candidates, indexed by PageOrder.
	MRTD [2][48]byte
	// TDHOBWitness is the td_hob_witness_v1 ([TDHOBLayout.Witness]).
	TDHOBWitness []byte
}

// liteWire is the CBOR shape; field order is the encoding order dstack
// uses.
type liteWire struct {
	Version uint64        `cbor:"version"`
	Image   liteWireImage `cbor:"image"`
	TDVF    liteWireTDVF  `cbor:"tdvf"`
}

type liteWireImage struct {
	CmdlineSHA384      []byte `cbor:"cmdline_sha384"`
	KernelAuthenticode []byte `cbor:"kernel_authenticode"`
	InitrdSHA384       []byte `cbor:"initrd_sha384"`
}

type liteWireTDVF struct {
	OVMF  string       `cbor:"ovmf"`
	MRTD  liteWireMRTD `cbor:"mrtd"`
	TDHOB []byte       `cbor:"td_hob"`
}

type liteWireMRTD struct {
	SinglePass []byte `cbor:"single_pass"`
	TwoPass    []byte `cbor:"two_pass"`
}

// maxLiteSize bounds a lite document; real ones are about 330 bytes.
const maxLiteSize = 64 << 10

var (
	liteDecodeOptions = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}
	liteVersionMode = mustDecMode(liteDecodeOptions)
	liteStrictMode  = mustDecMode(func() cbor.DecOptions {
		o := liteDecodeOptions
		o.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
		return o
	}())
	liteEncMode = func() cbor.EncMode {
		m, err := cbor.EncOptions{}.EncMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
)

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// ParseLiteMeasurement decodes measurement.tdx.cbor. The document must
// be a version 3 map with exactly the fields of [LiteMeasurement]
// (48-byte digests, a witness that parses, OVMF "pre202505"); duplicate
// keys, indefinite lengths, tags and trailing bytes are rejected. Errors
// wrap [ErrMalformed] or [ErrUnsupported] (another version or OVMF
// variant).
func ParseLiteMeasurement(b []byte) (*LiteMeasurement, error) {
	if len(b) > maxLiteSize {
		return nil, fmt.Errorf("measure: lite: %w: %d bytes", ErrMalformed, len(b))
	}
	var v struct {
		Version *uint64 `cbor:"version"`
	}
	if err := liteVersionMode.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("measure: lite: %w: %w", ErrMalformed, err)
	}
	if v.Version == nil {
		return nil, fmt.Errorf("measure: lite: %w: no version", ErrMalformed)
	}
	if *v.Version != LiteVersion {
		return nil, fmt.Errorf("measure: lite: %w: document version %d (want %d)", ErrUnsupported, *v.Version, LiteVersion)
	}
	var w liteWire
	if err := liteStrictMode.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("measure: lite: %w: %w", ErrMalformed, err)
	}
	l := &LiteMeasurement{OVMF: w.TDVF.OVMF, TDHOBWitness: w.TDVF.TDHOB}
	for _, f := range []struct {
		name string
		src  []byte
		dst  *[48]byte
	}{
		{"image.cmdline_sha384", w.Image.CmdlineSHA384, &l.CmdlineSHA384},
		{"image.kernel_authenticode", w.Image.KernelAuthenticode, &l.KernelAuthenticode},
		{"image.initrd_sha384", w.Image.InitrdSHA384, &l.InitrdSHA384},
		{"tdvf.mrtd.single_pass", w.TDVF.MRTD.SinglePass, &l.MRTD[SinglePass]},
		{"tdvf.mrtd.two_pass", w.TDVF.MRTD.TwoPass, &l.MRTD[TwoPass]},
	} {
		d, ok := digest48(f.src)
		if !ok {
			return nil, fmt.Errorf("measure: lite: %w: %s has %d bytes, want 48", ErrMalformed, f.name, len(f.src))
		}
		*f.dst = d
	}
	if l.OVMF != OVMFVariantPre202505 {
		return nil, fmt.Errorf("measure: lite: %w: tdvf.ovmf %q", ErrUnsupported, l.OVMF)
	}
	if _, err := ParseTDHOBWitness(l.TDHOBWitness); err != nil {
		return nil, fmt.Errorf("measure: lite: tdvf.td_hob: %w", err)
	}
	return l, nil
}

// Marshal encodes the document as dstack does: a CBOR map with the keys
// version, image (cmdline_sha384, kernel_authenticode, initrd_sha384),
// tdvf (ovmf, mrtd (single_pass, two_pass), td_hob) in that order, byte
// strings for digests. Parsing dstack's documents and marshaling them
// again reproduces their bytes.
func (l *LiteMeasurement) Marshal() ([]byte, error) {
	w := liteWire{
		Version: LiteVersion,
		Image: liteWireImage{
			CmdlineSHA384:      l.CmdlineSHA384[:],
			KernelAuthenticode: l.KernelAuthenticode[:],
			InitrdSHA384:       l.InitrdSHA384[:],
		},
		TDVF: liteWireTDVF{
			OVMF:  l.OVMF,
			MRTD:  liteWireMRTD{SinglePass: l.MRTD[SinglePass][:], TwoPass: l.MRTD[TwoPass][:]},
			TDHOB: l.TDHOBWitness,
		},
	}
	if w.TDVF.TDHOB == nil {
		w.TDVF.TDHOB = []byte{}
	}
	b, err := liteEncMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("measure: lite: %w", err)
	}
	return b, nil
}

// NewLiteMeasurement computes the lite measurement document of an image,
// for a build pipeline to publish: both MRTD candidates, the TD HOB
// witness, the kernel digest at 2.75 GiB, the command line and initrd
// digests.
func NewLiteMeasurement(img *Image) (*LiteMeasurement, error) {
	tdvf, err := ParseTDVF(img.Firmware)
	if err != nil {
		return nil, err
	}
	layout, err := tdvf.TDHOBLayout()
	if err != nil {
		return nil, err
	}
	witness, err := layout.Witness()
	if err != nil {
		return nil, err
	}
	kernel, err := KernelAuthenticode(img.Kernel, img.initrdSize(), LiteMemoryMin)
	if err != nil {
		return nil, err
	}
	cmd, err := CmdlineDigest(KernelCmdline(img.Cmdline))
	if err != nil {
		return nil, err
	}
	return &LiteMeasurement{
		CmdlineSHA384:      cmd,
		KernelAuthenticode: kernel,
		InitrdSHA384:       img.initrdSHA384(),
		OVMF:               OVMFVariantPre202505,
		MRTD:               tdvf.MRTDs(),
		TDHOBWitness:       witness,
	}, nil
}

// CheckLiteMemory reports whether lite mode can express memorySize:
// exactly 2 GiB or at least 2.75 GiB, the sizes for which the kernel
// digest does not depend on RAM ([ErrUnsupported] otherwise).
func CheckLiteMemory(memorySize uint64) error {
	if memorySize != LiteMemory2G && memorySize < LiteMemoryMin {
		return fmt.Errorf("measure: lite: %w: memory size %d bytes (lite mode needs exactly 2 GiB or at least 2.75 GiB)", ErrUnsupported, memorySize)
	}
	return nil
}

// Measure recomputes MRTD and RTMR0–2 from the document for machine m
// (§4.7): the MRTD candidate m selects, RTMR0 from the TD HOB rebuilt
// from the witness for m.MemorySize, fw (nil: [DstackOVMF]) and acpi
// (nil leaves RTMR0 incomplete), RTMR1 from the stored kernel digest and
// RTMR2 from the stored command line and initrd digests.
func (l *LiteMeasurement) Measure(m Machine, acpi *ACPIDigests, fw *FirmwareDigests) (*Measurement, error) {
	if err := CheckLiteMemory(m.MemorySize); err != nil {
		return nil, err
	}
	if err := checkVariant(l.OVMF); err != nil {
		return nil, err
	}
	order, err := m.PageOrder()
	if err != nil {
		return nil, err
	}
	layout, err := ParseTDHOBWitness(l.TDHOBWitness)
	if err != nil {
		return nil, err
	}
	hob, err := layout.Digest(m.MemorySize)
	if err != nil {
		return nil, err
	}
	candidates := l.MRTD
	out := &Measurement{MRTD: candidates[order], PageOrder: order, MRTDCandidates: &candidates}
	out.RTMRs[0] = newRegister(0, rtmr0Events(hob, SourceComputed, fw, acpi))
	out.RTMRs[1] = newRegister(1, rtmr1Events(l.KernelAuthenticode, SourceLite))
	out.RTMRs[2] = newRegister(2, rtmr2Events(l.CmdlineSHA384, l.InitrdSHA384, SourceLite))
	out.bindACPI(acpi, m.CPUs)
	return out, nil
}
