package pckcert

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed: the SGX extension or the certificate chain is not well
// formed.
var ErrMalformed = errors.New("pckcert: malformed")

// ErrNoExtension: the certificate carries no SGX extension.
var ErrNoExtension = errors.New("pckcert: no SGX extension")

// OIDs of the SGX extension and its entries.
var (
	OIDSGXExtension      = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidPPID              = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB               = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID             = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC             = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
	oidSGXType           = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
	oidPlatformInstance  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 6}
	oidConfiguration     = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7}
	oidConfigDynamic     = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7, 1}
	oidConfigCachedKeys  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7, 2}
	oidConfigSMTEnabled  = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 7, 3}
	oidTCBComponentStart = 1  // .2.1 … .2.16: SGX TCB components
	oidTCBPCESVN         = 17 // .2.17
	oidTCBCPUSVN         = 18 // .2.18
)

const tagEnumerated = 10

// SGXType is the SGX type of the platform.
type SGXType int

// SGX types.
const (
	SGXTypeStandard              SGXType = 0
	SGXTypeScalable              SGXType = 1
	SGXTypeScalableWithIntegrity SGXType = 2
)

func (t SGXType) String() string {
	switch t {
	case SGXTypeStandard:
		return "Standard"
	case SGXTypeScalable:
		return "Scalable"
	case SGXTypeScalableWithIntegrity:
		return "ScalableWithIntegrity"
	}
	return fmt.Sprintf("SGXType(%d)", int(t))
}

// MarshalText encodes the SGX type by name.
func (t SGXType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// TCB is the platform TCB the certificate was issued for.
type TCB struct {
	// Components are the 16 SGX TCB component SVNs (.2.1–.2.16). TCB
	// level matching uses these, not CPUSVN.
	Components [16]uint8 `json:"sgx_tcb_components"`
	PCESVN     uint16    `json:"pcesvn"`
	CPUSVN     [16]byte  `json:"-"`
}

// Configuration holds the optional platform configuration flags
// (Platform CA certificates only). A nil field was absent.
type Configuration struct {
	DynamicPlatform *bool `json:"dynamic_platform,omitempty"`
	CachedKeys      *bool `json:"cached_keys,omitempty"`
	SMTEnabled      *bool `json:"smt_enabled,omitempty"`
}

// Extension is the decoded SGX extension of a PCK certificate.
type Extension struct {
	PPID    [16]byte `json:"-"`
	TCB     TCB      `json:"tcb"`
	PCEID   [2]byte  `json:"-"`
	FMSPC   [6]byte  `json:"-"`
	SGXType SGXType  `json:"sgx_type"`
	// PlatformInstanceID is set only when present (Platform CA).
	PlatformInstanceID *[16]byte `json:"-"`
	// Configuration is set only when present (Platform CA).
	Configuration *Configuration `json:"configuration,omitempty"`
}

type entry struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// FromCertificate decodes the SGX extension of cert.
func FromCertificate(cert *x509.Certificate) (*Extension, error) {
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSGXExtension) {
			return ParseExtension(e.Value)
		}
	}
	return nil, ErrNoExtension
}

// ParseExtension decodes the DER value of the SGX extension. Entries are
// found by OID; unknown entries are ignored, duplicated or missing
// required ones are errors. On error the result is nil.
func ParseExtension(der []byte) (*Extension, error) {
	entries, err := parseEntries(der, "extension")
	if err != nil {
		return nil, err
	}
	x := &Extension{}
	seen := map[string]bool{}
	for _, e := range entries {
		key := e.ID.String()
		if seen[key] {
			return nil, fmt.Errorf("%w: duplicate entry %s", ErrMalformed, key)
		}
		seen[key] = true
		switch {
		case e.ID.Equal(oidPPID):
			err = octets(e.Value, x.PPID[:], "PPID")
		case e.ID.Equal(oidTCB):
			err = parseTCB(e.Value, &x.TCB)
		case e.ID.Equal(oidPCEID):
			err = octets(e.Value, x.PCEID[:], "PCE-ID")
		case e.ID.Equal(oidFMSPC):
			err = octets(e.Value, x.FMSPC[:], "FMSPC")
		case e.ID.Equal(oidSGXType):
			var n int
			n, err = smallInt(e.Value, tagEnumerated, 0, 255, "SGX type")
			x.SGXType = SGXType(n)
		case e.ID.Equal(oidPlatformInstance):
			var id [16]byte
			err = octets(e.Value, id[:], "platform instance ID")
			x.PlatformInstanceID = &id
		case e.ID.Equal(oidConfiguration):
			x.Configuration, err = parseConfiguration(e.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, req := range []asn1.ObjectIdentifier{oidPPID, oidTCB, oidPCEID, oidFMSPC, oidSGXType} {
		if !seen[req.String()] {
			return nil, fmt.Errorf("%w: missing entry %s", ErrMalformed, req)
		}
	}
	return x, nil
}

func parseEntries(der []byte, what string) ([]entry, error) {
	var raw []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %s: trailing data", ErrMalformed, what)
	}
	out := make([]entry, 0, len(raw))
	for _, r := range raw {
		var e entry
		rest, err := asn1.Unmarshal(r.FullBytes, &e)
		if err != nil {
			return nil, fmt.Errorf("%w: %s entry: %w", ErrMalformed, what, err)
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: %s entry: trailing data", ErrMalformed, what)
		}
		out = append(out, e)
	}
	return out, nil
}

func octets(v asn1.RawValue, dst []byte, what string) error {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || v.IsCompound {
		return fmt.Errorf("%w: %s is not an OCTET STRING", ErrMalformed, what)
	}
	if len(v.Bytes) != len(dst) {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, what, len(v.Bytes), len(dst))
	}
	copy(dst, v.Bytes)
	return nil
}

func smallInt(v asn1.RawValue, tag, lo, hi int, what string) (int, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != tag || v.IsCompound {
		return 0, fmt.Errorf("%w: %s has tag %d, want %d", ErrMalformed, what, v.Tag, tag)
	}
	var n int
	// Re-tag as INTEGER so encoding/asn1 applies its minimal-encoding rules.
	b := append([]byte{asn1.TagInteger}, v.FullBytes[1:]...)
	if _, err := asn1.Unmarshal(b, &n); err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %d out of range [%d, %d]", ErrMalformed, what, n, lo, hi)
	}
	return n, nil
}

func parseTCB(v asn1.RawValue, t *TCB) error {
	if v.Tag != asn1.TagSequence || !v.IsCompound {
		return fmt.Errorf("%w: TCB is not a SEQUENCE", ErrMalformed)
	}
	entries, err := parseEntries(v.FullBytes, "TCB")
	if err != nil {
		return err
	}
	var seen [19]bool
	for _, e := range entries {
		if len(e.ID) != len(oidTCB)+1 || !e.ID[:len(oidTCB)].Equal(oidTCB) {
			continue // not a TCB entry we know
		}
		i := e.ID[len(oidTCB)]
		if i < oidTCBComponentStart || i > oidTCBCPUSVN {
			continue
		}
		if seen[i] {
			return fmt.Errorf("%w: duplicate TCB entry %s", ErrMalformed, e.ID)
		}
		seen[i] = true
		switch {
		case i == oidTCBCPUSVN:
			err = octets(e.Value, t.CPUSVN[:], "CPUSVN")
		case i == oidTCBPCESVN:
			var n int
			n, err = smallInt(e.Value, asn1.TagInteger, 0, 0xFFFF, "PCESVN")
			t.PCESVN = uint16(n)
		default:
			var n int
			n, err = smallInt(e.Value, asn1.TagInteger, 0, 255, fmt.Sprintf("SGX TCB component %d", i))
			t.Components[i-1] = uint8(n)
		}
		if err != nil {
			return err
		}
	}
	for i := oidTCBComponentStart; i <= oidTCBCPUSVN; i++ {
		if !seen[i] {
			return fmt.Errorf("%w: TCB entry %s.%d missing", ErrMalformed, oidTCB, i)
		}
	}
	return nil
}

func parseConfiguration(v asn1.RawValue) (*Configuration, error) {
	if v.Tag != asn1.TagSequence || !v.IsCompound {
		return nil, fmt.Errorf("%w: configuration is not a SEQUENCE", ErrMalformed)
	}
	entries, err := parseEntries(v.FullBytes, "configuration")
	if err != nil {
		return nil, err
	}
	c := &Configuration{}
	for _, e := range entries {
		var dst **bool
		switch {
		case e.ID.Equal(oidConfigDynamic):
			dst = &c.DynamicPlatform
		case e.ID.Equal(oidConfigCachedKeys):
			dst = &c.CachedKeys
		case e.ID.Equal(oidConfigSMTEnabled):
			dst = &c.SMTEnabled
		default:
			continue
		}
		if *dst != nil {
			return nil, fmt.Errorf("%w: duplicate configuration entry %s", ErrMalformed, e.ID)
		}
		var b bool
		if _, err := asn1.Unmarshal(e.Value.FullBytes, &b); err != nil {
			return nil, fmt.Errorf("%w: configuration entry %s: %w", ErrMalformed, e.ID, err)
		}
		*dst = &b
	}
	return c, nil
}

// CAType identifies the intermediate CA that issued a PCK certificate.
type CAType int

// CA types.
const (
	CAUnknown CAType = iota
	CAPlatform
	CAProcessor
)

func (c CAType) String() string {
	switch c {
	case CAPlatform:
		return "platform"
	case CAProcessor:
		return "processor"
	}
	return "unknown"
}

// MarshalText encodes the CA type as used in PCS URLs ("platform",
// "processor").
func (c CAType) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// CN values of Intel's PCK intermediate CAs.
const (
	PlatformCACN  = "Intel SGX PCK Platform CA"
	ProcessorCACN = "Intel SGX PCK Processor CA"
)

// CATypeOf returns the CA type named by a certificate's issuer common
// name (for a PCK leaf) or subject common name (for the intermediate
// itself, when self is true).
func CATypeOf(cert *x509.Certificate, self bool) CAType {
	cn := cert.Issuer.CommonName
	if self {
		cn = cert.Subject.CommonName
	}
	switch strings.TrimSpace(cn) {
	case PlatformCACN:
		return CAPlatform
	case ProcessorCACN:
		return CAProcessor
	}
	return CAUnknown
}
