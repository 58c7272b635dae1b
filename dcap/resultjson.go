package dcap

import (
	"time"

	"github.com/tdproof/tdproof/jsonappend"
)

// jsonWriter appends JSON members and remembers the first error (a status
// or time json.Marshal refuses).
type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) key(first bool, name string) { w.b = jsonappend.Key(w.b, first, name) }

func (w *jsonWriter) str(name, v string)          { w.key(false, name); w.b = jsonappend.String(w.b, v) }
func (w *jsonWriter) boolean(name string, v bool) { w.key(false, name); w.b = jsonappend.Bool(w.b, v) }
func (w *jsonWriter) uint(name string, v uint64) {
	w.key(false, name)
	w.b = jsonappend.Int(w.b, int64(v))
}
func (w *jsonWriter) strings(name string, v []string) {
	w.key(false, name)
	w.b = jsonappend.Strings(w.b, v)
}

func (w *jsonWriter) time(name string, t time.Time) {
	w.key(false, name)
	var err error
	if w.b, err = jsonappend.Time(w.b, t); err != nil && w.err == nil {
		w.err = err
	}
}

func (w *jsonWriter) status(name string, s Status) {
	w.key(false, name)
	text, err := s.MarshalText()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.b = jsonappend.String(w.b, string(text))
}

// AppendJSON appends the JSON encoding of r — the bytes json.Marshal
// writes — to dst without reflection (the verification service encodes
// one result per request). TestResultAppendJSON holds it to json.Marshal
// for every field.
func (r *Result) AppendJSON(dst []byte) ([]byte, error) {
	if r == nil {
		return append(dst, "null"...), nil
	}
	w := &jsonWriter{b: append(dst, '{')}
	w.key(true, "media_type")
	w.b = jsonappend.String(w.b, r.MediaType)
	w.str("tee_type", r.TEEType)
	w.uint("quote_version", uint64(r.Version))
	w.str("body_type", r.BodyType)
	w.status("status", r.Status)
	w.key(false, "platform")
	r.Platform.appendJSON(w)
	if r.Module != nil {
		w.key(false, "tdx_module")
		r.Module.appendJSON(w)
	}
	w.key(false, "qe")
	r.QE.appendJSON(w)
	if r.Current != nil {
		w.key(false, "current")
		r.Current.appendJSON(w)
	}
	w.strings("advisory_ids", r.AdvisoryIDs)
	w.time("tcb_date", r.TCBDate)
	if !r.OutOfDateSince.IsZero() {
		w.time("out_of_date_since", r.OutOfDateSince)
	}
	if r.TDXModuleIdentity != "" {
		w.str("tdx_module_identity", r.TDXModuleIdentity)
	}
	w.str("fmspc", r.FMSPC)
	w.str("pce_id", r.PCEID)
	w.str("pck_ca", r.CAType)
	w.str("ppid", r.PPID)
	w.str("pck_serial", r.PCKSerial)
	w.str("sgx_type", r.SGXType)
	if r.TD != nil {
		w.key(false, "td")
		r.TD.appendJSON(w)
	}
	if r.Enclave != nil {
		w.key(false, "enclave")
		r.Enclave.appendJSON(w)
	}
	w.key(false, "qe_report")
	r.QEReport.appendJSON(w)
	w.key(false, "collateral")
	c := &r.Collateral
	w.b = append(w.b, '{')
	w.key(true, "tcb_info")
	c.TCBInfo.appendJSON(w)
	w.key(false, "qe_identity")
	c.QEIdentity.appendJSON(w)
	w.key(false, "pck_crl")
	c.PCKCRL.appendJSON(w)
	w.key(false, "root_ca_crl")
	c.RootCACRL.appendJSON(w)
	w.b = append(w.b, '}')
	w.boolean("collateral_expired", r.CollateralExpired)
	w.time("earliest_expiration", r.EarliestExpiration)
	w.time("earliest_issue", r.EarliestIssue)
	w.time("latest_issue", r.LatestIssue)
	if len(r.CollateralNotYetValid) > 0 {
		w.strings("collateral_not_yet_valid", r.CollateralNotYetValid)
	}
	if r.CRLNotYetValid {
		w.boolean("crl_not_yet_valid", true)
	}
	w.time("verification_time", r.VerificationTime)
	w.boolean("intel_root", r.IntelRoot)
	w.str("trusted_root_sha256", r.TrustedRootSHA256)
	if w.err != nil {
		return dst, w.err
	}
	return append(w.b, '}'), nil
}

func (c *ComponentStatus) appendJSON(w *jsonWriter) {
	w.b = append(w.b, '{')
	w.key(true, "status")
	text, err := c.Status.MarshalText()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.b = jsonappend.String(w.b, string(text))
	w.time("tcb_date", c.TCBDate)
	w.strings("advisory_ids", c.AdvisoryIDs)
	if !c.SupersededAt.IsZero() {
		w.time("superseded_at", c.SupersededAt)
	}
	w.b = append(w.b, '}')
}

func (d *DocumentInfo) appendJSON(w *jsonWriter) {
	w.b = append(w.b, '{')
	w.key(true, "id")
	w.b = jsonappend.String(w.b, d.ID)
	w.key(false, "version")
	w.b = jsonappend.Int(w.b, int64(d.Version))
	w.time("issue_date", d.IssueDate)
	w.time("next_update", d.NextUpdate)
	w.key(false, "tcb_evaluation_data_number")
	w.b = jsonappend.Int(w.b, int64(d.TCBEvaluationDataNumber))
	w.b = append(w.b, '}')
}

func (c *CRLInfo) appendJSON(w *jsonWriter) {
	w.b = append(w.b, '{')
	first := true
	if c.Number != "" {
		w.key(true, "number")
		w.b = jsonappend.String(w.b, c.Number)
		first = false
	}
	w.key(first, "this_update")
	var err error
	if w.b, err = jsonappend.Time(w.b, c.ThisUpdate); err != nil && w.err == nil {
		w.err = err
	}
	w.time("next_update", c.NextUpdate)
	w.b = append(w.b, '}')
}

func (td *TDReport) appendJSON(w *jsonWriter) {
	w.b = append(w.b, '{')
	w.key(true, "tee_tcb_svn")
	w.b = jsonappend.String(w.b, td.TEETCBSVN)
	w.str("mr_seam", td.MRSEAM)
	w.str("mr_signer_seam", td.MRSignerSEAM)
	w.str("seam_attributes", td.SEAMAttributes)
	w.str("td_attributes", td.TDAttributes)
	w.str("xfam", td.XFAM)
	w.str("mr_td", td.MRTD)
	w.str("mr_config_id", td.MRConfigID)
	w.str("mr_owner", td.MROwner)
	w.str("mr_owner_config", td.MROwnerConfig)
	w.strings("rtmrs", td.RTMRs[:])
	w.str("report_data", td.ReportData)
	if td.TEETCBSVN2 != "" {
		w.str("tee_tcb_svn2", td.TEETCBSVN2)
	}
	if td.MRServiceTD != "" {
		w.str("mr_service_td", td.MRServiceTD)
	}
	w.boolean("debug", td.Debug)
	w.boolean("sept_ve_disable", td.SEPTVEDisable)
	w.b = append(w.b, '}')
}

func (e *EnclaveReport) appendJSON(w *jsonWriter) {
	w.b = append(w.b, '{')
	w.key(true, "cpu_svn")
	w.b = jsonappend.String(w.b, e.CPUSVN)
	w.uint("misc_select", uint64(e.MiscSelect))
	w.str("attributes", e.Attributes)
	w.str("mr_enclave", e.MREnclave)
	w.str("mr_signer", e.MRSigner)
	w.uint("isv_prod_id", uint64(e.ISVProdID))
	w.uint("isv_svn", uint64(e.ISVSVN))
	w.str("report_data", e.ReportData)
	w.boolean("debug", e.Debug)
	w.b = append(w.b, '}')
}
