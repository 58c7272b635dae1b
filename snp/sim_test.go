package snp_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

func newGuest(t testing.TB, p snp.Product) *snpsim.Guest {
	t.Helper()
	g, err := snpsim.NewGuest(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func simOpts(g *snpsim.Guest) snp.Options {
	return snp.Options{Now: snpsim.Now, Roots: g.PKI.Roots()}
}

func attest(t testing.TB, g *snpsim.Guest, mutate func(*snp.Report)) []byte {
	t.Helper()
	r := g.Template
	if mutate != nil {
		mutate(&r)
	}
	raw, err := g.AttestReport(&r)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func verifyRaw(raw []byte, certs snp.Certificates, opts snp.Options) (*snp.Result, error) {
	r, err := snp.ParseReport(raw)
	if err != nil {
		return nil, err
	}
	return snp.Verify(r, certs, opts)
}

func TestSimPositive(t *testing.T) {
	for _, p := range snp.Products {
		t.Run(p.String(), func(t *testing.T) {
			g := newGuest(t, p)
			for _, v := range []uint32{2, 3, 5} {
				raw := attest(t, g, func(r *snp.Report) {
					r.Version = v
					if v == 5 {
						r.LaunchMitVector, r.CurrentMitVector = 3, 7
					}
				})
				opts := simOpts(g)
				res, err := verifyRaw(raw, g.Certificates(), opts)
				if err != nil {
					t.Fatalf("v%d: %v", v, err)
				}
				if res.Product != p || res.TCBStatus != snp.TCBUpToDate || res.AMDRoot {
					t.Errorf("v%d: product %s status %s amd %v", v, res.Product, res.TCBStatus, res.AMDRoot)
				}
				if err := (snp.Policy{}).Check(res); err != nil {
					t.Errorf("v%d default policy: %v", v, err)
				}
				err = (snp.Policy{DstackCompat: true}).Check(res)
				if (v == 5) != errors.Is(err, snp.ErrRejected) {
					t.Errorf("v%d dstack-compat: %v", v, err)
				}
			}
		})
	}
}

func TestSimVLEK(t *testing.T) {
	g := newGuest(t, snp.ProductGenoa)
	vlek, err := g.PKI.IssueKey(snpsim.KeyOptions{VLEK: true, TCB: snpsim.DefaultTCB})
	if err != nil {
		t.Fatal(err)
	}
	g.Key = vlek
	g.Template.KeyInfo = uint32(snp.SigningKeyVLEK) << 2
	raw := attest(t, g, nil)
	res, err := verifyRaw(raw, g.Certificates(), simOpts(g))
	if err != nil {
		t.Fatal(err)
	}
	if res.SigningKey != snp.SigningKeyVLEK || res.Extensions.CSPID != "test-csp" {
		t.Errorf("%+v", res)
	}
	var pe *snp.PolicyError
	if err := (snp.Policy{}).Check(res); !errors.As(err, &pe) || !pe.Has(snp.RuleSigningKey) {
		t.Errorf("default policy on VLEK: %v", err)
	}
	if err := (snp.Policy{AllowVLEK: true}).Check(res); err != nil {
		t.Errorf("AllowVLEK: %v", err)
	}
	if err := (snp.Policy{AllowVLEK: true, DstackCompat: true}).Check(res); err == nil {
		t.Error("dstack-compat accepted a VLEK")
	}
}

// signedFields are the report fields a one-field change is tried on:
// offset, and a byte that keeps the report parseable and its product.
var signedFields = []struct {
	name string
	off  int
}{
	{"GUEST_SVN", 0x04}, {"POLICY.ABI_MINOR", 0x08}, {"POLICY.SMT", 0x0A}, {"FAMILY_ID", 0x10}, {"FAMILY_ID.last", 0x1F},
	{"IMAGE_ID", 0x20}, {"VMPL", 0x30}, {"CURRENT_TCB", 0x38}, {"CURRENT_TCB.ucode", 0x3F}, {"PLATFORM_INFO", 0x40},
	{"KEY_INFO.AUTHOR_KEY_EN", 0x48}, {"REPORT_DATA", 0x50}, {"REPORT_DATA.last", 0x8F}, {"MEASUREMENT", 0x90},
	{"MEASUREMENT.last", 0xBF}, {"HOST_DATA", 0xC0}, {"HOST_DATA.last", 0xDF}, {"ID_KEY_DIGEST", 0xE0},
	{"AUTHOR_KEY_DIGEST", 0x110}, {"REPORT_ID", 0x140}, {"REPORT_ID_MA", 0x160}, {"REPORTED_TCB", 0x180},
	{"REPORTED_TCB.snp", 0x186}, {"CPUID_STEP", 0x18A}, {"CHIP_ID", 0x1A0}, {"CHIP_ID.last", 0x1DF},
	{"COMMITTED_TCB", 0x1E0}, {"CURRENT_BUILD", 0x1E8}, {"CURRENT_MINOR", 0x1E9}, {"CURRENT_MAJOR", 0x1EA},
	{"COMMITTED_BUILD", 0x1EC}, {"COMMITTED_MINOR", 0x1ED}, {"COMMITTED_MAJOR", 0x1EE}, {"LAUNCH_TCB", 0x1F0},
	{"LAUNCH_TCB.ucode", 0x1F7}, {"SIGNATURE_R", 0x2A0}, {"SIGNATURE_R.47", 0x2A0 + 47}, {"SIGNATURE_S", 0x2E8},
	{"SIGNATURE_S.47", 0x2E8 + 47},
}

// TestSimOneFieldChange flips one bit of each signed field (and of the
// signature) of a valid report: each must fail with ErrSignature.
func TestSimOneFieldChange(t *testing.T) {
	g := newGuest(t, snp.ProductMilan)
	raw := attest(t, g, nil)
	if _, err := verifyRaw(raw, g.Certificates(), simOpts(g)); err != nil {
		t.Fatal(err)
	}
	for _, f := range signedFields {
		t.Run(f.name, func(t *testing.T) {
			b := append([]byte(nil), raw...)
			b[f.off] ^= 0x01
			_, err := verifyRaw(b, g.Certificates(), simOpts(g))
			if !errors.Is(err, snp.ErrSignature) {
				t.Fatalf("got %v, want ErrSignature", err)
			}
		})
	}
	// Version 5 mitigation vectors are signed too.
	raw5 := attest(t, g, func(r *snp.Report) { r.Version = 5 })
	for _, off := range []int{0x1F8, 0x200} {
		b := append([]byte(nil), raw5...)
		b[off] ^= 1
		if _, err := verifyRaw(b, g.Certificates(), simOpts(g)); !errors.Is(err, snp.ErrSignature) {
			t.Errorf("v5 mit vector at 0x%x: %v", off, err)
		}
	}
}

func TestSimParseRefusals(t *testing.T) {
	g := newGuest(t, snp.ProductMilan)
	raw := attest(t, g, nil)
	cases := []struct {
		name string
		mod  func([]byte) []byte
		want error
	}{
		{"short", func(b []byte) []byte { return b[:len(b)-1] }, snp.ErrMalformed},
		{"long", func(b []byte) []byte { return append(b, 0) }, snp.ErrMalformed},
		{"version 4", func(b []byte) []byte { b[0] = 4; return b }, snp.ErrUnsupported},
		{"version 1", func(b []byte) []byte { b[0] = 1; return b }, snp.ErrUnsupported},
		{"signature algo 2", func(b []byte) []byte { b[0x34] = 2; return b }, snp.ErrUnsupported},
		{"policy bit 17 clear", func(b []byte) []byte { b[0x0A] &^= 2; return b }, snp.ErrMalformed},
		{"policy bit 30", func(b []byte) []byte { b[0x0B] |= 0x40; return b }, snp.ErrMalformed},
		{"key info reserved bit", func(b []byte) []byte { b[0x48] |= 0x20; return b }, snp.ErrMalformed},
		{"signing key 3", func(b []byte) []byte { b[0x48] = 3 << 2; return b }, snp.ErrMalformed},
		{"reserved 0x4C", func(b []byte) []byte { b[0x4C] = 1; return b }, snp.ErrMalformed},
		{"reserved 0x18B", func(b []byte) []byte { b[0x18B] = 1; return b }, snp.ErrMalformed},
		{"reserved 0x1EB", func(b []byte) []byte { b[0x1EB] = 1; return b }, snp.ErrMalformed},
		{"reserved 0x1EF", func(b []byte) []byte { b[0x1EF] = 1; return b }, snp.ErrMalformed},
		{"v3 mit vector", func(b []byte) []byte { b[0x1F8] = 1; return b }, snp.ErrMalformed},
		{"reserved 0x29F", func(b []byte) []byte { b[0x29F] = 1; return b }, snp.ErrMalformed},
		{"R padding", func(b []byte) []byte { b[0x2A0+48] = 1; return b }, snp.ErrMalformed},
		{"S padding", func(b []byte) []byte { b[0x2E8+71] = 1; return b }, snp.ErrMalformed},
		{"signature tail", func(b []byte) []byte { b[0x49F] = 1; return b }, snp.ErrMalformed},
		{"v2 cpuid bytes", func(b []byte) []byte { b[0] = 2; return b }, snp.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := snp.ParseReport(c.mod(append([]byte(nil), raw...)))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestSimChainRefusals(t *testing.T) {
	g := newGuest(t, snp.ProductMilan)
	pki := g.PKI
	chip := g.Template.ChipID
	issue := func(o snpsim.KeyOptions) *snpsim.EndorsementKey {
		t.Helper()
		if o.ChipID == ([64]byte{}) && !o.VLEK {
			o.ChipID = chip
		}
		if o.TCB == (snp.TCBParts{}) {
			o.TCB = snpsim.DefaultTCB
		}
		if o.Key == nil {
			o.Key = g.Key.Key
		}
		k, err := pki.IssueKey(o)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	raw := attest(t, g, nil)
	other, err := snpsim.GeneratePKI(snp.ProductMilan, pki.NotBefore, pki.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	vcek := g.Key.Cert
	crl := func(p *snpsim.PKI, this, next time.Time, revoked ...*x509.Certificate) []byte {
		b, err := p.CRL(this, next, revoked...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	day := 24 * time.Hour
	now := snpsim.Now
	otherChip := chip
	otherChip[5] ^= 0xFF
	otherVCEK, err := other.IssueKey(snpsim.KeyOptions{ChipID: chip, TCB: snpsim.DefaultTCB, Key: g.Key.Key})
	if err != nil {
		t.Fatal(err)
	}
	vlekReport := attest(t, g, func(r *snp.Report) { r.KeyInfo = 1 << 2 })
	noneReport := attest(t, g, func(r *snp.Report) { r.KeyInfo = 7 << 2 })
	cases := []struct {
		name  string
		raw   []byte
		certs snp.Certificates
		opts  func(*snp.Options)
		want  error
	}{
		{"expired VCEK", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{NotAfter: now.Add(-day)}).Cert}, nil, snp.ErrExpired},
		{"VCEK not yet valid", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{NotBefore: now.Add(day)}).Cert}, nil, snp.ErrNotYetValid},
		{"verification after ASK expiry", raw, g.Certificates(), func(o *snp.Options) { o.Now = pki.NotAfter.Add(day) }, snp.ErrExpired},
		{"revoked VCEK", raw, g.Certificates(), func(o *snp.Options) { o.CRLs = [][]byte{crl(pki, now.Add(-day), now.Add(day), vcek)} }, snp.ErrRevoked},
		{"revoked ASK", raw, g.Certificates(), func(o *snp.Options) { o.CRLs = [][]byte{crl(pki, now.Add(-day), now.Add(day), pki.ASK)} }, snp.ErrRevoked},
		{"CRL by another key", raw, g.Certificates(), func(o *snp.Options) { o.CRLs = [][]byte{crl(other, now.Add(-day), now.Add(day))} }, snp.ErrCRL},
		{"stale CRL", raw, g.Certificates(), func(o *snp.Options) { o.CRLs = [][]byte{crl(pki, now.Add(-3*day), now.Add(-day))} }, snp.ErrCRL},
		{"future CRL", raw, g.Certificates(), func(o *snp.Options) { o.CRLs = [][]byte{crl(pki, now.Add(day), now.Add(3*day))} }, snp.ErrCRL},
		{"garbage CRL", raw, g.Certificates(), func(o *snp.Options) { o.CRLs = [][]byte{{0x30, 0x00}} }, snp.ErrCRL},
		{"CRL required, none", raw, g.Certificates(), func(o *snp.Options) { o.RequireCRL = true }, snp.ErrCRL},
		{"TCB extension snp", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{TCB: snp.TCBParts{BootLoader: 4, SNP: 23, Microcode: 213}}).Cert}, nil, snp.ErrTCBMismatch},
		{"TCB extension ucode", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{TCB: snp.TCBParts{BootLoader: 4, SNP: 24, Microcode: 214}}).Cert}, nil, snp.ErrTCBMismatch},
		{"TCB extension reserved", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{Reserved: [4]uint8{0, 1}}).Cert}, nil, snp.ErrTCBMismatch},
		{"FMC extension on Milan", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{ExtraFMC: true}).Cert}, nil, snp.ErrTCBMismatch},
		{"wrong chip", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{ChipID: otherChip}).Cert}, nil, snp.ErrChipID},
		{"short hwID on Milan", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{ShortHWID: true}).Cert}, nil, snp.ErrChipID},
		{"VCEK without hwID", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{OmitHWID: true}).Cert}, nil, snp.ErrSigningKey},
		{"product name Genoa", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{ProductName: "Genoa-B0"}).Cert}, nil, snp.ErrProduct},
		{"VCEK CN", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{CommonName: "SEV-VLEK"}).Cert}, nil, snp.ErrChain},
		{"VCEK signed by ASVK", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{SignWithASVK: true}).Cert}, nil, snp.ErrChain},
		{"ASVK as ASK", raw, snp.Certificates{ASK: pki.ASVK, VCEK: vcek}, nil, snp.ErrChain},
		{"VCEK of another PKI", raw, snp.Certificates{ASK: pki.ASK, VCEK: otherVCEK.Cert}, nil, snp.ErrChain},
		{"ASK of another PKI", raw, snp.Certificates{ASK: other.ASK, VCEK: otherVCEK.Cert}, nil, snp.ErrChain},
		{"untrusted test root", raw, g.Certificates(), func(o *snp.Options) { o.Roots = nil }, snp.ErrChain},
		{"supplied ARK not the root", raw, snp.Certificates{ARK: other.ARK, ASK: pki.ASK, VCEK: vcek}, nil, snp.ErrRootMismatch},
		{"no VCEK", raw, snp.Certificates{ASK: pki.ASK}, nil, snp.ErrChain},
		{"replaced root without ASK", raw, snp.Certificates{VCEK: vcek}, nil, snp.ErrChain},
		{"VCEK key differs", raw, snp.Certificates{ASK: pki.ASK, VCEK: issue(snpsim.KeyOptions{Key: otherKey}).Cert}, nil, snp.ErrSignature},
		{"VLEK report, VCEK certificate", vlekReport, g.Certificates(), nil, snp.ErrChain},
		{"signing key none", noneReport, g.Certificates(), nil, snp.ErrSigningKey},
		{"product option mismatch", raw, g.Certificates(), func(o *snp.Options) { o.Product = snp.ProductGenoa }, snp.ErrProduct},
		{"unknown CPUID", attest(t, g, func(r *snp.Report) { r.CPUIDFamily = 0x17 }), g.Certificates(), nil, snp.ErrUnsupported},
		{"Genoa CPUID on Milan chain", attest(t, g, func(r *snp.Report) { r.CPUIDModel = 0x11 }), g.Certificates(), nil, snp.ErrChain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := simOpts(g)
			if c.opts != nil {
				c.opts(&opts)
			}
			res, err := verifyRaw(c.raw, c.certs, opts)
			if !errors.Is(err, c.want) || res != nil {
				t.Fatalf("got %v (result %v), want %v", err, res != nil, c.want)
			}
			var ve *snp.VerifyError
			if !errors.As(err, &ve) {
				t.Errorf("%T is not a *VerifyError", err)
			}
		})
	}
	// A CRL that revokes something else applies and passes.
	res, err := verifyRaw(raw, g.Certificates(), snp.Options{Now: now, Roots: pki.Roots(), RequireCRL: true,
		CRLs: [][]byte{crl(other, now.Add(-day), now.Add(day)), crl(pki, now.Add(-day), now.Add(day), otherVCEK.Cert)}})
	if !errors.Is(err, snp.ErrCRL) {
		// the other PKI has the same ARK name, so its CRL is rejected as
		// a forgery rather than skipped.
		t.Errorf("mixed CRLs: %v %v", res, err)
	}
	res, err = verifyRaw(raw, g.Certificates(), snp.Options{Now: now, Roots: pki.Roots(), RequireCRL: true,
		CRLs: [][]byte{crl(pki, now.Add(-day), now.Add(day), otherVCEK.Cert)}})
	if err != nil || !res.CRLChecked {
		t.Errorf("CRL revoking another serial: %v", err)
	}
	// CRLs that come with the certificates (KDS, a bundle) apply like
	// Options.CRLs, through a Verifier too, and the result names the one
	// applied.
	older, newer := crl(pki, now.Add(-2*day), now.Add(day)), crl(pki, now.Add(-day), now.Add(2*day))
	withCRL := g.Certificates()
	withCRL.CRLs = [][]byte{older, newer}
	v := snp.NewVerifier(snp.VerifierOptions{Roots: pki.Roots(), RequireCRL: true})
	rep, _ := snp.ParseReport(raw)
	res, err = v.Verify(rep, withCRL, snp.ProductUnknown, now)
	if err != nil || !res.CRLChecked || res.CRL == nil || !res.CRL.ThisUpdate.Equal(now.Add(-day)) || !res.CRL.NextUpdate.Equal(now.Add(2*day)) ||
		res.CRL.Issuer != "ARK-Milan" || res.CRL.Revoked != 0 || len(res.CRL.SHA256) != 64 {
		t.Errorf("certificate CRLs: %v %+v", err, res)
	}
	if _, err := v.Verify(rep, g.Certificates(), snp.ProductUnknown, now); !errors.Is(err, snp.ErrCRL) {
		t.Errorf("no CRL with RequireCRL: %v", err)
	}
	for name, c := range map[string][]byte{
		"revoked VCEK": crl(pki, now.Add(-day), now.Add(day), vcek), "revoked ASK": crl(pki, now.Add(-day), now.Add(day), pki.ASK),
	} {
		withCRL.CRLs = [][]byte{c}
		if _, err := v.Verify(rep, withCRL, snp.ProductUnknown, now); !errors.Is(err, snp.ErrRevoked) {
			t.Errorf("certificate CRL, %s: %v", name, err)
		}
	}
	withCRL.CRLs = [][]byte{crl(pki, now.Add(-3*day), now.Add(-day))}
	if _, err := snp.Verify(rep, withCRL, snp.Options{Now: now, Roots: pki.Roots()}); !errors.Is(err, snp.ErrCRL) {
		t.Errorf("stale certificate CRL: %v", err)
	}
}

func TestSimTurin(t *testing.T) {
	g := newGuest(t, snp.ProductTurin)
	raw := attest(t, g, nil)
	res, err := verifyRaw(raw, g.Certificates(), simOpts(g))
	if err != nil {
		t.Fatal(err)
	}
	if res.TCB.Reported.FMC != 1 || res.TCB.Reported.SNP != 24 {
		t.Errorf("Turin TCB %+v", res.TCB.Reported)
	}
	noFMC, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: res.TCB.Reported, OmitFMC: true, Key: g.Key.Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyRaw(raw, snp.Certificates{ASK: g.PKI.ASK, VCEK: noFMC.Cert}, simOpts(g)); !errors.Is(err, snp.ErrTCBMismatch) {
		t.Errorf("Turin VCEK without fmcSPL: %v", err)
	}
	fmc2 := res.TCB.Reported
	fmc2.FMC = 2
	k2, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: fmc2, Key: g.Key.Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyRaw(raw, snp.Certificates{ASK: g.PKI.ASK, VCEK: k2.Cert}, simOpts(g)); !errors.Is(err, snp.ErrTCBMismatch) {
		t.Errorf("Turin FMC mismatch: %v", err)
	}
	short, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: res.TCB.Reported, ShortHWID: true, Key: g.Key.Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyRaw(raw, snp.Certificates{ASK: g.PKI.ASK, VCEK: short.Cert}, simOpts(g)); err != nil {
		t.Errorf("Turin 8-byte hwID: %v", err)
	}
}

func TestSimVersion2ProductSearch(t *testing.T) {
	g := newGuest(t, snp.ProductMilan)
	raw := attest(t, g, func(r *snp.Report) { r.Version = 2; r.CPUIDFamily, r.CPUIDModel, r.CPUIDStepping = 0, 0, 0 })
	r, err := snp.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := snp.Verify(r, g.Certificates(), simOpts(g))
	if err != nil || res.Product != snp.ProductMilan {
		t.Fatalf("%v %v", res, err)
	}
}

func TestSimTCBStatus(t *testing.T) {
	g := newGuest(t, snp.ProductGenoa)
	for _, off := range []string{"current", "committed", "launch"} {
		raw := attest(t, g, func(r *snp.Report) {
			up := snpsim.DefaultTCB
			up.SNP++
			switch off {
			case "current":
				r.CurrentTCB = up.Compose(snp.ProductGenoa)
			case "committed":
				r.CommittedTCB = up.Compose(snp.ProductGenoa)
			case "launch":
				r.LaunchTCB = up.Compose(snp.ProductGenoa)
			}
		})
		res, err := verifyRaw(raw, g.Certificates(), simOpts(g))
		if err != nil {
			t.Fatal(err)
		}
		if res.TCBStatus != snp.TCBOutOfDate {
			t.Errorf("%s higher: %s", off, res.TCBStatus)
		}
		if (snp.Policy{}).Check(res) != nil {
			t.Errorf("%s: default policy rejects OutOfDate", off)
		}
		if err := (snp.Policy{RequireUpToDate: true}).Check(res); !errors.Is(err, snp.ErrRejected) {
			t.Errorf("%s: RequireUpToDate: %v", off, err)
		}
	}
}

func TestSimPolicyRefusals(t *testing.T) {
	g := newGuest(t, snp.ProductMilan)
	cases := []struct {
		name   string
		mutate func(*snp.Report)
		policy snp.Policy
		rule   string
	}{
		{"debug", func(r *snp.Report) { r.Policy |= snp.PolicyDebug }, snp.Policy{}, snp.RuleDebug},
		{"debug dstack-compat ignores AllowDebugUnsafe", func(r *snp.Report) { r.Policy |= snp.PolicyDebug }, snp.Policy{DstackCompat: true, AllowDebugUnsafe: true}, snp.RuleDebug},
		{"VMPL 1", func(r *snp.Report) { r.VMPL = 1 }, snp.Policy{}, snp.RuleVMPL},
		{"VMPL 3", func(r *snp.Report) { r.VMPL = 3 }, snp.Policy{AllowVMPL: []uint32{1}}, snp.RuleVMPL},
		{"migrate MA", func(r *snp.Report) { r.Policy |= snp.PolicyMigrateMA }, snp.Policy{}, snp.RuleMigrateMA},
		{"SMT forbidden but enabled", func(r *snp.Report) { r.Policy &^= snp.PolicySMT }, snp.Policy{}, snp.RuleSMT},
		{"RAPL", func(r *snp.Report) { r.Policy |= snp.PolicyRAPLDis }, snp.Policy{}, snp.RuleRAPL},
		{"ciphertext hiding", func(r *snp.Report) { r.Policy |= snp.PolicyCiphertextHiding }, snp.Policy{}, snp.RuleCiphertextHiding},
		{"min TCB snp", nil, snp.Policy{MinTCB: &snp.TCBParts{SNP: 25}}, snp.RuleMinTCB},
		{"min TCB ucode", nil, snp.Policy{MinTCB: &snp.TCBParts{Microcode: 214}}, snp.RuleMinTCB},
		{"guest SVN", nil, snp.Policy{MinGuestSVN: 2}, snp.RuleGuestSVN},
		{"measurement pin", nil, snp.Policy{Measurement: make([]byte, 48)}, snp.RuleMeasurement},
		{"host data pin", nil, snp.Policy{HostData: []byte{1}}, snp.RuleHostData},
		{"report data pin", nil, snp.Policy{ReportData: bytes.Repeat([]byte{1}, 64)}, snp.RuleReportData},
		{"v5 dstack-compat", func(r *snp.Report) { r.Version = 5 }, snp.Policy{DstackCompat: true}, snp.RuleVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := attest(t, g, c.mutate)
			res, err := verifyRaw(raw, g.Certificates(), simOpts(g))
			if err != nil {
				t.Fatal(err)
			}
			var pe *snp.PolicyError
			if err := c.policy.Check(res); !errors.As(err, &pe) || !pe.Has(c.rule) || !errors.Is(err, snp.ErrRejected) {
				t.Fatalf("got %v, want rule %s", err, c.rule)
			}
		})
	}
	// MASK_CHIP_KEY: the firmware zeroes CHIP_ID, so the VCEK no longer
	// matches; the policy rejects it on its own as well.
	raw := attest(t, g, func(r *snp.Report) { r.KeyInfo |= 2 })
	r, _ := snp.ParseReport(raw)
	if _, err := snp.Verify(r, g.Certificates(), simOpts(g)); err != nil {
		t.Fatal(err)
	}
	res, _ := snp.Verify(r, g.Certificates(), simOpts(g))
	var pe *snp.PolicyError
	if err := (snp.Policy{}).Check(res); !errors.As(err, &pe) || !pe.Has(snp.RuleMaskChipKey) {
		t.Errorf("mask chip key: %v", err)
	}
	if err := (snp.Policy{}).Check(nil); err == nil {
		t.Error("nil result accepted")
	}
	// The defaults accept the guest's own report and a higher minimum
	// that it meets.
	res, err := verifyRaw(attest(t, g, nil), g.Certificates(), simOpts(g))
	if err != nil {
		t.Fatal(err)
	}
	if err := (snp.Policy{MinTCB: &snpsim.DefaultTCB, Measurement: res.Report.Measurement[:], MinGuestSVN: 1}).Check(res); err != nil {
		t.Error(err)
	}
}

func TestVerifierCache(t *testing.T) {
	g := newGuest(t, snp.ProductMilan)
	v := snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})
	raw := attest(t, g, nil)
	r, _ := snp.ParseReport(raw)
	for range 3 {
		if _, err := v.Verify(r, g.Certificates(), 0, snpsim.Now); err != nil {
			t.Fatal(err)
		}
	}
	// Cached chains still get the time checks and the signature.
	if _, err := v.Verify(r, g.Certificates(), 0, g.PKI.NotAfter.Add(time.Hour)); !errors.Is(err, snp.ErrExpired) {
		t.Errorf("cached chain after expiry: %v", err)
	}
	bad := append([]byte(nil), raw...)
	bad[0x90] ^= 1
	rb, _ := snp.ParseReport(bad)
	if _, err := v.Verify(rb, g.Certificates(), 0, snpsim.Now); !errors.Is(err, snp.ErrSignature) {
		t.Errorf("cached chain, tampered report: %v", err)
	}
	other := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint64(other[0x180:], 0)
	if err := snpsim.Sign(other, g.Key.Key); err != nil {
		t.Fatal(err)
	}
	ro, _ := snp.ParseReport(other)
	if _, err := v.Verify(ro, g.Certificates(), 0, snpsim.Now); !errors.Is(err, snp.ErrTCBMismatch) {
		t.Errorf("cached chain, other REPORTED_TCB: %v", err)
	}
	vc := snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots(), CacheEntries: 1})
	g2 := newGuest(t, snp.ProductMilan)
	r2, _ := snp.ParseReport(attest(t, g2, nil))
	for range 2 {
		if _, err := vc.Verify(r, g.Certificates(), 0, snpsim.Now); err != nil {
			t.Fatal(err)
		}
		if _, err := vc.Verify(r2, g2.Certificates(), 0, snpsim.Now); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	g := newGuest(t, snp.ProductTurin)
	res, err := verifyRaw(attest(t, g, nil), g.Certificates(), simOpts(g))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back snp.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Product != res.Product || back.SigningKey != res.SigningKey || back.TCB.Reported != res.TCB.Reported ||
		back.Report == nil || !bytes.Equal(back.Report.Raw, res.Report.Raw) || back.Extensions.ProductName != res.Extensions.ProductName {
		t.Errorf("round trip: %+v", back)
	}
	bad := bytes.Replace(b, []byte(`"product": "Turin"`), []byte(`"product": "Zen"`), 1)
	bad = bytes.Replace(bad, []byte(`"product":"Turin"`), []byte(`"product":"Zen"`), 1)
	if err := json.Unmarshal(bad, &back); err == nil {
		t.Error("unknown product accepted")
	}
}
