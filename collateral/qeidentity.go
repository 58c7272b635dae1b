package collateral

import (
	"fmt"
	"time"
)

// QEIdentity is a parsed enclave identity: the QE ("QE", SGX), the TD
// quoting enclave ("TD_QE", TDX), the QvE ("QVE") or the QAE ("QAE").
type QEIdentity struct {
	ID                      string    `json:"id"`
	Version                 int       `json:"version"`
	IssueDate               time.Time `json:"issue_date"`
	NextUpdate              time.Time `json:"next_update"`
	TCBEvaluationDataNumber int       `json:"tcb_evaluation_data_number"`
	// MiscSelect and MiscSelectMask are in the byte order of the report.
	MiscSelect     [4]byte  `json:"-"`
	MiscSelectMask [4]byte  `json:"-"`
	Attributes     [16]byte `json:"-"`
	AttributesMask [16]byte `json:"-"`
	MRSigner       [32]byte `json:"-"`
	ISVProdID      uint16   `json:"isvprodid"`
	// TCBLevels are sorted by ISVSVN, highest first.
	TCBLevels []ISVSVNLevel `json:"tcb_levels"`
}

// SignedQEIdentity is a QE identity with the exact bytes its signature
// covers.
type SignedQEIdentity struct {
	// Raw is the enclaveIdentity object value exactly as served.
	Raw       []byte
	Signature [64]byte
	Identity  *QEIdentity
}

type qeIdentityJSON struct {
	ID                      *string     `json:"id"`
	Version                 *int        `json:"version"`
	IssueDate               *string     `json:"issueDate"`
	NextUpdate              *string     `json:"nextUpdate"`
	TCBEvaluationDataNumber *int        `json:"tcbEvaluationDataNumber"`
	MiscSelect              *string     `json:"miscselect"`
	MiscSelectMask          *string     `json:"miscselectMask"`
	Attributes              *string     `json:"attributes"`
	AttributesMask          *string     `json:"attributesMask"`
	MRSigner                *string     `json:"mrsigner"`
	ISVProdID               *int        `json:"isvprodid"`
	TCBLevels               []levelJSON `json:"tcbLevels"`
}

// ParseQEIdentity parses an enclaveIdentity object (the signed JSON
// value). Only version 2 is accepted, with id QE, TD_QE or QVE. A level
// whose status is not UpToDate, OutOfDate or Revoked makes the whole
// identity malformed, wherever it is in the list: Intel's QVL rejects
// such an identity (QEIDENTITY_UNSUPPORTED_FORMAT) whichever level the
// quote's ISVSVN would match.
func ParseQEIdentity(raw []byte) (*QEIdentity, error) {
	var j qeIdentityJSON
	if err := strictUnmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%w: qe identity: %w", ErrMalformed, err)
	}
	const what = "qe identity"
	q := &QEIdentity{}
	if j.ID == nil {
		return nil, missing(what, "id")
	}
	q.ID = *j.ID
	switch q.ID {
	case "QE", "TD_QE", "QVE", "QAE":
	default:
		return nil, fmt.Errorf("%w: qe identity: unknown id %q", ErrMalformed, q.ID)
	}
	if j.Version == nil {
		return nil, missing(what, "version")
	}
	q.Version = *j.Version
	if q.Version != 2 {
		return nil, fmt.Errorf("%w: qe identity: unsupported version %d", ErrMalformed, q.Version)
	}
	var err error
	if q.IssueDate, err = reqTime(what, "issueDate", j.IssueDate); err != nil {
		return nil, err
	}
	if q.NextUpdate, err = reqTime(what, "nextUpdate", j.NextUpdate); err != nil {
		return nil, err
	}
	if j.TCBEvaluationDataNumber == nil {
		return nil, missing(what, "tcbEvaluationDataNumber")
	}
	q.TCBEvaluationDataNumber = *j.TCBEvaluationDataNumber
	for _, f := range []struct {
		name string
		s    *string
		dst  []byte
	}{
		{"miscselect", j.MiscSelect, q.MiscSelect[:]},
		{"miscselectMask", j.MiscSelectMask, q.MiscSelectMask[:]},
		{"attributes", j.Attributes, q.Attributes[:]},
		{"attributesMask", j.AttributesMask, q.AttributesMask[:]},
		{"mrsigner", j.MRSigner, q.MRSigner[:]},
	} {
		if err := reqHex(what, f.name, f.s, f.dst); err != nil {
			return nil, err
		}
	}
	if q.ISVProdID, err = svn16(j.ISVProdID, "isvprodid"); err != nil {
		return nil, err
	}
	if q.TCBLevels, err = parseISVSVNLevels(j.TCBLevels, what); err != nil {
		return nil, err
	}
	return q, nil
}
