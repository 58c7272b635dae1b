package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"slices"
)

// MemoryRange is a guest physical range [Start, Start+Length).
type MemoryRange struct {
	Start, Length uint64
}

// End returns Start+Length.
func (r MemoryRange) End() uint64 { return r.Start + r.Length }

// TDHOBLayout is what the TD HOB depends on besides the RAM size: where
// the HOB lives and which ranges QEMU accepts before boot (the TD_HOB and
// TEMP_MEM sections of the firmware). It is what the td_hob witness of
// the lite measurement document encodes.
type TDHOBLayout struct {
	// Base is the guest physical address of the TD HOB (the TD_HOB
	// section).
	Base uint64
	// Accepted are the pre-accepted ranges, sorted by Start.
	Accepted []MemoryRange
}

// TDHOBLayout returns the HOB layout of the firmware: the TD_HOB section's
// address and the TD_HOB and TEMP_MEM sections sorted by address. Exactly
// one TD_HOB section is required ([ErrUnsupported] otherwise).
func (t *TDVF) TDHOBLayout() (*TDHOBLayout, error) {
	l := &TDHOBLayout{}
	hobs := 0
	for _, s := range t.Sections {
		switch s.Type {
		case SectionTDHOB:
			hobs++
			l.Base = s.MemoryAddress
		case SectionTempMem:
		default:
			continue
		}
		l.Accepted = append(l.Accepted, MemoryRange{s.MemoryAddress, s.MemoryDataSize})
	}
	if hobs != 1 {
		return nil, fmt.Errorf("measure: td hob: %w: firmware has %d TD_HOB sections, want 1", ErrUnsupported, hobs)
	}
	slices.SortStableFunc(l.Accepted, func(a, b MemoryRange) int { return cmpU64(a.Start, b.Start) })
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check validates a layout: non-empty, page aligned, sorted,
// non-overlapping ranges, the HOB inside one of them.
func (l *TDHOBLayout) check() error {
	if len(l.Accepted) == 0 || len(l.Accepted) > maxSections {
		return fmt.Errorf("measure: td hob: %w: %d accepted ranges", ErrMalformed, len(l.Accepted))
	}
	inside := false
	for i, r := range l.Accepted {
		if r.Length == 0 || r.Start%pageSize != 0 || r.Length%pageSize != 0 || r.End() < r.Start {
			return fmt.Errorf("measure: td hob: %w: accepted range %#x+%#x", ErrMalformed, r.Start, r.Length)
		}
		if i > 0 && r.Start < l.Accepted[i-1].End() {
			return fmt.Errorf("measure: td hob: %w: accepted ranges overlap at %#x", ErrMalformed, r.Start)
		}
		inside = inside || (l.Base >= r.Start && l.Base < r.End())
	}
	if !inside {
		return fmt.Errorf("measure: td hob: %w: HOB base %#x is not in an accepted range", ErrMalformed, l.Base)
	}
	return nil
}

// RAM layout constants of QEMU's q35 machine.
const (
	// LiteMemory2G and LiteMemoryMin are the RAM sizes lite mode supports:
	// exactly 2 GiB, or 2.75 GiB and more (§4.5, §4.7).
	LiteMemory2G  = 0x8000_0000
	LiteMemoryMin = 0xB000_0000
	fourGiB       = 0x1_0000_0000
)

// Resource types of the resource descriptor HOBs.
const (
	resourceSystemMemory = 0x00
	resourceUnaccepted   = 0x07
)

type ramEntry struct {
	MemoryRange
	accepted bool
}

// ramEntries splits memorySize as QEMU's q35 does: all below 4 GiB when
// it is under 2.75 GiB, otherwise 2 GiB below and the rest from 4 GiB.
func ramEntries(memorySize uint64) []ramEntry {
	if memorySize >= LiteMemoryMin {
		return []ramEntry{
			{MemoryRange: MemoryRange{0, LiteMemory2G}},
			{MemoryRange: MemoryRange{fourGiB, memorySize - LiteMemory2G}},
		}
	}
	return []ramEntry{{MemoryRange: MemoryRange{0, memorySize}}}
}

// Build returns the TD HOB QEMU hands the firmware for a TD with
// memorySize bytes of RAM (hw/i386/tdvf-hob.c): a PHIT handoff HOB, then
// one resource descriptor HOB per RAM range after the accepted ranges are
// split out (system memory for accepted, unaccepted memory otherwise),
// with EfiEndOfHobList pointing past the end-of-list HOB, which is not
// part of the measured bytes. An accepted range that does not fit in RAM
// is an error ([ErrMalformed]).
func (l *TDHOBLayout) Build(memorySize uint64) ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	entries := ramEntries(memorySize)
	for _, a := range l.Accepted {
		i := slices.IndexFunc(entries, func(e ramEntry) bool {
			return !e.accepted && a.Start >= e.Start && a.End() <= e.End()
		})
		if i < 0 {
			return nil, fmt.Errorf("measure: td hob: %w: accepted range %#x+%#x is outside %#x bytes of RAM", ErrMalformed, a.Start, a.Length, memorySize)
		}
		e := entries[i]
		var split []ramEntry
		if a.Start > e.Start {
			split = append(split, ramEntry{MemoryRange: MemoryRange{e.Start, a.Start - e.Start}})
		}
		split = append(split, ramEntry{MemoryRange: a, accepted: true})
		if a.End() < e.End() {
			split = append(split, ramEntry{MemoryRange: MemoryRange{a.End(), e.End() - a.End()}})
		}
		entries = slices.Replace(entries, i, i+1, split...)
	}
	const phitSize, resourceSize = 56, 48
	hob := make([]byte, phitSize, phitSize+resourceSize*len(entries))
	binary.LittleEndian.PutUint16(hob[0:], 0x0001) // EFI_HOB_TYPE_HANDOFF
	binary.LittleEndian.PutUint16(hob[2:], phitSize)
	binary.LittleEndian.PutUint32(hob[8:], 9) // EFI_HOB_HANDOFF_TABLE_VERSION
	var r [resourceSize]byte
	binary.LittleEndian.PutUint16(r[0:], 0x0003) // EFI_HOB_TYPE_RESOURCE_DESCRIPTOR
	binary.LittleEndian.PutUint16(r[2:], resourceSize)
	binary.LittleEndian.PutUint32(r[28:], 7) // PRESENT | INITIALIZED | TESTED
	for _, e := range entries {
		typ := uint32(resourceUnaccepted)
		if e.accepted {
			typ = resourceSystemMemory
		}
		binary.LittleEndian.PutUint32(r[24:], typ)
		binary.LittleEndian.PutUint64(r[32:], e.Start)
		binary.LittleEndian.PutUint64(r[40:], e.Length)
		hob = append(hob, r[:]...)
	}
	binary.LittleEndian.PutUint64(hob[48:], l.Base+uint64(len(hob))+8)
	return hob, nil
}

// Digest returns SHA-384 of the TD HOB for memorySize, the first RTMR0
// event.
func (l *TDHOBLayout) Digest(memorySize uint64) ([48]byte, error) {
	hob, err := l.Build(memorySize)
	if err != nil {
		return [48]byte{}, err
	}
	return sha512.Sum384(hob), nil
}

// Witness encodes the layout as the td_hob_witness_v1 of the lite
// measurement document: unsigned LEB128 values base page, HOB page − base
// page, range count, then per range its start page − base page and its
// page count. The base page is the first accepted range's.
func (l *TDHOBLayout) Witness() ([]byte, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	base := l.Accepted[0].Start / pageSize
	out := binary.AppendUvarint(nil, base)
	out = binary.AppendUvarint(out, l.Base/pageSize-base)
	out = binary.AppendUvarint(out, uint64(len(l.Accepted)))
	for _, r := range l.Accepted {
		out = binary.AppendUvarint(out, r.Start/pageSize-base)
		out = binary.AppendUvarint(out, r.Length/pageSize)
	}
	return out, nil
}

// ParseTDHOBWitness decodes a td_hob_witness_v1 (see
// [TDHOBLayout.Witness]). Values must be minimally encoded and the
// ranges sorted and disjoint; trailing bytes are an error. Errors wrap
// [ErrMalformed].
func ParseTDHOBWitness(w []byte) (*TDHOBLayout, error) {
	r := uvarintReader{b: w}
	base := r.next()
	hobPage := r.next()
	n := r.next()
	if r.err == nil && n > uint64(len(w)) {
		r.err = fmt.Errorf("%d ranges in %d bytes", n, len(w))
	}
	l := &TDHOBLayout{}
	const maxPage = (1<<64 - 1) / pageSize
	pageAddr := func(delta uint64) uint64 {
		if r.err == nil && (delta > maxPage || base > maxPage-delta) {
			r.err = fmt.Errorf("page %#x+%#x out of range", base, delta)
			return 0
		}
		return (base + delta) * pageSize
	}
	l.Base = pageAddr(hobPage)
	for i := uint64(0); r.err == nil && i < n; i++ {
		start := pageAddr(r.next())
		pages := r.next()
		if r.err == nil && (pages == 0 || pages > maxPage || start > (1<<64-1)-pages*pageSize) {
			r.err = fmt.Errorf("range of %#x pages at %#x", pages, start)
		}
		l.Accepted = append(l.Accepted, MemoryRange{start, pages * pageSize})
	}
	if r.err == nil && r.off != len(w) {
		r.err = fmt.Errorf("%d trailing bytes", len(w)-r.off)
	}
	if r.err != nil {
		return nil, fmt.Errorf("measure: td hob witness: %w: %w", ErrMalformed, r.err)
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

type uvarintReader struct {
	b   []byte
	off int
	err error
}

func (r *uvarintReader) next() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		r.err = fmt.Errorf("truncated at byte %d", r.off)
		return 0
	case n < 0:
		r.err = fmt.Errorf("value overflows 64 bits at byte %d", r.off)
		return 0
	case n > 1 && r.b[r.off+n-1] == 0:
		r.err = fmt.Errorf("non-minimal encoding at byte %d", r.off)
		return 0
	}
	r.off += n
	return v
}
