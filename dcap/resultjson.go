package dcap

import (
	"time"

	"github.com/tdproof/tdproof/jsonappend"
)

// jsonWriter appends JSON objects and their members and remembers the
// first error (a status or time json.Marshal refuses).
type jsonWriter struct {
	b     []byte
	err   error
	first bool // no member written yet in the object just opened
}

// open starts an object; close ends it.
func (w *jsonWriter) open()  { w.b, w.first = append(w.b, '{'), true }
func (w *jsonWriter) close() { w.b, w.first = append(w.b, '}'), false }

func (w *jsonWriter) key(name string) { w.b, w.first = jsonappend.Key(w.b, w.first, name), false }

func (w *jsonWriter) str(name, v string)          { w.key(name); w.b = jsonappend.String(w.b, v) }
func (w *jsonWriter) boolean(name string, v bool) { w.key(name); w.b = jsonappend.Bool(w.b, v) }
func (w *jsonWriter) num(name string, v int64) {
	w.key(name)
	w.b = jsonappend.Int(w.b, v)
}
func (w *jsonWriter) strings(name string, v []string) {
	w.key(name)
	w.b = jsonappend.Strings(w.b, v)
}

func (w *jsonWriter) time(name string, t time.Time) {
	w.key(name)
	var err error
	if w.b, err = jsonappend.Time(w.b, t); err != nil && w.err == nil {
		w.err = err
	}
}

func (w *jsonWriter) status(name string, s Status) {
	w.key(name)
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
	w := &jsonWriter{b: dst}
	w.open()
	w.str("media_type", r.MediaType)
	w.str("tee_type", r.TEEType)
	w.num("quote_version", int64(r.Version))
	w.str("body_type", r.BodyType)
	w.status("status", r.Status)
	w.key("platform")
	r.Platform.appendJSON(w)
	if r.Module != nil {
		w.key("tdx_module")
		r.Module.appendJSON(w)
	}
	w.key("qe")
	r.QE.appendJSON(w)
	if r.Current != nil {
		w.key("current")
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
		w.key("td")
		r.TD.appendJSON(w)
	}
	if r.Enclave != nil {
		w.key("enclave")
		r.Enclave.appendJSON(w)
	}
	w.key("qe_report")
	r.QEReport.appendJSON(w)
	w.key("collateral")
	c := &r.Collateral
	w.open()
	w.key("tcb_info")
	c.TCBInfo.appendJSON(w)
	w.key("qe_identity")
	c.QEIdentity.appendJSON(w)
	w.key("pck_crl")
	c.PCKCRL.appendJSON(w)
	w.key("root_ca_crl")
	c.RootCACRL.appendJSON(w)
	w.close()
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
	w.close()
	return w.b, nil
}

func (c *ComponentStatus) appendJSON(w *jsonWriter) {
	w.open()
	w.status("status", c.Status)
	w.time("tcb_date", c.TCBDate)
	w.strings("advisory_ids", c.AdvisoryIDs)
	if !c.SupersededAt.IsZero() {
		w.time("superseded_at", c.SupersededAt)
	}
	w.close()
}

func (d *DocumentInfo) appendJSON(w *jsonWriter) {
	w.open()
	w.str("id", d.ID)
	w.num("version", int64(d.Version))
	w.time("issue_date", d.IssueDate)
	w.time("next_update", d.NextUpdate)
	w.num("tcb_evaluation_data_number", int64(d.TCBEvaluationDataNumber))
	w.close()
}

func (c *CRLInfo) appendJSON(w *jsonWriter) {
	w.open()
	if c.Number != "" {
		w.str("number", c.Number)
	}
	w.time("this_update", c.ThisUpdate)
	w.time("next_update", c.NextUpdate)
	w.close()
}

func (td *TDReport) appendJSON(w *jsonWriter) {
	w.open()
	w.str("tee_tcb_svn", td.TEETCBSVN)
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
	w.close()
}

func (e *EnclaveReport) appendJSON(w *jsonWriter) {
	w.open()
	w.str("cpu_svn", e.CPUSVN)
	w.num("misc_select", int64(e.MiscSelect))
	w.str("attributes", e.Attributes)
	w.str("mr_enclave", e.MREnclave)
	w.str("mr_signer", e.MRSigner)
	w.num("isv_prod_id", int64(e.ISVProdID))
	w.num("isv_svn", int64(e.ISVSVN))
	w.str("report_data", e.ReportData)
	w.boolean("debug", e.Debug)
	w.close()
}
