package dstack

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tdproof/tdproof/jcs"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/snp"
)

// MRConfigV3Domain prefixes the MrConfigV3 document in HOST_DATA and
// MR_CONFIG_ID version 3: SHA-256(domain ‖ 0x00 ‖ document).
const MRConfigV3Domain = "dstack-mr-config-v3:"

// MRConfigV3Hash is SHA-256("dstack-mr-config-v3:" ‖ 0x00 ‖ document)
// over the document's exact bytes.
func MRConfigV3Hash(document string) [32]byte {
	h := sha256.New()
	h.Write([]byte(MRConfigV3Domain))
	h.Write([]byte{0})
	h.Write([]byte(document))
	return [32]byte(h.Sum(nil))
}

// MRConfigV3 is a parsed MrConfigV3 document (multi-tee.md §2.4).
type MRConfigV3 struct {
	Version          int        `json:"version"`
	AppID            HexBytes   `json:"app_id,omitempty"`
	ComposeHash      HexBytes   `json:"compose_hash"`
	GPUPolicyHash    HexBytes   `json:"gpu_policy_hash,omitempty"`
	InitScriptHashes []HexBytes `json:"init_script_hashes,omitempty"`
	InstanceID       HexBytes   `json:"instance_id,omitempty"`
	KeyProvider      string     `json:"key_provider"`
	KeyProviderID    HexBytes   `json:"key_provider_id,omitempty"`
}

// ParseMRConfigV3 parses an MrConfigV3 document strictly: a JSON object
// without duplicate or unknown members, version 3 (the default when
// absent), compose_hash of 32 bytes, app_id and instance_id of 20 bytes
// and gpu_policy_hash of 32 when present, key_provider one of none,
// local, kms, tpm. Errors wrap ErrMRConfigID.
func ParseMRConfigV3(document string) (*MRConfigV3, error) {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: MrConfigV3 document: "+f, append([]any{ErrMRConfigID}, a...)...)
	}
	if err := jcs.Validate([]byte(document)); err != nil {
		return nil, bad("%v", err)
	}
	// encoding/json matches member names case-insensitively, dstack
	// (serde) exactly: a case variant such as "APP_ID" is unknown.
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(document), &members); err != nil {
		return nil, bad("%v", err)
	}
	for k := range members {
		switch k {
		case "version", "app_id", "compose_hash", "gpu_policy_hash", "init_script_hashes", "instance_id", "key_provider", "key_provider_id":
		default:
			return nil, bad("unknown member %q", k)
		}
	}
	var doc struct {
		MRConfigV3
		Version *int `json:"version"`
		// presence of key_provider and compose_hash
		KeyProvider *string `json:"key_provider"`
	}
	dec := json.NewDecoder(strings.NewReader(document))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, bad("%v", err)
	}
	if dec.More() {
		return nil, bad("trailing data")
	}
	m := doc.MRConfigV3
	m.Version = 3
	if doc.Version != nil {
		m.Version = *doc.Version
	}
	if m.Version != 3 {
		return nil, bad("version %d", m.Version)
	}
	if doc.KeyProvider == nil {
		return nil, bad("key_provider missing")
	}
	m.KeyProvider = *doc.KeyProvider
	switch m.KeyProvider {
	case "none", "local", "kms", "tpm":
	default:
		return nil, bad("key_provider %q", m.KeyProvider)
	}
	switch {
	case len(m.ComposeHash) != 32:
		return nil, bad("compose_hash of %d bytes", len(m.ComposeHash))
	case m.AppID != nil && len(m.AppID) != 20:
		return nil, bad("app_id of %d bytes", len(m.AppID))
	case m.InstanceID != nil && len(m.InstanceID) != 20:
		return nil, bad("instance_id of %d bytes", len(m.InstanceID))
	case m.GPUPolicyHash != nil && len(m.GPUPolicyHash) != 32:
		return nil, bad("gpu_policy_hash of %d bytes", len(m.GPUPolicyHash))
	}
	return &m, nil
}

// KeyProviderInfo is dstack's key_provider_info for the document:
// {"name":…,"id":…} with none→none, local→local-sgx, kms→kms, tpm→tpm.
func (m *MRConfigV3) KeyProviderInfo() []byte {
	name := m.KeyProvider
	if name == "local" {
		name = "local-sgx"
	}
	b, _ := json.Marshal(KeyProvider{Name: name, ID: hex.EncodeToString(m.KeyProviderID)})
	return b
}

// SNPOptions configure VerifySNP.
type SNPOptions struct {
	// Now is the verification time for certificate validity. If zero,
	// time.Now().
	Now time.Time
	// Verifier, if set, verifies the report with its caches (its Roots,
	// CRLs and RequireCRL apply); otherwise snp.Verify with Roots below.
	// CRLs (DER, ARK-signed, e.g. from AMD KDS) are applied in either
	// case, and RequireCRL refuses (snp.ErrCRL) a report whose chain no
	// CRL of its ARK was applied to.
	Verifier   *snp.Verifier
	Roots      map[snp.Product]*x509.Certificate
	CRLs       [][]byte
	RequireCRL bool
	// ASK and VCEK supply the endorsement certificates when the evidence
	// carries none (cert_chain = []), for example from an AMD KDS cache.
	ASK, VCEK *x509.Certificate
	// Endorsement, when VCEK is nil and the evidence carries no
	// cert_chain, obtains the certificates for the report (an AMD KDS
	// cache or offline bundle, package amdkds). Whatever it returns is
	// verified like carried certificates.
	Endorsement func(r *snp.Report) (snp.Certificates, error)
	// Policy is applied to the verified report as part of platform
	// verification (dstack's validate_amd_snp_report_policy). The zero
	// value is snp's secure default; set DstackCompat for dstack's exact
	// acceptance.
	Policy snp.Policy
	// ReportData, if not nil, is the REPORT_DATA the caller expects.
	ReportData *[64]byte
	// Image, if not nil, is the OS image the guest must have booted
	// (measure.LoadSNPImage or measure.NewSNPImage). VerifySNP then also
	// recomputes the launch digest from the image with the vm_config's
	// vcpus, vcpu_type and guest_features and requires MEASUREMENT; the
	// vm_config must carry sev_snp_measurement. On a mismatch the
	// error's diagnosis names the inputs in which the image differs
	// from the vm_config's measurement.snp.cbor.
	Image *measure.SNPImage
}

// SNPLaunchCheck reports the launch digest recomputation (§7).
type SNPLaunchCheck struct {
	// Inputs are the launch inputs from sev_snp_measurement.
	Inputs *measure.SNPLaunch `json:"inputs"`
	// Computed is the recomputed digest; Quoted the report's MEASUREMENT.
	Computed HexBytes `json:"computed"`
	Quoted   HexBytes `json:"quoted"`
	Match    bool     `json:"match"`
	// Image is the launch recomputed from SNPOptions.Image, nil without
	// one.
	Image *measure.SNPLaunch `json:"image,omitempty"`
}

// snpMeasurementDoc is sev_snp_measurement (dstack-mr sev.rs
// SnpMeasurementDocument); unknown members are rejected.
type snpMeasurementDoc struct {
	ChecksumFile  []byte  `json:"checksum_file"`
	Measurement   []byte  `json:"measurement"`
	VCPUs         *uint32 `json:"vcpus"`
	VCPUType      *string `json:"vcpu_type"`
	GuestFeatures *uint64 `json:"guest_features"`
}

// VerifySNP verifies dstack SEV-SNP evidence (multi-tee.md §2.3, §6):
// the report and its chain (package snp) and policy, REPORT_DATA against
// the stack's report data (and RA-TLS or caller bindings), HOST_DATA
// against the exact bytes of the platform's mr_config, then the OS
// image: os_image_hash = SHA-256(checksum_file), the
// measurement.snp.cbor line of checksum_file, and the launch digest
// recomputed from it equal to MEASUREMENT, with the vm_config's
// mr_config checked against HOST_DATA again; finally the identity from
// the MrConfigV3 document. On error the result is nil.
//
// OSImageHashVerified is false, without an error, only when the
// vm_config carries no sev_snp_measurement at all; any present but
// failing binding is an error wrapping ErrMeasurement.
func VerifySNP(ev *Evidence, opts SNPOptions) (*Result, error) {
	if ev == nil || ev.Attestation == nil || ev.Attestation.SNP == nil {
		return nil, fmt.Errorf("%w: not SEV-SNP evidence", ErrUnsupported)
	}
	q := ev.Attestation.SNP
	rep, err := snp.ParseReport(q.Report)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	certs, err := snpCertificates(q.CertChain, rep, opts)
	if err != nil {
		return nil, err
	}
	if len(opts.CRLs) > 0 {
		certs.CRLs = append(append([][]byte(nil), certs.CRLs...), opts.CRLs...)
	}
	var sres *snp.Result
	if opts.Verifier != nil {
		sres, err = opts.Verifier.Verify(rep, certs, snp.ProductUnknown, opts.Now)
	} else {
		sres, err = snp.Verify(rep, certs, snp.Options{Now: opts.Now, Roots: opts.Roots, RequireCRL: opts.RequireCRL})
	}
	if err == nil && opts.RequireCRL && !sres.CRLChecked {
		err = &snp.VerifyError{Step: "crl", Err: fmt.Errorf("%w: no CRL of ARK-%s supplied", snp.ErrCRL, sres.Product)}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	if err := opts.Policy.Check(sres); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	checks, err := checkReportData(ev, rep.ReportData, Options{ReportData: opts.ReportData})
	if err != nil {
		return nil, err
	}
	if q.MRConfig == "" {
		return nil, fmt.Errorf("%w: SEV-SNP evidence without mr_config", ErrMRConfigID)
	}
	if h := MRConfigV3Hash(q.MRConfig); h != rep.HostData {
		return nil, fmt.Errorf("%w: amd sev-snp HOST_DATA mismatch, quoted: %x, expected: %x", ErrMRConfigID, rep.HostData, h)
	}
	res := &Result{
		MediaType:        MediaType,
		TEEVariant:       TEEVariantSEVSNP,
		EvidenceFormat:   ev.Format,
		QuoteVerified:    true,
		ReportData:       HexBytes(bytes.Clone(rep.ReportData[:])),
		ReportDataChecks: checks,
		TCBStatus:        string(sres.TCBStatus),
		AdvisoryIDs:      []string{},
		VMConfig:         ev.VMConfig,
		SNP:              sres,
	}
	// OS image.
	var osHash HexBytes
	if ev.VMConfig == nil && opts.Image != nil {
		return nil, fmt.Errorf("%w: an OS image was given but the evidence carries no vm_config", ErrOSImageHash)
	}
	if ev.VMConfig != nil {
		osHash = ev.VMConfig.OSImageHash
		launch, err := verifySNPLaunch(ev.VMConfig, rep, opts.Image)
		if err != nil {
			return nil, err
		}
		if launch != nil {
			res.SNPLaunch = launch
			res.OSImageHashVerified = true
		}
	}
	// Identity from the platform's document.
	doc, err := ParseMRConfigV3(q.MRConfig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventLog, err)
	}
	dev := sha256.Sum256(rep.ChipID[:])
	mrs := sha256.Sum256(rep.Measurement[:])
	mra := sha256.Sum256(append(bytes.Clone(rep.Measurement[:]), rep.HostData[:]...))
	kpi := doc.KeyProviderInfo()
	res.AppInfo = AppInfo{
		AppID:            orEmpty(doc.AppID),
		ComposeHash:      doc.ComposeHash,
		InstanceID:       orEmpty(doc.InstanceID),
		DeviceID:         dev[:],
		MRSystem:         mrs[:],
		MRAggregated:     mra[:],
		OSImageHash:      orEmpty(osHash),
		KeyProviderInfo:  kpi,
		InitScriptHashes: doc.InitScriptHashes,
	}
	if res.AppInfo.InitScriptHashes == nil {
		res.AppInfo.InitScriptHashes = []HexBytes{}
	}
	if kp, err := ParseKeyProvider(kpi); err == nil {
		res.KeyProvider = kp
	}
	res.EventLogVerified = true
	res.BootInfo = BootInfo{
		TEEVariant: TEEVariantSEVSNP, MRAggregated: res.AppInfo.MRAggregated, OSImageHash: res.AppInfo.OSImageHash,
		MRSystem: res.AppInfo.MRSystem, AppID: res.AppInfo.AppID, ComposeHash: res.AppInfo.ComposeHash,
		InstanceID: res.AppInfo.InstanceID, DeviceID: res.AppInfo.DeviceID, KeyProviderInfo: kpi,
		TCBStatus: res.TCBStatus, AdvisoryIDs: []string{},
	}
	return res, nil
}

func orEmpty(b HexBytes) HexBytes {
	if b == nil {
		return HexBytes{}
	}
	return b
}

// snpCertificates normalises cert_chain (dstack normalize_ask_vcek_certs):
// [] takes opts.ASK/VCEK, [ask, vcek] is PEM or DER each, [blob] is a
// certificate table.
func snpCertificates(chain [][]byte, rep *snp.Report, opts SNPOptions) (snp.Certificates, error) {
	parse := func(what string, b []byte) (*x509.Certificate, error) {
		cs, err := snp.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%w: cert_chain %s: %w", ErrQuote, what, err)
		}
		if len(cs) != 1 {
			return nil, fmt.Errorf("%w: cert_chain %s holds %d certificates", ErrQuote, what, len(cs))
		}
		return cs[0], nil
	}
	var c snp.Certificates
	var err error
	switch len(chain) {
	case 0:
		if opts.VCEK == nil && opts.Endorsement != nil {
			c, err := opts.Endorsement(rep)
			if err != nil {
				return c, fmt.Errorf("%w: endorsement certificates: %w", ErrQuote, err)
			}
			return c, nil
		}
		if opts.VCEK == nil {
			return c, fmt.Errorf("%w: the evidence carries no VCEK; fetch it from AMD KDS (tdproof collateral fetch --platform snp)", ErrQuote)
		}
		return snp.Certificates{ASK: opts.ASK, VCEK: opts.VCEK}, nil
	case 1:
		t, err := ParseSNPCertTable(chain[0])
		if err != nil {
			return c, fmt.Errorf("%w: %w", ErrQuote, err)
		}
		if t.ASK != nil {
			if c.ASK, err = parse("ASK", t.ASK); err != nil {
				return c, err
			}
		}
		leaf := t.VCEK
		if leaf == nil {
			leaf = t.VLEK
		}
		if leaf == nil {
			return c, fmt.Errorf("%w: certificate table has no VCEK or VLEK", ErrQuote)
		}
		c.VCEK, err = parse("VCEK", leaf)
		return c, err
	case 2:
		if c.ASK, err = parse("ASK", chain[0]); err != nil {
			return c, err
		}
		c.VCEK, err = parse("VCEK", chain[1])
		return c, err
	}
	return c, fmt.Errorf("%w: cert_chain of %d entries", ErrQuote, len(chain))
}

// SNPLaunchInputs reads the launch inputs of a vm_config's
// sev_snp_measurement (a JSON string holding {checksum_file, measurement,
// vcpus, vcpu_type, guest_features}, base64 byte fields, no unknown
// members). It returns (nil, nil) when the vm_config has none. The
// checksum_file binding is checked by VerifySNP, not here.
func SNPLaunchInputs(cfg *VMConfig) (*measure.SNPLaunch, error) {
	l, _, err := snpLaunchInputs(cfg)
	return l, err
}

func snpLaunchInputs(cfg *VMConfig) (*measure.SNPLaunch, *snpMeasurementDoc, error) {
	var outer struct {
		SEVSNPMeasurement *string `json:"sev_snp_measurement"`
	}
	if err := json.Unmarshal(cfg.Raw, &outer); err != nil {
		return nil, nil, fmt.Errorf("%w: vm_config: %v", ErrMalformed, err)
	}
	if outer.SEVSNPMeasurement == nil {
		return nil, nil, nil
	}
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: sev_snp_measurement: "+f, append([]any{ErrOSImageHash}, a...)...)
	}
	var doc snpMeasurementDoc
	dec := json.NewDecoder(strings.NewReader(*outer.SEVSNPMeasurement))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return nil, nil, bad("%v", err)
	}
	if doc.VCPUs == nil || doc.VCPUType == nil || doc.GuestFeatures == nil || doc.ChecksumFile == nil || doc.Measurement == nil {
		return nil, nil, bad("missing member")
	}
	l, err := measure.ParseSNPMeasurement(doc.Measurement)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	l.VCPUs, l.VCPUType, l.GuestFeatures = *doc.VCPUs, *doc.VCPUType, *doc.GuestFeatures
	return l, &doc, nil
}

func verifySNPLaunch(cfg *VMConfig, rep *snp.Report, image *measure.SNPImage) (*SNPLaunchCheck, error) {
	l, doc, err := snpLaunchInputs(cfg)
	if err != nil {
		return nil, err
	}
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: "+f, append([]any{ErrOSImageHash}, a...)...)
	}
	if l == nil {
		if image != nil {
			return nil, bad("an OS image was given but the vm_config has no sev_snp_measurement (vcpus, vcpu_type, guest_features)")
		}
		return nil, nil
	}
	if h := sha256.Sum256(doc.ChecksumFile); !bytes.Equal(h[:], cfg.OSImageHash) {
		return nil, bad("os_image_hash %x, SHA-256(checksum_file) %x", []byte(cfg.OSImageHash), h)
	}
	mh := sha256.Sum256(doc.Measurement)
	if !checksumListed(doc.ChecksumFile, "measurement.snp.cbor", mh[:]) {
		return nil, bad("checksum_file does not list measurement.snp.cbor with SHA-256 %x", mh)
	}
	d, err := l.Digest()
	if err != nil {
		return nil, bad("%v", err)
	}
	var fromImage *measure.SNPLaunch
	if image != nil {
		if fromImage, err = image.Launch(l.VCPUs, l.VCPUType, l.GuestFeatures); err != nil {
			return nil, bad("OS image: %v", err)
		}
	}
	check := &SNPLaunchCheck{Inputs: l, Computed: d[:], Quoted: bytes.Clone(rep.Measurement[:]), Match: d == rep.Measurement, Image: fromImage}
	if !check.Match {
		// The vm_config's inputs are the candidate; the image, when
		// given, is the reference that names what differs.
		diag, err := measure.DiagnoseSNPLaunch(rep.Measurement, l, fromImage)
		if err != nil {
			return nil, bad("%v", err)
		}
		return nil, &SNPLaunchError{Check: check, Diagnosis: diag}
	}
	if fromImage != nil {
		// The vm_config reproduces MEASUREMENT: it is the reference
		// for what in the image differs.
		diag, err := measure.DiagnoseSNPLaunch(rep.Measurement, fromImage, l)
		if err != nil {
			return nil, bad("OS image: %v", err)
		}
		if !diag.Match {
			check.Match = false
			return nil, &SNPLaunchError{Check: check, Diagnosis: diag, Image: true}
		}
	}
	if cfg.MRConfig != "" {
		if _, err := ParseMRConfigV3(cfg.MRConfig); err != nil {
			return nil, fmt.Errorf("%w: vm_config mr_config: %w", ErrOSImageHash, err)
		}
		if h := MRConfigV3Hash(cfg.MRConfig); h != rep.HostData {
			return nil, bad("vm_config mr_config hashes to %x, HOST_DATA is %x", h, rep.HostData)
		}
	}
	return check, nil
}

// SNPLaunchError is a launch digest mismatch; it wraps ErrOSImageHash and
// carries the recomputation and the diagnosis
// (measure.DiagnoseSNPLaunch): the inputs that explain the mismatch.
type SNPLaunchError struct {
	Check     *SNPLaunchCheck
	Diagnosis *measure.SNPDiagnosis
	// Image is true when the vm_config's inputs reproduce MEASUREMENT
	// and the OS image given (SNPOptions.Image) does not.
	Image bool
}

func (e *SNPLaunchError) Error() string {
	s := fmt.Sprintf("dstack: amd sev-snp measurement mismatch: computed %x, quoted %x", []byte(e.Check.Computed), []byte(e.Check.Quoted))
	if e.Image && e.Diagnosis != nil {
		s = fmt.Sprintf("dstack: amd sev-snp measurement mismatch: the OS image gives %x, quoted %x", e.Diagnosis.Computed, []byte(e.Check.Quoted))
	}
	if e.Diagnosis != nil && len(e.Diagnosis.Causes) > 0 {
		s += "; likely cause: " + e.Diagnosis.String()
	}
	return s
}

func (e *SNPLaunchError) Unwrap() error { return ErrOSImageHash }

// checksumListed reports whether a sha256sum-style file lists name with
// digest.
func checksumListed(file []byte, name string, digest []byte) bool {
	want := hex.EncodeToString(digest)
	for _, line := range strings.Split(string(file), "\n") {
		h, n, ok := strings.Cut(line, "  ")
		if ok && strings.TrimPrefix(n, "*") == name && strings.EqualFold(h, want) {
			return true
		}
	}
	return false
}
