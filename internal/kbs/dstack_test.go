package kbs_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
	"github.com/tdproof/tdproof/verifier"
)

// dstackBody is the KBS attestation carrying a dstack attestation
// (protocol.DstackEvidence) for nonce.
func (a *agent) dstackBody(t *testing.T, nonce string, att []byte) []byte {
	t.Helper()
	ev, _ := json.Marshal(protocol.DstackEvidence{Attestation: hex.EncodeToString(att)})
	body, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: nonce, TeePubKey: a.jwk},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// reportData is the report data binding nonce and the agent's key.
func (a *agent) reportData(t *testing.T, nonce string) [64]byte {
	t.Helper()
	rd, err := protocol.ReportData(nonce, a.jwk, "")
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// refusal is one change to a released configuration: attest says whether
// the attestation still succeeds (and the resource is then refused by the
// default resource policy: the token is not affirming).
type refusal struct {
	name   string
	attest bool
	// build returns the attestation for rd (the session's binding).
	build func(t *testing.T, rd [64]byte) []byte
	// tee is the session's tee ("" the case's).
	tee protocol.Tee
}

// runRefusals checks that good releases the secret and that each change
// is refused, under sessions of tee.
func runRefusals(t *testing.T, e *env, tee protocol.Tee, good func(*testing.T, [64]byte) []byte, cases []refusal) {
	t.Helper()
	a := newAgent(t, e)
	nonce := a.authAs(t, tee)
	tok := a.attestOK(t, a.dstackBody(t, nonce, good(t, a.reportData(t, nonce))))
	a.wantSecret(t, "")
	tc, err := ear.Verify(tok, e.keys, ear.VerifyOptions{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for name, sm := range tc.Submods {
		if sm.Status != ear.StatusAffirming {
			t.Errorf("submod %s: %v", name, sm.Status)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newAgent(t, e)
			st := tee
			if c.tee != "" {
				st = c.tee
			}
			nonce := b.authAs(t, st)
			code, body := b.attest(t, b.dstackBody(t, nonce, c.build(t, b.reportData(t, nonce))))
			if !c.attest {
				wantProblem(t, "attest", code, body, protocol.ProblemAttestationError)
				t.Logf("refused: %s", body)
				return
			}
			if code != 200 {
				t.Fatalf("attest: %d %s", code, body)
			}
			code, body = b.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemPolicyDeny)
		})
	}
}

func memRefs(t *testing.T, kv map[string]string) refvalue.Store {
	t.Helper()
	s := refvalue.NewMemoryStore()
	for k, v := range kv {
		if _, err := s.Add(context.Background(), refvalue.Value{Name: k, Values: []string{v}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

var noCollateral = verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
	return nil, collateral.ErrMalformed
})

func kbsEvents() []dstack.RuntimeEvent {
	return []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}, {Name: "compose-hash", Payload: make([]byte, 32)},
		{Name: "instance-id", Payload: []byte("inst-id-01234567890a")}, {Name: "system-ready"}}
}

// TestNitroEnclaveReleasesSecret: a nitrosim enclave whose PCR0-2 are
// pinned gets the secret under tee "nitro" (SQLite and PostgreSQL); a
// change of each pinned PCR is refused, and so are a debug enclave, a
// document whose user_data is not the session binding, a tampered
// document, a stale one, another platform's evidence and a foreign PKI.
func TestNitroEnclaveReleasesSecret(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	d := nitrosim.Enclave(now, nil)
	pins := map[string]string{}
	for i := 0; i < 3; i++ {
		pins["nitro.pcr"+string(rune('0'+i))] = hex.EncodeToString(d.PCRs[i])
	}
	build := func(o nitrosim.DstackOptions) func(*testing.T, [64]byte) []byte {
		return func(t *testing.T, rd [64]byte) []byte {
			if o.ReportData == ([64]byte{}) {
				o.ReportData = rd
			}
			o.Events = []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}}
			att, err := ca.DstackEnclave(now, o)
			if err != nil {
				t.Fatal(err)
			}
			return att
		}
	}
	pcr := func(i int) func(*nitrosim.Doc) {
		return func(d *nitrosim.Doc) { d.PCRs[i] = append([]byte{0xee}, d.PCRs[i][1:]...) }
	}
	other, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newBrokerEnv(t, dsn, "", limitOpts{}, func(signer *ear.Signer, c *clock) *verifier.Verifier {
			v, err := verifier.New(noCollateral, memRefs(t, pins), signer, verifier.WithClock(c.Now), verifier.WithNitroRoot(ca.Root))
			if err != nil {
				t.Fatal(err)
			}
			return v
		})
		runRefusals(t, e, protocol.TeeNitro, build(nitrosim.DstackOptions{}), []refusal{
			{name: "PCR0 changed", attest: true, build: build(nitrosim.DstackOptions{Doc: pcr(0)})},
			{name: "PCR1 changed", attest: true, build: build(nitrosim.DstackOptions{Doc: pcr(1)})},
			{name: "PCR2 changed", attest: true, build: build(nitrosim.DstackOptions{Doc: pcr(2)})},
			{name: "debug enclave", build: build(nitrosim.DstackOptions{Doc: func(d *nitrosim.Doc) {
				for i := 0; i < 3; i++ {
					d.PCRs[i] = make([]byte, 48)
				}
			}})},
			{name: "user_data not the session binding", build: build(nitrosim.DstackOptions{ReportData: [64]byte{1}})},
			{name: "user_data changed after the envelope", build: build(nitrosim.DstackOptions{Tamper: func(d *nitrosim.Doc) { d.UserData = make([]byte, 64) }})},
			{name: "PCR0 changed after the vm_config", build: build(nitrosim.DstackOptions{Tamper: pcr(0)})},
			{name: "stale document", build: func(t *testing.T, rd [64]byte) []byte {
				att, err := ca.DstackEnclave(now.Add(-2*time.Hour), nitrosim.DstackOptions{ReportData: rd})
				if err != nil {
					t.Fatal(err)
				}
				return att
			}},
			{name: "foreign PKI", build: func(t *testing.T, rd [64]byte) []byte {
				att, err := other.DstackEnclave(now, nitrosim.DstackOptions{ReportData: rd})
				if err != nil {
					t.Fatal(err)
				}
				return att
			}},
			{name: "Nitro evidence under a tdx session", tee: protocol.TeeTdx, build: build(nitrosim.DstackOptions{})},
			{name: "NitroTPM evidence of an unpinned instance", attest: true, build: func(t *testing.T, rd [64]byte) []byte {
				att, err := ca.DstackNitroTPM(now, nitrosim.DstackOptions{ReportData: rd, Events: kbsEvents()})
				if err != nil {
					t.Fatal(err)
				}
				return att
			}},
		})
	})
}

// TestNitroTPMReleasesSecret: a nitrosim NitroTPM instance whose PCR4,
// PCR7 and PCR12 are pinned gets the secret; a change of each is refused,
// and so are runtime events that do not replay to PCR14 and boot PCRs the
// aws_measurement does not name.
func TestNitroTPMReleasesSecret(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	d := nitrosim.NitroTPM(now, nil, nil)
	pins := map[string]string{"tpm.pcr4": hex.EncodeToString(d.PCRs[4]), "tpm.pcr7": hex.EncodeToString(d.PCRs[7]), "tpm.pcr12": hex.EncodeToString(d.PCRs[12])}
	build := func(o nitrosim.DstackOptions) func(*testing.T, [64]byte) []byte {
		return func(t *testing.T, rd [64]byte) []byte {
			o.ReportData = rd
			if o.Events == nil {
				o.Events = kbsEvents()
			}
			att, err := ca.DstackNitroTPM(now, o)
			if err != nil {
				t.Fatal(err)
			}
			return att
		}
	}
	pcr := func(i int) func(*nitrosim.Doc) {
		return func(d *nitrosim.Doc) { d.PCRs[i] = append([]byte{0xee}, d.PCRs[i][1:]...) }
	}
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newBrokerEnv(t, dsn, "", limitOpts{}, func(signer *ear.Signer, c *clock) *verifier.Verifier {
			v, err := verifier.New(noCollateral, memRefs(t, pins), signer, verifier.WithClock(c.Now), verifier.WithNitroRoot(ca.Root))
			if err != nil {
				t.Fatal(err)
			}
			return v
		})
		runRefusals(t, e, protocol.TeeNitro, build(nitrosim.DstackOptions{}), []refusal{
			{name: "PCR4 changed", attest: true, build: build(nitrosim.DstackOptions{Doc: pcr(4)})},
			{name: "PCR7 changed", attest: true, build: build(nitrosim.DstackOptions{Doc: pcr(7)})},
			{name: "PCR12 changed", attest: true, build: build(nitrosim.DstackOptions{Doc: pcr(12)})},
			{name: "PCR14 not the replay", build: build(nitrosim.DstackOptions{Tamper: pcr(14)})},
			{name: "PCR7 not the aws_measurement's", build: build(nitrosim.DstackOptions{Tamper: pcr(7)})},
		})
	})
}

// TestGCPTDXReleasesSecret: simulated dstack-gcp-tdx evidence whose MRTD,
// vTPM PCR0 and PCR2 are pinned gets the secret under tee "tdx" as
// {"attestation"}; a change of MRTD or PCR2 is refused by the resource
// policy, a PCR0 that is not the accepted firmware, a vTPM quote not
// bound to the TDX quote and a REPORTDATA that does not bind the session
// at attestation.
func TestGCPTDXReleasesSecret(t *testing.T) {
	pki, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f0, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: pki})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tpmsim.New(f0.Now, false)
	if err != nil {
		t.Fatal(err)
	}
	var pcr2 [32]byte
	for _, d := range tpmsim.DefaultPCR2Events() {
		pcr2 = tpm.Extend(pcr2, d)
	}
	pins := map[string]string{"tdx.mr_td": hex.EncodeToString(f0.QuoteSpec.TD.MRTD[:]), "tpm.pcr0": dstack.DefaultGCPFirmwarePCR0, "tpm.pcr2": hex.EncodeToString(pcr2[:])}
	col, err := f0.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	build := func(o tpmsim.GCPOptions, bind bool) func(*testing.T, [64]byte) []byte {
		return func(t *testing.T, rd [64]byte) []byte {
			f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: pki})
			if err != nil {
				t.Fatal(err)
			}
			if bind {
				o.ReportData = rd
			}
			o.Events = kbsEvents()
			att, _, err := s.DstackGCP(f, o)
			if err != nil {
				t.Fatal(err)
			}
			return att
		}
	}
	extraPCR2 := append(tpmsim.DefaultPCR2Events(), make([]byte, 32))
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newBrokerEnv(t, dsn, "", limitOpts{}, func(signer *ear.Signer, _ *clock) *verifier.Verifier {
			src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
			v, err := verifier.New(src, memRefs(t, pins), signer, verifier.WithClock(func() time.Time { return f0.Now }),
				verifier.WithTrustedRoot(pki.Root.Certificate), verifier.WithGCPTPMRoots(s.Root, []*x509.Certificate{s.Intermediate}))
			if err != nil {
				t.Fatal(err)
			}
			return v
		})
		runRefusals(t, e, protocol.TeeTdx, build(tpmsim.GCPOptions{}, true), []refusal{
			{name: "MRTD changed", attest: true, build: build(tpmsim.GCPOptions{TD: func(td *quote.TDReport) { td.MRTD[0] ^= 1 }}, true)},
			{name: "PCR2 changed", attest: true, build: build(tpmsim.GCPOptions{PCR2Events: extraPCR2}, true)},
			{name: "PCR0 not the accepted firmware", build: build(tpmsim.GCPOptions{PCR0: make([]byte, 32)}, true)},
			{name: "vTPM quote not bound to the TDX quote", build: build(tpmsim.GCPOptions{ExtraData: func([]byte) []byte { return make([]byte, 32) }}, true)},
			{name: "REPORTDATA not the session binding", build: build(tpmsim.GCPOptions{}, false)},
			{name: "quoted PCR2 not its events", build: build(tpmsim.GCPOptions{PCRs: func(p []tpm.PCRValue) { p[1].Value = make([]byte, 32) }}, true)},
			{name: "GCP evidence under a nitro session", tee: protocol.TeeNitro, build: build(tpmsim.GCPOptions{}, true)},
		})
	})
}
