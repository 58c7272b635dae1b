package snp

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
)

// amdOID is AMD's VCEK/VLEK extension prefix 1.3.6.1.4.1.3704.1.
var amdOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}

// Extensions are the AMD extensions of a VCEK or VLEK certificate (AMD
// "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
// Specification").
type Extensions struct {
	StructVersion uint8 `json:"struct_version"`
	// ProductName is e.g. "Milan-B0"; its part before '-' is the product
	// line.
	ProductName string `json:"product_name"`
	// BootLoader … Microcode are the SPLs (.3.1, .3.2, .3.3, .3.8), FMC is
	// .3.9 (Turin) and Reserved holds .3.4–.3.7.
	BootLoader uint8    `json:"bl_spl"`
	TEE        uint8    `json:"tee_spl"`
	SNP        uint8    `json:"snp_spl"`
	Microcode  uint8    `json:"ucode_spl"`
	FMC        uint8    `json:"fmc_spl"`
	Reserved   [4]uint8 `json:"reserved_spl"`
	HasFMC     bool     `json:"has_fmc_spl"`
	// HWID is the hardware ID (.4; VCEK only): the CHIP_ID it was issued
	// for. CSPID (.5) names the cloud provider of a VLEK.
	HWID  hexBytes `json:"hwid,omitempty"`
	CSPID string   `json:"csp_id,omitempty"`
}

// TCB composes the extensions' SPLs into the TCB_VERSION of product p.
// On Milan and Genoa the reserved SPLs .3.4–.3.7 fill bytes 2–5; on
// Turin they have no place and must be zero, which ParseExtensions
// checks.
func (e *Extensions) TCB(p Product) TCBVersion {
	t := TCBParts{FMC: e.FMC, BootLoader: e.BootLoader, TEE: e.TEE, SNP: e.SNP, Microcode: e.Microcode}.Compose(p)
	if p != ProductTurin {
		for i, v := range e.Reserved {
			t |= TCBVersion(v) << (8 * (2 + i))
		}
	}
	return t
}

// ParseExtensions reads the AMD extensions of c. Every AMD extension must
// be known and appear once; the SPLs and product name are required.
func ParseExtensions(c *x509.Certificate) (*Extensions, error) {
	e := &Extensions{}
	seen := map[string]bool{}
	for _, x := range c.Extensions {
		if len(x.Id) <= len(amdOID) || !x.Id[:len(amdOID)].Equal(amdOID) {
			continue
		}
		key := x.Id[len(amdOID):].String()
		if seen[key] {
			return nil, fmt.Errorf("%w: VCEK extension %s repeated", ErrMalformed, x.Id)
		}
		seen[key] = true
		var err error
		switch key {
		case "1":
			e.StructVersion, err = extU8(x.Value)
		case "2":
			e.ProductName, err = extIA5(x.Value)
		case "3.1":
			e.BootLoader, err = extU8(x.Value)
		case "3.2":
			e.TEE, err = extU8(x.Value)
		case "3.3":
			e.SNP, err = extU8(x.Value)
		case "3.4", "3.5", "3.6", "3.7":
			e.Reserved[key[2]-'4'], err = extU8(x.Value)
		case "3.8":
			e.Microcode, err = extU8(x.Value)
		case "3.9":
			e.FMC, err = extU8(x.Value)
			e.HasFMC = true
		case "4":
			e.HWID, err = extOctets(x.Value)
		case "5":
			e.CSPID, err = extIA5(x.Value)
		default:
			err = fmt.Errorf("unknown AMD extension")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: VCEK extension %s: %v", ErrMalformed, x.Id, err)
		}
	}
	for _, k := range []string{"2", "3.1", "3.2", "3.3", "3.8"} {
		if !seen[k] {
			return nil, fmt.Errorf("%w: VCEK extension %s.%s missing", ErrMalformed, amdOID, k)
		}
	}
	if seen["4"] && seen["5"] {
		return nil, fmt.Errorf("%w: certificate has both hwID and CSP_ID", ErrMalformed)
	}
	return e, nil
}

// ProductLine is the part of ProductName before the first '-'.
func (e *Extensions) ProductLine() string {
	line, _, _ := strings.Cut(e.ProductName, "-")
	return line
}

func extU8(v []byte) (uint8, error) {
	var i int64
	rest, err := asn1.Unmarshal(v, &i)
	if err != nil {
		return 0, err
	}
	if len(rest) != 0 {
		return 0, fmt.Errorf("trailing bytes")
	}
	if i < 0 || i > 255 {
		return 0, fmt.Errorf("value %d is not a byte", i)
	}
	return uint8(i), nil
}

func extIA5(v []byte) (string, error) {
	if len(v) == 0 || v[0] != asn1.TagIA5String {
		return "", fmt.Errorf("not an IA5String")
	}
	var s string
	rest, err := asn1.UnmarshalWithParams(v, &s, "ia5")
	if err != nil {
		return "", err
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("trailing bytes")
	}
	return s, nil
}

// extOctets reads the hwID: AMD KDS stores the raw bytes without an
// OCTET STRING header (64 bytes, or 8 on Turin); a DER OCTET STRING is
// accepted too.
func extOctets(v []byte) ([]byte, error) {
	if len(v) == 64 || len(v) == 8 {
		return v, nil
	}
	var o []byte
	rest, err := asn1.Unmarshal(v, &o)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("trailing bytes")
	}
	if len(o) != 64 && len(o) != 8 {
		return nil, fmt.Errorf("hwID of %d bytes", len(o))
	}
	return o, nil
}
