package dstack_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

func TestParseEvidenceFormats(t *testing.T) {
	t.Parallel()
	gq := testvectors.ReadFile(t, "dstack", "quote-report.json")
	raw := attestationBytes(t)
	var obj map[string]any
	if err := json.Unmarshal(gq, &obj); err != nil {
		t.Fatal(err)
	}
	rejson := func(mutate func(map[string]any)) []byte {
		m := map[string]any{}
		for k, v := range obj {
			m[k] = v
		}
		mutate(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var vmObj any
	if err := json.Unmarshal([]byte(obj["vm_config"].(string)), &vmObj); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		in     []byte
		format dstack.Format
		events int
		check  func(*testing.T, *dstack.Evidence)
	}{
		{"getquote", gq, dstack.FormatGetQuote, 28, nil},
		{"getquote leading space", append([]byte(" \n"), gq...), dstack.FormatGetQuote, 28, nil},
		{"vm_config object", rejson(func(m map[string]any) { m["vm_config"] = vmObj }), dstack.FormatGetQuote, 28, func(t *testing.T, ev *dstack.Evidence) {
			if ev.VMConfig == nil || ev.VMConfig.CPUCount != 16 || ev.VMConfig.QemuVersion != "9.2.1" {
				t.Errorf("vm_config %+v", ev.VMConfig)
			}
		}},
		{"vm_config nested sys-config", rejson(func(m map[string]any) {
			sys, _ := json.Marshal(map[string]any{"vm_config": obj["vm_config"], "mr_config": "doc", "kms_urls": []string{}})
			m["vm_config"] = string(sys)
		}), dstack.FormatGetQuote, 28, func(t *testing.T, ev *dstack.Evidence) {
			if ev.VMConfig == nil || !ev.VMConfig.Nested || ev.VMConfig.MRConfig != "doc" || hex.EncodeToString(ev.VMConfig.OSImageHash) != "14ad42d0270b444eaeb53918a5a94d9b17eec7a817cd336173b17c5327541c67" {
				t.Errorf("vm_config %+v", ev.VMConfig)
			}
		}},
		{"event_log array", rejson(func(m map[string]any) {
			var arr any
			_ = json.Unmarshal([]byte(m["event_log"].(string)), &arr)
			m["event_log"] = arr
		}), dstack.FormatGetQuote, 28, nil},
		{"no event_log", rejson(func(m map[string]any) { delete(m, "event_log") }), dstack.FormatGetQuote, 0, nil},
		{"0x quote, no report_data", rejson(func(m map[string]any) { m["quote"] = "0x" + m["quote"].(string); delete(m, "report_data") }), dstack.FormatGetQuote, 28, func(t *testing.T, ev *dstack.Evidence) {
			if ev.ReportData != nil {
				t.Error("report data without a report_data member")
			}
		}},
		{"attestation with unknown members", []byte(`{"attestation":"` + hex.EncodeToString(raw) + `","debug":false,"quote":null,"event_log":""}`), dstack.FormatAttestation, 12, nil},
		{"empty attestation ignored", rejson(func(m map[string]any) { m["attestation"] = "" }), dstack.FormatGetQuote, 28, nil},
		{"attestation wrapper", []byte(`{"attestation":"` + hex.EncodeToString(raw) + `"}`), dstack.FormatAttestation, 12, nil},
		{"raw attestation", raw, dstack.FormatAttestation, 12, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := dstack.ParseEvidence(tc.in)
			if err != nil {
				t.Fatalf("ParseEvidence: %v", err)
			}
			if ev.Format != tc.format || len(ev.Events) != tc.events || ev.Quote == nil || ev.Quote.TD == nil {
				t.Fatalf("format %s with %d events, want %s with %d", ev.Format, len(ev.Events), tc.format, tc.events)
			}
			if tc.check != nil {
				tc.check(t, ev)
			}
		})
	}
}

// TestAttestationBeside: dstack-verifier ignores quote, event_log,
// report_data and vm_config beside an attestation; tdproof accepts them
// only when they are the attestation's own, so that one request never
// carries two evidences of which one is silently not verified.
func TestAttestationBeside(t *testing.T) {
	t.Parallel()
	gq := testvectors.ReadFile(t, "dstack", "quote-report.json")
	var other map[string]any
	if err := json.Unmarshal(gq, &other); err != nil {
		t.Fatal(err)
	}
	raw := attestationBytes(t)
	a, err := dstack.ParseAttestation(raw)
	if err != nil {
		t.Fatal(err)
	}
	own, err := a.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	var ownLog []eventlog.Event
	for _, e := range own.Events {
		if !e.IsRuntime() {
			ownLog = append(ownLog, e)
		}
	}
	ownLog = append(ownLog, own.RuntimeEvents...)
	for _, tc := range []struct {
		name  string
		extra map[string]any
		ok    bool
	}{
		{"own quote", map[string]any{"quote": hex.EncodeToString(a.Quote)}, true},
		{"own event log", map[string]any{"event_log": string(eventlog.MarshalEvents(ownLog))}, true},
		{"own report data and vm_config", map[string]any{"report_data": hex.EncodeToString(a.ReportData[:]), "vm_config": a.Config}, true},
		{"another quote", map[string]any{"quote": other["quote"]}, false},
		{"another event log", map[string]any{"event_log": other["event_log"]}, false},
		{"own event log reordered", map[string]any{"event_log": string(eventlog.MarshalEvents(append(ownLog[1:], ownLog[0])))}, false},
		{"another report data", map[string]any{"report_data": other["report_data"]}, false},
		{"another vm_config", map[string]any{"vm_config": other["vm_config"]}, false},
	} {
		m := map[string]any{"attestation": hex.EncodeToString(raw)}
		for k, v := range tc.extra {
			m[k] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dstack.ParseEvidence(b)
		if tc.ok {
			if err != nil || ev.Format != dstack.FormatAttestation {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, dstack.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestParseEvidenceErrors(t *testing.T) {
	t.Parallel()
	gq := string(testvectors.ReadFile(t, "dstack", "quote-report.json"))
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", dstack.ErrMalformed},
		{"garbage", "\x42hello", dstack.ErrUnsupported},
		{"json array", "[1]", dstack.ErrUnsupported},
		{"json without quote", `{"vm_config":"{}"}`, dstack.ErrMalformed},
		{"duplicate member", `{"quote":"00","quote":"01"}`, dstack.ErrMalformed},
		{"quote not hex", `{"quote":"zz"}`, dstack.ErrMalformed},
		{"quote not a string", `{"quote":1}`, dstack.ErrMalformed},
		{"quote truncated", `{"quote":"0400"}`, dstack.ErrMalformed},
		{"attestation not hex", `{"attestation":"0g"}`, dstack.ErrMalformed},
		{"event_log not JSON", strings.Replace(gq, `"event_log":"[`, `"event_log":"x[`, 1), dstack.ErrMalformed},
		{"report_data too long", strings.Replace(gq, `"report_data":"`, `"report_data":"00`, 1), dstack.ErrMalformed},
		{"vm_config not JSON", strings.Replace(gq, `"vm_config":"{`, `"vm_config":"x{`, 1), dstack.ErrMalformed},
		{"pem without certificate", "-----BEGIN X-----\nAAAA\n-----END X-----\n", dstack.ErrMalformed},
		{"der garbage", "\x30\x03\x01\x01\x00", dstack.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "event_log not JSON" || tc.name == "report_data too long" || tc.name == "vm_config not JSON" {
				if tc.in == gq {
					t.Fatal("mutation did not apply")
				}
			}
			ev, err := dstack.ParseEvidence([]byte(tc.in))
			if !errors.Is(err, tc.want) || ev != nil {
				t.Fatalf("ParseEvidence = %v, %v; want nil, %v", ev, err, tc.want)
			}
		})
	}
}

func TestParseVMConfig(t *testing.T) {
	t.Parallel()
	flat := `{"os_image_hash":"AB01","cpu_count":2,"memory_size":2147483648,"num_nics":2,"qemu_single_pass_add_pages":true,"spec_version":1}`
	c, err := dstack.ParseVMConfig([]byte(flat))
	if err != nil {
		t.Fatal(err)
	}
	if c.Nested || c.CPUCount != 2 || c.MemorySize != 2<<30 || c.NumNICs == nil || *c.NumNICs != 2 || c.QemuSinglePassAddPages == nil || !*c.QemuSinglePassAddPages || c.PIC != nil || !bytes.Equal(c.OSImageHash, []byte{0xab, 1}) || c.Variant() != dstack.VariantLegacy {
		t.Errorf("flat: %+v", c)
	}
	nested, _ := json.Marshal(map[string]string{"vm_config": flat})
	c, err = dstack.ParseVMConfig(nested)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Nested || c.CPUCount != 2 || string(c.Raw) != flat {
		t.Errorf("nested: %+v", c)
	}
	for _, bad := range []string{`{"cpu_count":-1}`, `{"os_image_hash":"x"}`, `{"vm_config":1}`, `{"vm_config":"{"}`, `{"a":1,"a":2}`, `[]`} {
		if c, err := dstack.ParseVMConfig([]byte(bad)); !errors.Is(err, dstack.ErrMalformed) || c != nil {
			t.Errorf("ParseVMConfig(%s) = %v, %v; want ErrMalformed", bad, c, err)
		}
	}
}
