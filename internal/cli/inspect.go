package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tdproof/tdproof/quote"
)

func (a *app) inspectCommand() *cobra.Command {
	var trustedRoot string
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what a quote says and check its signatures",
		Long: `Parse a DCAP quote (binary, hex or 0x-prefixed hex; FILE - reads stdin) and show its
header, measurements, QE report, certification data and PCK certificate facts.

The PCK chain, QE report and quote signatures are checked up to the pinned Intel SGX
Root CA (or --trusted-root). No collateral is used: inspect establishes neither a TCB
status nor revocation; use "tdproof quote verify" for that.`,
		Example: `  tdproof quote inspect quote.bin
  tdproof quote inspect --format json quote.hex
  cat quote.hex | tdproof quote inspect -`,
		Annotations: map[string]string{"exit_codes": `  0  parsed; signatures valid, or not checkable because the quote carries no PCK chain
  2  usage, or FILE cannot be read
  3  the quote is malformed or unsupported, or the trusted root is not a certificate
  4  a signature or the PCK chain does not verify (the facts are still printed)`},
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			root, err := a.readTrustedRoot(trustedRoot)
			if err != nil {
				return err
			}
			q, err := a.readQuote(args[0])
			if err != nil {
				return err
			}
			f := inspectQuote(q, root)
			if outputFormat(cmd) == formatJSON {
				if err := writeJSON(a.stdout, f); err != nil {
					return err
				}
			} else if err := printInspect(a.stdout, f); err != nil {
				return err
			}
			return f.Signatures.err
		},
	}
	c.Flags().StringVar(&trustedRoot, "trusted-root", "", "check signatures up to the certificate in `FILE` (PEM or DER) instead of the Intel SGX Root CA")
	commandLineOnly(c.Flags(), "trusted-root")
	return c
}

func printInspect(w io.Writer, f *quoteFacts) error {
	p := &printer{w: w}
	s := f.Signatures
	if !s.IntelRoot {
		p.printf("%s\n\n", nonIntelWarning(s.TrustedRootSHA256))
	}
	h := f.Header
	p.printf("Quote\n")
	p.kv(1, "version", fmt.Sprintf("%d (%s)", h.Version, h.TEEType))
	p.kv(1, "body", fmt.Sprintf("%s (type %d)", f.BodyType, f.BodyTypeID))
	p.kv(1, "attestation key", h.AttestationKeyType)
	vendor := "not Intel"
	if h.QEVendorIntel {
		vendor = "Intel"
	}
	p.kv(1, "QE vendor", h.QEVendorID+" ("+vendor+")")
	p.kv(1, "QE SVN", h.QESVN)
	p.kv(1, "PCE SVN", h.PCESVN)
	p.kv(1, "user data", h.UserData)
	size := fmt.Sprintf("%d bytes", f.Size)
	if f.TrailingBytes > 0 {
		zero := "not all zero"
		if f.TrailingAllZero {
			zero = "all zero"
		}
		size += fmt.Sprintf(", of which %d trailing bytes after the signature data (%s, not signed)", f.TrailingBytes, zero)
	}
	p.kv(1, "size", size)
	p.kv(1, "sha256", f.SHA256+" (without trailing bytes)")
	p.kv(0, "Signatures", signatureLine(s))

	if td := f.TD; td != nil {
		p.section("TD report")
		p.kv(1, "MRTD", td.MRTD)
		for i, r := range td.RTMRs {
			p.kv(1, fmt.Sprintf("RTMR%d", i), r)
		}
		p.kv(1, "MRCONFIGID", td.MRConfigID)
		p.kv(1, "MROWNER", td.MROwner)
		p.kv(1, "MROWNERCONFIG", td.MROwnerConfig)
		p.kv(1, "MRSEAM", td.MRSEAM)
		p.kv(1, "MRSIGNERSEAM", td.MRSignerSEAM)
		p.kv(1, "SEAMATTRIBUTES", td.SEAMAttributes)
		p.kv(1, "TEE_TCB_SVN", td.TEETCBSVN)
		if td.TD15 {
			p.kv(1, "TEE_TCB_SVN2", td.TEETCBSVN2)
			p.kv(1, "MRSERVICETD", td.MRServiceTD)
		}
		p.kv(1, "TDATTRIBUTES", td.TDAttributes+" ("+tdAttributeNames(td.Attributes)+")")
		at := td.Attributes
		p.kv(2, "DEBUG", yesNo(at.Debug))
		p.kv(2, "SEPT_VE_DISABLE", yesNo(at.SEPTVEDisable))
		p.kv(2, "PKS", yesNo(at.PKS))
		p.kv(2, "KL", yesNo(at.KL))
		p.kv(2, "PERFMON", yesNo(at.Perfmon))
		if at.Other != "" {
			p.kv(2, "other bits", at.Other)
		}
		p.kv(1, "XFAM", td.XFAM)
		p.kv(1, "REPORTDATA", td.ReportData)
	}
	if e := f.Enclave; e != nil {
		p.section("Enclave report")
		printEnclave(p, e)
	}
	p.section("QE report")
	printEnclave(p, &f.QEReport)
	p.kv(1, "auth data", fmt.Sprintf("%d bytes", f.QEAuthDataSize))

	cf := f.Certification
	p.section("Certification data")
	typ := fmt.Sprintf("%s (type %d), %d bytes", cf.TypeName, cf.Type, cf.Size)
	if cf.OuterType != 0 {
		typ += fmt.Sprintf(", inside %s (type %d)", quote.CertificationType(cf.OuterType), cf.OuterType)
	}
	p.kv(1, "type", typ)
	if e := cf.EncryptedPPID; e != nil {
		p.kv(1, "encrypted PPID", fmt.Sprintf("%d bytes", e.Size))
		p.kv(1, "CPUSVN", e.CPUSVN)
		p.kv(1, "PCESVN", e.PCESVN)
		p.kv(1, "PCE-ID", e.PCEID)
	}
	if cf.PCKError != "" {
		p.kv(1, "PCK chain", "unreadable: "+cf.PCKError)
	}
	if len(cf.Chain) > 0 {
		names := make([]string, len(cf.Chain))
		for i, c := range cf.Chain {
			names[i] = c.Subject
		}
		p.kv(1, "PCK chain", fmt.Sprintf("%d certificates: %s", cf.ChainLength, strings.Join(names, " <- ")))
		leaf := cf.Chain[0]
		p.kv(1, "PCK serial", leaf.Serial)
		p.kv(1, "PCK validity", ts(leaf.NotBefore)+" to "+ts(leaf.NotAfter))
	}
	if k := cf.PCK; k != nil {
		p.kv(1, "FMSPC", k.FMSPC)
		p.kv(1, "PCE-ID", k.PCEID)
		p.kv(1, "CA type", k.CAType)
		p.kv(1, "SGX type", k.SGXType)
		comps := make([]string, len(k.TCBComponents))
		for i, c := range k.TCBComponents {
			comps[i] = fmt.Sprint(c)
		}
		p.kv(1, "TCB components", strings.Join(comps, " "))
		p.kv(1, "PCESVN", k.PCESVN)
		p.kv(1, "CPUSVN", k.CPUSVN)
		p.kv(1, "PPID", k.PPID)
		if k.PlatformInstanceID != "" {
			p.kv(1, "platform instance", k.PlatformInstanceID)
		}
		if c := k.Configuration; c != nil {
			p.kv(1, "configuration", fmt.Sprintf("dynamic platform %s, cached keys %s, SMT %s",
				optBool(c.DynamicPlatform), optBool(c.CachedKeys), optBool(c.SMTEnabled)))
		}
	}
	return p.err
}

func printEnclave(p *printer, e *enclaveFacts) {
	p.kv(1, "MRENCLAVE", e.MREnclave)
	p.kv(1, "MRSIGNER", e.MRSigner)
	p.kv(1, "ISVPRODID", e.ISVProdID)
	p.kv(1, "ISVSVN", e.ISVSVN)
	p.kv(1, "CPUSVN", e.CPUSVN)
	p.kv(1, "MISCSELECT", fmt.Sprintf("%08x", e.MiscSelect))
	p.kv(1, "ATTRIBUTES", e.Attributes)
	p.kv(2, "DEBUG", yesNo(e.Debug))
	p.kv(1, "REPORTDATA", e.ReportData)
}

func optBool(b *bool) string {
	if b == nil {
		return "absent"
	}
	return yesNo(*b)
}

func tdAttributeNames(a tdAttributeFacts) string {
	var names []string
	for _, f := range []struct {
		on   bool
		name string
	}{{a.Debug, "DEBUG"}, {a.SEPTVEDisable, "SEPT_VE_DISABLE"}, {a.PKS, "PKS"}, {a.KL, "KL"}, {a.Perfmon, "PERFMON"}} {
		if f.on {
			names = append(names, f.name)
		}
	}
	if a.Other != "" {
		names = append(names, "other bits")
	}
	if len(names) == 0 {
		return "none set"
	}
	return strings.Join(names, ", ")
}

func signatureLine(s signatureFacts) string {
	root := "the Intel SGX Root CA"
	if !s.IntelRoot {
		root = "a NON-INTEL trusted root"
	}
	root += " (sha256 " + s.TrustedRootSHA256 + ")"
	switch {
	case !s.Checked:
		return "not checked: " + s.Reason
	case s.Valid:
		return "valid up to " + root
	}
	return "INVALID (" + s.Error.Code + "): " + s.Reason
}
