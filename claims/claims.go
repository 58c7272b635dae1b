package claims

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/jsonappend"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/snp"
)

// MediaType identifies the JSON schema of a claim set.
const MediaType = "application/vnd.tdproof.claims.v1+json"

// TEE names, the value of the "tee" claim and the prefix of the TEE's
// claims.
const (
	TEETDX = "tdx"
	TEESGX = "sgx"
)

// ErrInvalid: the inputs cannot make a claim set (no DCAP result, or facts
// that contradict each other).
var ErrInvalid = errors.New("claims: invalid input")

// Input holds the verified facts a claim set is built from.
type Input struct {
	// DCAP is the verification result. If nil, Dstack.DCAP is used; one
	// of them is required: a claim set always describes an authentic
	// quote.
	DCAP *dcap.Result
	// Quote is the parsed quote; it adds the header claims
	// (<tee>.quote.header.*). If nil, only the version is reported.
	Quote *quote.Quote
	// Replayed are the RTMRs recomputed from the boot event log (CCEL);
	// RTMR0–2 become the tdx.eventlog.* claims. If nil, none are
	// reported.
	Replayed *[4][48]byte
	// Dstack is a dstack verification result; it adds the dstack.*
	// claims. If nil, none are reported.
	Dstack *dstack.Result
	// SNP is an AMD SEV-SNP verification result (or Dstack.SNP): the
	// claim set is then tee "snp" with the snp.* claims, and DCAP must be
	// nil.
	SNP *snp.Result
}

// Set is a claim set: claim names (dotted, see the package
// documentation) mapped to their values. Values are string (hex in
// lowercase, RFC 3339 times in UTC), bool, int64 or []string.
//
// A Set marshals to nested JSON ("tdx.quote.body.mr_td" becomes
// {"tdx":{"quote":{"body":{"mr_td":…}}}}), the shape Trustee's policies
// read as input, with object keys sorted, so the encoding is
// deterministic. No claim name is a prefix of another.
type Set map[string]any

// New builds the claim set of a verified quote. It does not verify
// anything: the inputs must come from dcap.Verify, eventlog replay and
// dstack.Verify. On error the set is nil.
func New(in Input) (Set, error) {
	if in.Dstack != nil && in.Dstack.Nitro != nil {
		if in.DCAP != nil || in.Quote != nil || in.Replayed != nil || in.SNP != nil || in.Dstack.DCAP != nil || in.Dstack.SNP != nil {
			return nil, fmt.Errorf("%w: Nitro result mixed with TDX/SGX/SEV-SNP input", ErrInvalid)
		}
		return newNitro(in.Dstack)
	}
	if in.SNP == nil && in.Dstack != nil && in.Dstack.DCAP == nil {
		in.SNP = in.Dstack.SNP
	}
	if in.SNP != nil {
		if in.DCAP != nil || in.Quote != nil || in.Replayed != nil || in.Dstack != nil && in.Dstack.SNP != in.SNP {
			return nil, fmt.Errorf("%w: SEV-SNP result mixed with TDX/SGX input", ErrInvalid)
		}
		return newSNP(in.SNP, in.Dstack)
	}
	r := in.DCAP
	if r == nil && in.Dstack != nil {
		r = in.Dstack.DCAP
	}
	if r == nil {
		return nil, fmt.Errorf("%w: no DCAP result", ErrInvalid)
	}
	s := make(Set, 64) // a TD's claims with dstack's: no growth
	var p string
	switch {
	case r.TD != nil && r.Enclave == nil:
		p = TEETDX
		if err := s.addTD(r.TD); err != nil {
			return nil, err
		}
	case r.Enclave != nil && r.TD == nil:
		p = TEESGX
		s.addEnclave(r.Enclave)
	default:
		return nil, fmt.Errorf("%w: DCAP result has neither or both of a TD and an enclave report", ErrInvalid)
	}
	s["tee"] = p
	if err := s.addHeader(p, r, in.Quote); err != nil {
		return nil, err
	}
	s.addDCAP(p, r)
	if in.Replayed != nil {
		if p != TEETDX {
			return nil, fmt.Errorf("%w: replayed RTMRs for an SGX quote", ErrInvalid)
		}
		// The boot registers: RTMR3 is the runtime register, which
		// dstack evidence (the dstack.* claims) accounts for.
		all := true
		for i, v := range in.Replayed[:3] {
			h := hex.EncodeToString(v[:])
			s[fmt.Sprintf("tdx.eventlog.rtmr_%d", i)] = h
			all = all && h == r.TD.RTMRs[i]
		}
		s["tdx.eventlog.rtmrs_match"] = all
	}
	if in.Dstack != nil {
		if p != TEETDX {
			return nil, fmt.Errorf("%w: dstack result for an SGX quote", ErrInvalid)
		}
		s.addDstack(in.Dstack)
		if in.Dstack.GCP != nil {
			s.addGCP(in.Dstack.GCP)
		}
	}
	return s, nil
}

func (s Set) addTD(td *dcap.TDReport) error {
	const b = "tdx.quote.body."
	s[b+"tcb_svn"] = strings.ToLower(td.TEETCBSVN)
	s[b+"mr_seam"] = strings.ToLower(td.MRSEAM)
	s[b+"mrsigner_seam"] = strings.ToLower(td.MRSignerSEAM)
	s[b+"seam_attributes"] = strings.ToLower(td.SEAMAttributes)
	s[b+"td_attributes"] = strings.ToLower(td.TDAttributes)
	s[b+"xfam"] = strings.ToLower(td.XFAM)
	s[b+"mr_td"] = strings.ToLower(td.MRTD)
	s[b+"mr_config_id"] = strings.ToLower(td.MRConfigID)
	s[b+"mr_owner"] = strings.ToLower(td.MROwner)
	s[b+"mr_owner_config"] = strings.ToLower(td.MROwnerConfig)
	s[b+"report_data"] = strings.ToLower(td.ReportData)
	s[b+"rtmr_0"] = strings.ToLower(td.RTMRs[0])
	s[b+"rtmr_1"] = strings.ToLower(td.RTMRs[1])
	s[b+"rtmr_2"] = strings.ToLower(td.RTMRs[2])
	s[b+"rtmr_3"] = strings.ToLower(td.RTMRs[3])
	if td.TEETCBSVN2 != "" || td.MRServiceTD != "" {
		s[b+"tee_tcb_svn2"] = strings.ToLower(td.TEETCBSVN2)
		s[b+"mr_servicetd"] = strings.ToLower(td.MRServiceTD)
	}
	s["tdx.mr_servicetd_zero"] = isZeroHex(td.MRServiceTD)
	attr, err := hex.DecodeString(td.TDAttributes)
	if err != nil || len(attr) != 8 {
		return fmt.Errorf("%w: td_attributes %q", ErrInvalid, td.TDAttributes)
	}
	a := binary.LittleEndian.Uint64(attr)
	if a&quote.TDAttributeDebug != 0 != td.Debug {
		return fmt.Errorf("%w: td_attributes and debug flag disagree", ErrInvalid)
	}
	s["tdx.td_attributes.debug"] = td.Debug
	s["tdx.td_attributes.septve_disable"] = td.SEPTVEDisable
	s["tdx.td_attributes.protection_keys"] = a&quote.TDAttributePKS != 0
	s["tdx.td_attributes.key_locker"] = a&quote.TDAttributeKL != 0
	s["tdx.td_attributes.perfmon"] = a&quote.TDAttributePerfmon != 0
	return nil
}

func (s Set) addEnclave(e *dcap.EnclaveReport) {
	b := "sgx.quote.body."
	s[b+"cpu_svn"] = strings.ToLower(e.CPUSVN)
	s[b+"misc_select"] = le32(e.MiscSelect)
	s[b+"attributes"] = strings.ToLower(e.Attributes)
	s[b+"mr_enclave"] = strings.ToLower(e.MREnclave)
	s[b+"mr_signer"] = strings.ToLower(e.MRSigner)
	s[b+"isv_prod_id"] = le16(e.ISVProdID)
	s[b+"isv_svn"] = le16(e.ISVSVN)
	s[b+"report_data"] = strings.ToLower(e.ReportData)
	s["sgx.debug"] = e.Debug
}

func (s Set) addHeader(p string, r *dcap.Result, q *quote.Quote) error {
	h := p + ".quote.header."
	s[h+"version"] = le16(r.Version)
	if q == nil {
		return nil
	}
	if q.Header.Version != r.Version || q.IsTDX() != (p == TEETDX) {
		return fmt.Errorf("%w: quote and DCAP result describe different quotes", ErrInvalid)
	}
	s[h+"att_key_type"] = le16(uint16(q.Header.AttestationKeyType))
	s[h+"tee_type"] = le32(uint32(q.Header.TEEType))
	s[h+"qe_svn"] = le16(q.Header.QESVN)
	s[h+"pce_svn"] = le16(q.Header.PCESVN)
	s[h+"vendor_id"] = hex.EncodeToString(q.Header.QEVendorID[:])
	s[h+"user_data"] = hex.EncodeToString(q.Header.UserData[:])
	return nil
}

func (s Set) addDCAP(p string, r *dcap.Result) {
	s[p+".tcb_status"] = r.Status.String()
	s[p+".advisory_ids"] = nonNil(r.AdvisoryIDs)
	s[p+".tcb_date"] = timeString(r.TCBDate)
	s[p+".out_of_date_since"] = timeString(r.OutOfDateSince)
	s[p+".tcb_eval_num"] = int64(r.Collateral.TCBInfo.TCBEvaluationDataNumber)
	exp := "0"
	if r.CollateralExpired {
		exp = "1"
	}
	s[p+".collateral_expiration_status"] = exp
	s[p+".earliest_expiration_date"] = timeString(r.EarliestExpiration)
	s[p+".fmspc"] = strings.ToLower(r.FMSPC)
	s[p+".pce_id"] = strings.ToLower(r.PCEID)
	s[p+".pck_ca"] = r.CAType
	s[p+".platform.tcb_status"] = r.Platform.Status.String()
	s[p+".platform.advisory_ids"] = nonNil(r.Platform.AdvisoryIDs)
	s[p+".qe.tcb_status"] = r.QE.Status.String()
	s[p+".qe.advisory_ids"] = nonNil(r.QE.AdvisoryIDs)
	if r.Module != nil {
		s[p+".module.tcb_status"] = r.Module.Status.String()
		s[p+".module.advisory_ids"] = nonNil(r.Module.AdvisoryIDs)
	}
	c := p + ".collateral."
	s[c+"tcb_eval_num"] = int64(min(r.Collateral.TCBInfo.TCBEvaluationDataNumber, r.Collateral.QEIdentity.TCBEvaluationDataNumber))
	issue := r.Collateral.TCBInfo.IssueDate
	if q := r.Collateral.QEIdentity.IssueDate; q.Before(issue) {
		issue = q
	}
	s[c+"issue_date"] = timeString(issue)
	s[c+"next_update"] = timeString(r.EarliestExpiration)
	s[c+"expired"] = r.CollateralExpired
	s[c+"tcb_info_id"] = r.Collateral.TCBInfo.ID
	s[c+"intel_root"] = r.IntelRoot
	s[c+"trusted_root_sha256"] = r.TrustedRootSHA256
	s[p+".verification_time"] = timeString(r.VerificationTime)
}

func (s Set) addDstack(d *dstack.Result) {
	a := d.AppInfo
	for k, v := range map[string]dstack.HexBytes{
		"app_id": a.AppID, "compose_hash": a.ComposeHash, "instance_id": a.InstanceID,
		"device_id": a.DeviceID, "mr_system": a.MRSystem, "mr_aggregated": a.MRAggregated,
	} {
		if len(v) > 0 {
			s["dstack."+k] = hex.EncodeToString(v)
		}
	}
	if len(a.OSImageHash) > 0 {
		// vm_config is not signed: its os_image_hash is a claim only once
		// MRTD and RTMR0–2 recomputed from the image it names matched the
		// quote; otherwise it is reported as unverified, and no rule can
		// match it.
		name := "dstack.os_image_hash"
		if !d.OSImageHashVerified {
			name = UnverifiedPrefix + name
		}
		s[name] = hex.EncodeToString(a.OSImageHash)
	}
	if kp := d.KeyProvider; kp != nil {
		s["dstack.key_provider"] = kp.Name
		s["dstack.key_provider_id"] = strings.ToLower(kp.ID)
	}
	if id := d.Identity; id != nil {
		s["dstack.events_after_system_ready"] = nonNil(id.Ignored)
	}
	if d.TEEVariant != "" {
		s["dstack.tee_variant"] = d.TEEVariant
	}
	s["dstack.event_log_verified"] = d.EventLogVerified
	s["dstack.os_image_hash_verified"] = d.OSImageHashVerified
	s["dstack.cpu_count_verified"] = d.Measurement != nil && d.Measurement.CPUCountVerified
}

func le16(v uint16) string { return hex.EncodeToString(binary.LittleEndian.AppendUint16(nil, v)) }
func le32(v uint32) string { return hex.EncodeToString(binary.LittleEndian.AppendUint32(nil, v)) }

func isZeroHex(h string) bool { return strings.Trim(h, "0") == "" }

func nonNil(s []string) []string {
	return append(make([]string, 0, len(s)), s...)
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Get returns the value of a claim.
func (s Set) Get(name string) (any, bool) {
	v, ok := s[name]
	return v, ok
}

// String returns a string claim; ok is false when it is absent or not a
// string.
func (s Set) String(name string) (v string, ok bool) {
	v, ok = s[name].(string)
	return v, ok
}

// Bool returns a bool claim; ok is false when it is absent or not a bool.
func (s Set) Bool(name string) (v bool, ok bool) {
	v, ok = s[name].(bool)
	return v, ok
}

// Int returns an integer claim; ok is false when it is absent or not an
// integer.
func (s Set) Int(name string) (int64, bool) {
	switch v := s[name].(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// Strings returns a list claim; ok is false when it is absent or not a
// list of strings.
func (s Set) Strings(name string) ([]string, bool) {
	switch v := s[name].(type) {
	case []string:
		return v, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			str, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, str)
		}
		return out, true
	}
	return nil, false
}

// Time returns an RFC 3339 time claim; ok is false when it is absent,
// empty or not a time.
func (s Set) Time(name string) (time.Time, bool) {
	v, ok := s[name].(string)
	if !ok || v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// TEE returns the "tee" claim: TEETDX, TEESGX or "".
func (s Set) TEE() string {
	v, _ := s.String("tee")
	return v
}

// Names returns the claim names in sorted order.
func (s Set) Names() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Tree returns the claims as nested maps (the JSON shape). The maps are
// new; list values are shared with s.
func (s Set) Tree() map[string]any {
	root := map[string]any{}
	for _, name := range s.Names() {
		parts := strings.Split(name, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = s[name]
	}
	return root
}

// MarshalJSON encodes the nested form (see [Set]). The bytes are those
// of json.Marshal(s.Tree()); the common case (no claim name a prefix of
// another, values of the types New makes) is encoded directly, without
// building the tree.
func (s Set) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(nil)
}

// AppendJSON appends the encoding of MarshalJSON to dst. The layout of
// the names (their order and the objects around them) is worked out once
// per set of names and remembered, so encoding a set of a kind seen
// before only writes its values.
func (s Set) AppendJSON(dst []byte) ([]byte, error) {
	if s == nil {
		return append(dst, "null"...), nil
	}
	l := cachedLayout(s, namesHash(s))
	for {
		if l.tree {
			return s.appendTreeJSON(dst)
		}
		out, ok, err := s.appendLayout(dst, l)
		switch {
		case err != nil:
			return dst, err
		case ok:
			return out, nil
		}
		// Another set of names had the same hash: lay this one out.
		l = buildLayout(s)
	}
}

func (s Set) appendTreeJSON(dst []byte) ([]byte, error) {
	b, err := json.Marshal(s.Tree())
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func hasByteBelowDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '.' {
			return true
		}
	}
	return false
}

// compareSegments orders dotted names as json.Marshal orders the keys of
// the nested objects: segment by segment.
func compareSegments(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	switch {
	case i == len(a) && i == len(b):
		return 0
	case i == len(a):
		return -1
	case i == len(b):
		return 1
	case a[i] == '.':
		// a's segment ends first: it is a prefix of b's.
		return -1
	case b[i] == '.':
		return 1
	case a[i] < b[i]:
		return -1
	}
	return 1
}

// appendJSONValue appends v as json.Marshal encodes it.
func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return jsonappend.String(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case []string:
		return jsonappend.Strings(dst, v), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// UnmarshalJSON decodes the nested form back into dotted names. Integers
// become int64, lists of strings []string.
func (s *Set) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var tree map[string]any
	if err := d.Decode(&tree); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	out := Set{}
	if err := flatten(out, "", tree); err != nil {
		return err
	}
	*s = out
	return nil
}

func flatten(out Set, prefix string, m map[string]any) error {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			if err := flatten(out, name, v); err != nil {
				return err
			}
		case json.Number:
			n, err := v.Int64()
			if err != nil {
				return fmt.Errorf("claims: %s: not an integer: %s", name, v)
			}
			out[name] = n
		case []any:
			l := make([]string, 0, len(v))
			for _, e := range v {
				str, ok := e.(string)
				if !ok {
					return fmt.Errorf("claims: %s: list of non-strings", name)
				}
				l = append(l, str)
			}
			out[name] = l
		case string, bool:
			out[name] = v
		default:
			return fmt.Errorf("claims: %s: unsupported value %T", name, v)
		}
	}
	return nil
}
