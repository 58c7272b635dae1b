package tdsim_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tdsim"
)

// TestDstackForms: every dstack form tdsim encodes parses back with
// package dstack and verifies (quote, RTMR3 replay, report data
// bindings) against the Sim's root and collateral.
func TestDstackForms(t *testing.T) {
	s := newSim(t, tdsim.Config{})
	for _, n := range []string{"app-id", "compose-hash", "system-ready"} {
		if _, err := s.Emit(n, []byte(n+" payload")); err != nil {
			t.Fatal(err)
		}
	}
	col, err := s.Collateral(at)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, what string, raw []byte) *dstack.Evidence {
		t.Helper()
		ev, err := dstack.ParseEvidence(raw)
		if err != nil {
			t.Fatalf("%s: parse: %v", what, err)
		}
		res, err := dstack.Verify(ev, col, dstack.Options{Now: at, TrustedRoot: s.TrustRoot()})
		if err != nil {
			t.Fatalf("%s: verify: %v", what, err)
		}
		if !res.RTMRs[3].Verified || res.Identity == nil || string(res.Identity.ComposeHash) != "compose-hash payload" {
			t.Fatalf("%s: RTMR3 %+v identity %+v", what, res.RTMRs[3], res.Identity)
		}
		return ev
	}
	rd := [64]byte{0: 7}
	p, err := s.Dstack(t.Context(), rd, `{"os_image_hash":"aa"}`)
	if err != nil {
		t.Fatal(err)
	}
	gq, err := p.GetQuoteJSON()
	if err != nil {
		t.Fatal(err)
	}
	if ev := verify(t, "getquote", gq); ev.Format != dstack.FormatGetQuote || ev.ReportData == nil || *ev.ReportData != rd || ev.VMConfig == nil {
		t.Fatalf("getquote: %+v", ev)
	}
	for _, v := range []int{0, 1} {
		a, err := p.Attestation(v)
		if err != nil {
			t.Fatal(err)
		}
		if ev := verify(t, "attestation", a); ev.Attestation == nil || ev.Attestation.Version != v {
			t.Fatalf("attestation v%d: %+v", v, ev.Attestation)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	krd, err := tdsim.RATLSReportData(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := s.Dstack(t.Context(), krd, "")
	if err != nil {
		t.Fatal(err)
	}
	att, err := kp.Attestation(1)
	if err != nil {
		t.Fatal(err)
	}
	der, err := tdsim.RATLSCertificate(key, tdsim.RATLSExtensions{Attestation: att})
	if err != nil {
		t.Fatal(err)
	}
	if ev := verify(t, "ratls", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); ev.Certificate == nil {
		t.Fatal("ratls: no certificate")
	}
	// Signed by another key, the certificate no longer binds the quote.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err = tdsim.RATLSCertificate(other, tdsim.RATLSExtensions{Attestation: att})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dstack.Verify(ev, col, dstack.Options{Now: at, TrustedRoot: s.TrustRoot()}); err == nil {
		t.Fatal("RA-TLS certificate of another key verified")
	}

	ccel, err := s.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := tdsim.KBSEvidence(p.Quote, ccel, p.EventLog, "{}")
	if err != nil {
		t.Fatal(err)
	}
	var te protocol.TDXEvidence
	if err := json.Unmarshal(kb, &te); err != nil {
		t.Fatal(err)
	}
	q, _ := base64.StdEncoding.DecodeString(te.Quote)
	c, _ := base64.StdEncoding.DecodeString(*te.CCEventLog)
	if !bytes.Equal(q, p.Quote) || !bytes.Equal(c, ccel) || te.VMConfig != "{}" || te.EventLog == "" {
		t.Fatalf("KBS evidence: %s", kb)
	}
	if kb, _ = tdsim.KBSEvidence(p.Quote, nil, nil, ""); !bytes.Contains(kb, []byte(`"cc_eventlog":null`)) || bytes.Contains(kb, []byte("event_log\":\"")) {
		t.Fatalf("KBS evidence without logs: %s", kb)
	}
}
