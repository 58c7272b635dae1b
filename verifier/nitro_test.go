package verifier_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
	"github.com/tdproof/tdproof/verifier"
)

// teeVerifier is a verifier at now with the given reference values
// (name → values) and options.
func teeVerifier(t *testing.T, now time.Time, col *collateral.Collateral, refs map[string][]string, opts ...verifier.Option) *verifier.Verifier {
	t.Helper()
	k, _ := ear.GenerateKey(nil)
	ks, _ := ear.NewKeySet(k)
	signer, _ := ear.NewSigner(ks, ear.WithClock(func() time.Time { return now }))
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
		if col == nil {
			t.Error("evidence without a DCAP quote asked for collateral")
		}
		return col, nil
	})
	store := refvalue.NewMemoryStore()
	for name, vals := range refs {
		if _, err := store.Add(context.Background(), refvalue.Value{Name: name, Values: vals}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verifier.New(src, store, signer, append([]verifier.Option{verifier.WithClock(func() time.Time { return now })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// nitroFixtureTime is the timestamp of the real enclave attestation.
var nitroFixtureTime = time.UnixMilli(1766678659346)

// TestNitroRealFixtureVerify: the real dstack Nitro Enclave attestation
// goes through Verify at its pinned time: authentic, tee nitro, variant
// dstack-nitro-enclave; affirming once PCR0–2 are pinned, warning
// (unpinned) without; a PCR reference value that differs denies; an
// hour and a millisecond later the document is stale; the debug capture
// is not authentic.
func TestNitroRealFixtureVerify(t *testing.T) {
	data := testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation.bin")
	ev, err := dstack.ParseEvidence(data)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := nitro.Parse(ev.Attestation.NSMQuote)
	if err != nil {
		t.Fatal(err)
	}
	pcr := func(i int) string { return hex.EncodeToString(doc.PCR(i)) }
	pinned := map[string][]string{"nitro.pcr0": {pcr(0)}, "nitro.pcr1": {pcr(1)}, "nitro.pcr2": {pcr(2)}}
	out, err := teeVerifier(t, nitroFixtureTime, nil, pinned).Verify(t.Context(), verifier.Evidence{Dstack: data})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Result
	if !r.Authentic || !r.Allow || r.Status != ear.StatusAffirming || r.TEE != claims.TEENitro || r.TEEVariant != dstack.TEEVariantNitroEnclave {
		t.Fatalf("authentic %v allow %v status %v tee %s variant %s reason %s %+v", r.Authentic, r.Allow, r.Status, r.TEE, r.TEEVariant, r.Reason, r.Appraisal)
	}
	for name, want := range map[string]string{
		"nitro.kind": "nitro-enclave", "nitro.module_id": "i-0827e799ec9232d44-enc019b5640fdf630d6",
		// The app-id event of an enclave is not measured: unverified.
		"unverified.dstack.app_id": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4", "dstack.tee_variant": "dstack-nitro-enclave",
		"dstack.os_image_hash":   "1894b0b29e94a9db16e88a2914f0923e52bb16c08bf3bb484df786a147e2eb79",
		"nitro.dstack_device_id": "de7d1b721a1e0632b7cf04edf5032c8ecffa9f9a08492152b926f1a5a7e765d7",
	} {
		if got, _ := r.Claims.String(name); got != want {
			t.Errorf("claim %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := r.Claims["dstack.app_id"]; ok {
		t.Error("an enclave's app id is a matchable claim")
	}
	if d, ok := r.Claims.Bool("nitro.debug"); !ok || d {
		t.Errorf("nitro.debug %v %v", d, ok)
	}
	if _, ok := out.TokenClaims.Submods[ear.SubmodNitro]; !ok {
		t.Errorf("submods %v", out.TokenClaims.Submods)
	}

	out, err = teeVerifier(t, nitroFixtureTime, nil, nil).Verify(t.Context(), verifier.Evidence{Dstack: data})
	if err != nil || !out.Result.Allow || out.Result.Status != ear.StatusWarning {
		t.Fatalf("unpinned: %v %+v", err, out.Result)
	}
	wrong := map[string][]string{"nitro.pcr0": {pcr(0)}, "nitro.pcr1": {pcr(0)}, "nitro.pcr2": {pcr(2)}}
	out, err = teeVerifier(t, nitroFixtureTime, nil, wrong).Verify(t.Context(), verifier.Evidence{Dstack: data})
	if err != nil || out.Result.Allow || out.Result.Appraisal.Failed[0].Rule != policy.RuleReferenceValue {
		t.Fatalf("wrong PCR1: %v %+v", err, out.Result.Appraisal)
	}
	late := nitroFixtureTime.Add(time.Hour + time.Millisecond)
	out, err = teeVerifier(t, late, nil, pinned).Verify(t.Context(), verifier.Evidence{Dstack: data})
	if err != nil || out.Result.Authentic || !errors.Is(out.Cause, nitro.ErrStale) || out.Result.TEEVariant != dstack.TEEVariantNitroEnclave {
		t.Fatalf("late: %v %+v", err, out.Result)
	}
	dbg := testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation_dbg.bin")
	out, err = teeVerifier(t, time.UnixMilli(1766650846577), nil, nil).Verify(t.Context(), verifier.Evidence{Dstack: dbg})
	if err != nil || out.Result.Authentic || !errors.Is(out.Cause, nitro.ErrDebug) {
		t.Fatalf("debug: %v %+v", err, out.Result)
	}
	// A nonce must equal the document's user_data (rule report_data).
	out, err = teeVerifier(t, nitroFixtureTime, nil, pinned).Verify(t.Context(), verifier.Evidence{Dstack: data, Nonce: []byte{1, 2, 3}})
	if err != nil || out.Result.Allow || out.Result.Appraisal.Failed[0].Rule != policy.RuleReportData {
		t.Fatalf("nonce: %v %+v", err, out.Result.Appraisal)
	}
	// No TDX image or ACPI check applies.
	if _, err := teeVerifier(t, nitroFixtureTime, nil, pinned).Verify(t.Context(), verifier.Evidence{Dstack: data, DstackInputs: &verifier.DstackInputs{ACPI: &measure.ACPIDigests{}}}); !errors.Is(err, verifier.ErrMalformedEvidence) {
		t.Fatalf("ACPI with Nitro evidence: %v", err)
	}
}

var teeNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func dstackEvents() []dstack.RuntimeEvent {
	return []dstack.RuntimeEvent{
		{Name: "system-preparing"}, {Name: "app-id", Payload: []byte("0123456789abcdefghij")},
		{Name: "compose-hash", Payload: make([]byte, 32)}, {Name: "instance-id", Payload: []byte("inst-id-01234567890a")},
		{Name: "key-provider", Payload: []byte(`{"name":"kms","id":"ab"}`)}, {Name: "system-ready"},
	}
}

// TestNitroTPMVerify: a simulated NitroTPM attestation verifies through
// Verify (tee nitro, tpm.* claims), is affirming with PCR4/7/12 pinned,
// and not authentic when a runtime event was added after the document
// was signed or under the pinned AWS root.
func TestNitroTPMVerify(t *testing.T) {
	ca, err := nitrosim.New(teeNow)
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.DstackNitroTPM(teeNow, nitrosim.DstackOptions{ReportData: [64]byte{9}, Events: dstackEvents()})
	if err != nil {
		t.Fatal(err)
	}
	d := nitrosim.NitroTPM(teeNow, nil, nil)
	pinned := map[string][]string{}
	for _, i := range []string{"4", "7", "12"} {
		n := map[string]int{"4": 4, "7": 7, "12": 12}[i]
		pinned["tpm.pcr"+i] = []string{hex.EncodeToString(d.PCRs[n])}
	}
	v := teeVerifier(t, teeNow, nil, pinned, verifier.WithNitroRoot(ca.Root))
	out, err := v.Verify(t.Context(), verifier.Evidence{Dstack: att, Nonce: []byte{9}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Result
	if !r.Authentic || r.Status != ear.StatusAffirming || r.TEE != claims.TEENitro || r.TEEVariant != dstack.TEEVariantAWSNitroTPM {
		t.Fatalf("%+v %+v", r, r.Appraisal)
	}
	if b, _ := r.Claims.String("tpm.bank"); b != "sha384" || r.Claims.Platform() != claims.PlatformNitroTPM {
		t.Errorf("tpm.bank %q platform %q", b, r.Claims.Platform())
	}
	if id, _ := r.Claims.String("dstack.instance_id"); id != hex.EncodeToString([]byte("inst-id-01234567890a")) {
		t.Errorf("instance id %s", id)
	}
	// A debug rule has nothing to check on NitroTPM, and an enclave's
	// PCR reference values do not apply to it.
	v = teeVerifier(t, teeNow, nil, map[string][]string{"nitro.pcr0": {"00"}, "tpm.pcr4": pinned["tpm.pcr4"], "tpm.pcr7": pinned["tpm.pcr7"], "tpm.pcr12": pinned["tpm.pcr12"]}, verifier.WithNitroRoot(ca.Root))
	if out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: att}); err != nil || out.Result.Status != ear.StatusAffirming {
		t.Fatalf("enclave reference value judged NitroTPM: %v %+v", err, out.Result.Appraisal)
	}
	tampered, err := ca.DstackNitroTPM(teeNow, nitrosim.DstackOptions{ReportData: [64]byte{9}, Events: dstackEvents(),
		Tamper: func(d *nitrosim.Doc) { d.PCRs[14] = make([]byte, 48) }})
	if err != nil {
		t.Fatal(err)
	}
	out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: tampered})
	if err != nil || out.Result.Authentic || !errors.Is(out.Cause, dstack.ErrEventLog) {
		t.Fatalf("PCR14 not the replay: %v %+v", err, out.Result)
	}
	out, err = teeVerifier(t, teeNow, nil, pinned).Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || out.Result.Authentic || !errors.Is(out.Cause, nitro.ErrChain) {
		t.Fatalf("AWS root: %v %+v", err, out.Result)
	}
}

// TestGCPTDXVerify: simulated dstack-gcp-tdx evidence (dcaptest TDX
// quote, tpmsim vTPM quote) verifies through Verify with tee tdx,
// variant dstack-gcp-tdx and the tpm.* claims; affirming with MRTD,
// PCR0 and PCR2 pinned. The accepted firmware PCR0 comes from the
// reference values (tpm.pcr0), not a constant: a reference value that
// differs from the quoted PCR0 makes the evidence not authentic, as a
// PCR0 dstack does not accept does.
func TestGCPTDXVerify(t *testing.T) {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tpmsim.New(f.Now, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := []verifier.Option{verifier.WithTrustedRoot(f.PKI.Root.Certificate), verifier.WithGCPTPMRoots(s.Root, []*x509.Certificate{s.Intermediate})}
	att, col, err := s.DstackGCP(f, tpmsim.GCPOptions{ReportData: [64]byte{7}, Events: dstackEvents()})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(att)
	if err != nil {
		t.Fatal(err)
	}
	var pcr2 [32]byte
	for _, d := range tpmsim.DefaultPCR2Events() {
		pcr2 = tpm.Extend(pcr2, d)
	}
	pinned := map[string][]string{
		"tdx.mr_td": {hex.EncodeToString(ev.Quote.TD.MRTD[:])},
		"tpm.pcr0":  {dstack.DefaultGCPFirmwarePCR0},
		"tpm.pcr2":  {hex.EncodeToString(pcr2[:])},
	}
	out, err := teeVerifier(t, f.Now, col, pinned, opts...).Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Result
	if !r.Authentic || r.Status != ear.StatusAffirming || r.TEE != claims.TEETDX || r.TEEVariant != dstack.TEEVariantGCPTDX || r.Claims.Platform() != claims.PlatformGCPTDX {
		t.Fatalf("%+v %+v", r, r.Appraisal)
	}
	if b, _ := r.Claims.String("tpm.bank"); b != "sha256" {
		t.Errorf("tpm.bank %q", b)
	}
	// Unpinned PCR2: a warning naming it.
	delete(pinned, "tpm.pcr2")
	out, err = teeVerifier(t, f.Now, col, pinned, opts...).Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || out.Result.Status != ear.StatusWarning || !strings.Contains(out.Result.Appraisal.Warnings[0].Expected, "tpm.pcr2") {
		t.Fatalf("unpinned PCR2: %v %+v", err, out.Result.Appraisal)
	}
	// Another accepted firmware: the quoted (default) PCR0 is refused.
	other := map[string][]string{"tpm.pcr0": {strings.Repeat("ab", 32)}}
	out, err = teeVerifier(t, f.Now, col, other, opts...).Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || out.Result.Authentic || !errors.Is(out.Cause, dstack.ErrMeasurement) || out.Result.TEEVariant != dstack.TEEVariantGCPTDX {
		t.Fatalf("firmware reference: %v %+v", err, out.Result)
	}
	// ... and that firmware, quoted, is accepted.
	f2, _ := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: f.PKI})
	p0, _ := hex.DecodeString(other["tpm.pcr0"][0])
	att2, col2, err := s.DstackGCP(f2, tpmsim.GCPOptions{Events: dstackEvents(), PCR0: p0})
	if err != nil {
		t.Fatal(err)
	}
	out, err = teeVerifier(t, f.Now, col2, other, opts...).Verify(t.Context(), verifier.Evidence{Dstack: att2})
	if err != nil || !out.Result.Authentic {
		t.Fatalf("new firmware: %v %+v", err, out.Result)
	}
	// The vTPM quote not bound to the TDX quote.
	f3, _ := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: f.PKI})
	att3, col3, err := s.DstackGCP(f3, tpmsim.GCPOptions{Events: dstackEvents(), ExtraData: func([]byte) []byte { return make([]byte, 32) }})
	if err != nil {
		t.Fatal(err)
	}
	out, err = teeVerifier(t, f.Now, col3, nil, opts...).Verify(t.Context(), verifier.Evidence{Dstack: att3})
	if err != nil || out.Result.Authentic || !errors.Is(out.Cause, dstack.ErrReportData) {
		t.Fatalf("unbound vTPM quote: %v %+v", err, out.Result)
	}
}
