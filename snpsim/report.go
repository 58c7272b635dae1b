package snpsim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/snp"
)

// Encode writes r's fields (not r.Raw) as an unsigned ATTESTATION_REPORT:
// the inverse of snp.ParseReport for the fields it decodes. The
// signature area holds r.SignatureR and r.SignatureS.
func Encode(r *snp.Report) []byte {
	b := make([]byte, snp.ReportSize)
	le32 := func(off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	le64 := func(off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	le32(0x00, r.Version)
	le32(0x04, r.GuestSVN)
	le64(0x08, r.Policy)
	copy(b[0x10:], r.FamilyID[:])
	copy(b[0x20:], r.ImageID[:])
	le32(0x30, r.VMPL)
	le32(0x34, r.SignatureAlgo)
	le64(0x38, uint64(r.CurrentTCB))
	le64(0x40, r.PlatformInfo)
	le32(0x48, r.KeyInfo)
	copy(b[0x50:], r.ReportData[:])
	copy(b[0x90:], r.Measurement[:])
	copy(b[0xC0:], r.HostData[:])
	copy(b[0xE0:], r.IDKeyDigest[:])
	copy(b[0x110:], r.AuthorKeyDigest[:])
	copy(b[0x140:], r.ReportID[:])
	copy(b[0x160:], r.ReportIDMA[:])
	le64(0x180, uint64(r.ReportedTCB))
	if r.Version >= 3 {
		b[0x188], b[0x189], b[0x18A] = r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping
	}
	copy(b[0x1A0:], r.ChipID[:])
	le64(0x1E0, uint64(r.CommittedTCB))
	b[0x1E8], b[0x1E9], b[0x1EA] = r.CurrentBuild, r.CurrentMinor, r.CurrentMajor
	b[0x1EC], b[0x1ED], b[0x1EE] = r.CommittedBuild, r.CommittedMinor, r.CommittedMajor
	le64(0x1F0, uint64(r.LaunchTCB))
	if r.Version >= 5 {
		le64(0x1F8, r.LaunchMitVector)
		le64(0x200, r.CurrentMitVector)
	}
	copy(b[0x2A0:], r.SignatureR[:])
	copy(b[0x2A0+72:], r.SignatureS[:])
	return b
}

// Sign signs the first snp.SignedSize bytes of raw with key (ECDSA P-384
// over SHA-384) and writes R and S little-endian into the signature
// area, in place.
func Sign(raw []byte, key *ecdsa.PrivateKey) error {
	if len(raw) != snp.ReportSize {
		return fmt.Errorf("snpsim: report of %d bytes", len(raw))
	}
	d := sha512.Sum384(raw[:snp.SignedSize])
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		return err
	}
	clear(raw[0x2A0:])
	putLE(raw[0x2A0:0x2A0+72], r.Bytes())
	putLE(raw[0x2A0+72:0x2A0+144], s.Bytes())
	return nil
}

func putLE(dst, be []byte) {
	for i, v := range be {
		dst[len(be)-1-i] = v
	}
}

// Guest is a simulated SEV-SNP guest on one chip.
type Guest struct {
	PKI *PKI
	// Key signs the reports (VCEK, or VLEK when Template's KEY_INFO says
	// so).
	Key *EndorsementKey
	// Template is the report every Attest starts from.
	Template snp.Report
}

// CPUID returns the combined family, model and stepping of a typical
// part of product p.
func CPUID(p snp.Product) (family, model, stepping uint8) {
	switch p {
	case snp.ProductGenoa:
		return 0x19, 0x11, 0x01
	case snp.ProductTurin:
		return 0x1A, 0x02, 0x01
	}
	return 0x19, 0x01, 0x01
}

// DefaultTCB is the TCB of a NewGuest chip.
var DefaultTCB = snp.TCBParts{BootLoader: 4, TEE: 0, SNP: 24, Microcode: 213}

// NewGuest returns a guest of product p on a fresh chip whose VCEK is
// issued for DefaultTCB (FMC 1 on Turin), with a secure launch: version 3
// report, VMPL 0, policy SMT allowed and no debug/migration agent,
// all four TCBs equal.
func NewGuest(p snp.Product) (*Guest, error) {
	pki, err := NewPKI(p)
	if err != nil {
		return nil, err
	}
	var chip [64]byte
	if _, err := rand.Read(chip[:]); err != nil {
		return nil, err
	}
	tcb := DefaultTCB
	if p == snp.ProductTurin {
		tcb.FMC = 1
	}
	key, err := pki.IssueKey(KeyOptions{ChipID: chip, TCB: tcb})
	if err != nil {
		return nil, err
	}
	fam, mod, step := CPUID(p)
	t := tcb.Compose(p)
	g := &Guest{PKI: pki, Key: key, Template: snp.Report{
		Version: 3, GuestSVN: 1, Policy: snp.PolicySMT | snp.PolicyReserved17,
		SignatureAlgo: snp.SignatureAlgoECDSAP384SHA384,
		CurrentTCB:    t, ReportedTCB: t, CommittedTCB: t, LaunchTCB: t,
		PlatformInfo: snp.PlatformSMTEnabled | snp.PlatformTSMEEnabled | snp.PlatformAliasCheckComplete,
		CPUIDFamily:  fam, CPUIDModel: mod, CPUIDStepping: step, ChipID: chip,
		CurrentMajor: 1, CurrentMinor: 55, CurrentBuild: 21, CommittedMajor: 1, CommittedMinor: 55, CommittedBuild: 21,
	}}
	for i := range g.Template.Measurement {
		g.Template.Measurement[i] = byte(i)
	}
	return g, nil
}

// Now is a time inside every default validity window.
var Now = time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)

// Attest returns a signed report of the template with reportData.
func (g *Guest) Attest(reportData [64]byte) ([]byte, error) {
	r := g.Template
	r.ReportData = reportData
	return g.AttestReport(&r)
}

// AttestReport encodes and signs r as is.
func (g *Guest) AttestReport(r *snp.Report) ([]byte, error) {
	raw := Encode(r)
	if err := Sign(raw, g.Key.Key); err != nil {
		return nil, err
	}
	return raw, nil
}

// Certificates is the chain a verifier needs for this guest's reports.
func (g *Guest) Certificates() snp.Certificates {
	ask := g.PKI.ASK
	if g.Template.SigningKey() == snp.SigningKeyVLEK {
		ask = g.PKI.ASVK
	}
	return snp.Certificates{ASK: ask, VCEK: g.Key.Cert}
}
