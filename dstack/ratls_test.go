package dstack_test

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

func octets(t testing.TB, b []byte) []byte {
	t.Helper()
	v, err := asn1.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// raTLSCert issues a self-signed certificate for key with the given
// extension values (wrapped in OCTET STRINGs unless raw).
func raTLSCert(t testing.TB, key *ecdsa.PrivateKey, exts map[string][]byte, raw bool) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dstack app"},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	oids := map[string]asn1.ObjectIdentifier{
		"quote": dstack.OIDTDXQuote, "eventlog": dstack.OIDEventLog, "appid": dstack.OIDAppID,
		"usage": dstack.OIDCertUsage, "attestation": dstack.OIDAttestation, "appinfo": dstack.OIDAppInfo,
	}
	for name, v := range exts {
		if !raw {
			v = octets(t, v)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oids[name], Value: v})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func gzipELGZ(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(dstack.EventLogGzipMagic)
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRATLSAttestation parses a certificate carrying the real lite
// attestation: its REPORTDATA binds a different key, so the binding check
// fails.
func TestRATLSAttestation(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	der := raTLSCert(t, key, map[string][]byte{
		"attestation": attestationBytes(t), "appid": {0x86, 0xb0}, "usage": []byte("app:custom"), "appinfo": {0x80},
	}, false)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, in := range map[string][]byte{"der": der, "pem": pemBytes, "pem after key": append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), pemBytes...)} {
		ev, err := dstack.ParseEvidence(in)
		if err != nil {
			t.Fatalf("%s: ParseEvidence: %v", name, err)
		}
		c := ev.Certificate
		if ev.Format != dstack.FormatRATLS || c == nil || ev.Attestation == nil || len(ev.RuntimeEvents) != 9 ||
			!bytes.Equal(c.AppID, []byte{0x86, 0xb0}) || c.Usage != "app:custom" || !bytes.Equal(c.AppInfo, []byte{0x80}) {
			t.Fatalf("%s: evidence %+v, certificate %+v", name, ev, c)
		}
		_, err = dstack.VerifyEventLog(ev, dstack.Options{})
		re, ok := errors.AsType[*dstack.ReportDataError](err)
		if !errors.Is(err, dstack.ErrCertificateBinding) || !errors.Is(err, dstack.ErrReportData) || !ok ||
			re.Want != dstack.RATLSReportData(c.Certificate.RawSubjectPublicKeyInfo) || re.Quoted != ev.Quote.TD.ReportData {
			t.Fatalf("%s: VerifyEventLog = %v, want ErrCertificateBinding", name, err)
		}
	}
}

// TestRATLSBound verifies an RA-TLS certificate whose key is bound by a
// signed quote, with a version 1 attestation in extension .1.8.
func TestRATLSBound(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rd := dstack.RATLSReportData(spki)
	events := syntheticEvents()
	s := newSigned(t, dcaptest.TDXQuoteV4, events, rd, nil)
	a := &dstack.Attestation{Version: 1, Stack: dstack.StackDstack, Quote: s.quote.Raw, EventLog: eventlog.Strip(events), ReportData: rd, Config: `{"os_image_hash":"00"}`}
	for _, e := range events {
		a.RuntimeEvents = append(a.RuntimeEvents, dstack.RuntimeEvent{Name: e.Name, Payload: e.Payload, Version: e.Version})
	}
	att, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(raTLSCert(t, key, map[string][]byte{"attestation": att}, false))
	if err != nil {
		t.Fatal(err)
	}
	res, err := dstack.Verify(ev, s.collateral, s.options())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res.ReportDataChecks) != 2 || res.ReportDataChecks[1] != dstack.SourceCertificate || res.EvidenceFormat != dstack.FormatRATLS {
		t.Errorf("checks %q, format %s", res.ReportDataChecks, res.EvidenceFormat)
	}
	// Another key in the same certificate layout is not bound.
	ev, err = dstack.ParseEvidence(raTLSCert(t, newKey(t), map[string][]byte{"attestation": att}, false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dstack.Verify(ev, s.collateral, s.options()); !errors.Is(err, dstack.ErrCertificateBinding) {
		t.Fatalf("Verify(other key) = %v, want ErrCertificateBinding", err)
	}
}

// TestRATLSLegacyBesideAttestation: a certificate carries one evidence.
// Legacy extensions beside the attestation (.1.8) are refused unless they
// are the same evidence: the attestation's quote, its event log (plain or
// compressed). Before, they were ignored, so a certificate verified for
// the attestation could carry another TD's quote or log.
func TestRATLSLegacyBesideAttestation(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rd := dstack.RATLSReportData(spki)
	events := syntheticEvents()
	s := newSigned(t, dcaptest.TDXQuoteV4, events, rd, nil)
	other := newSigned(t, dcaptest.TDXQuoteV4, events[:3], rd, nil)
	a := &dstack.Attestation{Version: 1, Stack: dstack.StackDstack, Quote: s.quote.Raw, EventLog: eventlog.Strip(events), ReportData: rd}
	for _, e := range events {
		a.RuntimeEvents = append(a.RuntimeEvents, dstack.RuntimeEvent{Name: e.Name, Payload: e.Payload, Version: e.Version})
	}
	att, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	log := eventlog.MarshalEvents(events)
	otherLog := eventlog.MarshalEvents(events[:3])
	reordered := cloneEvents(events)
	reordered[1], reordered[2] = reordered[2], reordered[1]
	for _, c := range []struct {
		name string
		exts map[string][]byte
		ok   bool
	}{
		{"same quote", map[string][]byte{"quote": s.quote.Raw}, true},
		{"same log", map[string][]byte{"eventlog": log}, true},
		{"same log compressed, same quote", map[string][]byte{"eventlog": gzipELGZ(t, log), "quote": s.quote.Raw}, true},
		{"another quote", map[string][]byte{"quote": other.quote.Raw}, false},
		{"another log", map[string][]byte{"eventlog": otherLog}, false},
		{"reordered log", map[string][]byte{"eventlog": eventlog.MarshalEvents(reordered)}, false},
		{"empty log", map[string][]byte{"eventlog": []byte("[]")}, false},
	} {
		c.exts["attestation"] = att
		ev, err := dstack.ParseEvidence(raTLSCert(t, key, c.exts, false))
		if !c.ok {
			if !errors.Is(err, dstack.ErrMalformed) {
				t.Errorf("%s: ParseEvidence = %v, want ErrMalformed", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: ParseEvidence: %v", c.name, err)
		}
		if _, err := dstack.Verify(ev, s.collateral, s.options()); err != nil {
			t.Errorf("%s: Verify: %v", c.name, err)
		}
	}
}

// TestRATLSLegacy reads the legacy quote (.1.1) and event log (.1.2)
// extensions, plain and gzip-compressed.
func TestRATLSLegacy(t *testing.T) {
	t.Parallel()
	var gq struct {
		Quote    string `json:"quote"`
		EventLog string `json:"event_log"`
	}
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", "quote-report.json"), &gq); err != nil {
		t.Fatal(err)
	}
	rawQuote := unhex(t, gq.Quote)
	for name, log := range map[string][]byte{"plain": []byte(gq.EventLog), "gzip": gzipELGZ(t, []byte(gq.EventLog))} {
		ev, err := dstack.ParseEvidence(raTLSCert(t, newKey(t), map[string][]byte{"quote": rawQuote, "eventlog": log}, false))
		if err != nil {
			t.Fatalf("%s: ParseEvidence: %v", name, err)
		}
		if ev.Format != dstack.FormatRATLS || ev.Attestation != nil || len(ev.Events) != 28 || len(ev.RuntimeEvents) != 8 {
			t.Fatalf("%s: format %s, %d events", name, ev.Format, len(ev.Events))
		}
		if _, err := dstack.Verify(ev, quoteReportCollateral(t), dstack.Options{Now: quoteReportTime}); !errors.Is(err, dstack.ErrCertificateBinding) {
			t.Fatalf("%s: Verify = %v, want ErrCertificateBinding", name, err)
		}
	}
	// A decompressed event log above 16 KiB is refused.
	bomb := gzipELGZ(t, bytes.Repeat([]byte(" "), dstack.MaxEventLogExtensionSize+1))
	if _, err := dstack.ParseEvidence(raTLSCert(t, newKey(t), map[string][]byte{"quote": rawQuote, "eventlog": bomb}, false)); !errors.Is(err, dstack.ErrMalformed) {
		t.Fatalf("gzip bomb: %v, want ErrMalformed", err)
	}
	if _, err := dstack.ParseEvidence(raTLSCert(t, newKey(t), map[string][]byte{"quote": rawQuote, "eventlog": []byte("ELGZv1garbage")}, false)); !errors.Is(err, dstack.ErrMalformed) {
		t.Fatalf("bad gzip: %v, want ErrMalformed", err)
	}
}

func TestRATLSErrors(t *testing.T) {
	t.Parallel()
	for name, der := range map[string][]byte{
		"no extension":     raTLSCert(t, newKey(t), nil, false),
		"not octet string": raTLSCert(t, newKey(t), map[string][]byte{"attestation": {0x02, 0x01, 0x00}}, true),
		"bad attestation":  raTLSCert(t, newKey(t), map[string][]byte{"attestation": {0x00, 0x00}}, false),
		"bad quote":        raTLSCert(t, newKey(t), map[string][]byte{"quote": {0x04}}, false),
	} {
		if ev, err := dstack.ParseEvidence(der); !errors.Is(err, dstack.ErrMalformed) || ev != nil {
			t.Errorf("%s: ParseEvidence = %v, %v; want ErrMalformed", name, ev, err)
		}
	}
}
