package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// PageOrder is the order in which QEMU adds and measures the TDVF pages,
// which changes MRTD.
type PageOrder int

const (
	// SinglePass: for each page, TDH.MEM.PAGE.ADD then its TDH.MR.EXTENDs
	// (QEMU ≥ 9.0 by default).
	SinglePass PageOrder = iota
	// TwoPass: per section, all TDH.MEM.PAGE.ADDs, then all
	// TDH.MR.EXTENDs (QEMU 8.x by default).
	TwoPass
)

// String returns "single_pass" or "two_pass", the keys of the lite
// measurement document.
func (o PageOrder) String() string {
	switch o {
	case SinglePass:
		return "single_pass"
	case TwoPass:
		return "two_pass"
	}
	return "PageOrder(" + strconv.Itoa(int(o)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (o PageOrder) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// MRTD computes the TD measurement QEMU produces when it loads the
// firmware's sections in descriptor order with the given page order:
// SHA-384 over, per page of each section,
//
//	TDH.MEM.PAGE.ADD (skipped with AttrPageAug): 128 bytes,
//	    "MEM.PAGE.ADD" at 0, LE64(GPA) at 16, zero elsewhere
//	TDH.MR.EXTEND ×16 (only with AttrMRExtend), per 256-byte chunk:
//	    128 bytes "MR.EXTEND" at 0, LE64(GPA of the chunk) at 16,
//	    then the 256 bytes of the image at DataOffset + chunk offset
//
// (dstack.md §4.2). MRTD is safe for concurrent use.
func (t *TDVF) MRTD(order PageOrder) [48]byte {
	h := sha512.New384()
	t.writeMRTD(h, order)
	var out [48]byte
	h.Sum(out[:0])
	return out
}

// MRTDs returns the MRTD for both page orders, indexed by PageOrder.
func (t *TDVF) MRTDs() [2][48]byte {
	return [2][48]byte{t.MRTD(SinglePass), t.MRTD(TwoPass)}
}

const (
	mrRecordSize = 128
	chunkSize    = 256
	chunksPerPg  = pageSize / chunkSize
	// extendBlock is the TDH.MR.EXTEND stream of one page.
	extendBlock = chunksPerPg * (mrRecordSize + chunkSize)
	// addBatch is how many PAGE.ADD records are hashed per Write in
	// two-pass order.
	addBatch = 64
)

// mrtdWriter builds the measurement stream in reusable buffers so that
// each page costs one hash Write.
type mrtdWriter struct {
	h   hash.Hash
	fw  []byte
	buf []byte // ADD record followed by one page's extend block
	add []byte // addBatch ADD records
}

func (t *TDVF) writeMRTD(h hash.Hash, order PageOrder) {
	w := &mrtdWriter{h: h, fw: t.Firmware, buf: make([]byte, mrRecordSize+extendBlock)}
	copy(w.buf, "MEM.PAGE.ADD")
	for i := range chunksPerPg {
		copy(w.buf[mrRecordSize+i*(mrRecordSize+chunkSize):], "MR.EXTEND")
	}
	for i := range t.Sections {
		s := &t.Sections[i]
		pages := s.MemoryDataSize / pageSize
		add := s.Attributes&AttrPageAug == 0
		ext := s.Attributes&AttrMRExtend != 0
		if order == TwoPass {
			if add {
				w.addPages(s.MemoryAddress, pages)
			}
			if ext {
				for p := range pages {
					w.page(s, p, false, true)
				}
			}
			continue
		}
		if add || ext {
			for p := range pages {
				w.page(s, p, add, ext)
			}
		}
	}
}

// page hashes the ADD record and/or the extend block of page p of s.
func (w *mrtdWriter) page(s *Section, p uint64, add, ext bool) {
	gpa := s.MemoryAddress + p*pageSize
	lo, hi := mrRecordSize, mrRecordSize
	if add {
		binary.LittleEndian.PutUint64(w.buf[16:], gpa)
		lo = 0
	}
	if ext {
		data := w.fw[uint64(s.DataOffset)+p*pageSize:][:pageSize]
		blk := w.buf[mrRecordSize:]
		for i := range chunksPerPg {
			rec := blk[i*(mrRecordSize+chunkSize):]
			binary.LittleEndian.PutUint64(rec[16:], gpa+uint64(i*chunkSize))
			copy(rec[mrRecordSize:mrRecordSize+chunkSize], data[i*chunkSize:])
		}
		hi = len(w.buf)
	}
	w.h.Write(w.buf[lo:hi])
}

// addPages hashes the ADD records of n pages from gpa, in batches.
func (w *mrtdWriter) addPages(gpa, n uint64) {
	if w.add == nil {
		w.add = make([]byte, addBatch*mrRecordSize)
		for i := range addBatch {
			copy(w.add[i*mrRecordSize:], "MEM.PAGE.ADD")
		}
	}
	for n > 0 {
		k := min(n, addBatch)
		for i := range k {
			binary.LittleEndian.PutUint64(w.add[i*mrRecordSize+16:], gpa+i*pageSize)
		}
		w.h.Write(w.add[:k*mrRecordSize])
		gpa += k * pageSize
		n -= k
	}
}

// DefaultQEMUVersion is the QEMU version assumed when none is given, as
// in dstack-mr.
const DefaultQEMUVersion = "9.1.0"

// semver is a parsed MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] version.
type semver struct {
	v   [3]uint64
	pre bool
}

// parseSemver accepts exactly three numeric components (as Rust's semver
// crate, which dstack uses), an optional pre-release and build metadata.
func parseSemver(s string) (semver, error) {
	core, _, _ := strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 || (hasPre && pre == "") {
		return semver{}, fmt.Errorf("%w: qemu version %q is not MAJOR.MINOR.PATCH", ErrMalformed, s)
	}
	var v semver
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return semver{}, fmt.Errorf("%w: qemu version %q is not MAJOR.MINOR.PATCH", ErrMalformed, s)
		}
		v.v[i] = n
	}
	v.pre = hasPre
	return v, nil
}

// less reports v < MAJOR.0.0 with semver precedence (a pre-release sorts
// before its release).
func (v semver) less(major uint64) bool {
	if v.v[0] != major {
		return v.v[0] < major
	}
	return v.v[1] == 0 && v.v[2] == 0 && v.pre
}

// PageOrder chooses the MRTD page order for m as dstack does (§4.1):
// QEMU before 8.0.0 is unsupported; 8.x defaults to [TwoPass] and 9.0.0 and
// later to [SinglePass]; a set QEMUSinglePassAddPages overrides the
// default, with dstack's inverted meaning (true selects TwoPass).
func (m Machine) PageOrder() (PageOrder, error) {
	s := m.QEMUVersion
	if s == "" {
		s = DefaultQEMUVersion
	}
	v, err := parseSemver(s)
	if err != nil {
		return 0, fmt.Errorf("measure: %w", err)
	}
	if v.less(8) {
		return 0, fmt.Errorf("measure: %w: qemu version %s (need 8.0.0 or later)", ErrUnsupported, s)
	}
	twoPass := !v.less(8) && v.less(9)
	if m.QEMUSinglePassAddPages != nil {
		twoPass = *m.QEMUSinglePassAddPages
	}
	if twoPass {
		return TwoPass, nil
	}
	return SinglePass, nil
}
