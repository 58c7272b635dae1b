package collateral

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// TCBInfo is a parsed TCB Info object (dcap.md §3.3).
type TCBInfo struct {
	// ID is "SGX" or "TDX"; version 2 TCB infos carry no id and get "SGX".
	ID                      string    `json:"id"`
	Version                 int       `json:"version"`
	IssueDate               time.Time `json:"issue_date"`
	NextUpdate              time.Time `json:"next_update"`
	FMSPC                   [6]byte   `json:"-"`
	PCEID                   [2]byte   `json:"-"`
	TCBType                 int       `json:"tcb_type"`
	TCBEvaluationDataNumber int       `json:"tcb_evaluation_data_number"`
	// TDXModule is the default module identity (TDX only).
	TDXModule *TDXModule `json:"tdx_module,omitempty"`
	// TDXModuleIdentities lists the versioned module identities (TDX,
	// newer TCB infos).
	TDXModuleIdentities []TDXModuleIdentity `json:"tdx_module_identities,omitempty"`
	// TCBLevels are sorted as Intel sorts them (newest first); Parse
	// rejects duplicates.
	TCBLevels []TCBLevel `json:"tcb_levels"`
}

// TDXModule is the expected TDX module signer and attributes.
type TDXModule struct {
	MRSigner       [48]byte `json:"-"`
	Attributes     [8]byte  `json:"-"`
	AttributesMask [8]byte  `json:"-"`
}

// TDXModuleIdentity is one versioned TDX module identity ("TDX_01", …).
type TDXModuleIdentity struct {
	ID string `json:"id"`
	TDXModule
	// TCBLevels are sorted by ISVSVN, highest first.
	TCBLevels []ISVSVNLevel `json:"tcb_levels"`
}

// ISVSVNLevel is a TCB level keyed by a single ISVSVN (TDX module
// identities and QE identities). Its status is UpToDate, OutOfDate or
// Revoked (IdentityLevelStatus).
type ISVSVNLevel struct {
	ISVSVN      uint16    `json:"isvsvn"`
	TCBDate     time.Time `json:"tcb_date"`
	TCBStatus   TCBStatus `json:"tcb_status"`
	AdvisoryIDs []string  `json:"advisory_ids,omitempty"`
}

// TCBLevel is a platform TCB level.
type TCBLevel struct {
	SGXComponents [16]uint8 `json:"sgx_components"`
	PCESVN        uint16    `json:"pcesvn"`
	// TDXComponents is meaningful only in TDX TCB infos.
	TDXComponents [16]uint8 `json:"tdx_components"`
	// TCBDate is zero when the level has none (version 2).
	TCBDate     time.Time `json:"tcb_date"`
	TCBStatus   TCBStatus `json:"tcb_status"`
	AdvisoryIDs []string  `json:"advisory_ids,omitempty"`
}

// SignedTCBInfo is a TCB Info with the exact bytes its signature covers.
type SignedTCBInfo struct {
	// Raw is the tcbInfo object value exactly as served.
	Raw []byte
	// Signature is the raw r‖s ECDSA P-256 signature over Raw.
	Signature [64]byte
	Info      *TCBInfo
}

type componentJSON struct {
	SVN *int `json:"svn"`
}

type tcbJSON struct {
	SGX    []componentJSON `json:"sgxtcbcomponents"`
	TDX    []componentJSON `json:"tdxtcbcomponents"`
	PCESVN *int            `json:"pcesvn"`
}

type levelJSON struct {
	TCB         json.RawMessage `json:"tcb"`
	TCBDate     *string         `json:"tcbDate"`
	TCBStatus   *string         `json:"tcbStatus"`
	AdvisoryIDs []string        `json:"advisoryIDs"`
}

type moduleJSON struct {
	ID             *string     `json:"id"`
	MRSigner       *string     `json:"mrsigner"`
	Attributes     *string     `json:"attributes"`
	AttributesMask *string     `json:"attributesMask"`
	TCBLevels      []levelJSON `json:"tcbLevels"`
}

type tcbInfoJSON struct {
	ID                      *string      `json:"id"`
	Version                 *int         `json:"version"`
	IssueDate               *string      `json:"issueDate"`
	NextUpdate              *string      `json:"nextUpdate"`
	FMSPC                   *string      `json:"fmspc"`
	PCEID                   *string      `json:"pceId"`
	TCBType                 *int         `json:"tcbType"`
	TCBEvaluationDataNumber *int         `json:"tcbEvaluationDataNumber"`
	TDXModule               *moduleJSON  `json:"tdxModule"`
	TDXModuleIdentities     []moduleJSON `json:"tdxModuleIdentities"`
	TCBLevels               []levelJSON  `json:"tcbLevels"`
}

// ParseTCBInfo parses a tcbInfo object (the signed JSON value, not the
// whole PCS response). Levels are sorted Intel's way; duplicate levels,
// unknown versions or ids, and missing required fields are errors.
func ParseTCBInfo(raw []byte) (*TCBInfo, error) {
	var j tcbInfoJSON
	if err := strictUnmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%w: tcb info: %w", ErrMalformed, err)
	}
	t := &TCBInfo{}
	var err error
	if j.Version == nil {
		return nil, missing("tcb info", "version")
	}
	t.Version = *j.Version
	switch t.Version {
	case 2:
		t.ID = "SGX"
		if j.ID != nil && *j.ID != "SGX" {
			return nil, fmt.Errorf("%w: tcb info: version 2 with id %q", ErrMalformed, *j.ID)
		}
	case 3:
		if j.ID == nil {
			return nil, missing("tcb info", "id")
		}
		t.ID = *j.ID
		if t.ID != "SGX" && t.ID != "TDX" {
			return nil, fmt.Errorf("%w: tcb info: unknown id %q", ErrMalformed, t.ID)
		}
	default:
		return nil, fmt.Errorf("%w: tcb info: unsupported version %d", ErrMalformed, t.Version)
	}
	if t.IssueDate, err = reqTime("tcb info", "issueDate", j.IssueDate); err != nil {
		return nil, err
	}
	if t.NextUpdate, err = reqTime("tcb info", "nextUpdate", j.NextUpdate); err != nil {
		return nil, err
	}
	if err = reqHex("tcb info", "fmspc", j.FMSPC, t.FMSPC[:]); err != nil {
		return nil, err
	}
	if err = reqHex("tcb info", "pceId", j.PCEID, t.PCEID[:]); err != nil {
		return nil, err
	}
	if j.TCBType == nil {
		return nil, missing("tcb info", "tcbType")
	}
	t.TCBType = *j.TCBType
	if j.TCBEvaluationDataNumber == nil {
		return nil, missing("tcb info", "tcbEvaluationDataNumber")
	}
	t.TCBEvaluationDataNumber = *j.TCBEvaluationDataNumber
	tdx := t.ID == "TDX"
	if tdx {
		if j.TDXModule == nil {
			return nil, missing("tcb info", "tdxModule")
		}
		m, err := parseModule(*j.TDXModule, "tdxModule")
		if err != nil {
			return nil, err
		}
		t.TDXModule = &m
		seen := map[string]bool{}
		for i, mj := range j.TDXModuleIdentities {
			where := fmt.Sprintf("tdxModuleIdentities[%d]", i)
			if mj.ID == nil {
				return nil, missing("tcb info", where+".id")
			}
			id := strings.ToUpper(*mj.ID)
			if seen[id] {
				return nil, fmt.Errorf("%w: tcb info: duplicate module identity %q", ErrMalformed, *mj.ID)
			}
			seen[id] = true
			mod, err := parseModule(mj, where)
			if err != nil {
				return nil, err
			}
			levels, err := parseISVSVNLevels(mj.TCBLevels, "tcb info "+where)
			if err != nil {
				return nil, err
			}
			t.TDXModuleIdentities = append(t.TDXModuleIdentities, TDXModuleIdentity{ID: *mj.ID, TDXModule: mod, TCBLevels: levels})
		}
	} else if j.TDXModule != nil || j.TDXModuleIdentities != nil {
		return nil, fmt.Errorf("%w: tcb info: TDX module fields in an SGX TCB info", ErrMalformed)
	}
	if len(j.TCBLevels) == 0 {
		return nil, missing("tcb info", "tcbLevels")
	}
	for i, lj := range j.TCBLevels {
		l, err := parseTCBLevel(lj, t.Version, tdx)
		if err != nil {
			return nil, fmt.Errorf("%w (tcbLevels[%d])", err, i)
		}
		t.TCBLevels = append(t.TCBLevels, l)
	}
	slices.SortStableFunc(t.TCBLevels, func(a, b TCBLevel) int { return -compareLevels(a, b, tdx) })
	for i := 1; i < len(t.TCBLevels); i++ {
		if compareLevels(t.TCBLevels[i-1], t.TCBLevels[i], tdx) == 0 {
			return nil, fmt.Errorf("%w: tcb info: duplicate TCB level", ErrMalformed)
		}
	}
	return t, nil
}

// compareLevels orders TCB levels as Intel's QVL does: SGX components
// (lexicographically), then PCESVN, then TDX components for TDX.
func compareLevels(a, b TCBLevel, tdx bool) int {
	if c := bytes.Compare(a.SGXComponents[:], b.SGXComponents[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.PCESVN, b.PCESVN); c != 0 {
		return c
	}
	if tdx {
		return bytes.Compare(a.TDXComponents[:], b.TDXComponents[:])
	}
	return 0
}

func parseModule(mj moduleJSON, where string) (TDXModule, error) {
	var m TDXModule
	if err := reqHex("tcb info", where+".mrsigner", mj.MRSigner, m.MRSigner[:]); err != nil {
		return m, err
	}
	if err := reqHex("tcb info", where+".attributes", mj.Attributes, m.Attributes[:]); err != nil {
		return m, err
	}
	if err := reqHex("tcb info", where+".attributesMask", mj.AttributesMask, m.AttributesMask[:]); err != nil {
		return m, err
	}
	return m, nil
}

func parseTCBLevel(lj levelJSON, version int, tdx bool) (TCBLevel, error) {
	var l TCBLevel
	if lj.TCB == nil {
		return l, missing("tcb info", "tcb")
	}
	if version == 2 {
		var m map[string]*int
		if err := json.Unmarshal(lj.TCB, &m); err != nil {
			return l, fmt.Errorf("%w: tcb info: tcb: %w", ErrMalformed, err)
		}
		for i := range 16 {
			v, err := svn8(m[fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)], fmt.Sprintf("sgxtcbcomp%02dsvn", i+1))
			if err != nil {
				return l, err
			}
			l.SGXComponents[i] = v
		}
		p, err := svn16(m["pcesvn"], "pcesvn")
		if err != nil {
			return l, err
		}
		l.PCESVN = p
	} else {
		var tj tcbJSON
		if err := json.Unmarshal(lj.TCB, &tj); err != nil {
			return l, fmt.Errorf("%w: tcb info: tcb: %w", ErrMalformed, err)
		}
		if err := components(tj.SGX, l.SGXComponents[:], "sgxtcbcomponents"); err != nil {
			return l, err
		}
		p, err := svn16(tj.PCESVN, "pcesvn")
		if err != nil {
			return l, err
		}
		l.PCESVN = p
		if tdx {
			if err := components(tj.TDX, l.TDXComponents[:], "tdxtcbcomponents"); err != nil {
				return l, err
			}
		} else if tj.TDX != nil {
			return l, fmt.Errorf("%w: tcb info: tdxtcbcomponents in an SGX TCB info", ErrMalformed)
		}
	}
	var err error
	if lj.TCBDate != nil {
		if l.TCBDate, err = reqTime("tcb info", "tcbDate", lj.TCBDate); err != nil {
			return l, err
		}
	} else if version >= 3 {
		return l, missing("tcb info", "tcbDate")
	}
	if l.TCBStatus, err = levelStatus(lj.TCBStatus, false); err != nil {
		return l, err
	}
	l.AdvisoryIDs = lj.AdvisoryIDs
	return l, nil
}

func components(cs []componentJSON, dst []uint8, name string) error {
	if len(cs) != 16 {
		return fmt.Errorf("%w: tcb info: %s has %d entries, want 16", ErrMalformed, name, len(cs))
	}
	for i, c := range cs {
		v, err := svn8(c.SVN, fmt.Sprintf("%s[%d].svn", name, i))
		if err != nil {
			return err
		}
		dst[i] = v
	}
	return nil
}

// parseISVSVNLevels parses the levels of a TDX module identity or an
// enclave identity. Their statuses are restricted to UpToDate, OutOfDate
// and Revoked (IdentityLevelStatus), as Intel's QVL restricts them.
func parseISVSVNLevels(ls []levelJSON, what string) ([]ISVSVNLevel, error) {
	if len(ls) == 0 {
		return nil, missing(what, "tcbLevels")
	}
	out := make([]ISVSVNLevel, 0, len(ls))
	for i, lj := range ls {
		var tj struct {
			ISVSVN *int `json:"isvsvn"`
		}
		if lj.TCB == nil {
			return nil, missing(what, fmt.Sprintf("tcbLevels[%d].tcb", i))
		}
		if err := json.Unmarshal(lj.TCB, &tj); err != nil {
			return nil, fmt.Errorf("%w: %s: tcb: %w", ErrMalformed, what, err)
		}
		svn, err := svn16(tj.ISVSVN, "isvsvn")
		if err != nil {
			return nil, err
		}
		l := ISVSVNLevel{ISVSVN: svn, AdvisoryIDs: lj.AdvisoryIDs}
		if l.TCBDate, err = reqTime(what, "tcbDate", lj.TCBDate); err != nil {
			return nil, err
		}
		if l.TCBStatus, err = levelStatus(lj.TCBStatus, true); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	slices.SortStableFunc(out, func(a, b ISVSVNLevel) int { return cmp.Compare(b.ISVSVN, a.ISVSVN) })
	for i := 1; i < len(out); i++ {
		if out[i-1].ISVSVN == out[i].ISVSVN {
			return nil, fmt.Errorf("%w: %s: duplicate level for isvsvn %d", ErrMalformed, what, out[i].ISVSVN)
		}
	}
	return out, nil
}

// levelStatus parses a level's tcbStatus; identity restricts it to the
// statuses of identity levels.
func levelStatus(s *string, identity bool) (TCBStatus, error) {
	if s == nil {
		return 0, missing("tcb level", "tcbStatus")
	}
	st, err := ParseTCBStatus(*s)
	if err != nil {
		return 0, err
	}
	if !collateralStatus(st) {
		return 0, fmt.Errorf("%w: status %q is not valid in collateral", ErrMalformed, *s)
	}
	if identity && !IdentityLevelStatus(st) {
		return 0, fmt.Errorf("%w: status %q is not valid in a module or enclave identity level", ErrMalformed, *s)
	}
	return st, nil
}

func svn8(v *int, name string) (uint8, error) {
	if v == nil {
		return 0, missing("tcb", name)
	}
	if *v < 0 || *v > 255 {
		return 0, fmt.Errorf("%w: %s = %d out of range", ErrMalformed, name, *v)
	}
	return uint8(*v), nil
}

func svn16(v *int, name string) (uint16, error) {
	if v == nil {
		return 0, missing("tcb", name)
	}
	if *v < 0 || *v > 0xFFFF {
		return 0, fmt.Errorf("%w: %s = %d out of range", ErrMalformed, name, *v)
	}
	return uint16(*v), nil
}

func missing(what, field string) error {
	return fmt.Errorf("%w: %s: missing %s", ErrMalformed, what, field)
}

func reqTime(what, field string, s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, missing(what, field)
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %s: %w", ErrMalformed, what, field, err)
	}
	return t, nil
}

func reqHex(what, field string, s *string, dst []byte) error {
	if s == nil {
		return missing(what, field)
	}
	if hex.DecodedLen(len(*s)) != len(dst) {
		return fmt.Errorf("%w: %s: %s has %d hex digits, want %d", ErrMalformed, what, field, len(*s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(*s)); err != nil {
		return fmt.Errorf("%w: %s: %s: %w", ErrMalformed, what, field, err)
	}
	return nil
}

// strictUnmarshal decodes one JSON value and rejects trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}
