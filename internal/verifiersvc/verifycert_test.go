package verifiersvc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/tpmsim"
	"github.com/tdproof/tdproof/verifier"
)

// simCert is a tdsim TD with an RA-TLS certificate bound to key.
type simCert struct {
	sim *tdsim.Sim
	key *ecdsa.PrivateKey
	att []byte // the attestation (V1) binding key
	der []byte // the RA-TLS certificate of key carrying att
	col *collateral.Collateral
	now time.Time
}

func newSimCert(t *testing.T) *simCert {
	t.Helper()
	sim, err := tdsim.New(tdsim.Config{PKI: sharedPKI(t), RuntimeEventVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []struct{ name, payload string }{{"app-id", "0123456789abcdefghij"}, {"compose-hash", "compose"}, {"system-ready", ""}} {
		if _, err := sim.Emit(ev.name, []byte(ev.payload)); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := tdsim.RATLSReportData(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	p, err := sim.Dstack(t.Context(), rd, `{"os_image_hash":"aa"}`)
	if err != nil {
		t.Fatal(err)
	}
	att, err := p.Attestation(1)
	if err != nil {
		t.Fatal(err)
	}
	der, err := tdsim.RATLSCertificate(key, tdsim.RATLSExtensions{Attestation: att})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	col, err := sim.Collateral(now)
	if err != nil {
		t.Fatal(err)
	}
	return &simCert{sim: sim, key: key, att: att, der: der, col: col, now: now}
}

// env is a service trusting the simulator's root, with its code pinned.
func (s *simCert) env(t *testing.T, at time.Time, opts verifiersvc.Options, vopts ...verifier.Option) *env {
	t.Helper()
	refs := refvalue.NewMemoryStore()
	for _, v := range s.sim.ReferenceValues() {
		if _, err := refs.Add(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	opts.RefValues = refs
	return newEnv(t, s.col, nil, at, opts, append([]verifier.Option{verifier.WithTrustedRoot(s.sim.TrustRoot())}, vopts...)...)
}

// postCert posts body with the given Content-Type to /v1/verify-cert.
func (e *env) postCert(t *testing.T, query, ctype string, body []byte) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/verify-cert"+query, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

// verdict decodes a 200 answer of /v1/verify-cert.
func verdict(t *testing.T, r response) dstack.CertVerification {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Fatalf("status %d %q: %s", r.status, r.ctype, r.body)
	}
	var v dstack.CertVerification
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return v
}

// refused checks a 200 is_valid false answer with code.
func refused(t *testing.T, what string, r response, code string) dstack.CertVerification {
	t.Helper()
	v := verdict(t, r)
	if v.IsValid || v.Details != nil || v.Code != code || v.Reason == "" {
		t.Fatalf("%s: %s, want is_valid false with code %s", what, r.body, code)
	}
	return v
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestVerifyCertSim: a tdsim RA-TLS certificate verifies in every body
// form, with dstack's --verify-cert details; a certificate of another key
// carrying the same attestation, an ordinary certificate and one that
// fails the profile are refused, as is the attestation under another
// root.
func TestVerifyCertSim(t *testing.T) {
	t.Parallel()
	s := newSimCert(t)
	e := s.env(t, s.now, verifiersvc.Options{})
	c, err := x509.ParseCertificate(s.der)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]response{
		"json pem":        e.postCert(t, "", "application/json", mustJSON(t, map[string]string{"certificate": string(pemCert(s.der))})),
		"json hex":        e.postCert(t, "", "application/json", mustJSON(t, map[string]string{"certificate": hex.EncodeToString(s.der)})),
		"json base64":     e.postCert(t, "", "application/json; charset=utf-8", mustJSON(t, map[string]string{"certificate": base64.StdEncoding.EncodeToString(s.der)})),
		"pkix-cert":       e.postCert(t, "", "application/pkix-cert", s.der),
		"x-pem-file":      e.postCert(t, "", "application/x-pem-file", pemCert(s.der)),
		"octet-stream":    e.postCert(t, "", "application/octet-stream", s.der),
		"policy in json":  e.postCert(t, "", "application/json", mustJSON(t, map[string]string{"certificate": string(pemCert(s.der)), "policy_id": policy.DefaultID})),
		"policy in query": e.postCert(t, "?policy_id="+policy.DefaultID, "application/pkix-cert", s.der),
	} {
		v := verdict(t, r)
		d := v.Details
		if !v.IsValid || v.Code != "" || v.Reason != "" || d == nil {
			t.Fatalf("%s: %s", name, r.body)
		}
		rd := dstack.RATLSReportData(c.RawSubjectPublicKeyInfo)
		if d.TEEVariant != "dstack-tdx" || d.ReportData != hex.EncodeToString(rd[:]) || d.PublicKeyDER != hex.EncodeToString(c.RawSubjectPublicKeyInfo) ||
			d.AppInfo.AppID != hex.EncodeToString([]byte("0123456789abcdefghij")) || d.AppInfo.ComposeHash != hex.EncodeToString([]byte("compose")) ||
			d.AppInfo.OSImageHash != "aa" || d.AppInfo.OSImageHashVerified || d.AppInfo.DeviceID == "" || d.AppInfo.MRAggregated == "" {
			t.Fatalf("%s: details %+v", name, d)
		}
	}

	// The same attestation in a certificate of another key.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	swapped, err := tdsim.RATLSCertificate(other, tdsim.RATLSExtensions{Attestation: s.att})
	if err != nil {
		t.Fatal(err)
	}
	refused(t, "key differs", e.postCert(t, "", "application/pkix-cert", swapped), "certificate_binding")
	// An ordinary certificate.
	plain, err := tdsim.RATLSCertificate(s.key, tdsim.RATLSExtensions{})
	if err != nil {
		t.Fatal(err)
	}
	refused(t, "not attested", e.postCert(t, "", "application/pkix-cert", plain), "not_attested")
	// An attestation extension that does not parse.
	garbled, err := tdsim.RATLSCertificate(s.key, tdsim.RATLSExtensions{Attestation: []byte{0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	refused(t, "garbled attestation", e.postCert(t, "", "application/pkix-cert", garbled), "malformed_attestation")
	// The profile: a certificate without a subject alternative name, and
	// the certificate past its validity (two days later).
	noSAN := ratlsCert(t, s.key, s.now, s.att, func(c *x509.Certificate) { c.DNSNames, c.IPAddresses = nil, nil })
	refused(t, "no SAN", e.postCert(t, "", "application/pkix-cert", noSAN), "certificate_profile")
	later := s.env(t, s.now.Add(48*time.Hour), verifiersvc.Options{})
	refused(t, "expired", later.postCert(t, "", "application/pkix-cert", s.der), "certificate_profile")
	// Another trust root: the quote does not verify.
	untrusted := newEnv(t, s.col, nil, s.now, verifiersvc.Options{})
	refused(t, "untrusted root", untrusted.postCert(t, "", "application/pkix-cert", s.der), "not_authentic")
}

// ratlsCert issues a certificate for key at now carrying att in extension
// .1.8, with dstack's profile unless edit changes it.
func ratlsCert(t *testing.T, key *ecdsa.PrivateKey, now time.Time, att []byte, edit func(*x509.Certificate)) []byte {
	t.Helper()
	ext, err := asn1.Marshal(att)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ExtraExtensions: []pkix.Extension{{Id: dstack.OIDAttestation, Value: ext}}}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestVerifyCertPolicy: the service's policy appraises the attestation:
// a policy that denies it refuses the certificate, an unknown policy is a
// 404.
func TestVerifyCertPolicy(t *testing.T) {
	t.Parallel()
	s := newSimCert(t)
	deny, err := policy.FromRules("out-of-date-only", "1", policy.Rules{AcceptedTCBStatuses: []string{"OutOfDate"}})
	if err != nil {
		t.Fatal(err)
	}
	e := s.env(t, s.now, verifiersvc.Options{}, verifier.WithPolicyResolver(func(_ context.Context, id string) (*policy.Policy, error) {
		if id == "" || id == deny.ID() {
			return deny, nil
		}
		return verifier.DefaultPolicyResolver(context.Background(), id)
	}))
	v := refused(t, "denied", e.postCert(t, "", "application/pkix-cert", s.der), "rejected")
	if !strings.Contains(v.Reason, "tcb_status") {
		t.Errorf("reason %q does not name the rule", v.Reason)
	}
	problemOf(t, e.postCert(t, "?policy_id=nope", "application/pkix-cert", s.der), http.StatusNotFound, "unknown_policy")
}

// TestVerifyCertMalformed: what is not a certificate request is a
// problem, never a verdict.
func TestVerifyCertMalformed(t *testing.T) {
	t.Parallel()
	s := newSimCert(t)
	e := s.env(t, s.now, verifiersvc.Options{MaxBodyBytes: 64 << 10})
	for _, c := range []struct {
		name, query, ctype string
		body               []byte
		status             int
		code               string
	}{
		{"garbage der", "", "application/pkix-cert", []byte("not a certificate"), 400, "malformed_evidence"},
		{"truncated der", "", "application/pkix-cert", s.der[:len(s.der)/2], 400, "malformed_evidence"},
		{"empty", "", "application/pkix-cert", nil, 400, "malformed_evidence"},
		{"pem without certificate", "", "application/x-pem-file", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), 400, "malformed_evidence"},
		{"json syntax", "", "application/json", []byte(`{"certificate":`), 400, "malformed_request"},
		{"json unknown member", "", "application/json", []byte(`{"certificate":"00","quote":"00"}`), 400, "malformed_request"},
		{"json missing certificate", "", "application/json", []byte(`{}`), 400, "malformed_request"},
		{"json not hex nor base64", "", "application/json", []byte(`{"certificate":"zz!"}`), 400, "malformed_evidence"},
		{"json certificate not a certificate", "", "application/json", []byte(`{"certificate":"00112233"}`), 400, "malformed_evidence"},
		{"json with query policy", "?policy_id=x", "application/json", mustJSON(t, map[string]string{"certificate": string(pemCert(s.der))}), 400, "malformed_request"},
		{"no content type", "", "", s.der, 415, "unsupported_media_type"},
		{"form", "", "application/x-www-form-urlencoded", s.der, 415, "unsupported_media_type"},
		{"too large", "", "application/pkix-cert", make([]byte, 65<<10), 413, "body_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			problemOf(t, e.postCert(t, c.query, c.ctype, c.body), c.status, c.code)
		})
	}
	r := e.get(t, "/v1/verify-cert")
	problemOf(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
}

// TestVerifyCertSharedMaterial wraps the real dstack evidence of the
// shared test data in RA-TLS certificates of a fresh key (no real RA-TLS
// certificate is public): the quotes verify at their pinned time, but
// they bind another key, so each certificate is refused for its binding.
func TestVerifyCertSharedMaterial(t *testing.T) {
	t.Parallel()
	col, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1774003274, 0).UTC()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var lite struct {
		Attestation string `json:"attestation"`
	}
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", "tdx-lite-attestation.json"), &lite); err != nil {
		t.Fatal(err)
	}
	att, err := hex.DecodeString(lite.Attestation)
	if err != nil {
		t.Fatal(err)
	}
	var gq struct {
		Quote    string `json:"quote"`
		EventLog string `json:"event_log"`
	}
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", "quote-report.json"), &gq); err != nil {
		t.Fatal(err)
	}
	q, err := hex.DecodeString(gq.Quote)
	if err != nil {
		t.Fatal(err)
	}
	legacy := ratlsCert(t, key, now, nil, func(c *x509.Certificate) {
		qe, _ := asn1.Marshal(q)
		le, _ := asn1.Marshal([]byte(gq.EventLog))
		c.ExtraExtensions = []pkix.Extension{{Id: dstack.OIDTDXQuote, Value: qe}, {Id: dstack.OIDEventLog, Value: le}}
	})
	var logs syncBuffer
	e := newEnv(t, col, nil, now, verifiersvc.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	for name, der := range map[string][]byte{"lite attestation (.1.8)": ratlsCert(t, key, now, att, nil), "legacy quote and event log (.1.1, .1.2)": legacy} {
		v := refused(t, name, e.postCert(t, "", "application/pkix-cert", der), "certificate_binding")
		if !strings.Contains(v.Reason, "ratls-cert") {
			t.Errorf("%s: reason %q", name, v.Reason)
		}
	}
	// Each request is in the access log with its route and outcome.
	if n := strings.Count(logs.String(), `"route":"/v1/verify-cert","status":200`); n != 2 || strings.Count(logs.String(), `"outcome":"certificate_binding"`) != 2 {
		t.Errorf("access log:\n%s", logs.String())
	}
	m := e.get(t, "/metrics")
	if !strings.Contains(string(m.body), `tdproof_verifications_total{outcome="certificate_binding",route="/v1/verify-cert"} 2`) {
		t.Errorf("metrics lack the verify-cert outcomes")
	}

	// The real dstack Nitro Enclave and SEV-SNP attestations of the
	// multi-TEE fixtures, each at its pinned time under the pinned roots.
	nitroAt := time.UnixMilli(1766678659346).UTC()
	ne := newEnv(t, nil, nil, nitroAt, verifiersvc.Options{})
	nitroAtt := testvectors.ReadFile(t, "multitee", "dstack", "dstack-attest__tests__nitro_attestation.bin")
	refused(t, "real nitro attestation", ne.postCert(t, "", "application/pkix-cert", ratlsCert(t, key, nitroAt, nitroAtt, nil)), "certificate_binding")
	var snp struct {
		Attestation string `json:"attestation"`
	}
	if err := json.Unmarshal(testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json"), &snp); err != nil {
		t.Fatal(err)
	}
	snpAtt, err := hex.DecodeString(snp.Attestation)
	if err != nil {
		t.Fatal(err)
	}
	snpAt := time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)
	se := newEnv(t, nil, nil, snpAt, verifiersvc.Options{})
	refused(t, "real SEV-SNP attestation", se.postCert(t, "", "application/pkix-cert", ratlsCert(t, key, snpAt, snpAtt, nil)), "certificate_binding")
}

// TestVerifyCertEveryPlatform: RA-TLS certificates around simulated
// dstack-nitro-enclave (nitrosim), dstack-aws-nitro-tpm (nitrosim) and
// dstack-gcp-tdx (dcaptest + tpmsim) attestations verify through the
// service's pipeline with the simulators' roots; the same attestation in
// a certificate of another key is refused for its binding, and, with
// WithCRLs, a Nitro chain whose intermediate is on the root's CRL is not
// authentic.
func TestVerifyCertEveryPlatform(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rd := dstack.RATLSReportData(spki)
	events := []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}, {Name: "compose-hash", Payload: make([]byte, 32)}}

	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	now := f.Now
	ca, err := nitrosim.New(now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.SetIntermediateCRL("http://crl.example/nitro-root.crl"); err != nil {
		t.Fatal(err)
	}
	tpmS, err := tpmsim.New(now, false)
	if err != nil {
		t.Fatal(err)
	}
	enclave, err := ca.DstackEnclave(now, nitrosim.DstackOptions{ReportData: rd, Events: events[:1]})
	if err != nil {
		t.Fatal(err)
	}
	ntpm, err := ca.DstackNitroTPM(now, nitrosim.DstackOptions{ReportData: rd, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	gcp, col, err := tpmS.DstackGCP(f, tpmsim.GCPOptions{ReportData: rd, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, col, nil, now, verifiersvc.Options{}, verifier.WithTrustedRoot(f.PKI.Root.Certificate),
		verifier.WithNitroRoot(ca.Root), verifier.WithGCPTPMRoots(tpmS.Root, []*x509.Certificate{tpmS.Intermediate}))
	for _, c := range []struct {
		variant string
		att     []byte
	}{{"dstack-nitro-enclave", enclave}, {"dstack-aws-nitro-tpm", ntpm}, {"dstack-gcp-tdx", gcp}} {
		t.Run(c.variant, func(t *testing.T) {
			v := verdict(t, e.postCert(t, "", "application/pkix-cert", ratlsCert(t, key, now, c.att, nil)))
			if !v.IsValid || v.Details == nil || v.Details.TEEVariant != c.variant || v.Details.ReportData != hex.EncodeToString(rd[:]) ||
				!v.Details.AppInfo.OSImageHashVerified {
				t.Fatalf("%+v %+v", v, v.Details)
			}
			refused(t, "key differs", e.postCert(t, "", "application/pkix-cert", ratlsCert(t, other, now, c.att, nil)), "certificate_binding")
		})
	}

	// Revocation through the service's verifier.
	for _, revoked := range []bool{false, true} {
		var serials []*big.Int
		if revoked {
			serials = append(serials, ca.Intermediate.SerialNumber)
		}
		der, err := ca.RootCRL(now.Add(-time.Hour), now.Add(time.Hour), serials...)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		re := newEnv(t, nil, nil, now, verifiersvc.Options{}, verifier.WithNitroRoot(ca.Root),
			verifier.WithCRLs(func(context.Context, []*x509.Certificate) ([]*x509.RevocationList, error) {
				return []*x509.RevocationList{l}, nil
			}))
		r := re.postCert(t, "", "application/pkix-cert", ratlsCert(t, key, now, enclave, nil))
		if revoked {
			v := refused(t, "revoked intermediate", r, "not_authentic")
			if !strings.Contains(v.Reason, "revoked") {
				t.Errorf("reason %q", v.Reason)
			}
		} else if v := verdict(t, r); !v.IsValid {
			t.Fatalf("current CRL: %+v", v)
		}
	}
}
