package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// InspectMediaType identifies the JSON schema of quote inspect.
const InspectMediaType = "application/vnd.tdproof.quote.v1+json"

// quoteFacts is the output of quote inspect.
type quoteFacts struct {
	MediaType       string         `json:"media_type"`
	SHA256          string         `json:"sha256"`
	Size            int            `json:"size"`
	TrailingBytes   int            `json:"trailing_bytes"`
	TrailingAllZero bool           `json:"trailing_all_zero"`
	Header          headerFacts    `json:"header"`
	BodyType        string         `json:"body_type"`
	BodyTypeID      uint16         `json:"body_type_id"`
	TD              *tdFacts       `json:"td,omitempty"`
	Enclave         *enclaveFacts  `json:"enclave,omitempty"`
	QEReport        enclaveFacts   `json:"qe_report"`
	QEAuthDataSize  int            `json:"qe_auth_data_size"`
	Certification   certFacts      `json:"certification"`
	Signatures      signatureFacts `json:"signatures"`
}

type headerFacts struct {
	Version            uint16 `json:"version"`
	AttestationKeyType string `json:"attestation_key_type"`
	TEEType            string `json:"tee_type"`
	QESVN              uint16 `json:"qe_svn"`
	PCESVN             uint16 `json:"pce_svn"`
	QEVendorID         string `json:"qe_vendor_id"`
	QEVendorIntel      bool   `json:"qe_vendor_intel"`
	UserData           string `json:"user_data"`
}

type tdAttributeFacts struct {
	Debug         bool `json:"debug"`
	SEPTVEDisable bool `json:"sept_ve_disable"`
	PKS           bool `json:"pks"`
	KL            bool `json:"kl"`
	Perfmon       bool `json:"perfmon"`
	// Other holds any other set bits (hex, little endian as in the quote).
	Other string `json:"other_bits,omitempty"`
}

type tdFacts struct {
	TEETCBSVN      string           `json:"tee_tcb_svn"`
	MRSEAM         string           `json:"mr_seam"`
	MRSignerSEAM   string           `json:"mr_signer_seam"`
	SEAMAttributes string           `json:"seam_attributes"`
	TDAttributes   string           `json:"td_attributes"`
	Attributes     tdAttributeFacts `json:"td_attributes_decoded"`
	XFAM           string           `json:"xfam"`
	MRTD           string           `json:"mr_td"`
	MRConfigID     string           `json:"mr_config_id"`
	MROwner        string           `json:"mr_owner"`
	MROwnerConfig  string           `json:"mr_owner_config"`
	RTMRs          [4]string        `json:"rtmrs"`
	ReportData     string           `json:"report_data"`
	TD15           bool             `json:"td15"`
	TEETCBSVN2     string           `json:"tee_tcb_svn2,omitempty"`
	MRServiceTD    string           `json:"mr_service_td,omitempty"`
}

type enclaveFacts struct {
	CPUSVN     string `json:"cpu_svn"`
	MiscSelect uint32 `json:"misc_select"`
	Attributes string `json:"attributes"`
	Debug      bool   `json:"debug"`
	MREnclave  string `json:"mr_enclave"`
	MRSigner   string `json:"mr_signer"`
	ISVProdID  uint16 `json:"isv_prod_id"`
	ISVSVN     uint16 `json:"isv_svn"`
	ReportData string `json:"report_data"`
}

type certFacts struct {
	// OuterType is the signature data's certification type (6 for v4/v5,
	// 0 for v3); Type is the PCK certification data inside it.
	OuterType   uint16     `json:"outer_type,omitempty"`
	Type        uint16     `json:"type"`
	TypeName    string     `json:"type_name"`
	Size        int        `json:"size"`
	ChainLength int        `json:"pck_chain_length,omitempty"`
	Chain       []certInfo `json:"pck_chain,omitempty"`
	PCK         *pckFacts  `json:"pck,omitempty"`
	// PCKError says why the chain or its SGX extension could not be read.
	PCKError      string              `json:"pck_error,omitempty"`
	EncryptedPPID *encryptedPPIDFacts `json:"encrypted_ppid,omitempty"`
}

type certInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

type pckFacts struct {
	FMSPC              string                 `json:"fmspc"`
	PCEID              string                 `json:"pce_id"`
	CAType             string                 `json:"ca_type"`
	SGXType            string                 `json:"sgx_type"`
	TCBComponents      []int                  `json:"sgx_tcb_components"`
	PCESVN             uint16                 `json:"pcesvn"`
	CPUSVN             string                 `json:"cpu_svn"`
	PPID               string                 `json:"ppid"`
	PlatformInstanceID string                 `json:"platform_instance_id,omitempty"`
	Configuration      *pckcert.Configuration `json:"configuration,omitempty"`
}

type encryptedPPIDFacts struct {
	Size   int    `json:"size"`
	CPUSVN string `json:"cpu_svn"`
	PCESVN uint16 `json:"pcesvn"`
	PCEID  string `json:"pce_id"`
}

type signatureFacts struct {
	// Checked is false when the quote carries no PCK chain (encrypted or
	// cleartext PPID, leaf only): the chain comes with the collateral.
	Checked           bool       `json:"checked"`
	Valid             bool       `json:"valid"`
	Reason            string     `json:"reason,omitempty"`
	IntelRoot         bool       `json:"intel_root"`
	TrustedRootSHA256 string     `json:"trusted_root_sha256"`
	Error             *errorJSON `json:"error"`
	// err is the verification error behind Error.
	err error
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

func newEnclaveFacts(r *quote.EnclaveReport) enclaveFacts {
	return enclaveFacts{
		CPUSVN: hx(r.CPUSVN[:]), MiscSelect: r.MiscSelect, Attributes: hx(r.Attributes[:]), Debug: r.Debug(),
		MREnclave: hx(r.MREnclave[:]), MRSigner: hx(r.MRSigner[:]), ISVProdID: r.ISVProdID, ISVSVN: r.ISVSVN,
		ReportData: hx(r.ReportData[:]),
	}
}

func newTDFacts(r *quote.TDReport) *tdFacts {
	attr := r.Attributes()
	known := quote.TDAttributeDebug | quote.TDAttributeSEPTVEDisable | quote.TDAttributePKS | quote.TDAttributeKL | quote.TDAttributePerfmon
	f := &tdFacts{
		TEETCBSVN: hx(r.TEETCBSVN[:]), MRSEAM: hx(r.MRSEAM[:]), MRSignerSEAM: hx(r.MRSignerSEAM[:]),
		SEAMAttributes: hx(r.SEAMAttributes[:]), TDAttributes: hx(r.TDAttributes[:]),
		Attributes: tdAttributeFacts{
			Debug:         attr&quote.TDAttributeDebug != 0,
			SEPTVEDisable: attr&quote.TDAttributeSEPTVEDisable != 0,
			PKS:           attr&quote.TDAttributePKS != 0,
			KL:            attr&quote.TDAttributeKL != 0,
			Perfmon:       attr&quote.TDAttributePerfmon != 0,
		},
		XFAM: hx(r.XFAM[:]), MRTD: hx(r.MRTD[:]), MRConfigID: hx(r.MRConfigID[:]), MROwner: hx(r.MROwner[:]),
		MROwnerConfig: hx(r.MROwnerConfig[:]), ReportData: hx(r.ReportData[:]), TD15: r.TD15,
	}
	if other := attr &^ known; other != 0 {
		var b [8]byte
		for i := range b {
			b[i] = byte(other >> (8 * i))
		}
		f.Attributes.Other = hx(b[:])
	}
	for i := range r.RTMRs {
		f.RTMRs[i] = hx(r.RTMRs[i][:])
	}
	if r.TD15 {
		f.TEETCBSVN2, f.MRServiceTD = hx(r.TEETCBSVN2[:]), hx(r.MRServiceTD[:])
	}
	return f
}

func newCertInfo(c *x509.Certificate) certInfo {
	return certInfo{
		Subject: c.Subject.CommonName, Issuer: c.Issuer.CommonName, Serial: c.SerialNumber.Text(16),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
	}
}

func newPCKFacts(p *pckInfo) *pckFacts {
	e := p.ext
	f := &pckFacts{
		FMSPC: hx(e.FMSPC[:]), PCEID: hx(e.PCEID[:]), CAType: p.ca.String(), SGXType: e.SGXType.String(),
		PCESVN: e.TCB.PCESVN, CPUSVN: hx(e.TCB.CPUSVN[:]), PPID: hx(e.PPID[:]), Configuration: e.Configuration,
	}
	f.TCBComponents = make([]int, len(e.TCB.Components))
	for i, c := range e.TCB.Components {
		f.TCBComponents[i] = int(c)
	}
	if e.PlatformInstanceID != nil {
		f.PlatformInstanceID = hx(e.PlatformInstanceID[:])
	}
	return f
}

// inspectQuote collects the facts of q; root replaces the Intel root for
// the signature check when not nil.
func inspectQuote(q *quote.Quote, root *x509.Certificate) *quoteFacts {
	h := q.Header
	keyType := "unknown"
	switch h.AttestationKeyType {
	case quote.ECDSA256P256:
		keyType = "ECDSA-256-with-P-256"
	case quote.ECDSA384P384:
		keyType = "ECDSA-384-with-P-384"
	}
	sum := sha256.Sum256(q.Raw)
	f := &quoteFacts{
		MediaType: InspectMediaType, SHA256: hx(sum[:]), Size: len(q.Raw) + len(q.Trailing),
		TrailingBytes: len(q.Trailing), TrailingAllZero: allZero(q.Trailing),
		Header: headerFacts{
			Version: h.Version, AttestationKeyType: keyType, TEEType: h.TEEType.String(),
			QESVN: h.QESVN, PCESVN: h.PCESVN, QEVendorID: hx(h.QEVendorID[:]),
			QEVendorIntel: h.QEVendorID == quote.IntelQEVendorID, UserData: hx(h.UserData[:]),
		},
		BodyType: q.BodyType.String(), BodyTypeID: uint16(q.BodyType),
	}
	if q.TD != nil {
		f.TD = newTDFacts(q.TD)
	}
	if q.Enclave != nil {
		e := newEnclaveFacts(q.Enclave)
		f.Enclave = &e
	}
	sd := q.Signature
	f.QEReport = newEnclaveFacts(&sd.QEReport)
	f.QEAuthDataSize = len(sd.QEAuthData)
	cd := sd.Certification
	f.Certification = certFacts{OuterType: uint16(sd.OuterType), Type: uint16(cd.Type), TypeName: cd.Type.String(), Size: len(cd.Data)}
	if p := cd.EncryptedPPID; p != nil {
		f.Certification.EncryptedPPID = &encryptedPPIDFacts{Size: len(p.PPID), CPUSVN: hx(p.CPUSVN[:]), PCESVN: p.PCESVN, PCEID: hx(p.PCEID[:])}
	}
	pck, err := pckFromQuote(q)
	if err != nil {
		f.Certification.PCKError = oneLine(err.Error())
	}
	if pck != nil {
		f.Certification.ChainLength = len(pck.chain)
		for _, c := range pck.chain {
			f.Certification.Chain = append(f.Certification.Chain, newCertInfo(c))
		}
		f.Certification.PCK = newPCKFacts(pck)
	}
	f.Signatures = checkSignatures(q, root)
	return f
}

// checkSignatures runs dcap.VerifySignatures when the quote carries its
// PCK chain.
func checkSignatures(q *quote.Quote, root *x509.Certificate) signatureFacts {
	anchor := root
	if anchor == nil {
		anchor = dcap.IntelRoot()
	}
	sum := sha256.Sum256(anchor.Raw)
	s := signatureFacts{TrustedRootSHA256: hx(sum[:])}
	s.IntelRoot = s.TrustedRootSHA256 == dcap.IntelRootSHA256
	if t := q.Signature.Certification.Type; t != quote.CertPCKChain {
		s.Reason = "the quote carries " + t.String() + ", not a PCK certificate chain; verify it with collateral that includes the chain"
		return s
	}
	s.Checked = true
	if err := dcap.VerifySignatures(q, dcap.Options{TrustedRoot: root}); err != nil {
		s.err, s.Error = err, newErrorJSON(err)
		s.Reason = s.Error.Message
		return s
	}
	s.Valid = true
	return s
}
