package claims

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/snp"
)

// TEESNP is the tee claim of AMD SEV-SNP evidence.
const TEESNP = "snp"

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func tcbHex(t snp.TCBVersion) string { b := t.Bytes(); return hex.EncodeToString(b[:]) }

// newSNP is the claim set of a verified SEV-SNP report (snp.*), with the
// dstack.* claims when d is not nil.
func newSNP(r *snp.Result, d *dstack.Result) (Set, error) {
	if r == nil || r.Report == nil {
		return nil, fmt.Errorf("%w: no SEV-SNP result", ErrInvalid)
	}
	rep := r.Report
	s := Set{"tee": TEESNP}
	b := "snp.report."
	for k, v := range map[string]string{
		"family_id": hexOf(rep.FamilyID[:]), "image_id": hexOf(rep.ImageID[:]),
		"report_data": hexOf(rep.ReportData[:]), "measurement": hexOf(rep.Measurement[:]),
		"host_data": hexOf(rep.HostData[:]), "id_key_digest": hexOf(rep.IDKeyDigest[:]),
		"author_key_digest": hexOf(rep.AuthorKeyDigest[:]), "report_id": hexOf(rep.ReportID[:]),
		"report_id_ma": hexOf(rep.ReportIDMA[:]), "chip_id": hexOf(rep.ChipID[:]),
		"current_tcb": tcbHex(rep.CurrentTCB), "reported_tcb": tcbHex(rep.ReportedTCB),
		"committed_tcb": tcbHex(rep.CommittedTCB), "launch_tcb": tcbHex(rep.LaunchTCB),
		"policy": fmt.Sprintf("%016x", rep.Policy), "platform_info": fmt.Sprintf("%016x", rep.PlatformInfo),
	} {
		s[b+k] = v
	}
	s[b+"version"] = int64(rep.Version)
	s[b+"guest_svn"] = int64(rep.GuestSVN)
	s[b+"vmpl"] = int64(rep.VMPL)
	s[b+"key_info"] = int64(rep.KeyInfo)
	gp := "snp.guest_policy."
	for k, bit := range map[string]uint64{
		"smt": snp.PolicySMT, "migrate_ma": snp.PolicyMigrateMA, "debug": snp.PolicyDebug,
		"single_socket": snp.PolicySingleSocket, "cxl_allow": snp.PolicyCXLAllow,
		"mem_aes_256_xts": snp.PolicyMemAES256XTS, "rapl_dis": snp.PolicyRAPLDis,
		"ciphertext_hiding": snp.PolicyCiphertextHiding, "page_swap_disable": snp.PolicyPageSwapDisable,
	} {
		s[gp+k] = rep.Policy&bit != 0
	}
	s["snp.mask_chip_key"] = rep.MaskChipKey()
	s["snp.author_key_en"] = rep.AuthorKeyEnabled()
	s["snp.product"] = r.Product.String()
	s["snp.signing_key"] = r.SigningKey.String()
	s["snp.tcb_status"] = string(r.TCBStatus)
	s["snp.advisory_ids"] = nonNil(r.AdvisoryIDs)
	s["snp.amd_root"] = r.AMDRoot
	s["snp.crl_checked"] = r.CRLChecked
	s["snp.vcek.not_after"] = r.VCEK.NotAfter.UTC().Format(time.RFC3339)
	for name, tp := range map[string]snp.TCBParts{"current": r.TCB.Current, "reported": r.TCB.Reported, "committed": r.TCB.Committed, "launch": r.TCB.Launch} {
		p := "snp.tcb." + name + "."
		s[p+"bootloader"] = int64(tp.BootLoader)
		s[p+"tee"] = int64(tp.TEE)
		s[p+"snp"] = int64(tp.SNP)
		s[p+"microcode"] = int64(tp.Microcode)
		if r.Product == snp.ProductTurin {
			s[p+"fmc"] = int64(tp.FMC)
		}
	}
	if d != nil {
		s.addDstack(d)
	}
	return s, nil
}
