package verifier

import (
	"encoding/json"
	"errors"
	"reflect"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/jsonappend"
)

// AppendJSON appends the JSON encoding of r — the bytes of json.Marshal —
// to dst. The claims are not encoded again: it reuses the encoding
// Verify made for the token, so a response body carries exactly the
// claims the token signs and encodes them once. (For a Result not made by
// Verify, or whose Claims were replaced since, the claims are encoded
// now.) The fields of every response and the DCAP result are written
// without reflection; the other verification results (Dstack, SNP, Chain,
// EventLog) go through encoding/json.
func (r *Result) AppendJSON(dst []byte) ([]byte, error) {
	start := len(dst)
	fail := func(err error) ([]byte, error) { return dst[:start], err }
	status, err := r.Status.MarshalText()
	if err != nil {
		return fail(err)
	}
	dst = append(dst, `{"media_type":`...)
	dst = jsonappend.String(dst, r.MediaType)
	dst = append(dst, `,"authentic":`...)
	dst = jsonappend.Bool(dst, r.Authentic)
	dst = append(dst, `,"allow":`...)
	dst = jsonappend.Bool(dst, r.Allow)
	dst = append(dst, `,"ear_status":`...)
	dst = jsonappend.String(dst, string(status))
	if r.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = jsonappend.String(dst, r.Reason)
	}
	dst = append(dst, `,"tee":`...)
	dst = jsonappend.String(dst, r.TEE)
	if r.TEEVariant != "" {
		dst = append(dst, `,"tee_variant":`...)
		dst = jsonappend.String(dst, r.TEEVariant)
	}
	if r.Nonce != "" {
		dst = append(dst, `,"nonce":`...)
		dst = jsonappend.String(dst, r.Nonce)
	}
	if len(r.Claims) > 0 {
		cj := r.claimsJSON
		if cj == nil || !sameMap(r.claimsOf, r.Claims) {
			if cj, err = r.Claims.MarshalJSON(); err != nil {
				return fail(err)
			}
			// json.Marshal validates and compacts a Marshaler's output;
			// claims.Set's is compact already, so a copy would be equal.
			if !json.Valid(cj) {
				return fail(errors.New("verifier: encode result: invalid claims encoding"))
			}
		}
		dst = append(dst, `,"claims":`...)
		dst = append(dst, cj...)
	}
	dst = append(dst, `,"appraisal":`...)
	if dst, err = r.Appraisal.AppendJSON(dst); err != nil {
		return fail(err)
	}
	dst = append(dst, `,"trust_vector":`...)
	dst = r.TrustVector.AppendJSON(dst)
	if r.DCAP != nil {
		dst = jsonappend.Key(dst, false, "dcap")
		if dst, err = r.DCAP.AppendJSON(dst); err != nil {
			return fail(err)
		}
	}
	for _, f := range [...]struct {
		name string
		v    any
		set  bool
	}{
		{"dstack", r.Dstack, r.Dstack != nil}, {"snp", r.SNP, r.SNP != nil},
		{"chain", r.Chain, len(r.Chain) > 0}, {"event_log", r.EventLog, len(r.EventLog) > 0},
	} {
		if !f.set {
			continue
		}
		b, err := json.Marshal(f.v)
		if err != nil {
			return fail(err)
		}
		dst = jsonappend.Key(dst, false, f.name)
		dst = append(dst, b...)
	}
	return append(dst, '}'), nil
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b claims.Set) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
