package snp

import (
	"encoding/binary"
	"fmt"
)

// Product is an SEV-SNP product line, which names the ARK, the KDS path
// and the TCB_VERSION layout.
type Product int

// Product lines. ProductUnknown is the zero value.
const (
	ProductUnknown Product = iota
	ProductMilan
	ProductGenoa
	ProductTurin
)

// Products lists the supported product lines.
var Products = []Product{ProductMilan, ProductGenoa, ProductTurin}

func (p Product) String() string {
	switch p {
	case ProductMilan:
		return "Milan"
	case ProductGenoa:
		return "Genoa"
	case ProductTurin:
		return "Turin"
	}
	return "unknown"
}

// ParseProduct maps a product line name (case-sensitive, as AMD KDS
// spells it: Milan, Genoa, Turin) to a Product.
func ParseProduct(s string) (Product, error) {
	for _, p := range Products {
		if p.String() == s {
			return p, nil
		}
	}
	return ProductUnknown, fmt.Errorf("%w: product line %q", ErrUnsupported, s)
}

// ProductFromCPUID maps the report's combined CPUID family and model to
// a product line: family 0x19 model 0x00–0x0F Milan, 0x10–0x1F and
// 0xA0–0xAF Genoa (Bergamo and Siena use Genoa's keys), family 0x1A model
// 0x00–0x11 Turin.
func ProductFromCPUID(family, model uint8) (Product, error) {
	switch {
	case family == 0x19 && model <= 0x0F:
		return ProductMilan, nil
	case family == 0x19 && (model >= 0x10 && model <= 0x1F || model >= 0xA0 && model <= 0xAF):
		return ProductGenoa, nil
	case family == 0x1A && model <= 0x11:
		return ProductTurin, nil
	}
	return ProductUnknown, fmt.Errorf("%w: CPUID family 0x%02x model 0x%02x is no known SEV-SNP product", ErrUnsupported, family, model)
}

// TCBVersion is a TCB_VERSION as the report stores it (8 bytes read as a
// little-endian u64). Its layout depends on the product: see Parts.
type TCBVersion uint64

// Bytes returns the eight bytes in report order.
func (t TCBVersion) Bytes() [8]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(t))
	return b
}

// TCBParts are the security patch levels of a TCB_VERSION.
type TCBParts struct {
	// FMC is the firmware (FMC) SPL, Turin only.
	FMC        uint8 `json:"fmc"`
	BootLoader uint8 `json:"bootloader"`
	TEE        uint8 `json:"tee"`
	SNP        uint8 `json:"snp"`
	Microcode  uint8 `json:"microcode"`
}

// Parts decodes t for product p. Milan and Genoa: byte 0 boot loader,
// 1 TEE, 2–5 reserved, 6 SNP, 7 microcode. Turin: byte 0 FMC, 1 boot
// loader, 2 TEE, 3 SNP, 4–6 reserved, 7 microcode.
func (t TCBVersion) Parts(p Product) TCBParts {
	b := t.Bytes()
	if p == ProductTurin {
		return TCBParts{FMC: b[0], BootLoader: b[1], TEE: b[2], SNP: b[3], Microcode: b[7]}
	}
	return TCBParts{BootLoader: b[0], TEE: b[1], SNP: b[6], Microcode: b[7]}
}

// Compose builds the TCB_VERSION of parts for product p (reserved bytes
// zero).
func (tp TCBParts) Compose(p Product) TCBVersion {
	var b [8]byte
	if p == ProductTurin {
		b[0], b[1], b[2], b[3], b[7] = tp.FMC, tp.BootLoader, tp.TEE, tp.SNP, tp.Microcode
	} else {
		b[0], b[1], b[6], b[7] = tp.BootLoader, tp.TEE, tp.SNP, tp.Microcode
	}
	return TCBVersion(binary.LittleEndian.Uint64(b[:]))
}

// AtLeast reports whether every SPL of tp is ≥ the same SPL of min.
func (tp TCBParts) AtLeast(min TCBParts) bool {
	return tp.FMC >= min.FMC && tp.BootLoader >= min.BootLoader && tp.TEE >= min.TEE &&
		tp.SNP >= min.SNP && tp.Microcode >= min.Microcode
}

// TCBStatus is dstack's SNP TCB status.
type TCBStatus string

// TCB statuses. dstack defines only these two for SEV-SNP.
const (
	TCBUpToDate  TCBStatus = "UpToDate"
	TCBOutOfDate TCBStatus = "OutOfDate"
)

// TCBDetail gives every TCB_VERSION of a report, decoded for its product.
type TCBDetail struct {
	Current   TCBParts `json:"current"`
	Reported  TCBParts `json:"reported"`
	Committed TCBParts `json:"committed"`
	Launch    TCBParts `json:"launch"`
	// ReportedBelowCurrent, CommittedBelowCurrent and LaunchBelowCurrent
	// list the SPL names ("bootloader", …) where that TCB is lower than
	// CURRENT_TCB.
	ReportedBelowCurrent  []string `json:"reported_below_current,omitempty"`
	CommittedBelowCurrent []string `json:"committed_below_current,omitempty"`
	LaunchBelowCurrent    []string `json:"launch_below_current,omitempty"`
}

// tcbStatus implements dstack's rule: UpToDate iff CURRENT = REPORTED =
// COMMITTED = LAUNCH over the whole 8 bytes.
func tcbStatus(r *Report) TCBStatus {
	if r.CurrentTCB == r.ReportedTCB && r.CurrentTCB == r.CommittedTCB && r.CurrentTCB == r.LaunchTCB {
		return TCBUpToDate
	}
	return TCBOutOfDate
}

func tcbDetail(r *Report, p Product) TCBDetail {
	cur := r.CurrentTCB.Parts(p)
	d := TCBDetail{
		Current:   cur,
		Reported:  r.ReportedTCB.Parts(p),
		Committed: r.CommittedTCB.Parts(p),
		Launch:    r.LaunchTCB.Parts(p),
	}
	d.ReportedBelowCurrent = below(d.Reported, cur, p)
	d.CommittedBelowCurrent = below(d.Committed, cur, p)
	d.LaunchBelowCurrent = below(d.Launch, cur, p)
	return d
}

func below(a, cur TCBParts, p Product) []string {
	var out []string
	if p == ProductTurin && a.FMC < cur.FMC {
		out = append(out, "fmc")
	}
	if a.BootLoader < cur.BootLoader {
		out = append(out, "bootloader")
	}
	if a.TEE < cur.TEE {
		out = append(out, "tee")
	}
	if a.SNP < cur.SNP {
		out = append(out, "snp")
	}
	if a.Microcode < cur.Microcode {
		out = append(out, "microcode")
	}
	return out
}
