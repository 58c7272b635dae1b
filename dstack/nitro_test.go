package dstack_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/nitrosim"
)

func TestNitroRealFixtures(t *testing.T) {
	cases := []struct {
		file, appID, osImage string
		ts                   int64
	}{
		{"dstack-attest__tests__nitro_attestation.bin", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4", "1894b0b29e94a9db16e88a2914f0923e52bb16c08bf3bb484df786a147e2eb79", 1766678659346},
		{"nsm-qvl__tests__nitro_attestation.bin", "", "e0e742bd62280472ea840647754203d599cb39a7966cfed11237c1e86de9c857", 1766668537578},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			ev, err := dstack.ParseEvidence(testvectors.ReadFile(t, "multitee", "dstack", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Attestation.Platform != dstack.PlatformNitroEnclave {
				t.Fatalf("platform %q", ev.Attestation.Platform)
			}
			at := time.UnixMilli(c.ts)
			r, err := dstack.VerifyNitro(ev, dstack.NitroOptions{Time: at})
			if err != nil {
				t.Fatal(err)
			}
			ai := r.AppInfo
			if r.TEEVariant != "dstack-nitro-enclave" || r.TCBStatus != "" || !r.QuoteVerified || !r.OSImageHashVerified {
				t.Fatalf("%+v", r)
			}
			if hex.EncodeToString(ai.AppID) != c.appID || hex.EncodeToString(ai.OSImageHash) != c.osImage ||
				hex.EncodeToString(ai.ComposeHash) != c.osImage || hex.EncodeToString(ai.MRSystem) != c.osImage ||
				hex.EncodeToString(ai.MRAggregated) != c.osImage || len(ai.InstanceID) != 0 {
				t.Fatalf("app info %+v", ai)
			}
			if got := hex.EncodeToString(r.Nitro.DstackDeviceID); got != "de7d1b721a1e0632b7cf04edf5032c8ecffa9f9a08492152b926f1a5a7e765d7" {
				t.Fatalf("dstack device id %s", got)
			}
			full := sha256.Sum256([]byte(r.Nitro.ModuleID))
			if hex.EncodeToString(ai.DeviceID) != hex.EncodeToString(full[:]) || r.BootInfo.TEEVariant != r.TEEVariant {
				t.Fatalf("device id %x", ai.DeviceID)
			}
			if _, err := dstack.VerifyNitro(ev, dstack.NitroOptions{Time: at.Add(time.Hour + time.Millisecond)}); !errors.Is(err, dstack.ErrQuote) || !errors.Is(err, nitro.ErrStale) {
				t.Fatalf("late: %v", err)
			}
			var other [64]byte
			if _, err := dstack.VerifyNitro(ev, dstack.NitroOptions{Time: at, ReportData: &other}); c.appID != "" && !errors.Is(err, dstack.ErrReportData) {
				t.Fatalf("caller report data: %v", err)
			}
		})
	}
}

func TestNitroRealDebugRefused(t *testing.T) {
	ev, err := dstack.ParseEvidence(testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation_dbg.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dstack.VerifyNitro(ev, dstack.NitroOptions{Time: time.UnixMilli(1766650846577)})
	if !errors.Is(err, nitro.ErrDebug) || !errors.Is(err, dstack.ErrTDRejected) {
		t.Fatalf("%v", err)
	}
}

var nitroAt = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// simNitroTPM builds a signed NitroTPM attestation envelope (V0) whose
// runtime events replay to PCR14 and whose aws_measurement binds
// PCR4/7/12; mutate edits the pieces before signing.
type nitroTPMParts struct {
	events      []dstack.RuntimeEvent
	pcrs        map[int][]byte
	reportData  [64]byte
	userData    []byte
	checksum    []byte
	measurement []byte
	osImageHash []byte
	noAWS       bool
}

func newNitroTPMParts() *nitroTPMParts {
	p := &nitroTPMParts{events: []dstack.RuntimeEvent{
		{Name: "system-preparing"}, {Name: "app-id", Payload: []byte("0123456789abcdefghij")},
		{Name: "compose-hash", Payload: make([]byte, 32)}, {Name: "instance-id", Payload: []byte("inst-id-01234567890a")},
		{Name: "key-provider", Payload: []byte(`{"name":"kms","id":"ab"}`)}, {Name: "system-ready"},
	}, pcrs: map[int][]byte{}}
	for i := range p.reportData {
		p.reportData[i] = byte(i)
	}
	var ds [][48]byte
	for _, e := range p.events {
		d, _ := eventlog.RuntimeDigest(e.Name, e.Payload, 1)
		ds = append(ds, d)
	}
	pcr14 := eventlog.ReplayDigests(ds...)
	p.pcrs[14] = pcr14[:]
	var boot []byte
	for _, i := range []int{4, 7, 12} {
		v := make([]byte, 48)
		v[0] = byte(i)
		p.pcrs[i] = v
		boot = append(boot, v...)
	}
	bd := sha256.Sum256(boot)
	p.measurement, _ = nitrosim.Encode(map[string]any{"boot_pcr_digest": bd[:]})
	ms := sha256.Sum256(p.measurement)
	p.checksum = []byte(fmt.Sprintf("%x  measurement.aws.cbor\n", ms))
	oh := sha256.Sum256(p.checksum)
	p.osImageHash = oh[:]
	p.userData = p.reportData[:]
	return p
}

func (p *nitroTPMParts) build(t *testing.T, ca *nitrosim.CA) *dstack.Evidence {
	t.Helper()
	doc, err := ca.Sign(nitrosim.NitroTPM(nitroAt, p.userData, p.pcrs))
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"os_image_hash": hex.EncodeToString(p.osImageHash)}
	if !p.noAWS {
		cfg["aws_measurement"] = map[string]string{"checksum_file": base64.StdEncoding.EncodeToString(p.checksum),
			"measurement": base64.StdEncoding.EncodeToString(p.measurement)}
	}
	cj, _ := json.Marshal(cfg)
	a := &dstack.Attestation{Platform: dstack.PlatformAWSNitroTPM, NitroTPMDocument: doc, RuntimeEvents: p.events,
		ReportData: p.reportData, Config: string(cj)}
	ev := marshalEvidence(t, a)
	return ev
}

func TestNitroTPMSimulated(t *testing.T) {
	ca, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	opts := dstack.NitroOptions{Time: nitroAt, Root: ca.Root}
	p := newNitroTPMParts()
	r, err := dstack.VerifyNitro(p.build(t, ca), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.TEEVariant != "dstack-aws-nitro-tpm" || r.TCBStatus != "UpToDate" || string(r.AppInfo.AppID) != "0123456789abcdefghij" ||
		string(r.AppInfo.InstanceID) != "inst-id-01234567890a" || r.KeyProvider == nil || r.KeyProvider.Name != "kms" {
		t.Fatalf("%+v", r.AppInfo)
	}
	var boot []byte
	for _, i := range []int{4, 7, 12} {
		boot = append(boot, p.pcrs[i]...)
	}
	agg := sha256.Sum256(append(boot, p.pcrs[14]...))
	if hex.EncodeToString(r.AppInfo.MRAggregated) != hex.EncodeToString(agg[:]) {
		t.Fatal("mr_aggregated")
	}
	neg := []struct {
		name string
		mut  func(*nitroTPMParts)
		want error
	}{
		{"runtime event added", func(p *nitroTPMParts) { p.events = append(p.events, dstack.RuntimeEvent{Name: "late"}) }, dstack.ErrEventLog},
		{"runtime event payload changed", func(p *nitroTPMParts) { p.events[1].Payload = []byte("another app id 12345") }, dstack.ErrEventLog},
		{"PCR14 absent", func(p *nitroTPMParts) { delete(p.pcrs, 14) }, dstack.ErrEventLog},
		{"PCR7 changed", func(p *nitroTPMParts) { p.pcrs[7] = make([]byte, 48) }, dstack.ErrMeasurement},
		{"checksum file not os_image_hash", func(p *nitroTPMParts) { p.osImageHash = make([]byte, 32) }, dstack.ErrOSImageHash},
		{"measurement not listed", func(p *nitroTPMParts) {
			p.checksum = []byte("00  other.cbor\n")
			s := sha256.Sum256(p.checksum)
			p.osImageHash = s[:]
		}, dstack.ErrOSImageHash},
		{"aws_measurement absent", func(p *nitroTPMParts) { p.noAWS = true }, dstack.ErrOSImageHash},
		{"user_data differs from report_data", func(p *nitroTPMParts) { p.userData = make([]byte, 64) }, dstack.ErrReportData},
	}
	for _, c := range neg {
		t.Run(c.name, func(t *testing.T) {
			p := newNitroTPMParts()
			c.mut(p)
			r, err := dstack.VerifyNitro(p.build(t, ca), opts)
			if !errors.Is(err, c.want) || r != nil {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// The pinned AWS root refuses the simulator's documents.
	if _, err := dstack.VerifyNitro(newNitroTPMParts().build(t, ca), dstack.NitroOptions{Time: nitroAt}); !errors.Is(err, nitro.ErrChain) {
		t.Fatalf("AWS root: %v", err)
	}
}

// TestNitroVersion1 re-encodes the real enclave attestation as version 1
// (msgpack; nsm_quote as rmp_serde writes a Vec<u8>: an array of
// integers) and verifies it the same way.
func TestNitroVersion1(t *testing.T) {
	a, err := dstack.ParseAttestation(testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation.bin"))
	if err != nil {
		t.Fatal(err)
	}
	a.Version, a.Stack, a.ByteArrays = 1, dstack.StackDstack, true
	ev := marshalEvidence(t, a)
	if ev.Attestation.Version != 1 || !ev.Attestation.ByteArrays || ev.Attestation.Platform != dstack.PlatformNitroEnclave {
		t.Fatalf("%+v", ev.Attestation)
	}
	r, err := dstack.VerifyNitro(ev, dstack.NitroOptions{Time: time.UnixMilli(1766678659346)})
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(r.AppInfo.AppID) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4" {
		t.Fatalf("app id %x", r.AppInfo.AppID)
	}
}

// marshalEvidence is the evidence a marshalled attestation parses to.
func marshalEvidence(t *testing.T, a *dstack.Attestation) *dstack.Evidence {
	t.Helper()
	raw, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
