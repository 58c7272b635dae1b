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

// oidKey identifies an SGX extension entry by the content octets of its
// OID, compared as bytes (no decoding).
var (
	keyPPID          = oidContent(oidPPID)
	keyTCB           = oidContent(oidTCB)
	keyPCEID         = oidContent(oidPCEID)
	keyFMSPC         = oidContent(oidFMSPC)
	keySGXType       = oidContent(oidSGXType)
	keyPlatformInst  = oidContent(oidPlatformInstance)
	keyConfiguration = oidContent(oidConfiguration)
	keyConfigDynamic = oidContent(oidConfigDynamic)
	keyConfigCached  = oidContent(oidConfigCachedKeys)
	keyConfigSMT     = oidContent(oidConfigSMTEnabled)
	keyTCBPrefix     = keyTCB
)

// FromCertificate decodes the SGX extension of cert.
func FromCertificate(cert *x509.Certificate) (*Extension, error) {
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSGXExtension) {
			return ParseExtension(e.Value)
		}
	}
	return nil, ErrNoExtension
}

// entries reads SEQUENCE { SEQUENCE { OID, value } ... } and calls fn with
// each entry's OID content octets and value element.
func entries(der []byte, what string, fn func(oid string, tag byte, v []byte) error) error {
	outer := derReader{b: der}
	body, err := outer.expect(tagSequence, what)
	if err != nil {
		return err
	}
	if !outer.empty() {
		return fmt.Errorf("%w: %s: trailing data", ErrMalformed, what)
	}
	r := derReader{b: body}
	seen := map[string]bool{}
	for !r.empty() {
		e, err := r.expect(tagSequence, what+" entry")
		if err != nil {
			return err
		}
		er := derReader{b: e}
		oid, err := er.expect(tagOID, what+" entry id")
		if err != nil {
			return err
		}
		if len(oid) == 0 || oid[len(oid)-1]&0x80 != 0 {
			return fmt.Errorf("%w: %s: bad OID", ErrMalformed, what)
		}
		tag, v, err := er.next()
		if err != nil {
			return err
		}
		if !er.empty() {
			return fmt.Errorf("%w: %s entry: trailing data", ErrMalformed, what)
		}
		if seen[string(oid)] {
			return fmt.Errorf("%w: %s: duplicate entry", ErrMalformed, what)
		}
		seen[string(oid)] = true
		if err := fn(string(oid), tag, v); err != nil {
			return err
		}
	}
	return nil
}

func octets(tag byte, v []byte, dst []byte, what string) error {
	if tag != tagOctetString {
		return fmt.Errorf("%w: %s is not an OCTET STRING", ErrMalformed, what)
	}
	if len(v) != len(dst) {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, what, len(v), len(dst))
	}
	copy(dst, v)
	return nil
}

func uintOf(tag, want byte, v []byte, max int, what string) (int, error) {
	if tag != want {
		return 0, fmt.Errorf("%w: %s has tag %#x, want %#x", ErrMalformed, what, tag, want)
	}
	return derUint(v, max, what)
}

// ParseExtension decodes the DER value of the SGX extension. Entries are
// found by OID; unknown entries are ignored, duplicated or missing
// required ones are errors. On error the result is nil.
func ParseExtension(der []byte) (*Extension, error) {
	x := &Extension{}
	var have struct{ ppid, tcb, pceid, fmspc, sgxType bool }
	err := entries(der, "extension", func(oid string, tag byte, v []byte) error {
		switch oid {
		case keyPPID:
			have.ppid = true
			return octets(tag, v, x.PPID[:], "PPID")
		case keyTCB:
			have.tcb = true
			return parseTCB(tag, v, &x.TCB)
		case keyPCEID:
			have.pceid = true
			return octets(tag, v, x.PCEID[:], "PCE-ID")
		case keyFMSPC:
			have.fmspc = true
			return octets(tag, v, x.FMSPC[:], "FMSPC")
		case keySGXType:
			have.sgxType = true
			n, err := uintOf(tag, tagEnumerated, v, 255, "SGX type")
			x.SGXType = SGXType(n)
			return err
		case keyPlatformInst:
			var id [16]byte
			x.PlatformInstanceID = &id
			return octets(tag, v, id[:], "platform instance ID")
		case keyConfiguration:
			var err error
			x.Configuration, err = parseConfiguration(tag, v)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range []struct {
		ok   bool
		name string
	}{{have.ppid, "PPID"}, {have.tcb, "TCB"}, {have.pceid, "PCE-ID"}, {have.fmspc, "FMSPC"}, {have.sgxType, "SGX type"}} {
		if !r.ok {
			return nil, fmt.Errorf("%w: missing entry %s", ErrMalformed, r.name)
		}
	}
	return x, nil
}

func parseTCB(tag byte, v []byte, t *TCB) error {
	if tag != tagSequence {
		return fmt.Errorf("%w: TCB is not a SEQUENCE", ErrMalformed)
	}
	var seen [19]bool
	// Re-wrap the content so entries can read it as a SEQUENCE.
	err := entries(append([]byte{tagSequence}, derLength(v)...), "TCB", func(oid string, tag byte, v []byte) error {
		if len(oid) != len(keyTCBPrefix)+1 || oid[:len(keyTCBPrefix)] != keyTCBPrefix {
			return nil // not a TCB entry we know
		}
		i := int(oid[len(keyTCBPrefix)])
		if i < oidTCBComponentStart || i > oidTCBCPUSVN {
			return nil
		}
		seen[i] = true
		switch i {
		case oidTCBCPUSVN:
			return octets(tag, v, t.CPUSVN[:], "CPUSVN")
		case oidTCBPCESVN:
			n, err := uintOf(tag, tagInteger, v, 0xFFFF, "PCESVN")
			t.PCESVN = uint16(n)
			return err
		default:
			n, err := uintOf(tag, tagInteger, v, 255, fmt.Sprintf("SGX TCB component %d", i))
			t.Components[i-1] = uint8(n)
			return err
		}
	})
	if err != nil {
		return err
	}
	for i := oidTCBComponentStart; i <= oidTCBCPUSVN; i++ {
		if !seen[i] {
			return fmt.Errorf("%w: TCB entry %s.%d missing", ErrMalformed, oidTCB, i)
		}
	}
	return nil
}

// derLength returns a DER length header followed by v.
func derLength(v []byte) []byte {
	n := len(v)
	var out []byte
	switch {
	case n < 0x80:
		out = []byte{byte(n)}
	case n < 0x100:
		out = []byte{0x81, byte(n)}
	case n < 0x10000:
		out = []byte{0x82, byte(n >> 8), byte(n)}
	default:
		out = []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(out, v...)
}

func parseConfiguration(tag byte, v []byte) (*Configuration, error) {
	if tag != tagSequence {
		return nil, fmt.Errorf("%w: configuration is not a SEQUENCE", ErrMalformed)
	}
	c := &Configuration{}
	err := entries(append([]byte{tagSequence}, derLength(v)...), "configuration", func(oid string, tag byte, v []byte) error {
		var dst **bool
		switch oid {
		case keyConfigDynamic:
			dst = &c.DynamicPlatform
		case keyConfigCached:
			dst = &c.CachedKeys
		case keyConfigSMT:
			dst = &c.SMTEnabled
		default:
			return nil
		}
		if tag != tagBoolean || len(v) != 1 || (v[0] != 0 && v[0] != 0xFF) {
			return fmt.Errorf("%w: configuration entry is not a DER BOOLEAN", ErrMalformed)
		}
		b := v[0] == 0xFF
		*dst = &b
		return nil
	})
	if err != nil {
		return nil, err
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
