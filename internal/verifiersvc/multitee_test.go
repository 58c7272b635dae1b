package verifiersvc_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
	"github.com/tdproof/tdproof/verifier"
)

// dstack-verifier's app_info and boot_info members (multi-tee.md §6,
// dstack.md §1.5): app_info carries tdproof's quote registers as well.
var (
	dstackAppInfo = []string{"app_id", "compose_hash", "device_id", "init_script_hashes", "instance_id", "key_provider_info",
		"mr_aggregated", "mr_system", "mrtd", "os_image_hash", "rtmr0", "rtmr1", "rtmr2", "rtmr3"}
	dstackBootInfo = []string{"advisoryIds", "appId", "composeHash", "deviceId", "instanceId", "keyProviderInfo",
		"mrAggregated", "mrSystem", "osImageHash", "tcbStatus", "teeVariant"}
)

// teeEvents is a dstack runtime event list with an app id, compose hash,
// instance id and key provider.
func teeEvents() []dstack.RuntimeEvent {
	return []dstack.RuntimeEvent{
		{Name: "system-preparing"}, {Name: "app-id", Payload: []byte("0123456789abcdefghij")},
		{Name: "compose-hash", Payload: make([]byte, 32)}, {Name: "instance-id", Payload: []byte("inst-id-01234567890a")},
		{Name: "key-provider", Payload: []byte(`{"name":"kms","id":"ab"}`)}, {Name: "system-ready"},
	}
}

// refStore is a reference-value store of name → value.
func refStore(t *testing.T, kv map[string]string) *refvalue.MemoryStore {
	t.Helper()
	s := refvalue.NewMemoryStore()
	for k, v := range kv {
		if _, err := s.Add(context.Background(), refvalue.Value{Name: k, Values: []string{v}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// variantCase is one dstack TEE variant on /verify: a service that
// trusts its evidence's PKI with its code pinned, and what dstack-verifier
// answers for it (multi-tee.md §6, per-variant details).
type variantCase struct {
	variant string
	env     *env
	body    []byte
	tcb     any // details.tcb_status
	// bootTCB is boot_info.tcbStatus ("" when dstack's is empty).
	bootTCB string
	// deviceID, when set, is the expected app_info.device_id.
	deviceID string
	// native is the native result's dstack.device_id claim, when set.
	native string
	// osImage is os_image_hash_verified.
	osImage bool
}

func nitroEnclaveCase(t *testing.T) variantCase {
	data := testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation.bin")
	ev, err := dstack.ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := nitro.Parse(ev.Attestation.NSMQuote)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for i := 0; i < 3; i++ {
		refs["nitro.pcr"+string(rune('0'+i))] = hex.EncodeToString(doc.PCR(i))
	}
	full := sha256.Sum256([]byte(doc.ModuleID))
	return variantCase{
		variant: dstack.TEEVariantNitroEnclave,
		env:     newEnv(t, nil, nil, time.UnixMilli(1766678659346), verifiersvc.Options{RefValues: refStore(t, refs)}),
		body:    mustJSON(t, map[string]string{"attestation": hex.EncodeToString(data)}),
		tcb:     nil, bootTCB: "", osImage: true,
		deviceID: "de7d1b721a1e0632b7cf04edf5032c8ecffa9f9a08492152b926f1a5a7e765d7",
		native:   hex.EncodeToString(full[:]),
	}
}

func nitroTPMCase(t *testing.T) variantCase {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.DstackNitroTPM(now, nitrosim.DstackOptions{ReportData: [64]byte{1}, Events: teeEvents()})
	if err != nil {
		t.Fatal(err)
	}
	d := nitrosim.NitroTPM(now, nil, nil)
	refs := map[string]string{"tpm.pcr4": hex.EncodeToString(d.PCRs[4]), "tpm.pcr7": hex.EncodeToString(d.PCRs[7]), "tpm.pcr12": hex.EncodeToString(d.PCRs[12])}
	full := sha256.Sum256([]byte(d.ModuleID))
	return variantCase{
		variant: dstack.TEEVariantAWSNitroTPM,
		env:     newEnv(t, nil, nil, now, verifiersvc.Options{RefValues: refStore(t, refs)}, verifier.WithNitroRoot(ca.Root)),
		body:    mustJSON(t, map[string]string{"attestation": hex.EncodeToString(att)}),
		tcb:     "UpToDate", bootTCB: "UpToDate", osImage: true,
		deviceID: hex.EncodeToString(full[:]), native: hex.EncodeToString(full[:]),
	}
}

// gcpEvidence builds simulated dstack-gcp-tdx evidence and the options of
// a verifier trusting its PKIs with its code pinned.
func gcpEvidence(t *testing.T, o tpmsim.GCPOptions) ([]byte, *collateral.Collateral, *refvalue.MemoryStore, time.Time, []verifier.Option) {
	t.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tpmsim.New(f.Now, false)
	if err != nil {
		t.Fatal(err)
	}
	if o.Events == nil {
		o.Events = teeEvents()
	}
	att, col, err := s.DstackGCP(f, o)
	if err != nil {
		t.Fatal(err)
	}
	var pcr2 [32]byte
	for _, d := range tpmsim.DefaultPCR2Events() {
		pcr2 = tpm.Extend(pcr2, d)
	}
	refs := refStore(t, map[string]string{"tdx.mr_td": hex.EncodeToString(f.QuoteSpec.TD.MRTD[:]),
		"tpm.pcr0": dstack.DefaultGCPFirmwarePCR0, "tpm.pcr2": hex.EncodeToString(pcr2[:])})
	return att, col, refs, f.Now, []verifier.Option{verifier.WithTrustedRoot(f.PKI.Root.Certificate),
		verifier.WithGCPTPMRoots(s.Root, []*x509.Certificate{s.Intermediate})}
}

func gcpCase(t *testing.T) variantCase {
	att, col, refs, now, opts := gcpEvidence(t, tpmsim.GCPOptions{ReportData: [64]byte{2}})
	return variantCase{
		variant: dstack.TEEVariantGCPTDX,
		env:     newEnv(t, col, nil, now, verifiersvc.Options{RefValues: refs}, opts...),
		body:    mustJSON(t, map[string]string{"attestation": hex.EncodeToString(att)}),
		tcb:     "UpToDate", bootTCB: "UpToDate", osImage: true,
	}
}

func snpCase(t *testing.T) variantCase {
	data := testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
	// dstack's acceptance: no TCB policy, no CRL (none among the test
	// data; TestSNPCRLEndpoints covers CRLs).
	compat, err := policy.FromRules("dstack-compat", "1", policy.Rules{AcceptedTCBStatuses: []string{"UpToDate", "OutOfDate"}, AllowUncheckedCRLUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	refs := refStore(t, map[string]string{"snp.measurement": "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"})
	return variantCase{
		variant: dstack.TEEVariantSEVSNP,
		env: newEnv(t, nil, nil, time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC), verifiersvc.Options{RefValues: refs},
			verifier.WithPolicyResolver(func(context.Context, string) (*policy.Policy, error) { return compat, nil })),
		body: data, tcb: "OutOfDate", bootTCB: "OutOfDate", osImage: true,
		deviceID: "310f86e9970d2b625f8a1024f05ea59d540743de63e9017c8c4c0f50a14a10a6",
	}
}

func tdxCase(t *testing.T) variantCase {
	fx, col := loadDstackFixtures(t)
	f := fx["tdx-lite-attestation.json"]
	return variantCase{
		variant: dstack.TEEVariant,
		env:     newEnv(t, col, nil, time.Unix(1774003274, 0), verifiersvc.Options{RefValues: pinned(t, f.body)}, afterReadyAllowed(t)),
		body:    f.body, tcb: "UpToDate", bootTCB: "UpToDate", osImage: true,
	}
}

// TestDstackVerifyVariants is the table test of POST /verify for the five
// dstack TEE variants — TDX and SEV-SNP from the real fixtures, Nitro
// Enclave from the real capture at its pinned time, NitroTPM (nitrosim)
// and GCP TDX (dcaptest + tpmsim) simulated: each answer has
// dstack-verifier's member set (details, app_info, boot_info), its
// tee_variant, acpi_tables_verified false, os_image_is_dev and
// os_image_version null, and the variant's tcb_status; the native
// /v1/verify result carries the same tee_variant. A Nitro Enclave's
// device_id is dstack's on /verify and the whole module_id's natively.
func TestDstackVerifyVariants(t *testing.T) {
	cases := []func(*testing.T) variantCase{tdxCase, gcpCase, snpCase, nitroEnclaveCase, nitroTPMCase}
	seen := map[string]bool{}
	for _, mk := range cases {
		c := mk(t)
		seen[c.variant] = true
		t.Run(c.variant, func(t *testing.T) {
			r := c.env.post(t, "/verify", c.body)
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got["is_valid"] != true || got["reason"] != nil {
				t.Fatalf("is_valid %v reason %v", got["is_valid"], got["reason"])
			}
			d := got["details"].(map[string]any)
			if k := keysOf(d); !slices.Equal(k, dstackVerifierDetails) {
				t.Errorf("details members %v, want %v", k, dstackVerifierDetails)
			}
			ai, _ := d["app_info"].(map[string]any)
			bi, _ := d["boot_info"].(map[string]any)
			if k := keysOf(ai); !slices.Equal(k, dstackAppInfo) {
				t.Errorf("app_info members %v, want %v", k, dstackAppInfo)
			}
			if k := keysOf(bi); !slices.Equal(k, dstackBootInfo) {
				t.Errorf("boot_info members %v, want %v", k, dstackBootInfo)
			}
			for k, want := range map[string]any{
				"quote_verified": true, "event_log_verified": true, "os_image_hash_verified": c.osImage,
				"acpi_tables_verified": false, "os_image_is_dev": nil, "os_image_version": nil,
				"tee_variant": c.variant, "tcb_status": c.tcb,
			} {
				if d[k] != want {
					t.Errorf("details.%s = %v, want %v", k, d[k], want)
				}
			}
			if ids, ok := d["advisory_ids"].([]any); !ok || ids == nil {
				t.Errorf("advisory_ids %v", d["advisory_ids"])
			}
			if rd, _ := d["report_data"].(string); len(rd) != 128 {
				t.Errorf("report_data %v", d["report_data"])
			}
			if bi["teeVariant"] != c.variant || bi["tcbStatus"] != c.bootTCB || bi["deviceId"] != ai["device_id"] {
				t.Errorf("boot_info %v", bi)
			}
			if c.deviceID != "" && ai["device_id"] != c.deviceID {
				t.Errorf("device_id %v, want %s", ai["device_id"], c.deviceID)
			}
			out, _ := c.env.native(t, map[string]any{"dstack": json.RawMessage(c.body)})
			if out.Result.TEEVariant != c.variant || !out.Result.Authentic || !out.Result.Allow {
				t.Errorf("/v1/verify: variant %q authentic %v allow %v %s", out.Result.TEEVariant, out.Result.Authentic, out.Result.Allow, out.Result.Reason)
			}
			if v, _ := out.Result.Claims.String("dstack.tee_variant"); v != c.variant {
				t.Errorf("dstack.tee_variant claim %q", v)
			}
			if c.native != "" {
				if v, _ := out.Result.Claims.String("dstack.device_id"); v != c.native {
					t.Errorf("native device_id %s, want %s", v, c.native)
				}
			}
		})
	}
	if len(seen) != 5 {
		t.Fatalf("variants %v", seen)
	}
}

// TestDstackVerifyVariantFailures: the dstack-verifier step a failure
// belongs to, for the variants whose platform step is more than a DCAP
// quote. The real debug enclave passes the platform step and fails the
// OS image one (quote_verified true, tee_variant set, boot_info absent);
// a NitroTPM whose PCR14 is not the replay and a GCP vTPM quote not bound
// to the TDX quote fail the platform step (quote_verified false).
func TestDstackVerifyVariantFailures(t *testing.T) {
	dbg := testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation_dbg.bin")
	e := newEnv(t, nil, nil, time.UnixMilli(1766650846577), verifiersvc.Options{})
	check := func(t *testing.T, e *env, body []byte, quoteOK bool, variant any, prefix string) map[string]any {
		t.Helper()
		r := e.post(t, "/verify", body)
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		d := got["details"].(map[string]any)
		reason, _ := got["reason"].(string)
		if got["is_valid"] != false || !strings.HasPrefix(reason, prefix) || d["quote_verified"] != quoteOK || d["tee_variant"] != variant {
			t.Errorf("%s", r.body)
		}
		if _, ok := d["boot_info"]; ok {
			t.Errorf("boot_info present: %s", r.body)
		}
		return d
	}
	d := check(t, e, mustJSON(t, map[string]string{"attestation": hex.EncodeToString(dbg)}), true, dstack.TEEVariantNitroEnclave, "OS image hash verification failed: ")
	if d["report_data"] != strings.Repeat("0", 128) || d["os_image_hash_verified"] != false || d["tcb_status"] != nil {
		t.Errorf("debug enclave details %v", d)
	}

	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.DstackNitroTPM(now, nitrosim.DstackOptions{Events: teeEvents(), Tamper: func(d *nitrosim.Doc) { d.PCRs[14] = make([]byte, 48) }})
	if err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, nil, nil, now, verifiersvc.Options{}, verifier.WithNitroRoot(ca.Root))
	check(t, e, mustJSON(t, map[string]string{"attestation": hex.EncodeToString(att)}), false, nil, "Quote verification failed: ")
	// NitroTPM whose boot PCRs differ from the aws_measurement: the
	// OS-image step.
	att, err = ca.DstackNitroTPM(now, nitrosim.DstackOptions{Events: teeEvents(), Tamper: func(d *nitrosim.Doc) { d.PCRs[7] = make([]byte, 48) }})
	if err != nil {
		t.Fatal(err)
	}
	check(t, e, mustJSON(t, map[string]string{"attestation": hex.EncodeToString(att)}), true, dstack.TEEVariantAWSNitroTPM, "OS image hash verification failed: ")
	// --dstack-compat-policy: dstack's rule (every step verified), no
	// reference value needed; the default policy without one denies
	// nothing either but the answer then follows the policy.
	good, err := ca.DstackNitroTPM(now, nitrosim.DstackOptions{Events: teeEvents()})
	if err != nil {
		t.Fatal(err)
	}
	ce := newEnv(t, nil, nil, now, verifiersvc.Options{DstackCompatPolicy: true}, verifier.WithNitroRoot(ca.Root))
	if r := ce.post(t, "/verify", mustJSON(t, map[string]string{"attestation": hex.EncodeToString(good)})); !strings.Contains(string(r.body), `"is_valid":true`) {
		t.Errorf("compat NitroTPM: %s", r.body)
	}

	gatt, col, refs, gnow, opts := gcpEvidence(t, tpmsim.GCPOptions{ExtraData: func([]byte) []byte { return make([]byte, 32) }})
	e = newEnv(t, col, nil, gnow, verifiersvc.Options{RefValues: refs}, opts...)
	check(t, e, mustJSON(t, map[string]string{"attestation": hex.EncodeToString(gatt)}), false, nil, "Quote verification failed: ")
	gatt, col, refs, gnow, opts = gcpEvidence(t, tpmsim.GCPOptions{UKI: make([]byte, 32)})
	e = newEnv(t, col, nil, gnow, verifiersvc.Options{RefValues: refs}, opts...)
	check(t, e, mustJSON(t, map[string]string{"attestation": hex.EncodeToString(gatt)}), true, dstack.TEEVariantGCPTDX, "OS image hash verification failed: ")
}
