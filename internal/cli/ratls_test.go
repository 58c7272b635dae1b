package cli

import (
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
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitrosim"
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
	serve := func(der []byte) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k1}}})
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
