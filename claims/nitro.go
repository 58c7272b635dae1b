package claims

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitro"
)

// TEENitro is the tee claim of AWS Nitro evidence: a Nitro Enclave's NSM
// document or an EC2 instance's NitroTPM document, both signed by the AWS
// Nitro PKI (claim nitro.kind tells them apart).
const TEENitro = "nitro"

// newNitro is the claim set of verified dstack Nitro evidence: nitro.*
// (the document), the document's PCRs (nitro.pcr<N> for an enclave,
// tpm.pcr<N> of the SHA-384 bank for NitroTPM) and the dstack.* claims.
func newNitro(d *dstack.Result) (Set, error) {
	n := d.Nitro
	if n == nil || !d.QuoteVerified {
		return nil, fmt.Errorf("%w: no verified Nitro document", ErrInvalid)
	}
	s := Set{"tee": TEENitro}
	s["nitro.kind"] = string(n.Kind)
	s["nitro.module_id"] = n.ModuleID
	s["nitro.timestamp"] = n.Timestamp.UTC().Format(time.RFC3339Nano)
	s["nitro.user_data"] = hexOf(d.ReportData)
	s["nitro.dstack_device_id"] = hexOf(n.DstackDeviceID)
	prefix := "nitro.pcr"
	switch n.Kind {
	case nitro.KindEnclave:
		s["nitro.debug"] = n.Debug
	case nitro.KindNitroTPM:
		prefix = "tpm.pcr"
		s["tpm.bank"] = "sha384"
		s["tpm.boot_pcr_digest"] = hexOf(n.BootPCRDigest)
	default:
		return nil, fmt.Errorf("%w: Nitro document kind %q", ErrInvalid, n.Kind)
	}
	for i, v := range n.PCRs {
		s[prefix+strconv.Itoa(i)] = hexOf(v)
	}
	s.addDstack(d)
	if n.Kind == nitro.KindEnclave {
		// An enclave's runtime events are not measured (there is no
		// register to replay them into): its app-id event is asserted,
		// not attested, so the app id is reported unverified and no rule
		// can match it.
		if v, ok := s["dstack.app_id"]; ok {
			delete(s, "dstack.app_id")
			s[UnverifiedPrefix+"dstack.app_id"] = v
		}
	}
	return s, nil
}
