package snpsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/tdproof/tdproof/snp"
)

// RSABits is the size of the test ARK, ASK and ASVK keys (AMD uses
// 4096; 2048 keeps tests fast and exercises the same code).
const RSABits = 2048

// KDSBase is the AMD KDS base the test certificates name in their CRL
// distribution points (go-sev-guest checks the exact URL).
const KDSBase = "https://kdsintf.amd.com"

// PKI is one product line's test AMD PKI.
type PKI struct {
	Product snp.Product
	ARK     *x509.Certificate
	ASK     *x509.Certificate
	ASVK    *x509.Certificate
	// NotBefore and NotAfter bound the CA certificates.
	NotBefore, NotAfter time.Time

	arkKey, askKey, asvkKey *rsa.PrivateKey
	serial                  int64
	mu                      sync.Mutex
}

var (
	pkiMu    sync.Mutex
	pkiCache = map[snp.Product]*PKI{}
)

// NewPKI returns the process-wide test PKI of product p (generated once:
// RSA key generation dominates test time otherwise).
func NewPKI(p snp.Product) (*PKI, error) {
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if k := pkiCache[p]; k != nil {
		return k, nil
	}
	k, err := GeneratePKI(p, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return nil, err
	}
	pkiCache[p] = k
	return k, nil
}

// GeneratePKI makes a fresh PKI whose CA certificates are valid from
// notBefore to notAfter.
func GeneratePKI(p snp.Product, notBefore, notAfter time.Time) (*PKI, error) {
	if p == snp.ProductUnknown {
		return nil, fmt.Errorf("snpsim: no product")
	}
	k := &PKI{Product: p, NotBefore: notBefore, NotAfter: notAfter, serial: 1}
	var err error
	for _, kp := range []**rsa.PrivateKey{&k.arkKey, &k.askKey, &k.asvkKey} {
		if *kp, err = rsa.GenerateKey(rand.Reader, RSABits); err != nil {
			return nil, err
		}
	}
	crl := KDSBase + "/vcek/v1/" + p.String() + "/crl"
	if k.ARK, err = k.ca("ARK-"+p.String(), nil, &k.arkKey.PublicKey, k.arkKey, crl); err != nil {
		return nil, err
	}
	if k.ASK, err = k.ca("SEV-"+p.String(), k.ARK, &k.askKey.PublicKey, k.arkKey, crl); err != nil {
		return nil, err
	}
	if k.ASVK, err = k.ca("SEV-VLEK-"+p.String(), k.ARK, &k.asvkKey.PublicKey, k.arkKey, KDSBase+"/vlek/v1/"+p.String()+"/crl"); err != nil {
		return nil, err
	}
	return k, nil
}

// Roots is the snp.Options.Roots value that trusts this PKI's ARK.
func (k *PKI) Roots() map[snp.Product]*x509.Certificate {
	return map[snp.Product]*x509.Certificate{k.Product: k.ARK}
}

// AMDName is an AMD certificate name with common name cn.
func AMDName(cn string) pkix.Name {
	return pkix.Name{
		OrganizationalUnit: []string{"Engineering"}, Country: []string{"US"}, Locality: []string{"Santa Clara"},
		Province: []string{"CA"}, Organization: []string{"Advanced Micro Devices"}, CommonName: cn,
	}
}

func (k *PKI) nextSerial() *big.Int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serial++
	return big.NewInt(k.serial)
}

func (k *PKI) ca(cn string, parent *x509.Certificate, pub *rsa.PublicKey, signer *rsa.PrivateKey, crl string) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          k.nextSerial(),
		Subject:               AMDName(cn),
		NotBefore:             k.NotBefore,
		NotAfter:              k.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.SHA384WithRSAPSS,
		CRLDistributionPoints: []string{crl},
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// EndorsementKey is a VCEK or VLEK with its private key.
type EndorsementKey struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// KeyOptions describe an endorsement key certificate. The zero value of
// a field means: TCB zero, valid 2024-01-01 … 2031-01-01, product name
// "<Product>-B0", hwID = ChipID.
type KeyOptions struct {
	VLEK   bool
	ChipID [64]byte
	// TCB is the TCB the key is issued for (REPORTED_TCB).
	TCB snp.TCBParts
	// Reserved sets the reserved SPL extensions .3.4–.3.7.
	Reserved            [4]uint8
	NotBefore, NotAfter time.Time
	ProductName         string
	// OmitFMC leaves out fmcSPL (Turin only), ExtraFMC adds it on
	// Milan/Genoa; OmitHWID leaves out hwID; ShortHWID writes the 8-byte
	// Turin form.
	OmitFMC, ExtraFMC, OmitHWID, ShortHWID bool
	// CSPID names the cloud provider of a VLEK ("" means "test-csp").
	CSPID string
	// CommonName overrides SEV-VCEK / SEV-VLEK.
	CommonName string
	// Key reuses a private key.
	Key *ecdsa.PrivateKey
	// SignWithASVK / SignWithASK swaps the issuer (negative tests).
	SignWithASVK, SignWithASK bool
}

var amdOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}

func oid(s ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, amdOID...), s...)
}

// IssueKey issues a VCEK (or VLEK) for o.
func (k *PKI) IssueKey(o KeyOptions) (*EndorsementKey, error) {
	key := o.Key
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			return nil, err
		}
	}
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if na.IsZero() {
		na = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	name := o.ProductName
	if name == "" {
		name = k.Product.String() + "-B0"
	}
	u8 := func(v uint8) []byte { b, _ := asn1.Marshal(int(v)); return b }
	ia5 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "ia5"); return b }
	exts := []pkix.Extension{
		{Id: oid(1), Value: u8(1)},
		{Id: oid(2), Value: ia5(name)},
		{Id: oid(3, 1), Value: u8(o.TCB.BootLoader)},
		{Id: oid(3, 2), Value: u8(o.TCB.TEE)},
		{Id: oid(3, 4), Value: u8(o.Reserved[0])},
		{Id: oid(3, 5), Value: u8(o.Reserved[1])},
		{Id: oid(3, 6), Value: u8(o.Reserved[2])},
		{Id: oid(3, 7), Value: u8(o.Reserved[3])},
		{Id: oid(3, 3), Value: u8(o.TCB.SNP)},
		{Id: oid(3, 8), Value: u8(o.TCB.Microcode)},
	}
	if k.Product == snp.ProductTurin && !o.OmitFMC || o.ExtraFMC {
		exts = append(exts, pkix.Extension{Id: oid(3, 9), Value: u8(o.TCB.FMC)})
	}
	cn, issuer, signer := "SEV-VCEK", k.ASK, k.askKey
	if o.VLEK {
		csp := o.CSPID
		if csp == "" {
			csp = "test-csp"
		}
		exts = append(exts, pkix.Extension{Id: oid(5), Value: ia5(csp)})
		cn, issuer, signer = "SEV-VLEK", k.ASVK, k.asvkKey
	} else if !o.OmitHWID {
		hw := o.ChipID[:]
		if o.ShortHWID {
			hw = o.ChipID[:8]
		}
		exts = append(exts, pkix.Extension{Id: oid(4), Value: append([]byte(nil), hw...)})
	}
	if o.SignWithASVK {
		issuer, signer = k.ASVK, k.asvkKey
	}
	if o.SignWithASK {
		issuer, signer = k.ASK, k.askKey
	}
	if o.CommonName != "" {
		cn = o.CommonName
	}
	tmpl := &x509.Certificate{
		SerialNumber:       k.nextSerial(),
		Subject:            AMDName(cn),
		NotBefore:          nb,
		NotAfter:           na,
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		ExtraExtensions:    exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &EndorsementKey{Cert: c, Key: key}, nil
}

// CRL returns a DER CRL signed by the ARK that revokes certs.
func (k *PKI) CRL(thisUpdate, nextUpdate time.Time, certs ...*x509.Certificate) ([]byte, error) {
	return k.ForgedCRL(k.ARK, thisUpdate, nextUpdate, certs...)
}

// ForgedCRL returns a CRL that names issuer's subject (for example the
// real AMD ARK) but is signed by this PKI's ARK key: a forgery a verifier
// must refuse.
func (k *PKI) ForgedCRL(issuer *x509.Certificate, thisUpdate, nextUpdate time.Time, certs ...*x509.Certificate) ([]byte, error) {
	tmpl := &x509.RevocationList{
		Number:             k.nextSerial(),
		ThisUpdate:         thisUpdate,
		NextUpdate:         nextUpdate,
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate})
	}
	named := *k.ARK
	named.RawSubject = issuer.RawSubject
	return x509.CreateRevocationList(rand.Reader, tmpl, &named, k.arkKey)
}

// CRLValidity is the window of a Guest's CRL around Now: issued a day
// before, next update 30 days after.
const CRLValidity = 30 * 24 * time.Hour

// CRL returns a DER CRL of g's PKI, signed by its ARK and current at Now
// (thisUpdate Now − 1 day, nextUpdate Now + CRLValidity), that revokes
// certs (none: a clean CRL).
func (g *Guest) CRL(certs ...*x509.Certificate) ([]byte, error) {
	return g.PKI.CRL(Now.Add(-24*time.Hour), Now.Add(CRLValidity), certs...)
}
