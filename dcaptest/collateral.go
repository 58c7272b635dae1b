package dcaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
)

// ComponentLabel is the optional "category" and "type" of a TCB component
// in TCB info JSON ({"svn":2,"category":"BIOS","type":"Early Microcode
// Update"}). Empty strings are left out.
type ComponentLabel struct {
	Category string
	Type     string
}

// Labels of real TDX TCB infos (dcap.md §3.3), used by
// [DefaultTDXCollateralSpec]. Real SGX TCB infos carry none.
var (
	intelSGXLabels = [16]ComponentLabel{
		{"BIOS", "Early Microcode Update"}, {"OS/VMM", "SGX Late Microcode Update"}, {"OS/VMM", "TXT SINIT"},
		{"BIOS", ""}, {"BIOS", ""}, {"BIOS", ""}, {}, {"OS/VMM", "SEAMLDR ACM"},
	}
	intelTDXLabels = [16]ComponentLabel{
		{"OS/VMM", "TDX Module"}, {"OS/VMM", "TDX Module"}, {"OS/VMM", "TDX Late Microcode Update"},
	}
)

// CollateralSpec describes collateral for one platform. The TCB info and
// QE identity are given as the collateral package's parsed types and
// encoded as Intel serves them: compact JSON, Intel's key order, upper
// case hex, dates as 2006-01-02T15:04:05Z. TCB levels and identities are
// written in the order given (not sorted). Start from
// [DefaultTDXCollateralSpec] or [DefaultSGXCollateralSpec].
//
// Encoding rules for fields that may be absent: an empty TCBInfo.ID or
// QEIdentity.ID leaves "id" out; TCBInfo.Version 2 writes the legacy
// "sgxtcbcompNNsvn" level layout; "tdxtcbcomponents" is written when
// TCBInfo.ID is "TDX"; nil TDXModule and TDXModuleIdentities are left
// out; a zero level TCBDate is left out; nil AdvisoryIDs are left out.
type CollateralSpec struct {
	TCBInfo collateral.TCBInfo
	// SGXComponentLabels and TDXComponentLabels label the components of
	// every TCB level.
	SGXComponentLabels [16]ComponentLabel
	TDXComponentLabels [16]ComponentLabel
	QEIdentity         collateral.QEIdentity

	// CA selects the PCK CRL and its issuer chain. If zero,
	// pckcert.CAPlatform.
	CA pckcert.CAType
	// RootCRL and PCKCRL describe the two CRLs (see [PKI.RootCRL] and
	// [PKI.PCKCRL]).
	RootCRL, PCKCRL CRLSpec

	// TCBInfoKey and QEIdentityKey sign the JSON instead of the TCB
	// signing key.
	TCBInfoKey, QEIdentityKey *ecdsa.PrivateKey
	// The issuer chains, leaf first. If nil: [PKI.TCBSigningChain] for
	// TCB info and QE identity, [PKI.PCKCRLIssuerChain](CA) for the PCK
	// CRL. A non-nil empty slice gives an empty chain.
	TCBInfoIssuerChain, QEIdentityIssuerChain, PCKCRLIssuerChain []*x509.Certificate
	// PCKCertChain, if non-nil, is included as the collateral's PCK
	// certificate chain (needed by quotes with an encrypted PPID).
	PCKCertChain []*x509.Certificate

	// MutateTCBInfoJSON and MutateQEIdentityJSON, if set, rewrite the
	// encoded JSON before it is signed (the signature stays valid).
	MutateTCBInfoJSON, MutateQEIdentityJSON func([]byte) []byte
	// MutateTCBInfoAfterSign and MutateQEIdentityAfterSign, if set,
	// rewrite the JSON after it is signed (the signature no longer
	// covers it).
	MutateTCBInfoAfterSign, MutateQEIdentityAfterSign func([]byte) []byte
}

// Dates of the default TCB levels.
var (
	upToDateTCBDate  = time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC)
	outOfDateTCBDate = time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)
)

// DefaultTDXCollateralSpec returns TDX collateral under which the
// platform's default TDX quotes ([Platform.DefaultQuoteSpec]) are
// UpToDate with no advisory IDs:
//
//   - TCB info "TDX" version 3 for the platform's FMSPC and PCE-ID,
//     tcbType 0, evaluation data number 17, tdxModule with zero MRSIGNER
//     and attributes and mask FFFFFFFFFFFFFFFF;
//   - tdxModuleIdentities TDX_03 (isvsvn 3 UpToDate) and TDX_01 (isvsvn 3
//     UpToDate, isvsvn 2 OutOfDate with an advisory);
//   - tcbLevels: the platform's SGX components and PCESVN with TDX
//     components 05 00 02 00… UpToDate (TEE_TCB_SVN bytes 0–1 are judged
//     by the module identity since byte 1 > 0), then a lower level with
//     every non-zero component decreased by one, OutOfDate with advisory
//     IDs (left out if the platform TCB is all zero);
//   - QE identity "TD_QE" version 2 with Intel's TD QE MRSIGNER and
//     ISVPRODID, MISCSELECT 0 mask FFFFFFFF, attributes 11… mask
//     FBFFFFFFFFFFFFFF0000000000000000, levels isvsvn 4 UpToDate and 2
//     OutOfDate with an advisory;
//   - issueDate = at − 1 day and nextUpdate = at + 29 days (truncated to
//     the second) for TCB info, QE identity and both CRLs;
//   - the CRLs of the platform's CA and of the root, revoking nothing.
func DefaultTDXCollateralSpec(p *Platform, at time.Time) CollateralSpec {
	s := defaultCollateralSpec(p, at, true)
	s.TCBInfo.ID = "TDX"
	zeroModule := collateral.TDXModule{AttributesMask: [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}
	s.TCBInfo.TDXModule = &zeroModule
	s.TCBInfo.TDXModuleIdentities = []collateral.TDXModuleIdentity{
		{ID: "TDX_03", TDXModule: zeroModule, TCBLevels: []collateral.ISVSVNLevel{
			{ISVSVN: 3, TCBDate: upToDateTCBDate, TCBStatus: collateral.UpToDate},
		}},
		{ID: "TDX_01", TDXModule: zeroModule, TCBLevels: []collateral.ISVSVNLevel{
			{ISVSVN: 3, TCBDate: upToDateTCBDate, TCBStatus: collateral.UpToDate},
			{ISVSVN: 2, TCBDate: outOfDateTCBDate, TCBStatus: collateral.OutOfDate, AdvisoryIDs: []string{"INTEL-SA-01036"}},
		}},
	}
	s.SGXComponentLabels = intelSGXLabels
	s.TDXComponentLabels = intelTDXLabels
	s.QEIdentity.ID = "TD_QE"
	s.QEIdentity.MRSigner = TDQEMRSigner
	s.QEIdentity.ISVProdID = TDQEISVProdID
	return s
}

// DefaultSGXCollateralSpec returns SGX collateral under which the
// platform's default SGX quotes are UpToDate with no advisory IDs: like
// [DefaultTDXCollateralSpec] but TCB info "SGX" version 3 without TDX
// fields or component labels, and QE identity "QE" with Intel's SGX QE
// MRSIGNER and ISVPRODID.
func DefaultSGXCollateralSpec(p *Platform, at time.Time) CollateralSpec {
	s := defaultCollateralSpec(p, at, false)
	s.TCBInfo.ID = "SGX"
	s.QEIdentity.ID = "QE"
	s.QEIdentity.MRSigner = SGXQEMRSigner
	s.QEIdentity.ISVProdID = SGXQEISVProdID
	return s
}

func defaultCollateralSpec(p *Platform, at time.Time, tdx bool) CollateralSpec {
	at = at.UTC().Truncate(time.Second)
	issue, next := at.Add(-24*time.Hour), at.Add(29*24*time.Hour)
	top := collateral.TCBLevel{
		SGXComponents: p.Spec.Components,
		PCESVN:        p.Spec.PCESVN,
		TCBDate:       upToDateTCBDate,
		TCBStatus:     collateral.UpToDate,
	}
	if tdx {
		top.TDXComponents = [16]uint8{5, 0, 2}
	}
	levels := []collateral.TCBLevel{top}
	low := top
	lowered := false
	for i := range low.SGXComponents {
		if low.SGXComponents[i] > 0 {
			low.SGXComponents[i]--
			lowered = true
		}
		if low.TDXComponents[i] > 0 {
			low.TDXComponents[i]--
		}
	}
	if !lowered && low.PCESVN > 0 {
		low.PCESVN--
		lowered = true
	}
	if lowered {
		low.TCBDate = outOfDateTCBDate
		low.TCBStatus = collateral.OutOfDate
		low.AdvisoryIDs = []string{"INTEL-SA-00837", "INTEL-SA-01036"}
		levels = append(levels, low)
	}
	var qe collateral.QEIdentity
	qe.Version = 2
	qe.IssueDate, qe.NextUpdate = issue, next
	qe.TCBEvaluationDataNumber = 17
	qe.MiscSelectMask = [4]byte{0xFF, 0xFF, 0xFF, 0xFF}
	qe.Attributes[0] = 0x11
	qe.AttributesMask = [16]byte{0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	qe.TCBLevels = []collateral.ISVSVNLevel{
		{ISVSVN: DefaultQEISVSVN, TCBDate: upToDateTCBDate, TCBStatus: collateral.UpToDate},
		{ISVSVN: 2, TCBDate: outOfDateTCBDate, TCBStatus: collateral.OutOfDate, AdvisoryIDs: []string{"INTEL-SA-00837"}},
	}
	crl := CRLSpec{ThisUpdate: issue, NextUpdate: next}
	return CollateralSpec{
		TCBInfo: collateral.TCBInfo{
			Version:                 3,
			IssueDate:               issue,
			NextUpdate:              next,
			FMSPC:                   p.Spec.FMSPC,
			PCEID:                   p.Spec.PCEID,
			TCBEvaluationDataNumber: 17,
			TCBLevels:               levels,
		},
		QEIdentity: qe,
		CA:         p.Spec.CA,
		RootCRL:    crl,
		PCKCRL:     crl,
	}
}

// RawCollateral is collateral as bytes, before any parsing: what a PCS
// serves. Unlike [collateral.Collateral] it can hold signed JSON that the
// collateral package rejects (wrong version, duplicate levels, …), so
// parser and verifier tests can feed it through [RawCollateral.QVLJSON]
// or the PCS response bodies.
type RawCollateral struct {
	// Issuer chains as PEM, leaf first.
	PCKCRLIssuerChain     string
	TCBInfoIssuerChain    string
	QEIdentityIssuerChain string
	// CRLs as DER.
	RootCACRL []byte
	PCKCRL    []byte
	// TCBInfo and QEIdentity are the exact signed JSON objects;
	// the signatures are raw r‖s (64 bytes unless mutated).
	TCBInfo             []byte
	TCBInfoSignature    []byte
	QEIdentity          []byte
	QEIdentitySignature []byte
	// PCKCertChain is the optional PCK chain as PEM ("" when absent).
	PCKCertChain string
}

// RawCollateral builds, signs and encodes collateral without parsing it.
func (p *PKI) RawCollateral(spec CollateralSpec) (*RawCollateral, error) {
	if spec.CA == pckcert.CAUnknown {
		spec.CA = pckcert.CAPlatform
	}
	tcbRaw, err := encodeTCBInfo(&spec.TCBInfo, &spec.SGXComponentLabels, &spec.TDXComponentLabels)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: tcb info: %w", err)
	}
	qeRaw, err := encodeQEIdentity(&spec.QEIdentity)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: qe identity: %w", err)
	}
	tcbRaw, tcbSig, err := signJSON(tcbRaw, spec.TCBInfoKey, p.TCBSigning.Key, spec.MutateTCBInfoJSON, spec.MutateTCBInfoAfterSign)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: tcb info: %w", err)
	}
	qeRaw, qeSig, err := signJSON(qeRaw, spec.QEIdentityKey, p.TCBSigning.Key, spec.MutateQEIdentityJSON, spec.MutateQEIdentityAfterSign)
	if err != nil {
		return nil, fmt.Errorf("dcaptest: qe identity: %w", err)
	}
	rootCRL, err := p.RootCRL(spec.RootCRL)
	if err != nil {
		return nil, err
	}
	pckCRL, err := p.PCKCRL(spec.CA, spec.PCKCRL)
	if err != nil {
		return nil, err
	}
	chain := func(override, def []*x509.Certificate) string {
		if override != nil {
			return string(ChainPEM(override...))
		}
		return string(ChainPEM(def...))
	}
	r := &RawCollateral{
		PCKCRLIssuerChain:     chain(spec.PCKCRLIssuerChain, p.PCKCRLIssuerChain(spec.CA)),
		TCBInfoIssuerChain:    chain(spec.TCBInfoIssuerChain, p.TCBSigningChain()),
		QEIdentityIssuerChain: chain(spec.QEIdentityIssuerChain, p.TCBSigningChain()),
		RootCACRL:             rootCRL.DER,
		PCKCRL:                pckCRL.DER,
		TCBInfo:               tcbRaw,
		TCBInfoSignature:      tcbSig,
		QEIdentity:            qeRaw,
		QEIdentitySignature:   qeSig,
	}
	if spec.PCKCertChain != nil {
		r.PCKCertChain = string(ChainPEM(spec.PCKCertChain...))
	}
	return r, nil
}

// Collateral builds, signs and encodes collateral and parses it into a
// [collateral.Collateral]. It fails if the collateral package rejects
// any part; use [PKI.RawCollateral] for collateral that must not parse.
func (p *PKI) Collateral(spec CollateralSpec) (*collateral.Collateral, error) {
	r, err := p.RawCollateral(spec)
	if err != nil {
		return nil, err
	}
	return r.Collateral()
}

func signJSON(raw []byte, key, def *ecdsa.PrivateKey, before, after func([]byte) []byte) ([]byte, []byte, error) {
	if before != nil {
		raw = before(raw)
	}
	if key == nil {
		key = def
	}
	sig, err := SignRaw(key, raw)
	if err != nil {
		return nil, nil, err
	}
	if after != nil {
		raw = after(raw)
	}
	return raw, sig[:], nil
}

// Collateral parses r with the collateral package.
func (r *RawCollateral) Collateral() (*collateral.Collateral, error) {
	c := &collateral.Collateral{}
	var err error
	if c.PCKCRLIssuerChain, err = collateral.ParseChain(r.PCKCRLIssuerChain); err != nil {
		return nil, err
	}
	if c.RootCACRL, err = collateral.ParseCRL(r.RootCACRL); err != nil {
		return nil, err
	}
	if c.PCKCRL, err = collateral.ParseCRL(r.PCKCRL); err != nil {
		return nil, err
	}
	if c.TCBInfoIssuerChain, err = collateral.ParseChain(r.TCBInfoIssuerChain); err != nil {
		return nil, err
	}
	if c.TCBInfo, err = collateral.NewSignedTCBInfo(r.TCBInfo, r.TCBInfoSignature); err != nil {
		return nil, err
	}
	if c.QEIdentityIssuerChain, err = collateral.ParseChain(r.QEIdentityIssuerChain); err != nil {
		return nil, err
	}
	if c.QEIdentity, err = collateral.NewSignedQEIdentity(r.QEIdentity, r.QEIdentitySignature); err != nil {
		return nil, err
	}
	if r.PCKCertChain != "" {
		if c.PCKCertChain, err = collateral.ParseChain(r.PCKCertChain); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// QVLJSON encodes r as dcap-qvl's QuoteCollateralV3 JSON (hex CRLs and
// signatures, the signed JSON objects as strings), the shape
// [collateral.ParseQVLJSON] reads.
func (r *RawCollateral) QVLJSON() ([]byte, error) {
	j := struct {
		PCKCRLIssuerChain     string  `json:"pck_crl_issuer_chain"`
		RootCACRL             string  `json:"root_ca_crl"`
		PCKCRL                string  `json:"pck_crl"`
		TCBInfoIssuerChain    string  `json:"tcb_info_issuer_chain"`
		TCBInfo               string  `json:"tcb_info"`
		TCBInfoSignature      string  `json:"tcb_info_signature"`
		QEIdentityIssuerChain string  `json:"qe_identity_issuer_chain"`
		QEIdentity            string  `json:"qe_identity"`
		QEIdentitySignature   string  `json:"qe_identity_signature"`
		PCKCertificateChain   *string `json:"pck_certificate_chain,omitempty"`
	}{
		PCKCRLIssuerChain:     r.PCKCRLIssuerChain,
		RootCACRL:             hex.EncodeToString(r.RootCACRL),
		PCKCRL:                hex.EncodeToString(r.PCKCRL),
		TCBInfoIssuerChain:    r.TCBInfoIssuerChain,
		TCBInfo:               string(r.TCBInfo),
		TCBInfoSignature:      hex.EncodeToString(r.TCBInfoSignature),
		QEIdentityIssuerChain: r.QEIdentityIssuerChain,
		QEIdentity:            string(r.QEIdentity),
		QEIdentitySignature:   hex.EncodeToString(r.QEIdentitySignature),
	}
	if r.PCKCertChain != "" {
		j.PCKCertificateChain = &r.PCKCertChain
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// TCBInfoResponse returns the PCS TCB info response body
// {"tcbInfo":…,"signature":"<hex>"}. Its issuer chain header
// (TCB-Info-Issuer-Chain) is the URL-encoded TCBInfoIssuerChain.
func (r *RawCollateral) TCBInfoResponse() []byte {
	return signedBody("tcbInfo", r.TCBInfo, r.TCBInfoSignature)
}

// QEIdentityResponse returns the PCS enclave identity response body
// {"enclaveIdentity":…,"signature":"<hex>"}. Its issuer chain header
// (SGX-Enclave-Identity-Issuer-Chain) is the URL-encoded
// QEIdentityIssuerChain.
func (r *RawCollateral) QEIdentityResponse() []byte {
	return signedBody("enclaveIdentity", r.QEIdentity, r.QEIdentitySignature)
}

func signedBody(key string, raw, sig []byte) []byte {
	return object(kv{key, raw}, kv{"signature", jstr(hex.EncodeToString(sig))})
}

// JSON writing. Values are pre-encoded; objects keep the order given.

type kv struct {
	k string
	v []byte
}

func object(kvs ...kv) []byte {
	out := []byte{'{'}
	for i, f := range kvs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, jstr(f.k)...)
		out = append(out, ':')
		out = append(out, f.v...)
	}
	return append(out, '}')
}

func array(items [][]byte) []byte {
	return append(append([]byte{'['}, bytes.Join(items, []byte{','})...), ']')
}

func jstr(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func jint(n int) []byte { return strconv.AppendInt(nil, int64(n), 10) }

func jhex(b []byte) []byte {
	out := make([]byte, 0, 2*len(b)+2)
	out = append(out, '"')
	out = hex.AppendEncode(out, b)
	out = append(out, '"')
	return bytes.ToUpper(out)
}

func jtime(t time.Time) []byte { return jstr(t.UTC().Format("2006-01-02T15:04:05Z")) }

func jstatus(s collateral.TCBStatus) ([]byte, error) {
	b, err := s.MarshalText()
	if err != nil {
		return nil, err
	}
	return jstr(string(b)), nil
}

func jstrings(ss []string) []byte {
	items := make([][]byte, len(ss))
	for i, s := range ss {
		items[i] = jstr(s)
	}
	return array(items)
}

// levelTail appends tcbDate (if set), tcbStatus and advisoryIDs (if
// non-nil) to a level object's fields.
func levelTail(fields []kv, date time.Time, status collateral.TCBStatus, advisories []string) ([]kv, error) {
	if !date.IsZero() {
		fields = append(fields, kv{"tcbDate", jtime(date)})
	}
	st, err := jstatus(status)
	if err != nil {
		return nil, err
	}
	fields = append(fields, kv{"tcbStatus", st})
	if advisories != nil {
		fields = append(fields, kv{"advisoryIDs", jstrings(advisories)})
	}
	return fields, nil
}

func isvsvnLevels(ls []collateral.ISVSVNLevel) ([]byte, error) {
	items := make([][]byte, 0, len(ls))
	for _, l := range ls {
		fields, err := levelTail([]kv{{"tcb", object(kv{"isvsvn", jint(int(l.ISVSVN))})}}, l.TCBDate, l.TCBStatus, l.AdvisoryIDs)
		if err != nil {
			return nil, err
		}
		items = append(items, object(fields...))
	}
	return array(items), nil
}

func components(svns *[16]uint8, labels *[16]ComponentLabel) []byte {
	items := make([][]byte, 16)
	for i, svn := range svns {
		fields := []kv{{"svn", jint(int(svn))}}
		if labels[i].Category != "" {
			fields = append(fields, kv{"category", jstr(labels[i].Category)})
		}
		if labels[i].Type != "" {
			fields = append(fields, kv{"type", jstr(labels[i].Type)})
		}
		items[i] = object(fields...)
	}
	return array(items)
}

func moduleFields(m *collateral.TDXModule) []kv {
	return []kv{
		{"mrsigner", jhex(m.MRSigner[:])},
		{"attributes", jhex(m.Attributes[:])},
		{"attributesMask", jhex(m.AttributesMask[:])},
	}
}

// encodeTCBInfo writes t as Intel's compact TCB info JSON.
func encodeTCBInfo(t *collateral.TCBInfo, sgxLabels, tdxLabels *[16]ComponentLabel) ([]byte, error) {
	tdx := t.ID == "TDX"
	var fields []kv
	if t.ID != "" {
		fields = append(fields, kv{"id", jstr(t.ID)})
	}
	fields = append(fields,
		kv{"version", jint(t.Version)},
		kv{"issueDate", jtime(t.IssueDate)},
		kv{"nextUpdate", jtime(t.NextUpdate)},
		kv{"fmspc", jhex(t.FMSPC[:])},
		kv{"pceId", jhex(t.PCEID[:])},
		kv{"tcbType", jint(t.TCBType)},
		kv{"tcbEvaluationDataNumber", jint(t.TCBEvaluationDataNumber)},
	)
	if t.TDXModule != nil {
		fields = append(fields, kv{"tdxModule", object(moduleFields(t.TDXModule)...)})
	}
	if t.TDXModuleIdentities != nil {
		items := make([][]byte, 0, len(t.TDXModuleIdentities))
		for _, id := range t.TDXModuleIdentities {
			levels, err := isvsvnLevels(id.TCBLevels)
			if err != nil {
				return nil, fmt.Errorf("module identity %s: %w", id.ID, err)
			}
			f := append([]kv{{"id", jstr(id.ID)}}, moduleFields(&id.TDXModule)...)
			items = append(items, object(append(f, kv{"tcbLevels", levels})...))
		}
		fields = append(fields, kv{"tdxModuleIdentities", array(items)})
	}
	items := make([][]byte, 0, len(t.TCBLevels))
	for i := range t.TCBLevels {
		l := &t.TCBLevels[i]
		var tcb []byte
		if t.Version == 2 {
			var f []kv
			for j, svn := range l.SGXComponents {
				f = append(f, kv{fmt.Sprintf("sgxtcbcomp%02dsvn", j+1), jint(int(svn))})
			}
			tcb = object(append(f, kv{"pcesvn", jint(int(l.PCESVN))})...)
		} else {
			f := []kv{
				{"sgxtcbcomponents", components(&l.SGXComponents, sgxLabels)},
				{"pcesvn", jint(int(l.PCESVN))},
			}
			if tdx {
				f = append(f, kv{"tdxtcbcomponents", components(&l.TDXComponents, tdxLabels)})
			}
			tcb = object(f...)
		}
		lf, err := levelTail([]kv{{"tcb", tcb}}, l.TCBDate, l.TCBStatus, l.AdvisoryIDs)
		if err != nil {
			return nil, fmt.Errorf("tcbLevels[%d]: %w", i, err)
		}
		items = append(items, object(lf...))
	}
	fields = append(fields, kv{"tcbLevels", array(items)})
	return object(fields...), nil
}

// encodeQEIdentity writes q as Intel's compact enclave identity JSON.
func encodeQEIdentity(q *collateral.QEIdentity) ([]byte, error) {
	levels, err := isvsvnLevels(q.TCBLevels)
	if err != nil {
		return nil, err
	}
	var fields []kv
	if q.ID != "" {
		fields = append(fields, kv{"id", jstr(q.ID)})
	}
	return object(append(fields,
		kv{"version", jint(q.Version)},
		kv{"issueDate", jtime(q.IssueDate)},
		kv{"nextUpdate", jtime(q.NextUpdate)},
		kv{"tcbEvaluationDataNumber", jint(q.TCBEvaluationDataNumber)},
		kv{"miscselect", jhex(q.MiscSelect[:])},
		kv{"miscselectMask", jhex(q.MiscSelectMask[:])},
		kv{"attributes", jhex(q.Attributes[:])},
		kv{"attributesMask", jhex(q.AttributesMask[:])},
		kv{"mrsigner", jhex(q.MRSigner[:])},
		kv{"isvprodid", jint(int(q.ISVProdID))},
		kv{"tcbLevels", levels},
	)...), nil
}
