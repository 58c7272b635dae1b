package attacktest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/refvalue"
)

// nitroFleet is the campaign's AWS Nitro evidence: enclave A and
// NitroTPM instance A are pinned; the other documents are A's with one
// part changed, or another enclave's or instance's.
type nitroFleet struct {
	ca, foreign *nitrosim.CA
	now         time.Time
	// eventsA and eventsB are NitroTPM A's and B's runtime events.
	eventsA, eventsB []dstack.RuntimeEvent
}

func newNitroFleet(t *testing.T, now time.Time) *nitroFleet {
	t.Helper()
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(app string) []dstack.RuntimeEvent {
		return []dstack.RuntimeEvent{{Name: "system-preparing"}, {Name: "app-id", Payload: []byte(app)},
			{Name: "compose-hash", Payload: []byte(app + app)[:32]}, {Name: "system-ready"}}
	}
	return &nitroFleet{ca: ca, foreign: foreign, now: now, eventsA: ev("app-one-0123456789ab"), eventsB: ev("app-two-0123456789ab")}
}

// referenceValues pin enclave A (PCR0–2) and NitroTPM instance A (PCR4,
// PCR7, PCR12). They apply to no TDX evidence.
func (n *nitroFleet) referenceValues() []refvalue.Value {
	prov := refvalue.Provenance{Source: "attacktest"}
	enc := nitrosim.Enclave(n.now, nil)
	tpmA := nitrosim.NitroTPM(n.now, nil, nil)
	var out []refvalue.Value
	for i := 0; i < 3; i++ {
		out = append(out, refvalue.Value{Name: fmt.Sprintf("nitro.pcr%d", i), Values: []string{hex.EncodeToString(enc.PCRs[i])}, Provenance: prov})
	}
	for _, i := range []int{4, 7, 12} {
		out = append(out, refvalue.Value{Name: fmt.Sprintf("tpm.pcr%d", i), Values: []string{hex.EncodeToString(tpmA.PCRs[i])}, Provenance: prov})
	}
	return out
}

func replay384(t *testing.T, evs []dstack.RuntimeEvent) []byte {
	t.Helper()
	var ds [][48]byte
	for _, e := range evs {
		d, err := eventlog.RuntimeDigest(e.Name, e.Payload, e.Version)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	r := eventlog.ReplayDigests(ds...)
	return r[:]
}

func flipPCR(d *nitrosim.Doc, i int) { d.PCRs[i] = append([]byte{0xee}, d.PCRs[i][1:]...) }

// enclaveDoc returns the signed document labelled label with user_data
// ud, and the vm_config that matches its PCRs.
func (n *nitroFleet) enclaveDoc(t *testing.T, label string, ud []byte) (doc []byte, cfg string) {
	t.Helper()
	ca := n.ca
	var d nitrosim.Doc
	switch label {
	case "A":
		d = nitrosim.Enclave(n.now, ud)
	case "B-app":
		d = nitrosim.Enclave(n.now, ud)
		flipPCR(&d, 2)
	case "C-image":
		d = nitrosim.Enclave(n.now, ud)
		flipPCR(&d, 0)
	case "D-debug":
		d = nitrosim.Enclave(n.now, ud)
		for i := 0; i < 3; i++ {
			d.PCRs[i] = make([]byte, 48)
		}
	case "A-stale":
		d = nitrosim.Enclave(n.now.Add(-2*time.Hour), ud)
	case "A-foreign-PKI":
		d, ca = nitrosim.Enclave(n.now, ud), n.foreign
	case "A-NitroTPM-doc":
		d = nitrosim.NitroTPM(n.now, ud, map[int][]byte{14: replay384(t, n.eventsA)})
	default:
		t.Fatalf("enclave document %q", label)
	}
	b, err := ca.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	var pcrs []byte
	for i := 0; i < 3; i++ {
		pcrs = append(pcrs, d.PCRs[i]...)
	}
	return b, enclaveConfig(pcrs)
}

func enclaveConfig(pcr012 []byte) string {
	h := sha256Sum(pcr012)
	return fmt.Sprintf(`{"os_image_hash":"%x"}`, h)
}

// tpmDoc returns the NitroTPM document labelled label with user_data ud
// and the vm_config (aws_measurement) that matches its boot PCRs.
func (n *nitroFleet) tpmDoc(t *testing.T, label string, ud []byte) (doc []byte, cfg string) {
	t.Helper()
	ca := n.ca
	pcr14 := map[int][]byte{14: replay384(t, n.eventsA)}
	var d nitrosim.Doc
	switch label {
	case "A":
		d = nitrosim.NitroTPM(n.now, ud, pcr14)
	case "B-boot":
		d = nitrosim.NitroTPM(n.now, ud, pcr14)
		flipPCR(&d, 7)
	case "A-PCR14-of-B":
		d = nitrosim.NitroTPM(n.now, ud, map[int][]byte{14: replay384(t, n.eventsB)})
	case "A-stale":
		d = nitrosim.NitroTPM(n.now.Add(-2*time.Hour), ud, pcr14)
	case "A-foreign-PKI":
		d, ca = nitrosim.NitroTPM(n.now, ud, pcr14), n.foreign
	case "A-enclave-doc":
		d = nitrosim.Enclave(n.now, ud)
		for k, v := range pcr14 {
			d.PCRs[k] = v
		}
	default:
		t.Fatalf("NitroTPM document %q", label)
	}
	b, err := ca.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	if d.PCRs[12] == nil {
		d.PCRs[12] = make([]byte, 48)
	}
	cfg, err = nitrosim.AWSConfig(d)
	if err != nil {
		t.Fatal(err)
	}
	return b, cfg
}

func nitroEnvelope(t *testing.T, platform string, doc []byte, events []dstack.RuntimeEvent, rd [64]byte, cfg string) []byte {
	t.Helper()
	a := &dstack.Attestation{Platform: platform, RuntimeEvents: events, ReportData: rd, Config: cfg}
	if platform == dstack.PlatformNitroEnclave {
		a.NSMQuote = doc
	} else {
		a.NitroTPMDocument = doc
	}
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// campaignNitro: Nitro Enclave and NitroTPM attestations on /v1/verify
// and /verify, and under a key-broker session of tee nitro: the document
// (A's, another enclave's or instance's, debug, stale, of a foreign PKI,
// of the other kind), the vm_config (A's, the document's own, omitted),
// the binding (user_data and report_data agreeing, or not), the runtime
// events and the nonce.
func campaignNitro(t *testing.T, f *fleet, e *env) {
	n := f.nitro
	otherRD := verifyReportData
	otherRD[0] ^= 0xff
	_, cfgA := n.enclaveDoc(t, "A", verifyReportData[:])
	_, tpmCfgA := n.tpmDoc(t, "A", verifyReportData[:])
	type binding struct{ ud, rd [64]byte }
	bindings := []choice{
		{"A", true, binding{verifyReportData, verifyReportData}},
		{"user_data-other", false, binding{otherRD, verifyReportData}},
		{"report_data-other", false, binding{verifyReportData, otherRD}},
	}
	configs := func(a string) []choice {
		return []choice{{"A", true, a}, {"document's", true, "doc"}, {"omitted", false, ""}}
	}
	// Enclave.
	docs := slot{name: "document"}
	for _, l := range []string{"A", "B-app", "C-image", "D-debug", "A-stale", "A-foreign-PKI", "A-NitroTPM-doc"} {
		docs.choices = append(docs.choices, choice{l, l == "A", l})
	}
	appID := func(app string) []dstack.RuntimeEvent {
		return []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte(app)}}
	}
	slots := []slot{docs, {name: "config", choices: configs(cfgA)}, {name: "binding", choices: bindings},
		// The enclave's app-id event is measured by nothing: no rule
		// reads it, so another app's changes nothing.
		{name: "events", choices: []choice{{"A-app-id", true, appID("app-one-0123456789ab")}, {"B-app-id", true, appID("app-two-0123456789ab")}}},
		{name: "nonce", choices: []choice{{"none", true, ""}, {"other", false, "00112233"}}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		b := p[2].v.(binding)
		doc, cfg := n.enclaveDoc(t, p[0].v.(string), b.ud[:])
		if c := p[1].v.(string); c != "doc" {
			cfg = c
		}
		att := nitroEnvelope(t, dstack.PlatformNitroEnclave, doc, p[3].v.([]dstack.RuntimeEvent), b.rd, cfg)
		req := map[string]any{"dstack": map[string]string{"attestation": hex.EncodeToString(att)}}
		if nonce := p[4].v.(string); nonce != "" {
			req["nonce"] = nonce
		}
		ok, detail := e.native(t, req)
		e.record(t, "nitro-enclave /v1/verify", combo, own, ok, detail)
		if p[4].v.(string) == "" {
			ok, detail = e.dstackVerify(t, map[string]any{"attestation": hex.EncodeToString(att)})
			e.record(t, "nitro-enclave /verify", combo, own, ok, detail)
		}
	})
	// NitroTPM.
	tdocs := slot{name: "document"}
	// (Instance A's boot running app B — PCR14 the replay of B's events
	// — is A's pinned image with another app: nothing here pins the app,
	// so it is not an attack and not tried; B's events against A's PCR14
	// are.)
	for _, l := range []string{"A", "B-boot", "A-stale", "A-foreign-PKI", "A-enclave-doc"} {
		tdocs.choices = append(tdocs.choices, choice{l, l == "A", l})
	}
	rev := slices.Clone(n.eventsA)
	slices.Reverse(rev)
	slots = []slot{tdocs, {name: "config", choices: configs(tpmCfgA)}, {name: "binding", choices: bindings},
		{name: "events", choices: []choice{{"A", true, n.eventsA}, {"B", false, n.eventsB}, {"A-reversed", false, rev}}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		b := p[2].v.(binding)
		doc, cfg := n.tpmDoc(t, p[0].v.(string), b.ud[:])
		if c := p[1].v.(string); c != "doc" {
			cfg = c
		}
		att := nitroEnvelope(t, dstack.PlatformAWSNitroTPM, doc, p[3].v.([]dstack.RuntimeEvent), b.rd, cfg)
		ok, detail := e.native(t, map[string]any{"dstack": map[string]string{"attestation": hex.EncodeToString(att)}})
		e.record(t, "nitro-tpm /v1/verify", combo, own, ok, detail)
		ok, detail = e.dstackVerify(t, map[string]any{"attestation": hex.EncodeToString(att)})
		e.record(t, "nitro-tpm /verify", combo, own, ok, detail)
	})
	// The key broker, tee nitro (and the same evidence under tdx).
	kdocs := slot{name: "document", choices: []choice{
		{"enclave-A", true, "enclave/A"}, {"enclave-B-app", false, "enclave/B-app"}, {"enclave-D-debug", false, "enclave/D-debug"},
		{"enclave-A-stale", false, "enclave/A-stale"}, {"enclave-A-foreign-PKI", false, "enclave/A-foreign-PKI"},
		{"tpm-A", true, "tpm/A"}, {"tpm-B-boot", false, "tpm/B-boot"}, {"tpm-A-PCR14-of-B", false, "tpm/A-PCR14-of-B"},
	}}
	slots = []slot{kdocs,
		{name: "user_data", choices: []choice{{"session", true, true}, {"another-session", false, false}}},
		{name: "tee", choices: []choice{{"nitro", true, protocol.TeeNitro}, {"tdx", false, protocol.TeeTdx}}},
	}
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		ok, detail := e.kbsAttemptTEE(t, p[2].v.(protocol.Tee), func(rd [64]byte) []byte {
			ud := rd
			if !p[1].v.(bool) {
				ud[0] ^= 0xff
			}
			kind, label, _ := cut(p[0].v.(string))
			var att []byte
			if kind == "enclave" {
				doc, cfg := n.enclaveDoc(t, label, ud[:])
				att = nitroEnvelope(t, dstack.PlatformNitroEnclave, doc, nil, ud, cfg)
			} else {
				doc, cfg := n.tpmDoc(t, label, ud[:])
				att = nitroEnvelope(t, dstack.PlatformAWSNitroTPM, doc, n.eventsA, ud, cfg)
			}
			ev, err := json.Marshal(protocol.DstackEvidence{Attestation: hex.EncodeToString(att)})
			if err != nil {
				t.Fatal(err)
			}
			return ev
		})
		e.record(t, "nitro kbs", combo, own, ok, detail)
	})
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
