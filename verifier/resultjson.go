package verifier

import (
	"encoding/json"
	"errors"
	"reflect"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/snp"
)

// resultHead and resultTail are Result's fields before and after Claims,
// with the same JSON names and options.
type resultHead struct {
	MediaType  string     `json:"media_type"`
	Authentic  bool       `json:"authentic"`
	Allow      bool       `json:"allow"`
	Status     ear.Status `json:"ear_status"`
	Reason     string     `json:"reason,omitempty"`
	TEE        string     `json:"tee"`
	TEEVariant string     `json:"tee_variant,omitempty"`
	Nonce      string     `json:"nonce,omitempty"`
}

type resultTail struct {
	Appraisal   *policy.Appraisal `json:"appraisal"`
	TrustVector ear.TrustVector   `json:"trust_vector"`
	DCAP        *dcap.Result      `json:"dcap,omitempty"`
	Dstack      *dstack.Result    `json:"dstack,omitempty"`
	SNP         *snp.Result       `json:"snp,omitempty"`
	Chain       []ChainCert       `json:"chain,omitempty"`
	EventLog    []LogEvent        `json:"event_log,omitempty"`
}

// AppendJSON appends the JSON encoding of r — the bytes of json.Marshal —
// to dst. The claims are not encoded again: it reuses the encoding
// Verify made for the token, so a response body carries exactly the
// claims the token signs and encodes them once. (For a Result not made by
// Verify, or whose Claims were replaced since, the claims are encoded
// now.)
func (r *Result) AppendJSON(dst []byte) ([]byte, error) {
	head, err := json.Marshal(resultHead{MediaType: r.MediaType, Authentic: r.Authentic, Allow: r.Allow, Status: r.Status,
		Reason: r.Reason, TEE: r.TEE, TEEVariant: r.TEEVariant, Nonce: r.Nonce})
	if err != nil {
		return dst, err
	}
	tail, err := json.Marshal(resultTail{Appraisal: r.Appraisal, TrustVector: r.TrustVector, DCAP: r.DCAP, Dstack: r.Dstack, SNP: r.SNP,
		Chain: r.Chain, EventLog: r.EventLog})
	if err != nil {
		return dst, err
	}
	if len(head) < 2 || len(tail) < 2 || head[len(head)-1] != '}' || tail[0] != '{' {
		return dst, errors.New("verifier: encode result: unexpected encoding")
	}
	dst = append(dst, head[:len(head)-1]...)
	if len(r.Claims) > 0 {
		cj := r.claimsJSON
		if cj == nil || !sameMap(r.claimsOf, r.Claims) {
			if cj, err = r.Claims.MarshalJSON(); err != nil {
				return dst, err
			}
			// json.Marshal validates and compacts a Marshaler's output;
			// claims.Set's is compact already, so a copy would be equal.
			if !json.Valid(cj) {
				return dst, errors.New("verifier: encode result: invalid claims encoding")
			}
		}
		dst = append(dst, `,"claims":`...)
		dst = append(dst, cj...)
	}
	dst = append(dst, ',')
	return append(dst, tail[1:]...), nil
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b claims.Set) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
