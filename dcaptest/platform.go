package dcaptest

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"

	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// PlatformSpec describes a platform and its PCK leaf certificate.
// [NewPlatform] uses the TCB values literally (a zero FMSPC is FMSPC
// 000000000000); start from [DefaultTDXPlatformSpec] or
// [DefaultSGXPlatformSpec] for realistic values.
type PlatformSpec struct {
	// CA is the issuing intermediate. If zero (pckcert.CAUnknown),
	// pckcert.CAPlatform.
	CA    pckcert.CAType
	FMSPC [6]byte
	PCEID [2]byte
	PPID  [16]byte
	// Components are the 16 SGX TCB component SVNs (.2.1–.2.16).
	Components [16]uint8
	PCESVN     uint16
	// CPUSVN is the raw CPUSVN (.2.18). If nil, equal to Components, as
	// in every real certificate.
	CPUSVN  *[16]byte
	SGXType pckcert.SGXType
	// PlatformInstanceID and Configuration are written for Platform CA
	// certificates (nil: a random ID, and all three flags true, as in
	// real TDX certificates) and, when non-nil, for Processor CA ones.
	// Nil fields of Configuration are left out.
	PlatformInstanceID *[16]byte
	Configuration      *pckcert.Configuration
	// OmitPlatformFields leaves PlatformInstanceID and Configuration out
	// even for a Platform CA certificate.
	OmitPlatformFields bool
	// RawExtension, if non-empty, is used verbatim as the DER value of
	// the SGX extension instead of encoding the fields above.
	RawExtension []byte
	// OmitExtension issues the leaf without an SGX extension.
	OmitExtension bool
	// CertOptions overrides the leaf's validity, serial, key and CN.
	CertOptions
}

// DefaultTDXPlatformSpec returns a TDX platform like the real ones: PCK
// issued by the Platform CA, FMSPC 90C06F000000, PCE-ID 0000, SGX TCB
// components 03 03 02 02 04 01 00 05 00…, PCESVN 13, SGX type Scalable, a
// random PPID.
func DefaultTDXPlatformSpec() PlatformSpec {
	s := PlatformSpec{
		CA:         pckcert.CAPlatform,
		FMSPC:      [6]byte{0x90, 0xC0, 0x6F, 0x00, 0x00, 0x00},
		Components: [16]uint8{3, 3, 2, 2, 4, 1, 0, 5},
		PCESVN:     13,
		SGXType:    pckcert.SGXTypeScalable,
	}
	copy(s.PPID[:], randomBytes(16))
	return s
}

// DefaultSGXPlatformSpec returns an SGX platform like the real ones: PCK
// issued by the Processor CA, FMSPC 00A067110000, PCE-ID 0000, SGX TCB
// components 0B 0B 02 02 FF 01 0C 00…, PCESVN 13, SGX type Standard, a
// random PPID.
func DefaultSGXPlatformSpec() PlatformSpec {
	s := PlatformSpec{
		CA:         pckcert.CAProcessor,
		FMSPC:      [6]byte{0x00, 0xA0, 0x67, 0x11, 0x00, 0x00},
		Components: [16]uint8{11, 11, 2, 2, 255, 1, 12},
		PCESVN:     13,
		SGXType:    pckcert.SGXTypeStandard,
	}
	copy(s.PPID[:], randomBytes(16))
	return s
}

// Platform is a platform with its PCK leaf certificate.
type Platform struct {
	// PKI is the PKI that issued the PCK certificate.
	PKI *PKI
	// Spec is the spec the platform was made from, with defaults resolved
	// (CA, CPUSVN, and for the Platform CA the instance ID and
	// configuration are set).
	Spec PlatformSpec
	// PCK is the leaf certificate and its key.
	PCK *Cert
	// Chain is leaf, intermediate, root: what ChainPEM writes. Tests may
	// replace entries (for example with another PKI's intermediate).
	Chain []*x509.Certificate
}

// NewPlatform issues a PCK leaf certificate ("Intel SGX PCK Certificate")
// from the intermediate named by spec.CA, with the SGX extension encoded
// as Intel encodes it (dcap.md §1.9).
func (p *PKI) NewPlatform(spec PlatformSpec) (*Platform, error) {
	if spec.CA == pckcert.CAUnknown {
		spec.CA = pckcert.CAPlatform
	}
	issuer := p.Intermediate(spec.CA)
	if issuer == nil {
		return nil, fmt.Errorf("dcaptest: platform: unknown CA type %d", int(spec.CA))
	}
	if spec.CPUSVN == nil {
		c := [16]byte(spec.Components)
		spec.CPUSVN = &c
	}
	if spec.CA == pckcert.CAPlatform && !spec.OmitPlatformFields {
		if spec.PlatformInstanceID == nil {
			var id [16]byte
			copy(id[:], randomBytes(16))
			spec.PlatformInstanceID = &id
		}
		if spec.Configuration == nil {
			t := true
			spec.Configuration = &pckcert.Configuration{DynamicPlatform: &t, CachedKeys: &t, SMTEnabled: &t}
		}
	}
	t := certTemplate{
		opts:      spec.CertOptions,
		cn:        PCKLeafCN,
		keyUsage:  x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		crlURL:    fmt.Sprintf(pckCRLURLTemplate, spec.CA),
		randomSKI: true,
	}
	if !spec.OmitExtension {
		ext := spec.RawExtension
		if len(ext) == 0 {
			var err error
			if ext, err = encodeSGXExtension(&spec); err != nil {
				return nil, fmt.Errorf("dcaptest: platform: SGX extension: %w", err)
			}
		}
		t.extra = []pkix.Extension{{Id: pckcert.OIDSGXExtension, Value: ext}}
	}
	leaf, err := p.issue(t, issuer)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: platform: PCK certificate: %w", err)
	}
	return &Platform{
		PKI:   p,
		Spec:  spec,
		PCK:   leaf,
		Chain: []*x509.Certificate{leaf.Certificate, issuer.Certificate, p.Root.Certificate},
	}, nil
}

// Intermediate returns the PCK CA that issued the platform's certificate.
func (p *Platform) Intermediate() *Cert { return p.PKI.Intermediate(p.Spec.CA) }

// ChainPEM returns the PEM chain of [Platform.Chain] as real quotes carry
// it in type 5 certification data, with a trailing NUL byte when asked
// (newer quoting enclaves add one).
func (p *Platform) ChainPEM(trailingNUL bool) []byte {
	out := ChainPEM(p.Chain...)
	if trailingNUL {
		out = append(out, 0)
	}
	return out
}

// ExtensionDER returns the DER value of the leaf's SGX extension, or nil
// if it has none.
func (p *Platform) ExtensionDER() []byte {
	for _, e := range p.PCK.Certificate.Extensions {
		if e.Id.Equal(pckcert.OIDSGXExtension) {
			return e.Value
		}
	}
	return nil
}

// EncryptedPPIDCertification returns certification data of type 2
// (RSA-2048-OAEP, 256-byte blob) or 3 (RSA-3072-OAEP, 384-byte blob): a
// random stand-in for the encrypted PPID followed by the platform's
// CPUSVN, PCESVN (little endian) and PCE-ID. A verifier then needs the
// PCK chain from collateral ([CollateralSpec] PCKCertChain).
func (p *Platform) EncryptedPPIDCertification(typ quote.CertificationType) (quote.CertificationData, error) {
	var n int
	switch typ {
	case quote.CertPPIDRSA2048:
		n = 256
	case quote.CertPPIDRSA3072:
		n = 384
	default:
		return quote.CertificationData{}, fmt.Errorf("dcaptest: certification type %v carries no encrypted PPID", typ)
	}
	data := randomBytes(n)
	data = append(data, p.Spec.CPUSVN[:]...)
	data = binary.LittleEndian.AppendUint16(data, p.Spec.PCESVN)
	data = append(data, p.Spec.PCEID[:]...)
	return quote.CertificationData{Type: typ, Data: data}, nil
}

// sgxOID returns 1.2.840.113741.1.13.1 followed by sub.
func sgxOID(sub ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, pckcert.OIDSGXExtension...), sub...)
}

// encodeSGXExtension encodes the SGX extension: a SEQUENCE of SEQUENCE
// {OID, value}, with the TCB and configuration entries nested the same
// way.
func encodeSGXExtension(s *PlatformSpec) ([]byte, error) {
	var firstErr error
	marshal := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return b
	}
	entry := func(oid asn1.ObjectIdentifier, value []byte) asn1.RawValue {
		return asn1.RawValue{FullBytes: marshal(struct {
			ID    asn1.ObjectIdentifier
			Value asn1.RawValue
		}{oid, asn1.RawValue{FullBytes: value}})}
	}
	var tcb []asn1.RawValue
	for i, c := range s.Components {
		tcb = append(tcb, entry(sgxOID(2, i+1), marshal(int(c))))
	}
	tcb = append(tcb, entry(sgxOID(2, 17), marshal(int(s.PCESVN))))
	tcb = append(tcb, entry(sgxOID(2, 18), marshal(s.CPUSVN[:])))

	entries := []asn1.RawValue{
		entry(sgxOID(1), marshal(s.PPID[:])),
		entry(sgxOID(2), marshal(tcb)),
		entry(sgxOID(3), marshal(s.PCEID[:])),
		entry(sgxOID(4), marshal(s.FMSPC[:])),
		entry(sgxOID(5), marshal(asn1.Enumerated(s.SGXType))),
	}
	if !s.OmitPlatformFields {
		if s.PlatformInstanceID != nil {
			entries = append(entries, entry(sgxOID(6), marshal(s.PlatformInstanceID[:])))
		}
		if c := s.Configuration; c != nil {
			var conf []asn1.RawValue
			for i, b := range []*bool{c.DynamicPlatform, c.CachedKeys, c.SMTEnabled} {
				if b != nil {
					conf = append(conf, entry(sgxOID(7, i+1), marshal(*b)))
				}
			}
			if conf == nil {
				conf = []asn1.RawValue{}
			}
			entries = append(entries, entry(sgxOID(7), marshal(conf)))
		}
	}
	out := marshal(entries)
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}
