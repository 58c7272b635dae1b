package dcaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/pckcert"
)

// Formats written by [MarshalPKI] and [MarshalPlatform]. A reader
// refuses any other value, so a file of another kind or of a future
// version is never mistaken for one of these.
const (
	PKIFormat      = "dcaptest-pki-v1"
	PlatformFormat = "dcaptest-platform-v1"
)

// ErrState means that serialized PKI or platform state does not parse,
// is of another format or version, or is inconsistent (a key that does
// not match its certificate, a certificate not issued by the PKI).
var ErrState = errors.New("dcaptest: invalid PKI or platform state")

// PEM header names of [MarshalPKI].
const (
	pemFormatHeader    = "Dcaptest-Format"
	pemRoleHeader      = "Role"
	pemNotBeforeHeader = "Not-Before"
	pemNotAfterHeader  = "Not-After"
)

// pkiRoles names the four certificates of a PKI in the order written.
var pkiRoles = []string{"root", "platform-ca", "processor-ca", "tcb-signing"}

func (p *PKI) byRole() map[string]**Cert {
	return map[string]**Cert{"root": &p.Root, "platform-ca": &p.PlatformCA, "processor-ca": &p.ProcessorCA, "tcb-signing": &p.TCBSigning}
}

// MarshalPKI encodes the PKI with its private keys as PEM: for each of
// root, platform-ca, processor-ca and tcb-signing a CERTIFICATE block and
// an EC PRIVATE KEY block, each with the headers Dcaptest-Format
// ([PKIFormat]) and Role; the root's certificate block also carries the
// PKI's default validity (Not-Before, Not-After, RFC 3339). The output
// holds private keys: store it with owner-only permissions.
func MarshalPKI(p *PKI) ([]byte, error) {
	var out bytes.Buffer
	for _, role := range pkiRoles {
		c := *p.byRole()[role]
		if c == nil || c.Key == nil || len(c.DER) == 0 {
			return nil, fmt.Errorf("dcaptest: marshal PKI: %s certificate or key missing", role)
		}
		h := map[string]string{pemFormatHeader: PKIFormat, pemRoleHeader: role}
		if role == "root" {
			h[pemNotBeforeHeader] = p.NotBefore.UTC().Format(time.RFC3339)
			h[pemNotAfterHeader] = p.NotAfter.UTC().Format(time.RFC3339)
		}
		if err := pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Headers: h, Bytes: c.DER}); err != nil {
			return nil, err
		}
		key, err := x509.MarshalECPrivateKey(c.Key)
		if err != nil {
			return nil, fmt.Errorf("dcaptest: marshal PKI: %s key: %w", role, err)
		}
		kh := map[string]string{pemFormatHeader: PKIFormat, pemRoleHeader: role}
		if err := pem.Encode(&out, &pem.Block{Type: "EC PRIVATE KEY", Headers: kh, Bytes: key}); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// UnmarshalPKI decodes the output of [MarshalPKI]. It checks the format
// header of every block, that each key matches its certificate, that the
// root is self-signed and that it issued the other three certificates.
// Errors wrap [ErrState].
func UnmarshalPKI(data []byte) (*PKI, error) {
	certs := map[string]*x509.Certificate{}
	keys := map[string]*ecdsa.PrivateKey{}
	p := &PKI{}
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if f := b.Headers[pemFormatHeader]; f != PKIFormat {
			return nil, fmt.Errorf("%w: PEM block %d: format %q, want %q", ErrState, n, f, PKIFormat)
		}
		role := b.Headers[pemRoleHeader]
		if _, ok := p.byRole()[role]; !ok {
			return nil, fmt.Errorf("%w: PEM block %d: unknown role %q", ErrState, n, role)
		}
		switch b.Type {
		case "CERTIFICATE":
			if certs[role] != nil {
				return nil, fmt.Errorf("%w: two %s certificates", ErrState, role)
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %s certificate: %v", ErrState, role, err)
			}
			certs[role] = c
			if role == "root" {
				var err error
				if p.NotBefore, err = time.Parse(time.RFC3339, b.Headers[pemNotBeforeHeader]); err != nil {
					return nil, fmt.Errorf("%w: root %s header: %v", ErrState, pemNotBeforeHeader, err)
				}
				if p.NotAfter, err = time.Parse(time.RFC3339, b.Headers[pemNotAfterHeader]); err != nil {
					return nil, fmt.Errorf("%w: root %s header: %v", ErrState, pemNotAfterHeader, err)
				}
			}
		case "EC PRIVATE KEY":
			if keys[role] != nil {
				return nil, fmt.Errorf("%w: two %s keys", ErrState, role)
			}
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %s key: %v", ErrState, role, err)
			}
			keys[role] = k
		default:
			return nil, fmt.Errorf("%w: PEM block %d: unexpected type %q", ErrState, n, b.Type)
		}
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: trailing data that is not PEM", ErrState)
	}
	for _, role := range pkiRoles {
		c, k := certs[role], keys[role]
		if c == nil || k == nil {
			return nil, fmt.Errorf("%w: %s certificate or key missing", ErrState, role)
		}
		if !k.PublicKey.Equal(c.PublicKey) {
			return nil, fmt.Errorf("%w: the %s key does not match its certificate", ErrState, role)
		}
		*p.byRole()[role] = &Cert{Certificate: c, DER: c.Raw, Key: k}
	}
	for _, role := range pkiRoles {
		if err := certs[role].CheckSignatureFrom(certs["root"]); err != nil {
			return nil, fmt.Errorf("%w: the %s certificate is not issued by the root: %v", ErrState, role, err)
		}
	}
	return p, nil
}

// platformJSON is the encoding of [MarshalPlatform].
type platformJSON struct {
	Format             string      `json:"format"`
	CA                 int         `json:"ca"`
	FMSPC              string      `json:"fmspc"`
	PCEID              string      `json:"pce_id"`
	PPID               string      `json:"ppid"`
	Components         string      `json:"components"`
	PCESVN             uint16      `json:"pce_svn"`
	CPUSVN             string      `json:"cpu_svn"`
	SGXType            int         `json:"sgx_type"`
	PlatformInstanceID string      `json:"platform_instance_id,omitempty"`
	Configuration      *configJSON `json:"configuration,omitempty"`
	OmitPlatformFields bool        `json:"omit_platform_fields,omitempty"`
	RawExtension       string      `json:"raw_extension,omitempty"`
	OmitExtension      bool        `json:"omit_extension,omitempty"`
	PCKCertificate     string      `json:"pck_certificate"`
	PCKKey             string      `json:"pck_key"`
}

type configJSON struct {
	DynamicPlatform *bool `json:"dynamic_platform,omitempty"`
	CachedKeys      *bool `json:"cached_keys,omitempty"`
	SMTEnabled      *bool `json:"smt_enabled,omitempty"`
}

// MarshalECKey encodes a private key as one PEM "EC PRIVATE KEY" block
// (SEC 1), the form the state files use for every key.
func MarshalECKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// ParseECKey decodes the output of [MarshalECKey]: exactly one PEM "EC
// PRIVATE KEY" block holding a P-256 key.
func ParseECKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "EC PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("not one PEM EC PRIVATE KEY block")
	}
	k, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if k.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	return k, nil
}

// MarshalPlatform encodes a platform as JSON: its resolved spec (CA,
// FMSPC, PCE-ID, PPID, TCB, SGX type, platform instance ID and
// configuration; not CertOptions, which the certificate embodies) and
// its PCK certificate and private key as PEM strings, with "format"
// [PlatformFormat]. The output holds a private key.
func MarshalPlatform(p *Platform) ([]byte, error) {
	if p.PCK == nil || p.PCK.Key == nil {
		return nil, errors.New("dcaptest: marshal platform: PCK certificate or key missing")
	}
	key, err := MarshalECKey(p.PCK.Key)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: marshal platform: %w", err)
	}
	s := p.Spec
	j := platformJSON{
		Format: PlatformFormat, CA: int(s.CA),
		FMSPC: hex.EncodeToString(s.FMSPC[:]), PCEID: hex.EncodeToString(s.PCEID[:]), PPID: hex.EncodeToString(s.PPID[:]),
		Components: hex.EncodeToString(s.Components[:]), PCESVN: s.PCESVN, SGXType: int(s.SGXType),
		OmitPlatformFields: s.OmitPlatformFields, RawExtension: hex.EncodeToString(s.RawExtension), OmitExtension: s.OmitExtension,
		PCKCertificate: string(p.PCK.PEM()),
		PCKKey:         string(key),
	}
	if s.CPUSVN != nil {
		j.CPUSVN = hex.EncodeToString(s.CPUSVN[:])
	}
	if s.PlatformInstanceID != nil {
		j.PlatformInstanceID = hex.EncodeToString(s.PlatformInstanceID[:])
	}
	if c := s.Configuration; c != nil {
		j.Configuration = &configJSON{DynamicPlatform: c.DynamicPlatform, CachedKeys: c.CachedKeys, SMTEnabled: c.SMTEnabled}
	}
	return json.MarshalIndent(j, "", "  ")
}

// UnmarshalPlatform decodes the output of [MarshalPlatform] for a
// platform of pki. It checks the format, that the key matches the PCK
// certificate, that pki's intermediate of the spec's CA issued it and,
// unless the certificate has no SGX extension, that the spec encodes to
// the certificate's extension. Errors wrap [ErrState].
func UnmarshalPlatform(pki *PKI, data []byte) (*Platform, error) {
	var j platformJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: platform: %v", ErrState, err)
	}
	if j.Format != PlatformFormat {
		return nil, fmt.Errorf("%w: platform: format %q, want %q", ErrState, j.Format, PlatformFormat)
	}
	s := PlatformSpec{CA: pckcert.CAType(j.CA), PCESVN: j.PCESVN, SGXType: pckcert.SGXType(j.SGXType), OmitPlatformFields: j.OmitPlatformFields, OmitExtension: j.OmitExtension}
	var errs []error
	fixed := func(name, v string, dst []byte) {
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != len(dst) {
			errs = append(errs, fmt.Errorf("%s %q is not %d bytes of hex", name, v, len(dst)))
			return
		}
		copy(dst, b)
	}
	fixed("fmspc", j.FMSPC, s.FMSPC[:])
	fixed("pce_id", j.PCEID, s.PCEID[:])
	fixed("ppid", j.PPID, s.PPID[:])
	fixed("components", j.Components, s.Components[:])
	if j.CPUSVN != "" {
		s.CPUSVN = new([16]byte)
		fixed("cpu_svn", j.CPUSVN, s.CPUSVN[:])
	}
	if j.PlatformInstanceID != "" {
		s.PlatformInstanceID = new([16]byte)
		fixed("platform_instance_id", j.PlatformInstanceID, s.PlatformInstanceID[:])
	}
	if c := j.Configuration; c != nil {
		s.Configuration = &pckcert.Configuration{DynamicPlatform: c.DynamicPlatform, CachedKeys: c.CachedKeys, SMTEnabled: c.SMTEnabled}
	}
	if j.RawExtension != "" {
		b, err := hex.DecodeString(j.RawExtension)
		if err != nil {
			errs = append(errs, fmt.Errorf("raw_extension: %v", err))
		}
		s.RawExtension = b
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: platform: %w", ErrState, err)
	}
	cb, _ := pem.Decode([]byte(j.PCKCertificate))
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: platform: pck_certificate is not a PEM certificate", ErrState)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: platform: PCK certificate: %v", ErrState, err)
	}
	key, err := ParseECKey([]byte(j.PCKKey))
	if err != nil {
		return nil, fmt.Errorf("%w: platform: pck_key: %v", ErrState, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: platform: the PCK key does not match the PCK certificate", ErrState)
	}
	issuer := pki.Intermediate(s.CA)
	if issuer == nil {
		return nil, fmt.Errorf("%w: platform: unknown CA type %d", ErrState, int(s.CA))
	}
	if err := cert.CheckSignatureFrom(issuer.Certificate); err != nil {
		return nil, fmt.Errorf("%w: platform: the PCK certificate is not issued by this PKI's %s: %v", ErrState, s.CA, err)
	}
	pl := &Platform{PKI: pki, Spec: s, PCK: &Cert{Certificate: cert, DER: cert.Raw, Key: key},
		Chain: []*x509.Certificate{cert, issuer.Certificate, pki.Root.Certificate}}
	if !s.OmitExtension {
		want := s.RawExtension
		if len(want) == 0 {
			if s.CPUSVN == nil {
				return nil, fmt.Errorf("%w: platform: cpu_svn missing", ErrState)
			}
			if want, err = encodeSGXExtension(&s); err != nil {
				return nil, fmt.Errorf("%w: platform: %v", ErrState, err)
			}
		}
		if !bytes.Equal(want, pl.ExtensionDER()) {
			return nil, fmt.Errorf("%w: platform: the spec does not match the PCK certificate's SGX extension", ErrState)
		}
	}
	return pl, nil
}
