package nitro_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/nitrosim"
)

var simTime = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func newCA(t testing.TB) *nitrosim.CA {
	t.Helper()
	ca, err := nitrosim.New(simTime)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func userData() []byte {
	u := make([]byte, 64)
	for i := range u {
		u[i] = byte(i)
	}
	return u
}

func signPayload(t testing.TB, ca *nitrosim.CA, p map[string]any) []byte {
	t.Helper()
	b, err := nitrosim.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ca.SignRaw(nitrosim.ES384Protected, b, ca.LeafKey)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSimulatedPositive(t *testing.T) {
	ca := newCA(t)
	for _, d := range []nitrosim.Doc{nitrosim.Enclave(simTime, userData()), nitrosim.NitroTPM(simTime, userData(), nil)} {
		doc, err := ca.Sign(d)
		if err != nil {
			t.Fatal(err)
		}
		res, err := nitro.Verify(doc, nitro.Options{Time: simTime, Root: ca.Root, UserData: userData()})
		if err != nil {
			t.Fatalf("%v", err)
		}
		if (res.Kind == nitro.KindNitroTPM) != d.NitroTPM || len(res.Chain) != 3 {
			t.Fatalf("kind %s chain %d", res.Kind, len(res.Chain))
		}
		// Tag 18 is accepted too.
		if _, err := nitro.Verify(append([]byte{0xd2}, doc...), nitro.Options{Time: simTime, Root: ca.Root}); err != nil {
			t.Fatalf("tagged: %v", err)
		}
	}
}

// TestSimulatedNegative: each case makes one change to a valid document
// or to the options and expects one typed error.
func TestSimulatedNegative(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	base := func() nitrosim.Doc { return nitrosim.Enclave(simTime, userData()) }
	opts := func() nitro.Options { return nitro.Options{Time: simTime, Root: ca.Root, UserData: userData()} }
	signDoc := func(t *testing.T, d nitrosim.Doc) []byte {
		b, err := ca.Sign(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edit := func(f func(map[string]any)) func(*testing.T) ([]byte, nitro.Options) {
		return func(t *testing.T) ([]byte, nitro.Options) {
			p := ca.Payload(base())
			f(p)
			return signPayload(t, ca, p), opts()
		}
	}
	withDoc := func(f func(*nitrosim.Doc)) func(*testing.T) ([]byte, nitro.Options) {
		return func(t *testing.T) ([]byte, nitro.Options) {
			d := base()
			f(&d)
			return signDoc(t, d), opts()
		}
	}
	withOpts := func(f func(*nitro.Options)) func(*testing.T) ([]byte, nitro.Options) {
		return func(t *testing.T) ([]byte, nitro.Options) {
			o := opts()
			f(&o)
			return signDoc(t, base()), o
		}
	}
	rawSign := func(protected []byte, mutate func(payload, sig []byte) ([]byte, []byte, []byte)) func(*testing.T) ([]byte, nitro.Options) {
		return func(t *testing.T) ([]byte, nitro.Options) {
			p, err := nitrosim.Encode(ca.Payload(base()))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := nitrosim.SignatureES384(protected, p, ca.LeafKey)
			if err != nil {
				t.Fatal(err)
			}
			prot := protected
			if mutate != nil {
				prot, p, sig = mutate(p, sig)
			}
			out, err := nitrosim.Assemble(prot, p, sig)
			if err != nil {
				t.Fatal(err)
			}
			return out, opts()
		}
	}
	leafWith := func(t *testing.T, from, to time.Time, eku []x509.ExtKeyUsage, key *ecdsa.PrivateKey) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: from, NotAfter: to,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Intermediate, key.Public(), ca.InterKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	cases := []struct {
		name  string
		build func(*testing.T) ([]byte, nitro.Options)
		want  error
	}{
		{"alg ES256", rawSign([]byte{0xa1, 0x01, 0x26}, nil), nitro.ErrAlgorithm},
		{"alg missing", rawSign([]byte{0xa0}, nil), nitro.ErrAlgorithm},
		{"crit lists another header", rawSign([]byte{0xa3, 0x01, 0x38, 0x22, 0x02, 0x81, 0x04, 0x04, 0x41, 0x01}, nil), nitro.ErrAlgorithm},
		{"digest SHA256", edit(func(p map[string]any) { p["digest"] = "SHA256" }), nitro.ErrAlgorithm},
		{"module_id missing", edit(func(p map[string]any) { delete(p, "module_id") }), nitro.ErrMalformed},
		{"module_id bytes", edit(func(p map[string]any) { p["module_id"] = []byte("i-1") }), nitro.ErrMalformed},
		{"digest missing", edit(func(p map[string]any) { delete(p, "digest") }), nitro.ErrMalformed},
		{"timestamp missing", edit(func(p map[string]any) { delete(p, "timestamp") }), nitro.ErrMalformed},
		{"timestamp text", edit(func(p map[string]any) { p["timestamp"] = "1766678659346" }), nitro.ErrMalformed},
		{"timestamp negative", edit(func(p map[string]any) { p["timestamp"] = -1 }), nitro.ErrMalformed},
		{"pcrs missing", edit(func(p map[string]any) { delete(p, "pcrs") }), nitro.ErrMalformed},
		{"pcrs empty", edit(func(p map[string]any) { p["pcrs"] = map[int][]byte{} }), nitro.ErrMalformed},
		{"PCR of 32 bytes", withDoc(func(d *nitrosim.Doc) { d.PCRs[3] = make([]byte, 32) }), nitro.ErrMalformed},
		{"PCR index 40", withDoc(func(d *nitrosim.Doc) { d.PCRs[40] = make([]byte, 48) }), nitro.ErrMalformed},
		{"pcrs and nitrotpm_pcrs", edit(func(p map[string]any) { p["nitrotpm_pcrs"] = p["pcrs"] }), nitro.ErrMalformed},
		{"certificate missing", edit(func(p map[string]any) { delete(p, "certificate") }), nitro.ErrMalformed},
		{"cabundle empty", edit(func(p map[string]any) { p["cabundle"] = [][]byte{} }), nitro.ErrMalformed},
		{"user_data text", edit(func(p map[string]any) { p["user_data"] = "x" }), nitro.ErrMalformed},
		{"payload not a map", func(t *testing.T) ([]byte, nitro.Options) {
			out, err := ca.SignRaw(nitrosim.ES384Protected, []byte{0x80}, ca.LeafKey)
			if err != nil {
				t.Fatal(err)
			}
			return out, opts()
		}, nitro.ErrMalformed},
		{"trailing byte", func(t *testing.T) ([]byte, nitro.Options) {
			return append(signDoc(t, base()), 0xf6), opts()
		}, nitro.ErrMalformed},
		{"leading byte", func(t *testing.T) ([]byte, nitro.Options) {
			return append([]byte{0x00}, signDoc(t, base())...), opts()
		}, nitro.ErrMalformed},
		{"stale", withOpts(func(o *nitro.Options) { o.Time = simTime.Add(time.Hour + time.Millisecond) }), nitro.ErrStale},
		{"stale with short window", withOpts(func(o *nitro.Options) { o.Time = simTime.Add(2 * time.Minute); o.MaxAge = time.Minute }), nitro.ErrStale},
		{"future", withDoc(func(d *nitrosim.Doc) { d.Timestamp = simTime.Add(6 * time.Minute) }), nitro.ErrFuture},
		{"foreign root", withOpts(func(o *nitro.Options) { o.Root = other.Root }), nitro.ErrChain},
		{"pinned AWS root", withOpts(func(o *nitro.Options) { o.Root = nil }), nitro.ErrChain},
		{"intermediate missing", withDoc(func(d *nitrosim.Doc) { d.CABundle = [][]byte{ca.Root.Raw} }), nitro.ErrChain},
		{"cabundle[0] not trusted", withDoc(func(d *nitrosim.Doc) { d.CABundle = [][]byte{ca.Root.Raw, other.Intermediate.Raw} }), nitro.ErrChain},
		{"leaf expired", withDoc(func(d *nitrosim.Doc) {
			d.Certificate = leafWith(t, simTime.Add(-4*time.Hour), simTime.Add(-time.Second), nil, ca.LeafKey)
		}), nitro.ErrCertificateTime},
		{"leaf serverAuth only", withDoc(func(d *nitrosim.Doc) {
			d.Certificate = leafWith(t, simTime.Add(-time.Hour), simTime.Add(time.Hour), []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, ca.LeafKey)
		}), nitro.ErrChain},
		{"leaf P-256", func(t *testing.T) ([]byte, nitro.Options) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			d := base()
			d.Certificate = leafWith(t, simTime.Add(-time.Hour), simTime.Add(time.Hour), nil, k)
			return signDoc(t, d), opts()
		}, nitro.ErrKey},
		{"signed by another key", func(t *testing.T) ([]byte, nitro.Options) {
			p, _ := nitrosim.Encode(ca.Payload(base()))
			out, err := ca.SignRaw(nitrosim.ES384Protected, p, other.LeafKey)
			if err != nil {
				t.Fatal(err)
			}
			return out, opts()
		}, nitro.ErrSignature},
		{"signature 95 bytes", rawSign(nitrosim.ES384Protected, func(p, s []byte) ([]byte, []byte, []byte) { return nitrosim.ES384Protected, p, s[:95] }), nitro.ErrSignature},
		{"signature bit flip", rawSign(nitrosim.ES384Protected, func(p, s []byte) ([]byte, []byte, []byte) {
			s[10] ^= 1
			return nitrosim.ES384Protected, p, s
		}), nitro.ErrSignature},
		{"payload changed after signing", rawSign(nitrosim.ES384Protected, func(p, s []byte) ([]byte, []byte, []byte) {
			q, _ := nitrosim.Encode(ca.Payload(nitrosim.Enclave(simTime.Add(time.Second), userData())))
			return nitrosim.ES384Protected, q, s
		}), nitro.ErrSignature},
		{"protected header re-encoded", rawSign(nitrosim.ES384Protected, func(p, s []byte) ([]byte, []byte, []byte) {
			return []byte{0xa1, 0x01, 0x39, 0x00, 0x22}, p, s // -35 in a non-minimal encoding
		}), nitro.ErrSignature},
		{"user_data differs", withDoc(func(d *nitrosim.Doc) { d.UserData[0] ^= 1 }), nitro.ErrUserData},
		{"user_data absent", withDoc(func(d *nitrosim.Doc) { d.UserData = nil }), nitro.ErrUserData},
		{"nonce expected", withOpts(func(o *nitro.Options) { o.Nonce = []byte("n") }), nitro.ErrNonce},
		{"public_key differs", func(t *testing.T) ([]byte, nitro.Options) {
			d := base()
			d.PublicKey = []byte("key-a")
			o := opts()
			o.PublicKey = []byte("key-b")
			return signDoc(t, d), o
		}, nitro.ErrPublicKey},
		{"debug enclave", withDoc(func(d *nitrosim.Doc) {
			for i := 0; i < 3; i++ {
				d.PCRs[i] = make([]byte, 48)
			}
		}), nitro.ErrDebug},
		{"NitroTPM where enclave required", func(t *testing.T) ([]byte, nitro.Options) {
			o := opts()
			o.Kind = nitro.KindEnclave
			return signDoc(t, nitrosim.NitroTPM(simTime, userData(), nil)), o
		}, nitro.ErrKind},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, o := c.build(t)
			res, err := nitro.Verify(doc, o)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if res != nil {
				t.Fatal("a result with an error")
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d negative cases", len(cases))
	}
}

type simDoc = nitrosim.Doc

func simEnclave() nitrosim.Doc { return nitrosim.Enclave(simTime, userData()) }
func simTPM() nitrosim.Doc     { return nitrosim.NitroTPM(simTime, userData(), nil) }
