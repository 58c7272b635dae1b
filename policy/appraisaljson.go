package policy

import (
	"github.com/tdproof/tdproof/jsonappend"
)

// AppendJSON appends the JSON encoding of a — the bytes json.Marshal
// writes — to dst, without reflection: the verification service encodes
// one appraisal per response.
func (a *Appraisal) AppendJSON(dst []byte) ([]byte, error) {
	if a == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, `{"media_type":`...)
	dst = jsonappend.String(dst, a.MediaType)
	dst = append(dst, `,"allow":`...)
	dst = jsonappend.Bool(dst, a.Allow)
	dst = append(dst, `,"failed":`...)
	dst = appendViolations(dst, a.Failed)
	if len(a.Warnings) > 0 {
		dst = append(dst, `,"warnings":`...)
		dst = appendViolations(dst, a.Warnings)
	}
	if len(a.Comparisons) > 0 {
		dst = append(dst, `,"comparisons":[`...)
		for i, c := range a.Comparisons {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = jsonappend.String(dst, c.Name)
			dst = append(dst, `,"claim":`...)
			dst = jsonappend.String(dst, c.Claim)
			dst = append(dst, `,"expected":`...)
			dst = jsonappend.Strings(dst, c.Expected)
			dst = append(dst, `,"actual":`...)
			dst = jsonappend.String(dst, c.Actual)
			dst = append(dst, `,"outcome":`...)
			dst = jsonappend.String(dst, c.Outcome)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"policy_id":`...)
	dst = jsonappend.String(dst, a.PolicyID)
	dst = append(dst, `,"policy_version":`...)
	dst = jsonappend.String(dst, a.PolicyVersion)
	dst = append(dst, `,"trust_vector":`...)
	dst = a.TrustVector.appendJSON(dst)
	dst = append(dst, `,"time":`...)
	dst, err := jsonappend.Time(dst, a.Time)
	if err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

func appendViolations(dst []byte, vs []Violation) []byte {
	if vs == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"rule":`...)
		dst = jsonappend.String(dst, v.Rule)
		if v.Claim != "" {
			dst = append(dst, `,"claim":`...)
			dst = jsonappend.String(dst, v.Claim)
		}
		if v.Expected != "" {
			dst = append(dst, `,"expected":`...)
			dst = jsonappend.String(dst, v.Expected)
		}
		if v.Actual != "" {
			dst = append(dst, `,"actual":`...)
			dst = jsonappend.String(dst, v.Actual)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func (t TrustVector) appendJSON(dst []byte) []byte {
	return jsonappend.IntObject(dst,
		jsonappend.IntMember{Name: "instance-identity", Value: int64(t.InstanceIdentity)},
		jsonappend.IntMember{Name: "configuration", Value: int64(t.Configuration)},
		jsonappend.IntMember{Name: "executables", Value: int64(t.Executables)},
		jsonappend.IntMember{Name: "file-system", Value: int64(t.FileSystem)},
		jsonappend.IntMember{Name: "hardware", Value: int64(t.Hardware)},
		jsonappend.IntMember{Name: "runtime-opaque", Value: int64(t.RuntimeOpaque)},
		jsonappend.IntMember{Name: "storage-opaque", Value: int64(t.StorageOpaque)},
		jsonappend.IntMember{Name: "sourced-data", Value: int64(t.SourcedData)})
}
