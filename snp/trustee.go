package snp

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Trustee's SEV-SNP evidence (tee "snp") is the serde_json encoding of
// {"attestation_report": sev::firmware::guest::AttestationReport,
// "cert_chain": Option<Vec<sev::firmware::host::CertTableEntry>>}
// (confidential-containers/trustee deps/verifier/src/snp/mod.rs,
// SnpEvidence; the guest-components attester serialises the same struct).
// The JSON is whatever serde derives for the sev crate's types, so it is
// not one format but one per sev generation. ParseTrusteeEvidence accepts
// the two it can pin exactly (docs/kbs.md lists the sources) and rebuilds
// the report's 1184 bytes from the fields; the signature then decides
// whether those bytes are the ones the firmware signed.

// TrusteeForm names the serde form of a Trustee SEV-SNP evidence report.
type TrusteeForm string

const (
	// TrusteeFormSev6 is the form of the sev crate 6.x (Trustee's verifier
	// and the guest-components attester lock sev 6.3.1): key_info,
	// current/committed as {major, minor, build}, cpuid_fam_id,
	// cpuid_mod_id and cpuid_step (null before report version 3), TCB
	// versions as {fmc, bootloader, tee, snp, microcode} (fmc null except
	// on Turin), signature {r, s}. Reserved bytes are not carried: they
	// are rebuilt as zero, as the sev crate's own write_bytes does, so a
	// version 5 report whose mitigation vectors are not zero cannot be
	// carried (its signature does not verify).
	TrusteeFormSev6 TrusteeForm = "sev6"
	// TrusteeFormReprC is the form of the earlier sev crate whose
	// AttestationReport was a repr(C) struct serialised field by field,
	// reserved fields included (_author_key_en, _reserved_0 … _reserved_4,
	// current_build/minor/major, TCB versions as {bootloader, tee,
	// _reserved, snp, microcode}, signature {r, s, _reserved}). Every byte
	// of the report is carried.
	TrusteeFormReprC TrusteeForm = "repr-c"
)

// TrusteeCertType is a sev crate CertType as serde writes it: a unit
// variant name, or OTHER with a GUID.
type TrusteeCertType string

// Certificate types of a Trustee cert_chain.
const (
	TrusteeCertEmpty TrusteeCertType = "Empty"
	TrusteeCertARK   TrusteeCertType = "ARK"
	TrusteeCertASK   TrusteeCertType = "ASK"
	TrusteeCertVCEK  TrusteeCertType = "VCEK"
	TrusteeCertVLEK  TrusteeCertType = "VLEK"
	TrusteeCertCRL   TrusteeCertType = "CRL"
	TrusteeCertOther TrusteeCertType = "OTHER"
)

// TrusteeCert is one CertTableEntry of a Trustee cert_chain.
type TrusteeCert struct {
	Type TrusteeCertType
	// GUID is the GUID of an OTHER entry ("" otherwise).
	GUID string
	// Data is the certificate (DER or PEM) or CRL as carried.
	Data []byte
}

// TrusteeEvidence is parsed Trustee SEV-SNP evidence.
type TrusteeEvidence struct {
	Form TrusteeForm
	// Report is parsed (ParseReport) from the bytes rebuilt from the
	// JSON fields; its signature is not verified yet.
	Report *Report
	// CertChain is the cert_chain as carried; nil when the evidence has
	// none (null, absent or an empty list).
	CertChain []TrusteeCert
}

// Limits of a Trustee cert_chain.
const (
	maxTrusteeCerts    = 16
	maxTrusteeCertSize = 64 << 10
)

// ParseTrusteeEvidence parses Trustee's SEV-SNP evidence in one of the
// TrusteeForm forms. The JSON must be exactly what serde writes for that
// form: every member present (cert_chain may be absent or null), no
// unknown, repeated or differently cased member, integers in range.
// Fields that the report's byte layout cannot hold (an fmc outside a
// Turin layout, CPUID fields in a version 2 report, TCB versions of mixed
// layouts) are errors. The rebuilt bytes must then parse with
// ParseReport. Errors wrap ErrMalformed or ErrUnsupported.
func ParseTrusteeEvidence(b []byte) (*TrusteeEvidence, error) {
	top, err := jsonObject("evidence", b)
	if err != nil {
		return nil, err
	}
	if err := top.only("attestation_report", "cert_chain"); err != nil {
		return nil, err
	}
	rep, ok := top.m["attestation_report"]
	if !ok {
		return nil, trusteeErr("evidence", "no attestation_report")
	}
	ro, err := jsonObject("attestation_report", rep)
	if err != nil {
		return nil, err
	}
	ev := &TrusteeEvidence{}
	var raw []byte
	switch {
	case ro.has("key_info"):
		ev.Form = TrusteeFormSev6
		raw, err = rebuildSev6(ro)
	case ro.has("_author_key_en"):
		ev.Form = TrusteeFormReprC
		raw, err = rebuildReprC(ro)
	default:
		return nil, fmt.Errorf("%w: attestation_report is neither the sev 6 form (key_info) nor the repr(C) form (_author_key_en)", ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	if ev.Report, err = ParseReport(raw); err != nil {
		return nil, err
	}
	if cc, ok := top.m["cert_chain"]; ok && !isNull(cc) {
		if ev.CertChain, err = parseTrusteeCertChain(cc); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// Certificates returns the endorsement certificates of the cert_chain for
// the report's signing key: the VCEK entry for a VCEK-signed report, the
// VLEK entry for a VLEK-signed one, the ASK entry (ASK or ASVK) and the
// ARK entry when present (Verify requires a carried ARK to be the pinned
// one). CRL, Empty and OTHER entries are ignored. A type that appears
// twice is an error, as is a chain without the endorsement key the
// report names.
func (e *TrusteeEvidence) Certificates() (Certificates, error) {
	var c Certificates
	if len(e.CertChain) == 0 {
		return c, fmt.Errorf("%w: cert_chain: the evidence carries no certificates", ErrChain)
	}
	seen := map[TrusteeCertType]bool{}
	var vcek, vlek []byte
	for i, ent := range e.CertChain {
		switch ent.Type {
		case TrusteeCertARK, TrusteeCertASK, TrusteeCertVCEK, TrusteeCertVLEK:
		default:
			continue
		}
		if seen[ent.Type] {
			return c, fmt.Errorf("%w: cert_chain[%d]: a second %s entry", ErrMalformed, i, ent.Type)
		}
		seen[ent.Type] = true
		switch ent.Type {
		case TrusteeCertVCEK:
			vcek = ent.Data
			continue
		case TrusteeCertVLEK:
			vlek = ent.Data
			continue
		}
		cert, err := oneCert(fmt.Sprintf("cert_chain[%d] %s", i, ent.Type), ent.Data)
		if err != nil {
			return c, err
		}
		if ent.Type == TrusteeCertARK {
			c.ARK = cert
		} else {
			c.ASK = cert
		}
	}
	leaf, name := vcek, "VCEK"
	switch k := e.Report.SigningKey(); k {
	case SigningKeyVCEK:
	case SigningKeyVLEK:
		leaf, name = vlek, "VLEK"
	default:
		return c, fmt.Errorf("%w: KEY_INFO.SIGNING_KEY is %s", ErrSigningKey, k)
	}
	if leaf == nil {
		return c, fmt.Errorf("%w: cert_chain has no %s entry for a %s-signed report", ErrChain, name, name)
	}
	var err error
	c.VCEK, err = oneCert("cert_chain "+name, leaf)
	return c, err
}

func oneCert(what string, b []byte) (*x509.Certificate, error) {
	cs, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrChain, what, err)
	}
	if len(cs) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d certificates", ErrChain, what, len(cs))
	}
	return cs[0], nil
}

// MarshalTrusteeEvidence writes r (parsed by ParseReport) and chain as
// Trustee SEV-SNP evidence in form f, as serde_json does for the sev
// crate (compact, members in declaration order). For TrusteeFormSev6, p
// selects the TCB layout (Turin carries fmc) and must agree with the
// report's CPUID from version 3 on; a version 2 report must have a
// non-zero CHIP_ID, whose shape (only the first 8 bytes set on Turin)
// must agree with p, as the sev crate infers the layout from it. Fields
// the form cannot carry (non-zero mitigation vectors in TrusteeFormSev6)
// are an error. A nil chain is written as null.
func MarshalTrusteeEvidence(r *Report, p Product, f TrusteeForm, chain []TrusteeCert) ([]byte, error) {
	if r == nil || len(r.Raw) != ReportSize {
		return nil, trusteeErr("report", "no parsed report")
	}
	var w jsonWriter
	w.s(`{"attestation_report":`)
	switch f {
	case TrusteeFormSev6:
		if err := marshalSev6(&w, r, p); err != nil {
			return nil, err
		}
	case TrusteeFormReprC:
		marshalReprC(&w, r.Raw)
	default:
		return nil, fmt.Errorf("%w: Trustee form %q", ErrUnsupported, f)
	}
	w.s(`,"cert_chain":`)
	if chain == nil {
		w.s("null")
	} else {
		w.s("[")
		for i, c := range chain {
			if i > 0 {
				w.s(",")
			}
			w.s(`{"cert_type":`)
			if c.Type == TrusteeCertOther {
				w.s(`{"OTHER":` + strconv.Quote(c.GUID) + `}`)
			} else {
				w.s(strconv.Quote(string(c.Type)))
			}
			w.s(`,"data":`)
			w.bytes(c.Data)
			w.s("}")
		}
		w.s("]")
	}
	w.s("}")
	return w.b, nil
}

// --- sev 6 form ---

// sev6Keys are the members of the sev 6 AttestationReport in order.
var sev6Keys = []string{"version", "guest_svn", "policy", "family_id", "image_id", "vmpl", "sig_algo",
	"current_tcb", "plat_info", "key_info", "report_data", "measurement", "host_data", "id_key_digest",
	"author_key_digest", "report_id", "report_id_ma", "reported_tcb", "cpuid_fam_id", "cpuid_mod_id",
	"cpuid_step", "chip_id", "committed_tcb", "current", "committed", "launch_tcb", "signature"}

// sev6TCB is a sev 6 TcbVersion.
type sev6TCB struct {
	fmc                         *uint8
	bootloader, tee, snp, ucode uint8
}

func (t sev6TCB) bytes(turin bool) []byte {
	if turin {
		return []byte{*t.fmc, t.bootloader, t.tee, t.snp, 0, 0, 0, t.ucode}
	}
	return []byte{t.bootloader, t.tee, 0, 0, 0, 0, t.snp, t.ucode}
}

func rebuildSev6(o *jsonObj) ([]byte, error) {
	if err := o.exactly(sev6Keys...); err != nil {
		return nil, err
	}
	b := make([]byte, ReportSize)
	var err error
	put := func(off int, name string, bits int) {
		if err != nil {
			return
		}
		var v uint64
		if v, err = o.uint(name, bits); err != nil {
			return
		}
		switch bits {
		case 32:
			binary.LittleEndian.PutUint32(b[off:], uint32(v))
		case 64:
			binary.LittleEndian.PutUint64(b[off:], v)
		}
	}
	arr := func(off int, name string, n int) {
		if err != nil {
			return
		}
		var v []byte
		if v, err = o.byteArray(name, n); err == nil {
			copy(b[off:], v)
		}
	}
	put(0x00, "version", 32)
	put(0x04, "guest_svn", 32)
	put(0x08, "policy", 64)
	arr(0x10, "family_id", 16)
	arr(0x20, "image_id", 16)
	put(0x30, "vmpl", 32)
	put(0x34, "sig_algo", 32)
	put(0x40, "plat_info", 64)
	put(0x48, "key_info", 32)
	arr(0x50, "report_data", 64)
	arr(0x90, "measurement", 48)
	arr(0xC0, "host_data", 32)
	arr(0xE0, "id_key_digest", 48)
	arr(0x110, "author_key_digest", 48)
	arr(0x140, "report_id", 32)
	arr(0x160, "report_id_ma", 32)
	arr(0x1A0, "chip_id", 64)
	if err != nil {
		return nil, err
	}
	var tcbs [4]sev6TCB
	fmcs := 0
	for i, name := range []string{"current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"} {
		if tcbs[i], err = o.sev6TCB(name); err != nil {
			return nil, err
		}
		if tcbs[i].fmc != nil {
			fmcs++
		}
	}
	if fmcs != 0 && fmcs != 4 {
		return nil, trusteeErr("attestation_report", "%d of the 4 TCB versions carry an fmc: the layouts are mixed", fmcs)
	}
	turin := fmcs == 4
	version := binary.LittleEndian.Uint32(b)
	var cpuid [3]*uint8
	for i, name := range []string{"cpuid_fam_id", "cpuid_mod_id", "cpuid_step"} {
		if cpuid[i], err = o.optUint8(name); err != nil {
			return nil, err
		}
	}
	switch {
	case version == 2:
		if cpuid[0] != nil || cpuid[1] != nil || cpuid[2] != nil {
			return nil, trusteeErr("attestation_report", "a version 2 report has no CPUID fields")
		}
		chip := b[0x1A0:0x1E0]
		if allZero(chip) {
			return nil, trusteeErr("chip_id", "a version 2 report with a masked (zero) CHIP_ID has no defined TCB layout in this form")
		}
		if turinLike := allZero(chip[8:]); turinLike != turin {
			return nil, trusteeErr("attestation_report", "TCB layout (fmc %v) disagrees with the CHIP_ID shape (Turin-like %v)", turin, turinLike)
		}
	default:
		if cpuid[0] == nil || cpuid[1] == nil || cpuid[2] == nil {
			return nil, trusteeErr("attestation_report", "a version %d report needs cpuid_fam_id, cpuid_mod_id and cpuid_step", version)
		}
		if famTurin := *cpuid[0] >= 0x1A; famTurin != turin {
			return nil, trusteeErr("attestation_report", "TCB layout (fmc %v) disagrees with CPUID family 0x%02x", turin, *cpuid[0])
		}
		b[0x188], b[0x189], b[0x18A] = *cpuid[0], *cpuid[1], *cpuid[2]
	}
	copy(b[0x38:], tcbs[0].bytes(turin))
	copy(b[0x180:], tcbs[1].bytes(turin))
	copy(b[0x1E0:], tcbs[2].bytes(turin))
	copy(b[0x1F0:], tcbs[3].bytes(turin))
	for _, v := range []struct {
		name string
		off  int
	}{{"current", 0x1E8}, {"committed", 0x1EC}} {
		vo, err := o.object(v.name)
		if err != nil {
			return nil, err
		}
		if err := vo.exactly("major", "minor", "build"); err != nil {
			return nil, err
		}
		for i, k := range []string{"build", "minor", "major"} {
			x, err := vo.uint(k, 8)
			if err != nil {
				return nil, err
			}
			b[v.off+i] = uint8(x)
		}
	}
	so, err := o.object("signature")
	if err != nil {
		return nil, err
	}
	if err := so.exactly("r", "s"); err != nil {
		return nil, err
	}
	for i, k := range []string{"r", "s"} {
		v, err := so.byteArray(k, sigComponentSize)
		if err != nil {
			return nil, err
		}
		copy(b[0x2A0+i*sigComponentSize:], v)
	}
	return b, nil
}

func (o *jsonObj) sev6TCB(name string) (sev6TCB, error) {
	var t sev6TCB
	to, err := o.object(name)
	if err != nil {
		return t, err
	}
	if err := to.exactly("fmc", "bootloader", "tee", "snp", "microcode"); err != nil {
		return t, err
	}
	if t.fmc, err = to.optUint8("fmc"); err != nil {
		return t, err
	}
	for _, f := range []struct {
		k string
		p *uint8
	}{{"bootloader", &t.bootloader}, {"tee", &t.tee}, {"snp", &t.snp}, {"microcode", &t.ucode}} {
		v, err := to.uint(f.k, 8)
		if err != nil {
			return t, err
		}
		*f.p = uint8(v)
	}
	return t, nil
}

func marshalSev6(w *jsonWriter, r *Report, p Product) error {
	if r.LaunchMitVector != 0 || r.CurrentMitVector != 0 {
		return trusteeErr("report", "the sev 6 form cannot carry the version 5 mitigation vectors")
	}
	turin := p == ProductTurin
	if r.Version >= 3 {
		if (r.CPUIDFamily >= 0x1A) != turin {
			return trusteeErr("report", "product %s disagrees with CPUID family 0x%02x", p, r.CPUIDFamily)
		}
	} else if allZero(r.ChipID[:]) || allZero(r.ChipID[8:]) != turin {
		return trusteeErr("report", "a version 2 report of %s needs a CHIP_ID of that shape", p)
	}
	tcb := func(t TCBVersion) {
		tp := t.Parts(p)
		w.s(`{"fmc":`)
		if turin {
			w.u(uint64(tp.FMC))
		} else {
			w.s("null")
		}
		w.s(`,"bootloader":`)
		w.u(uint64(tp.BootLoader))
		w.s(`,"tee":`)
		w.u(uint64(tp.TEE))
		w.s(`,"snp":`)
		w.u(uint64(tp.SNP))
		w.s(`,"microcode":`)
		w.u(uint64(tp.Microcode))
		w.s("}")
	}
	opt := func(v uint8) {
		if r.Version >= 3 {
			w.u(uint64(v))
		} else {
			w.s("null")
		}
	}
	w.s(`{"version":`)
	w.u(uint64(r.Version))
	w.s(`,"guest_svn":`)
	w.u(uint64(r.GuestSVN))
	w.s(`,"policy":`)
	w.u(r.Policy)
	w.s(`,"family_id":`)
	w.bytes(r.FamilyID[:])
	w.s(`,"image_id":`)
	w.bytes(r.ImageID[:])
	w.s(`,"vmpl":`)
	w.u(uint64(r.VMPL))
	w.s(`,"sig_algo":`)
	w.u(uint64(r.SignatureAlgo))
	w.s(`,"current_tcb":`)
	tcb(r.CurrentTCB)
	w.s(`,"plat_info":`)
	w.u(r.PlatformInfo)
	w.s(`,"key_info":`)
	w.u(uint64(r.KeyInfo))
	for _, f := range []struct {
		k string
		v []byte
	}{{"report_data", r.ReportData[:]}, {"measurement", r.Measurement[:]}, {"host_data", r.HostData[:]},
		{"id_key_digest", r.IDKeyDigest[:]}, {"author_key_digest", r.AuthorKeyDigest[:]},
		{"report_id", r.ReportID[:]}, {"report_id_ma", r.ReportIDMA[:]}} {
		w.s(`,"` + f.k + `":`)
		w.bytes(f.v)
	}
	w.s(`,"reported_tcb":`)
	tcb(r.ReportedTCB)
	w.s(`,"cpuid_fam_id":`)
	opt(r.CPUIDFamily)
	w.s(`,"cpuid_mod_id":`)
	opt(r.CPUIDModel)
	w.s(`,"cpuid_step":`)
	opt(r.CPUIDStepping)
	w.s(`,"chip_id":`)
	w.bytes(r.ChipID[:])
	w.s(`,"committed_tcb":`)
	tcb(r.CommittedTCB)
	w.s(`,"current":{"major":`)
	w.u(uint64(r.CurrentMajor))
	w.s(`,"minor":`)
	w.u(uint64(r.CurrentMinor))
	w.s(`,"build":`)
	w.u(uint64(r.CurrentBuild))
	w.s(`},"committed":{"major":`)
	w.u(uint64(r.CommittedMajor))
	w.s(`,"minor":`)
	w.u(uint64(r.CommittedMinor))
	w.s(`,"build":`)
	w.u(uint64(r.CommittedBuild))
	w.s(`},"launch_tcb":`)
	tcb(r.LaunchTCB)
	w.s(`,"signature":{"r":`)
	w.bytes(r.SignatureR[:])
	w.s(`,"s":`)
	w.bytes(r.SignatureS[:])
	w.s("}}")
	return nil
}

// --- repr(C) form ---

// reprCField is one member of the repr(C) AttestationReport: a number of
// size bytes (1, 4 or 8, little-endian), a byte array of size bytes, a
// TCB version or the signature, at its report offset.
type reprCField struct {
	name string
	off  int
	size int
	kind byte // 'n' number, 'a' array, 't' TCB, 's' signature
}

var reprCFields = []reprCField{
	{"version", 0x00, 4, 'n'}, {"guest_svn", 0x04, 4, 'n'}, {"policy", 0x08, 8, 'n'},
	{"family_id", 0x10, 16, 'a'}, {"image_id", 0x20, 16, 'a'}, {"vmpl", 0x30, 4, 'n'},
	{"sig_algo", 0x34, 4, 'n'}, {"current_tcb", 0x38, 8, 't'}, {"plat_info", 0x40, 8, 'n'},
	{"_author_key_en", 0x48, 4, 'n'}, {"_reserved_0", 0x4C, 4, 'n'}, {"report_data", 0x50, 64, 'a'},
	{"measurement", 0x90, 48, 'a'}, {"host_data", 0xC0, 32, 'a'}, {"id_key_digest", 0xE0, 48, 'a'},
	{"author_key_digest", 0x110, 48, 'a'}, {"report_id", 0x140, 32, 'a'}, {"report_id_ma", 0x160, 32, 'a'},
	{"reported_tcb", 0x180, 8, 't'}, {"_reserved_1", 0x188, 24, 'a'}, {"chip_id", 0x1A0, 64, 'a'},
	{"committed_tcb", 0x1E0, 8, 't'}, {"current_build", 0x1E8, 1, 'n'}, {"current_minor", 0x1E9, 1, 'n'},
	{"current_major", 0x1EA, 1, 'n'}, {"_reserved_2", 0x1EB, 1, 'n'}, {"committed_build", 0x1EC, 1, 'n'},
	{"committed_minor", 0x1ED, 1, 'n'}, {"committed_major", 0x1EE, 1, 'n'}, {"_reserved_3", 0x1EF, 1, 'n'},
	{"launch_tcb", 0x1F0, 8, 't'}, {"_reserved_4", 0x1F8, 168, 'a'}, {"signature", 0x2A0, 512, 's'},
}

func rebuildReprC(o *jsonObj) ([]byte, error) {
	names := make([]string, len(reprCFields))
	for i, f := range reprCFields {
		names[i] = f.name
	}
	if err := o.exactly(names...); err != nil {
		return nil, err
	}
	b := make([]byte, ReportSize)
	for _, f := range reprCFields {
		switch f.kind {
		case 'n':
			v, err := o.uint(f.name, 8*f.size)
			if err != nil {
				return nil, err
			}
			var le [8]byte
			binary.LittleEndian.PutUint64(le[:], v)
			copy(b[f.off:f.off+f.size], le[:])
		case 'a':
			v, err := o.byteArray(f.name, f.size)
			if err != nil {
				return nil, err
			}
			copy(b[f.off:], v)
		case 't':
			to, err := o.object(f.name)
			if err != nil {
				return nil, err
			}
			if err := to.exactly("bootloader", "tee", "_reserved", "snp", "microcode"); err != nil {
				return nil, err
			}
			for _, part := range []struct {
				k   string
				off int
			}{{"bootloader", 0}, {"tee", 1}, {"snp", 6}, {"microcode", 7}} {
				v, err := to.uint(part.k, 8)
				if err != nil {
					return nil, err
				}
				b[f.off+part.off] = uint8(v)
			}
			r, err := to.byteArray("_reserved", 4)
			if err != nil {
				return nil, err
			}
			copy(b[f.off+2:], r)
		case 's':
			so, err := o.object(f.name)
			if err != nil {
				return nil, err
			}
			if err := so.exactly("r", "s", "_reserved"); err != nil {
				return nil, err
			}
			off := f.off
			for _, part := range []struct {
				k string
				n int
			}{{"r", sigComponentSize}, {"s", sigComponentSize}, {"_reserved", 512 - 2*sigComponentSize}} {
				v, err := so.byteArray(part.k, part.n)
				if err != nil {
					return nil, err
				}
				copy(b[off:], v)
				off += part.n
			}
		}
	}
	return b, nil
}

func marshalReprC(w *jsonWriter, raw []byte) {
	w.s("{")
	for i, f := range reprCFields {
		if i > 0 {
			w.s(",")
		}
		w.s(strconv.Quote(f.name) + ":")
		switch f.kind {
		case 'n':
			var le [8]byte
			copy(le[:], raw[f.off:f.off+f.size])
			w.u(binary.LittleEndian.Uint64(le[:]))
		case 'a':
			w.bytes(raw[f.off : f.off+f.size])
		case 't':
			t := raw[f.off : f.off+8]
			w.s(`{"bootloader":`)
			w.u(uint64(t[0]))
			w.s(`,"tee":`)
			w.u(uint64(t[1]))
			w.s(`,"_reserved":`)
			w.bytes(t[2:6])
			w.s(`,"snp":`)
			w.u(uint64(t[6]))
			w.s(`,"microcode":`)
			w.u(uint64(t[7]))
			w.s("}")
		case 's':
			s := raw[f.off:]
			w.s(`{"r":`)
			w.bytes(s[:sigComponentSize])
			w.s(`,"s":`)
			w.bytes(s[sigComponentSize : 2*sigComponentSize])
			w.s(`,"_reserved":`)
			w.bytes(s[2*sigComponentSize : 512])
			w.s("}")
		}
	}
	w.s("}")
}

// --- cert_chain ---

var trusteeCertTypes = map[string]TrusteeCertType{
	"Empty": TrusteeCertEmpty, "ARK": TrusteeCertARK, "ASK": TrusteeCertASK,
	"VCEK": TrusteeCertVCEK, "VLEK": TrusteeCertVLEK, "CRL": TrusteeCertCRL,
}

func parseTrusteeCertChain(raw []byte) ([]TrusteeCert, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, trusteeErr("cert_chain", "not a list")
	}
	var out []TrusteeCert
	for i := 0; dec.More(); i++ {
		if i >= maxTrusteeCerts {
			return nil, trusteeErr("cert_chain", "more than %d entries", maxTrusteeCerts)
		}
		var ent json.RawMessage
		if err := dec.Decode(&ent); err != nil {
			return nil, trusteeErr("cert_chain", "entry %d: %v", i, err)
		}
		what := fmt.Sprintf("cert_chain[%d]", i)
		o, err := jsonObject(what, ent)
		if err != nil {
			return nil, err
		}
		if err := o.exactly("cert_type", "data"); err != nil {
			return nil, err
		}
		var c TrusteeCert
		ct := o.m["cert_type"]
		if ct[0] == '"' {
			var s string
			if err := json.Unmarshal(ct, &s); err != nil {
				return nil, trusteeErr(what, "cert_type: %v", err)
			}
			t, ok := trusteeCertTypes[s]
			if !ok {
				return nil, trusteeErr(what, "cert_type %q is no sev CertType", s)
			}
			c.Type = t
		} else {
			oo, err := jsonObject(what+".cert_type", ct)
			if err != nil {
				return nil, err
			}
			if err := oo.exactly("OTHER"); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(oo.m["OTHER"], &c.GUID); err != nil || !isGUID(c.GUID) {
				return nil, trusteeErr(what, "cert_type OTHER is not a GUID string")
			}
			c.Type = TrusteeCertOther
		}
		if c.Data, err = o.byteArray("data", -1); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, trusteeErr("cert_chain", "not a list")
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// --- strict JSON reading ---

// jsonObj is a JSON object whose members were read exactly once each,
// keys compared byte for byte (serde_json's derived structs are case
// sensitive and reject repeated members; encoding/json is neither).
type jsonObj struct {
	what string
	m    map[string]json.RawMessage
}

func jsonObject(what string, raw []byte) (*jsonObj, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, trusteeErr(what, "not a JSON object")
	}
	o := &jsonObj{what: what, m: map[string]json.RawMessage{}}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, trusteeErr(what, "%v", err)
		}
		k, _ := t.(string)
		if _, dup := o.m[k]; dup {
			return nil, trusteeErr(what, "member %q repeated", k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, trusteeErr(what, "member %q: %v", k, err)
		}
		o.m[k] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, trusteeErr(what, "not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, trusteeErr(what, "data after the object")
	}
	return o, nil
}

func (o *jsonObj) has(k string) bool { _, ok := o.m[k]; return ok }

// only rejects members other than keys (keys may be absent).
func (o *jsonObj) only(keys ...string) error {
	for k := range o.m {
		found := false
		for _, want := range keys {
			found = found || k == want
		}
		if !found {
			return trusteeErr(o.what, "unknown member %q", k)
		}
	}
	return nil
}

// exactly requires the members to be keys, all present.
func (o *jsonObj) exactly(keys ...string) error {
	if err := o.only(keys...); err != nil {
		return err
	}
	for _, k := range keys {
		if !o.has(k) {
			return trusteeErr(o.what, "missing member %q", k)
		}
	}
	return nil
}

func (o *jsonObj) object(k string) (*jsonObj, error) {
	return jsonObject(o.what+"."+k, o.m[k])
}

// uint reads member k as an unsigned integer of at most bits bits: a JSON
// number without sign, fraction or exponent.
func (o *jsonObj) uint(k string, bits int) (uint64, error) {
	v, err := strconv.ParseUint(string(o.m[k]), 10, bits)
	if err != nil {
		return 0, trusteeErr(o.what+"."+k, "not an unsigned %d-bit integer", bits)
	}
	return v, nil
}

// optUint8 reads member k as null (nil) or a u8.
func (o *jsonObj) optUint8(k string) (*uint8, error) {
	if isNull(o.m[k]) {
		return nil, nil
	}
	v, err := o.uint(k, 8)
	if err != nil {
		return nil, err
	}
	u := uint8(v)
	return &u, nil
}

// byteArray reads member k as a JSON array of u8 of length n (n < 0: any
// length up to maxTrusteeCertSize).
func (o *jsonObj) byteArray(k string, n int) ([]byte, error) {
	what := o.what + "." + k
	raw := o.m[k]
	max := n
	if n < 0 {
		max = maxTrusteeCertSize
	}
	if len(raw) < 2 || raw[0] != '[' {
		return nil, trusteeErr(what, "not an array of bytes")
	}
	out := make([]byte, 0, min(max, len(raw)/2))
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		i++
	} else {
		for {
			j := i
			for j < len(raw) && raw[j] >= '0' && raw[j] <= '9' {
				j++
			}
			v, err := strconv.ParseUint(string(raw[i:j]), 10, 8)
			if err != nil {
				return nil, trusteeErr(what, "element %d is not a byte", len(out))
			}
			if len(out) == max {
				return nil, trusteeErr(what, "more than %d bytes", max)
			}
			out = append(out, uint8(v))
			i = skipSpace(raw, j)
			if i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
				continue
			}
			if i < len(raw) && raw[i] == ']' {
				i++
				break
			}
			return nil, trusteeErr(what, "element %d is not a byte", len(out))
		}
	}
	if skipSpace(raw, i) != len(raw) {
		return nil, trusteeErr(what, "not an array of bytes")
	}
	if n >= 0 && len(out) != n {
		return nil, trusteeErr(what, "%d bytes, want %d", len(out), n)
	}
	return out, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func trusteeErr(what, format string, a ...any) error {
	return &ParseError{Field: what, Offset: -1, Err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)}
}

// jsonWriter builds compact JSON.
type jsonWriter struct{ b []byte }

func (w *jsonWriter) s(s string) { w.b = append(w.b, s...) }
func (w *jsonWriter) u(v uint64) { w.b = strconv.AppendUint(w.b, v, 10) }
func (w *jsonWriter) bytes(v []byte) {
	w.b = append(w.b, '[')
	for i, c := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = strconv.AppendUint(w.b, uint64(c), 10)
	}
	w.b = append(w.b, ']')
}
