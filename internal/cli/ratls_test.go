package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

var ratlsAt = time.Now().UTC().Truncate(time.Second)

// simRATLS makes a self-signed dstack RA-TLS certificate for certKey
// carrying a Nitro Enclave attestation (signed by ca at ratlsAt) whose
// report data binds boundKey; attested false leaves the extension out.
func simRATLS(t *testing.T, ca *nitrosim.CA, certKey, boundKey *ecdsa.PrivateKey, attested bool) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   ratlsAt.Add(-time.Hour), NotAfter: ratlsAt.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if attested {
		spki, _ := x509.MarshalPKIXPublicKey(&boundKey.PublicKey)
		rd := dstack.RATLSReportData(spki)
		d := nitrosim.Enclave(ratlsAt, rd[:])
		doc, err := ca.Sign(d)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for i := 0; i < 3; i++ {
			h.Write(d.PCRs[i])
		}
		cfg, _ := json.Marshal(map[string]string{"os_image_hash": hex.EncodeToString(h.Sum(nil))})
		att := &dstack.Attestation{Platform: dstack.PlatformNitroEnclave, NSMQuote: doc, ReportData: rd, Config: string(cfg),
			RuntimeEvents: []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}}}
		raw, err := att.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ext, _ := asn1.Marshal(raw)
		tmpl.ExtraExtensions = []pkix.Extension{{Id: dstack.OIDAttestation, Value: ext}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestDstackVerifyCert(t *testing.T) {
	ca, err := nitrosim.New(ratlsAt)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	root := writeFile(t, dir, "root.der", ca.Root.Raw)
	good := writeFile(t, dir, "good.der", simRATLS(t, ca, k1, k1, true))
	args := []string{"dstack", "verify-cert", good, "--trusted-root", root, "--out"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out dstack.CertVerification
	decodeJSON(t, o, &out)
	if !out.IsValid || out.Details.TEEVariant != "dstack-nitro-enclave" || !out.Details.AppInfo.OSImageHashVerified ||
		out.Details.AppInfo.AppID != hex.EncodeToString([]byte("0123456789abcdefghij")) {
		t.Fatalf("%+v", out)
	}
	if b, err := os.ReadFile(good + ".ratls-verification.json"); err != nil || len(b) == 0 {
		t.Fatalf("--out: %v", err)
	}
	// The certificate's key differs from the attested one.
	bad := writeFile(t, dir, "bad.der", simRATLS(t, ca, k2, k1, true))
	args = []string{"dstack", "verify-cert", bad, "--trusted-root", root}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	// Outside the certificate's validity.
	args = []string{"dstack", "verify-cert", good, "--trusted-root", root, "--at", ratlsAt.Add(2 * time.Hour).Format(time.RFC3339)}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	// The pinned AWS root does not accept the simulator's document.
	args = []string{"dstack", "verify-cert", good}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
}

func TestDstackConnect(t *testing.T) {
	ca, err := nitrosim.New(ratlsAt)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := writeFile(t, t.TempDir(), "root.der", ca.Root.Raw)
	serve := func(der []byte) string { return serveRATLS(t, der, k1) }
	addr := serve(simRATLS(t, ca, k1, k1, true))
	args := []string{"dstack", "connect", addr, "--trusted-root", root}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out dstack.CertVerification
	decodeJSON(t, o, &out)
	if !out.IsValid {
		t.Fatalf("%+v", out)
	}
	// A TLS server whose certificate carries no attestation.
	plain := serve(simRATLS(t, ca, k1, k1, false))
	args = []string{"dstack", "connect", plain, "--trusted-root", root}
	if o := invoke(t, nil, args...); o.code == exitOK {
		t.Fatalf("non-attested endpoint accepted: %s", o.stdout)
	}
}

// tdsimRATLS is a tdsim TD's RA-TLS certificate (dstack-tdx) with the
// files verify-cert needs: collateral at now and the simulator's root.
type tdsimRATLS struct {
	sim                    *tdsim.Sim
	key                    *ecdsa.PrivateKey
	att, der               []byte
	cert, collateral, root string
	now                    time.Time
}

func newTDSimRATLS(t *testing.T) *tdsimRATLS {
	t.Helper()
	sim, err := tdsim.New(tdsim.Config{RuntimeEventVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Emit("app-id", []byte("0123456789abcdefghij")); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rd, err := tdsim.RATLSReportData(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	p, err := sim.Dstack(t.Context(), rd, "")
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
	now := ratlsAt
	rc, err := sim.RawCollateral(now)
	if err != nil {
		t.Fatal(err)
	}
	js, err := rc.QVLJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &tdsimRATLS{sim: sim, key: key, att: att, der: der, now: now,
		cert:       writeFile(t, dir, "app.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		collateral: writeFile(t, dir, "collateral.json", js),
		root:       writeFile(t, dir, "root.pem", sim.TrustRootPEM())}
}

// TestDstackVerifyCertTDX: a tdsim (dstack-tdx) RA-TLS certificate
// verifies through the service's pipeline; the same attestation in a
// certificate of another key is not authentic (exit 4), and the
// verdict is the one POST /v1/verify-cert gives for the certificate.
func TestDstackVerifyCertTDX(t *testing.T) {
	s := newTDSimRATLS(t)
	at := s.now.Format(time.RFC3339)
	args := []string{"dstack", "verify-cert", s.cert, "--collateral", s.collateral, "--trusted-root", s.root, "--at", at, "--out"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var cli map[string]any
	decodeJSON(t, o, &cli)
	written, err := os.ReadFile(s.cert + ".ratls-verification.json")
	if err != nil || !bytes.Equal(written, []byte(o.stdout)) {
		t.Fatalf("--out wrote %q (%v), stdout %q", written, err, o.stdout)
	}
	if d, _ := cli["details"].(map[string]any); cli["is_valid"] != true || d["tee_variant"] != "dstack-tdx" {
		t.Fatalf("%s", o.stdout)
	}

	// The service's answer for the same certificate at the same time.
	col, err := s.sim.Collateral(s.now)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ear.GenerateKey(nil)
	ks, _ := ear.NewKeySet(k)
	signer, err := ear.NewSigner(ks)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil }),
		nil, signer, verifier.WithTrustedRoot(s.sim.TrustRoot()), verifier.WithClock(func() time.Time { return s.now }))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { return []byte(`{"keys":[]}`) }, verifiersvc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1/verify-cert", "application/pkix-cert", bytes.NewReader(s.der))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var svcOut map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&svcOut); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("service: %d %v", resp.StatusCode, err)
	}
	if !reflect.DeepEqual(cli, svcOut) {
		t.Fatalf("CLI and service differ:\nCLI     %v\nservice %v", cli, svcOut)
	}

	// The attestation in a certificate of another key.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	swapped, err := tdsim.RATLSCertificate(other, tdsim.RATLSExtensions{Attestation: s.att})
	if err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, t.TempDir(), "swapped.der", swapped)
	args = []string{"dstack", "verify-cert", bad, "--collateral", s.collateral, "--trusted-root", s.root, "--at", at, "--out"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	if _, err := os.Stat(bad + ".ratls-verification.json"); !os.IsNotExist(err) {
		t.Fatalf("a refused certificate wrote its output (%v)", err)
	}
	// --out beside stdin is refused.
	args = []string{"dstack", "verify-cert", "-", "--collateral", s.collateral, "--trusted-root", s.root, "--out"}
	invoke(t, s.der, args...).wantCode(t, exitUsage, args...)
}

// TestDstackConnectTDX: connect verifies a local TLS server presenting a
// tdsim RA-TLS certificate and refuses one presenting the same
// attestation in a certificate of another key.
func TestDstackConnectTDX(t *testing.T) {
	s := newTDSimRATLS(t)
	common := []string{"--collateral", s.collateral, "--trusted-root", s.root, "--at", s.now.Format(time.RFC3339)}
	args := append([]string{"dstack", "connect", serveRATLS(t, s.der, s.key)}, common...)
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out dstack.CertVerification
	decodeJSON(t, o, &out)
	if !out.IsValid || out.Details.TEEVariant != "dstack-tdx" {
		t.Fatalf("%s", o.stdout)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	swapped, err := tdsim.RATLSCertificate(other, tdsim.RATLSExtensions{Attestation: s.att})
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"dstack", "connect", serveRATLS(t, swapped, other)}, common...)
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
}

// TestDstackVerifyCertSharedMaterial: the real lite attestation of the
// shared test data in an RA-TLS certificate of a fresh key: the quote
// verifies at its pinned time with the shared collateral, and the
// attestation binds another key: not authentic (exit 4), nothing written.
func TestDstackVerifyCertSharedMaterial(t *testing.T) {
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
	at := time.Unix(1774003274, 0).UTC()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ext, _ := asn1.Marshal(att)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example"},
		NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, ExtraExtensions: []pkix.Extension{{Id: dstack.OIDAttestation, Value: ext}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert := writeFile(t, t.TempDir(), "lite.der", der)
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	args := []string{"dstack", "verify-cert", cert, "--collateral", coll, "--at", at.Format(time.RFC3339), "--out"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stderr, "ratls-cert") {
		t.Errorf("stderr %q does not name the binding", o.stderr)
	}
	if _, err := os.Stat(cert + ".ratls-verification.json"); !os.IsNotExist(err) {
		t.Fatalf("a refused certificate wrote its output (%v)", err)
	}
}

// serveRATLS serves TLS handshakes with the certificate der (of key) on a
// local port until the test ends, and returns its address.
func serveRATLS(t *testing.T, der []byte, key *ecdsa.PrivateKey) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}
