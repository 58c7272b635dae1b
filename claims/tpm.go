package claims

import (
	"strconv"

	"github.com/tdproof/tdproof/dstack"
)

// addGCP adds the tpm.* claims of the verified vTPM quote of
// dstack-gcp-tdx evidence: the quoted SHA-256 PCRs (tpm.pcr0, tpm.pcr2,
// tpm.pcr14), the bank, the AK certificate's subject and the UKI
// Authenticode hash found among the PCR2 events.
func (s Set) addGCP(g *dstack.GCPFacts) {
	s["tpm.bank"] = "sha256"
	for i, v := range g.PCRs {
		s["tpm.pcr"+strconv.Itoa(i)] = hexOf(v)
	}
	s["tpm.ak_subject"] = g.AKSubject
	s["tpm.uki_auth"] = hexOf(g.UKIAuth)
}
