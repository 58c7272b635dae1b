package dcap

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/quote"
)

// Verify verifies q against c with Intel's semantics and returns the
// result. It performs no I/O. On error the result is nil.
//
// From dcap.md §9, in order: the QE vendor; the collateral (root CA CRL,
// TCB info and QE identity chains and signatures, PCK CRL); the PCK chain
// from the quote (or from c for encrypted-PPID quotes) to the trusted root
// with revocation; the QE report signature and its binding of the
// attestation key; the quote signature; TCB info id / FMSPC / PCE-ID; QE
// identity and QE level; TDX module identity and level; platform level;
// for TD 1.5 the current TCB (TEE_TCB_SVN2); convergence, advisories and
// time facts.
func Verify(q *quote.Quote, c *collateral.Collateral, opts Options) (*Result, error) {
	root := opts.TrustedRoot
	if root == nil {
		root = intelRoot
	}
	return newSession(root, nil).verify(q, c, opts.Now, opts.Strict)
}

func (s *session) verify(q *quote.Quote, c *collateral.Collateral, now time.Time, strict bool) (*Result, error) {
	if q == nil || q.Signature == nil || (q.TD == nil) == (q.Enclave == nil) {
		return nil, stepErr("quote", quote.ErrMalformed, "incomplete quote")
	}
	if now.IsZero() {
		now = time.Now()
	}
	// 1. Quote header.
	if q.Header.QEVendorID != quote.IntelQEVendorID {
		return nil, stepErr("quote", ErrQEVendor, "QE vendor ID %x", q.Header.QEVendorID)
	}
	// 2. Collateral (cacheable).
	vc, err := s.collateral(c)
	if err != nil {
		return nil, err
	}
	// 3. Platform: PCK chain, QE report (cacheable).
	chainPEM, err := pckChainPEM(q, pckChainOf(c))
	if err != nil {
		return nil, err
	}
	vp, err := s.platform(q, chainPEM)
	if err != nil {
		return nil, err
	}
	// Revocation of the PCK CA (root CRL) and the leaf (PCK CRL issued by
	// the leaf's CA), every call.
	if vc.rootRevoked[vp.interSerial] {
		return nil, stepErr("pck chain", ErrRevoked, "PCK CA %q (serial %x) is revoked by the root CA CRL", vp.intermediate.Subject.CommonName, vp.intermediate.SerialNumber)
	}
	if string(vc.pckCRL.RawIssuer) != string(vp.leaf.RawIssuer) {
		return nil, stepErr("pck crl", ErrCRL, "PCK CRL is issued by another CA than the PCK certificate")
	}
	// The collateral step verified the PCK CRL against the CA of its
	// issuer chain; the quote's PCK CA is usually that very certificate.
	if !bytes.Equal(vp.intermediate.Raw, vc.pckCRLIssuer.Raw) {
		if err := s.checkCRLSignature(vc.pckCRL, vc.pckCRLSum, vp.intermediate); err != nil {
			return nil, stepErr("pck crl", ErrCRL, "not signed by the PCK certificate's CA: %w", err)
		}
	}
	if vc.pckRevoked[vp.leafSerial] {
		return nil, stepErr("pck chain", ErrRevoked, "PCK certificate (serial %x) is revoked by the PCK CRL", vp.leaf.SerialNumber)
	}
	// 4. Quote signature.
	if !verifyRawP256(vp.attKey, q.Signed(), &q.Signature.Signature) {
		return nil, stepErr("quote", ErrQuoteSignature, "not signed by the attestation key")
	}

	// 5. TCB info applies to this quote.
	info := vc.tcbInfo
	wantID, wantQE := "SGX", "QE"
	if q.IsTDX() {
		wantID, wantQE = "TDX", "TD_QE"
	}
	if info.ID != wantID {
		return nil, stepErr("tcb info", ErrCollateral, "id %q for a %s quote", info.ID, q.Header.TEEType)
	}
	if q.IsTDX() && info.Version < 3 {
		return nil, stepErr("tcb info", ErrCollateral, "version %d cannot describe TDX", info.Version)
	}
	if info.FMSPC != vp.ext.FMSPC {
		return nil, stepErr("tcb info", ErrFMSPCMismatch, "tcb info FMSPC %X, PCK certificate %X", info.FMSPC, vp.ext.FMSPC)
	}
	if info.PCEID != vp.ext.PCEID {
		return nil, stepErr("tcb info", ErrPCEIDMismatch, "tcb info PCE-ID %X, PCK certificate %X", info.PCEID, vp.ext.PCEID)
	}
	qeID := vc.qeIdentity
	if qeID.ID != wantQE {
		return nil, stepErr("qe identity", ErrCollateral, "id %q for a %s quote", qeID.ID, q.Header.TEEType)
	}

	// 6. QE identity.
	qeLevel, err := checkQEIdentity(qeID, &q.Signature.QEReport)
	if err != nil {
		return nil, err
	}

	res := &Result{MediaType: MediaType, TEEType: q.Header.TEEType.String(), Version: q.Header.Version, BodyType: q.BodyType.String()}
	res.QE = component(qeLevel.TCBStatus, qeLevel.TCBDate, qeLevel.AdvisoryIDs)
	res.QE.SupersededAt = isvsvnSupersededAt(qeID.TCBLevels, qeLevel)
	dates := []time.Time{qeLevel.TCBDate}

	// 7–8. Module and platform levels; for TD 1.5 also the current TCB.
	var in convergeInput
	if q.IsTDX() {
		e, err := evaluateTD(info, &vp.ext.TCB, q.TD)
		if err != nil {
			return nil, err
		}
		res.Platform = component(e.platform.TCBStatus, e.platform.TCBDate, e.platform.AdvisoryIDs)
		res.Platform.SupersededAt = platformSupersededAt(info.TCBLevels, e.platform)
		dates = append(dates, e.platform.TCBDate)
		if e.module != nil {
			m := component(e.module.TCBStatus, e.module.TCBDate, e.module.AdvisoryIDs)
			m.SupersededAt = isvsvnSupersededAt(e.moduleIdent.TCBLevels, e.module)
			res.Module = &m
			res.TDXModuleIdentity = e.moduleIdent.ID
			dates = append(dates, e.module.TCBDate)
		}
		if e.current != nil {
			cur := component(e.current.TCBStatus, e.current.TCBDate, e.current.AdvisoryIDs)
			res.Current = &cur
		}
		in = e.input(qeLevel.TCBStatus)
	} else {
		level, ok := matchPlatformLevel(info, &vp.ext.TCB, nil)
		if !ok {
			return nil, stepErr("tcb level", ErrTCBNotSupported, "no TCB level matches the platform (FMSPC %X)", vp.ext.FMSPC)
		}
		res.Platform = component(level.TCBStatus, level.TCBDate, level.AdvisoryIDs)
		res.Platform.SupersededAt = platformSupersededAt(info.TCBLevels, level)
		dates = append(dates, level.TCBDate)
		in = convergeInput{platform: level.TCBStatus, qe: qeLevel.TCBStatus}
	}

	// 9. Convergence, advisories, TCB date.
	res.Status = converge(in)
	// Intel's QvE sa_list: the matched platform level's IDs only, as
	// listed; the module's and the QE's stay in their components.
	res.AdvisoryIDs = slices.Clone(res.Platform.AdvisoryIDs)
	for _, d := range dates {
		if !d.IsZero() && (res.TCBDate.IsZero() || d.Before(res.TCBDate)) {
			res.TCBDate = d
		}
	}
	comps := []*ComponentStatus{&res.Platform, &res.QE, res.Module}
	for _, c := range comps {
		if c != nil && outOfDate(c.Status) && !c.SupersededAt.IsZero() &&
			(res.OutOfDateSince.IsZero() || c.SupersededAt.Before(res.OutOfDateSince)) {
			res.OutOfDateSince = c.SupersededAt
		}
	}

	// 10. Time.
	tw := vc.window.merge(vp.window)
	res.EarliestExpiration, res.EarliestIssue, res.LatestIssue = tw.earliestExpiration, tw.earliestIssue, tw.latestIssue
	expired := !now.Before(tw.earliestExpiration)
	res.CollateralNotYetValid, res.CRLNotYetValid = vc.notYetValid(now)
	res.CollateralExpired = expired || len(res.CollateralNotYetValid) > 0
	if strict {
		if expired {
			return nil, stepErr("time", ErrExpired, "collateral or certificate expired at %s", tw.earliestExpiration.UTC().Format(time.RFC3339))
		}
		if now.Before(tw.latestIssue) {
			return nil, stepErr("time", ErrNotYetValid, "%s is not valid until %s (verification time %s)", tw.latestIssueWhat,
				tw.latestIssue.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}

	// Facts.
	res.VerificationTime = now.UTC()
	res.FMSPC = hex.EncodeToString(vp.ext.FMSPC[:])
	res.PCEID = hex.EncodeToString(vp.ext.PCEID[:])
	res.CAType = vp.caType.String()
	res.PPID = hex.EncodeToString(vp.ext.PPID[:])
	res.PCKSerial = vp.leaf.SerialNumber.Text(16)
	res.SGXType = vp.ext.SGXType.String()
	res.Collateral = CollateralInfo{
		TCBInfo:    DocumentInfo{ID: info.ID, Version: info.Version, IssueDate: info.IssueDate, NextUpdate: info.NextUpdate, TCBEvaluationDataNumber: info.TCBEvaluationDataNumber},
		QEIdentity: DocumentInfo{ID: qeID.ID, Version: qeID.Version, IssueDate: qeID.IssueDate, NextUpdate: qeID.NextUpdate, TCBEvaluationDataNumber: qeID.TCBEvaluationDataNumber},
		PCKCRL:     crlInfo(vc.pckCRL),
		RootCACRL:  crlInfo(vc.rootCRL),
	}
	res.TrustedRootSHA256 = s.rootSHA
	res.IntelRoot = res.TrustedRootSHA256 == IntelRootSHA256
	res.QEReport = enclaveFacts(&q.Signature.QEReport)
	if q.TD != nil {
		res.TD = tdFacts(q.TD)
	} else {
		e := enclaveFacts(q.Enclave)
		res.Enclave = &e
	}
	return res, nil
}

func pckChainOf(c *collateral.Collateral) []byte {
	if c == nil || c.PCKCertChain == nil {
		return nil
	}
	return []byte(c.PCKCertChain.PEM)
}

func crlInfo(l *x509.RevocationList) CRLInfo {
	ci := CRLInfo{ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate}
	if l.Number != nil {
		ci.Number = l.Number.String()
	}
	return ci
}

func enclaveFacts(r *quote.EnclaveReport) EnclaveReport {
	return EnclaveReport{
		CPUSVN: hex.EncodeToString(r.CPUSVN[:]), MiscSelect: r.MiscSelect, Attributes: hex.EncodeToString(r.Attributes[:]),
		MREnclave: hex.EncodeToString(r.MREnclave[:]), MRSigner: hex.EncodeToString(r.MRSigner[:]),
		ISVProdID: r.ISVProdID, ISVSVN: r.ISVSVN, ReportData: hex.EncodeToString(r.ReportData[:]), Debug: r.Debug(),
	}
}

func tdFacts(r *quote.TDReport) *TDReport {
	h := hex.EncodeToString
	t := &TDReport{
		TEETCBSVN: h(r.TEETCBSVN[:]), MRSEAM: h(r.MRSEAM[:]), MRSignerSEAM: h(r.MRSignerSEAM[:]),
		SEAMAttributes: h(r.SEAMAttributes[:]), TDAttributes: h(r.TDAttributes[:]), XFAM: h(r.XFAM[:]),
		MRTD: h(r.MRTD[:]), MRConfigID: h(r.MRConfigID[:]), MROwner: h(r.MROwner[:]), MROwnerConfig: h(r.MROwnerConfig[:]),
		ReportData: h(r.ReportData[:]), Debug: r.Debug(), SEPTVEDisable: r.SEPTVEDisable(),
	}
	for i := range r.RTMRs {
		t.RTMRs[i] = h(r.RTMRs[i][:])
	}
	if r.TD15 {
		t.TEETCBSVN2, t.MRServiceTD = h(r.TEETCBSVN2[:]), h(r.MRServiceTD[:])
	}
	return t
}
