package snp

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// MarshalText writes the product line name.
func (p Product) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// MarshalText writes the signing key name.
func (k SigningKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func tcbText(t TCBVersion) string { b := t.Bytes(); return hex.EncodeToString(b[:]) }

// reportJSON is the JSON form of a Report: byte fields as lowercase hex,
// words as numbers, TCB_VERSIONs as the hex of their 8 bytes.
type reportJSON struct {
	Raw             hexBytes `json:"raw"`
	Version         uint32   `json:"version"`
	GuestSVN        uint32   `json:"guest_svn"`
	Policy          string   `json:"policy"`
	FamilyID        hexBytes `json:"family_id"`
	ImageID         hexBytes `json:"image_id"`
	VMPL            uint32   `json:"vmpl"`
	SignatureAlgo   uint32   `json:"signature_algo"`
	CurrentTCB      string   `json:"current_tcb"`
	PlatformInfo    string   `json:"platform_info"`
	KeyInfo         uint32   `json:"key_info"`
	ReportData      hexBytes `json:"report_data"`
	Measurement     hexBytes `json:"measurement"`
	HostData        hexBytes `json:"host_data"`
	IDKeyDigest     hexBytes `json:"id_key_digest"`
	AuthorKeyDigest hexBytes `json:"author_key_digest"`
	ReportID        hexBytes `json:"report_id"`
	ReportIDMA      hexBytes `json:"report_id_ma"`
	ReportedTCB     string   `json:"reported_tcb"`
	CPUID           string   `json:"cpuid_fam_mod_step,omitempty"`
	ChipID          hexBytes `json:"chip_id"`
	CommittedTCB    string   `json:"committed_tcb"`
	CurrentVersion  string   `json:"current_version"`
	CommittedVer    string   `json:"committed_version"`
	LaunchTCB       string   `json:"launch_tcb"`
	LaunchMit       *uint64  `json:"launch_mit_vector,omitempty"`
	CurrentMit      *uint64  `json:"current_mit_vector,omitempty"`
}

// MarshalJSON writes the report's fields (not its raw bytes).
func (r *Report) MarshalJSON() ([]byte, error) {
	j := reportJSON{
		Raw: r.Raw, Version: r.Version, GuestSVN: r.GuestSVN, Policy: fmt.Sprintf("0x%x", r.Policy),
		FamilyID: r.FamilyID[:], ImageID: r.ImageID[:], VMPL: r.VMPL, SignatureAlgo: r.SignatureAlgo,
		CurrentTCB: tcbText(r.CurrentTCB), PlatformInfo: fmt.Sprintf("0x%x", r.PlatformInfo), KeyInfo: r.KeyInfo,
		ReportData: r.ReportData[:], Measurement: r.Measurement[:], HostData: r.HostData[:],
		IDKeyDigest: r.IDKeyDigest[:], AuthorKeyDigest: r.AuthorKeyDigest[:], ReportID: r.ReportID[:],
		ReportIDMA: r.ReportIDMA[:], ReportedTCB: tcbText(r.ReportedTCB), ChipID: r.ChipID[:],
		CommittedTCB:   tcbText(r.CommittedTCB),
		CurrentVersion: fmt.Sprintf("%d.%d.%d", r.CurrentMajor, r.CurrentMinor, r.CurrentBuild),
		CommittedVer:   fmt.Sprintf("%d.%d.%d", r.CommittedMajor, r.CommittedMinor, r.CommittedBuild),
		LaunchTCB:      tcbText(r.LaunchTCB),
	}
	if r.Version >= 3 {
		j.CPUID = fmt.Sprintf("0x%02x/0x%02x/0x%02x", r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping)
	}
	if r.Version >= 5 {
		j.LaunchMit, j.CurrentMit = &r.LaunchMitVector, &r.CurrentMitVector
	}
	return json.Marshal(j)
}

type certJSON struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"`
}

func certInfo(c *x509.Certificate) *certJSON {
	if c == nil {
		return nil
	}
	return &certJSON{Subject: c.Subject.CommonName, Issuer: c.Issuer.CommonName, Serial: serial(c),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: fingerprint(c)}
}

// MarshalJSON writes the result with the report's fields and a summary
// of each certificate.
func (res *Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Product       Product     `json:"product"`
		SigningKey    SigningKey  `json:"signing_key"`
		TCBStatus     TCBStatus   `json:"tcb_status"`
		TCB           TCBDetail   `json:"tcb"`
		AdvisoryIDs   []string    `json:"advisory_ids"`
		AMDRoot       bool        `json:"amd_root"`
		CRLChecked    bool        `json:"crl_checked"`
		CRL           *CRLInfo    `json:"crl,omitempty"`
		ChainNotAfter time.Time   `json:"chain_not_after"`
		ARK           *certJSON   `json:"ark"`
		ASK           *certJSON   `json:"ask"`
		VCEK          *certJSON   `json:"vcek"`
		Extensions    *Extensions `json:"vcek_extensions"`
		Report        *Report     `json:"report"`
	}{res.Product, res.SigningKey, res.TCBStatus, res.TCB, res.AdvisoryIDs, res.AMDRoot, res.CRLChecked, res.CRL,
		res.ChainNotAfter.UTC(), certInfo(res.ARK), certInfo(res.ASK), certInfo(res.VCEK), res.Extensions, res.Report})
}

// UnmarshalText reads a product line name.
func (p *Product) UnmarshalText(b []byte) error {
	v, err := ParseProduct(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// UnmarshalText reads a signing key name.
func (k *SigningKey) UnmarshalText(b []byte) error {
	for _, v := range []SigningKey{SigningKeyVCEK, SigningKeyVLEK, SigningKeyNone} {
		if v.String() == string(b) {
			*k = v
			return nil
		}
	}
	return fmt.Errorf("%w: signing key %q", ErrMalformed, b)
}

func (h *hexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// UnmarshalJSON re-parses the report from its "raw" member, so a report
// read back from JSON is exactly the one written (the other members are
// derived from it and ignored).
func (r *Report) UnmarshalJSON(b []byte) error {
	var j struct {
		Raw hexBytes `json:"raw"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	p, err := ParseReport(j.Raw)
	if err != nil {
		return err
	}
	*r = *p
	return nil
}

// UnmarshalJSON reads what MarshalJSON writes, except the certificates,
// of which only summaries are written: ARK, ASK and VCEK stay nil.
func (res *Result) UnmarshalJSON(b []byte) error {
	var j struct {
		Product       Product     `json:"product"`
		SigningKey    SigningKey  `json:"signing_key"`
		TCBStatus     TCBStatus   `json:"tcb_status"`
		TCB           TCBDetail   `json:"tcb"`
		AdvisoryIDs   []string    `json:"advisory_ids"`
		AMDRoot       bool        `json:"amd_root"`
		CRLChecked    bool        `json:"crl_checked"`
		CRL           *CRLInfo    `json:"crl"`
		ChainNotAfter time.Time   `json:"chain_not_after"`
		Extensions    *Extensions `json:"vcek_extensions"`
		Report        *Report     `json:"report"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*res = Result{Report: j.Report, Product: j.Product, SigningKey: j.SigningKey, TCBStatus: j.TCBStatus, TCB: j.TCB,
		AdvisoryIDs: j.AdvisoryIDs, AMDRoot: j.AMDRoot, CRLChecked: j.CRLChecked, CRL: j.CRL, ChainNotAfter: j.ChainNotAfter, Extensions: j.Extensions}
	return nil
}
