package dcap

import (
	"fmt"
	"strings"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// matchPlatformLevel returns the first (newest) TCB level the platform
// reaches: every SGX component from the PCK certificate, the PCESVN and,
// for TDX, the TEE_TCB_SVN components (from index 2 when byte 1, the
// module major version, is non-zero: the module is then judged by its
// identity; dcap.md §2.4).
func matchPlatformLevel(info *collateral.TCBInfo, tcb *pckcert.TCB, teeTCBSVN *[16]byte) (*collateral.TCBLevel, bool) {
	for i := range info.TCBLevels {
		l := &info.TCBLevels[i]
		if tcb.PCESVN < l.PCESVN || !atLeast(tcb.Components[:], l.SGXComponents[:]) {
			continue
		}
		if teeTCBSVN != nil {
			start := 0
			if teeTCBSVN[1] > 0 {
				start = 2
			}
			if !atLeast(teeTCBSVN[start:], l.TDXComponents[start:]) {
				continue
			}
		}
		return l, true
	}
	return nil, false
}

func atLeast(have, need []uint8) bool {
	for i := range need {
		if have[i] < need[i] {
			return false
		}
	}
	return true
}

// matchISVSVN returns the first level (sorted highest first) with
// svn >= level.ISVSVN.
func matchISVSVN(levels []collateral.ISVSVNLevel, svn uint16) (*collateral.ISVSVNLevel, bool) {
	for i := range levels {
		if svn >= levels[i].ISVSVN {
			return &levels[i], true
		}
	}
	return nil, false
}

// moduleIdentity returns the TDX module identity for TEE_TCB_SVN[1] > 0.
func moduleIdentity(info *collateral.TCBInfo, major uint8) *collateral.TDXModuleIdentity {
	id := fmt.Sprintf("TDX_%02X", major)
	for i := range info.TDXModuleIdentities {
		if strings.EqualFold(info.TDXModuleIdentities[i].ID, id) {
			return &info.TDXModuleIdentities[i]
		}
	}
	return nil
}

// checkModule verifies MRSIGNERSEAM and SEAMATTRIBUTES against the module
// identity selected by svn[1] (or the default tdxModule when svn[1] is 0)
// and returns the module's TCB level and identity (nil when svn[1] is 0),
// Intel's semantics (dcap.md §2.3 step 7, §2.10).
func checkModule(info *collateral.TCBInfo, td *quote.TDReport, svn *[16]byte) (*collateral.ISVSVNLevel, *collateral.TDXModuleIdentity, error) {
	if info.TDXModule == nil {
		return nil, nil, stepErr("tdx module", ErrTDXModuleMismatch, "tcb info has no tdxModule")
	}
	expected := *info.TDXModule
	var ident *collateral.TDXModuleIdentity
	if svn[1] > 0 {
		ident = moduleIdentity(info, svn[1])
		if ident == nil {
			return nil, nil, stepErr("tdx module", ErrTDXModuleMismatch, "tcb info has no module identity TDX_%02X", svn[1])
		}
		expected = ident.TDXModule
	}
	if td.MRSignerSEAM != expected.MRSigner {
		return nil, nil, stepErr("tdx module", ErrTDXModuleMismatch, "MRSIGNERSEAM %x does not match the module identity", td.MRSignerSEAM)
	}
	// Intel: SEAMATTRIBUTES must be all zero and equal to the expected
	// attributes; the mask is not applied.
	if td.SEAMAttributes != [8]byte{} || td.SEAMAttributes != expected.Attributes {
		return nil, nil, stepErr("tdx module", ErrTDXModuleMismatch, "SEAMATTRIBUTES %x, want zero", td.SEAMAttributes)
	}
	if ident == nil {
		return nil, nil, nil
	}
	l, ok := matchISVSVN(ident.TCBLevels, uint16(svn[0]))
	if !ok {
		return nil, nil, stepErr("tdx module", ErrTCBNotSupported, "module SVN %d is below every level of %s", svn[0], ident.ID)
	}
	return l, ident, nil
}

// checkQEIdentity matches the QE report against the QE identity and
// returns the QE TCB level.
func checkQEIdentity(id *collateral.QEIdentity, r *quote.EnclaveReport) (*collateral.ISVSVNLevel, error) {
	if r.MRSigner != id.MRSigner {
		return nil, stepErr("qe identity", ErrQEIdentity, "MRSIGNER %x, want %x", r.MRSigner, id.MRSigner)
	}
	if r.ISVProdID != id.ISVProdID {
		return nil, stepErr("qe identity", ErrQEIdentity, "ISVPRODID %d, want %d", r.ISVProdID, id.ISVProdID)
	}
	misc := [4]byte{byte(r.MiscSelect), byte(r.MiscSelect >> 8), byte(r.MiscSelect >> 16), byte(r.MiscSelect >> 24)}
	for i := range misc {
		if misc[i]&id.MiscSelectMask[i] != id.MiscSelect[i] {
			return nil, stepErr("qe identity", ErrQEIdentity, "MISCSELECT %08x does not match under the mask", r.MiscSelect)
		}
	}
	for i := range r.Attributes {
		if r.Attributes[i]&id.AttributesMask[i] != id.Attributes[i] {
			return nil, stepErr("qe identity", ErrQEIdentity, "ATTRIBUTES %x do not match under the mask", r.Attributes)
		}
	}
	l, ok := matchISVSVN(id.TCBLevels, r.ISVSVN)
	if !ok {
		return nil, stepErr("qe identity", ErrTCBNotSupported, "QE ISVSVN %d is below every level", r.ISVSVN)
	}
	return l, nil
}

func component(status collateral.TCBStatus, date time.Time, ids []string) ComponentStatus {
	if ids == nil {
		ids = []string{}
	}
	return ComponentStatus{Status: status, TCBDate: date, AdvisoryIDs: ids}
}

// platformSupersededAt returns the tcbDate of the level just newer than
// the matched one (levels are sorted newest first): when the matched
// level stopped being the newest. Zero when the match is the newest.
func platformSupersededAt(levels []collateral.TCBLevel, m *collateral.TCBLevel) time.Time {
	for i := range levels {
		if &levels[i] == m && i > 0 {
			return levels[i-1].TCBDate
		}
	}
	return time.Time{}
}

// isvsvnSupersededAt is platformSupersededAt for module and QE levels.
func isvsvnSupersededAt(levels []collateral.ISVSVNLevel, m *collateral.ISVSVNLevel) time.Time {
	for i := range levels {
		if &levels[i] == m && i > 0 {
			return levels[i-1].TCBDate
		}
	}
	return time.Time{}
}

// outOfDate reports whether a status says a TCB recovery left the
// component behind.
func outOfDate(s Status) bool {
	return s == collateral.OutOfDate || s == collateral.OutOfDateConfigurationNeeded
}

// tdTCB is the TCB evaluation of a TD quote: the launch TCB (TEE_TCB_SVN:
// platform level and, for a versioned module, the module identity and
// its level) and, for TD 1.5, the current TCB (TEE_TCB_SVN2: the module
// running now).
type tdTCB struct {
	platform    *collateral.TCBLevel
	module      *collateral.ISVSVNLevel // nil when TEE_TCB_SVN[1] is 0
	moduleIdent *collateral.TDXModuleIdentity
	td15        bool
	// current and currentModule are set for TD 1.5 (currentModule is nil
	// when TEE_TCB_SVN2[1] is 0).
	current       *collateral.TCBLevel
	currentModule *collateral.ISVSVNLevel
}

// evaluateTD matches a TD's launch TCB and, for TD 1.5, its current TCB
// against the TCB info, Intel's semantics (dcap.md §2.4, §2.5, §2.10):
// every failure is terminal. The launch TCB needs the module identity of
// TEE_TCB_SVN[1] (ErrTDXModuleMismatch when missing, or when
// MRSIGNERSEAM / SEAMATTRIBUTES do not match it), a module level and a
// platform level (ErrTCBNotSupported). Intel evaluates the current TCB of
// every TD 1.5 quote the same way, and a current TCB that matches no
// platform level, names a module without an identity or has a module SVN
// below every level of its identity is ErrTCBNotSupported too: it is
// never silently ignored.
func evaluateTD(info *collateral.TCBInfo, tcb *pckcert.TCB, td *quote.TDReport) (*tdTCB, error) {
	modLevel, ident, err := checkModule(info, td, &td.TEETCBSVN)
	if err != nil {
		return nil, err
	}
	level, ok := matchPlatformLevel(info, tcb, &td.TEETCBSVN)
	if !ok {
		return nil, stepErr("tcb level", ErrTCBNotSupported, "no TCB level matches the platform (FMSPC %X, TEE_TCB_SVN %x)", info.FMSPC, td.TEETCBSVN)
	}
	e := &tdTCB{platform: level, module: modLevel, moduleIdent: ident, td15: td.TD15}
	if !td.TD15 {
		return e, nil
	}
	svn := &td.TEETCBSVN2
	if e.current, ok = matchPlatformLevel(info, tcb, svn); !ok {
		return nil, stepErr("current tcb", ErrTCBNotSupported, "no TCB level matches the current TCB (TEE_TCB_SVN2 %x)", *svn)
	}
	if svn[1] > 0 {
		cur := moduleIdentity(info, svn[1])
		if cur == nil {
			return nil, stepErr("current tcb", ErrTCBNotSupported, "tcb info has no module identity TDX_%02X for the current module (TEE_TCB_SVN2)", svn[1])
		}
		if e.currentModule, ok = matchISVSVN(cur.TCBLevels, uint16(svn[0])); !ok {
			return nil, stepErr("current tcb", ErrTCBNotSupported, "current module SVN %d is below every level of %s", svn[0], cur.ID)
		}
	}
	return e, nil
}

// input returns the convergence input of the evaluation for a QE status.
func (e *tdTCB) input(qe Status) convergeInput {
	in := convergeInput{platform: e.platform.TCBStatus, qe: qe, td15: e.td15}
	if e.module != nil {
		in.module = e.module.TCBStatus
	}
	if e.td15 {
		in.currentPlatform = e.current.TCBStatus
		if e.currentModule != nil {
			in.currentModule = e.currentModule.TCBStatus
		}
	}
	return in
}
