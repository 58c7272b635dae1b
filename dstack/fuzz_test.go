package dstack

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// fuzzAttestations are synthetic attestations covering the optional parts
// of both encodings.
func fuzzAttestations() []*Attestation {
	base := func(v int) *Attestation {
		a := &Attestation{
			Version: v,
			Quote:   bytes.Repeat([]byte{4}, 70),
			EventLog: []eventlog.Event{
				{IMR: 0, Type: eventlog.EvPlatformConfigFlags, Digest: bytes.Repeat([]byte{1}, 48), Name: "acpi-rsdp", Payload: []byte("ACPI DATA")},
				{IMR: 3, Type: eventlog.EvDstackRuntime, Name: "app-id", Payload: []byte{1, 2}},
			},
			RuntimeEvents: []RuntimeEvent{{Name: "app-id", Payload: []byte{1, 2}}},
			ReportData:    [64]byte{1, 2, 3},
			Config:        `{"os_image_hash":"00"}`,
		}
		if v == 1 {
			a.Stack = StackDstack
		}
		return a
	}
	pod := base(1)
	pod.Stack, pod.ReportDataPayload, pod.ByteArrays = StackDstackPod, "payload", true
	v2 := base(1)
	v2.EventLog[1].Version, v2.EventLog[1].Preimage, v2.RuntimeEvents[0].Version = 2, []byte("{}"), 2
	out := []*Attestation{base(0), base(1), pod, v2, {Version: 0}, {Version: 1, Stack: StackDstack}}
	for v := 0; v <= 1; v++ {
		for _, kind := range []string{PlatformNitroEnclave, PlatformAWSNitroTPM, PlatformGCPTDX} {
			a := base(v)
			a.Platform = kind
			switch kind {
			case PlatformNitroEnclave:
				a.Quote, a.EventLog, a.NSMQuote = nil, nil, []byte{0x84, 0x40, 0xa0, 0x40, 0x40}
			case PlatformAWSNitroTPM:
				a.Quote, a.EventLog, a.NitroTPMDocument = nil, nil, []byte{0x84, 0x40, 0xa0, 0x40, 0x40}
			case PlatformGCPTDX:
				a.TPMQuote = &TPMQuote{Message: []byte{1}, Signature: []byte{2}, AKCert: []byte{3}, Platform: 1,
					PCRValues: []TPMPCRValue{{Index: 0, Algorithm: "sha256", Value: bytes.Repeat([]byte{5}, 32)}},
					EventLog:  []TPMEvent{{PCRIndex: 2, Digest: bytes.Repeat([]byte{6}, 32)}}}
			}
			out = append(out, a)
		}
	}
	return out
}

// sharedNitroVectors are the real dstack Nitro attestations (V0), when
// present.
func sharedNitroVectors() [][]byte {
	var out [][]byte
	for _, n := range []string{"dstack-attest__tests__nitro_attestation.bin", "nsm-qvl__tests__nitro_attestation.bin"} {
		if b, err := os.ReadFile(filepath.Join(testvectors.Location(), "multitee", "dstack", n)); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// sharedVector reads a shared test vector if present; fuzz seeds use it
// without skipping when it is absent.
func sharedVector(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join(testvectors.Location(), "dstack", name))
	if err != nil {
		return nil
	}
	return b
}

func sharedAttestation(f *testing.F) []byte {
	f.Helper()
	var w struct{ Attestation string }
	if js := sharedVector(f, "tdx-lite-attestation.json"); js == nil || json.Unmarshal(js, &w) != nil {
		return nil
	}
	b, err := hex.DecodeString(w.Attestation)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func addSeeds(f *testing.F, version int) {
	f.Helper()
	n := 0
	add := func(b []byte) {
		if b != nil {
			f.Add(b)
			n++
		}
	}
	for _, a := range fuzzAttestations() {
		if a.Version != version {
			continue
		}
		b, err := a.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
	for _, b := range sharedNitroVectors() {
		if version == 0 {
			add(b)
		} else if a, err := ParseAttestation(b); err == nil {
			a.Version, a.Stack = 1, StackDstack
			if b, err = a.Marshal(); err != nil {
				f.Fatal(err)
			}
			add(b)
		}
	}
	if real := sharedAttestation(f); real != nil {
		if version == 0 {
			add(real)
		} else if a, err := ParseAttestation(real); err == nil {
			a.Version, a.Stack = 1, StackDstack
			b, err := a.Marshal()
			if err != nil {
				f.Fatal(err)
			}
			add(b)
		}
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
}

// FuzzDecodeSCALE: an error means a nil result; an accepted input
// re-encodes to exactly the same bytes (the decoder is canonical) and
// decodes to the same value.
func FuzzDecodeSCALE(f *testing.F) {
	addSeeds(f, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeSCALE(data)
		if err != nil {
			if a != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		b, err := a.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded attestation: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs from the input")
		}
		a2, err := ParseAttestation(b)
		if err != nil || !reflect.DeepEqual(a, a2) {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

// FuzzDecodeMsgpack: an error means a nil result; an accepted input
// re-encodes to bytes that decode to the same value and encode
// identically again.
func FuzzDecodeMsgpack(f *testing.F) {
	addSeeds(f, 1)
	f.Add([]byte{0x80})
	f.Add([]byte{0x83, 0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeMsgpack(data)
		if err != nil {
			if a != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		b, err := a.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded attestation: %v", err)
		}
		a2, err := decodeMsgpack(b)
		if err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("re-decoded attestation differs:\n%+v\n%+v", a, a2)
		}
		if b2, err := a2.Marshal(); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not deterministic: %v", err)
		}
	})
}

func fuzzCertificate(f *testing.F, att []byte) []byte {
	f.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	v, err := asn1.Marshal(att)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "fuzz"},
		NotBefore:       time.Unix(0, 0),
		NotAfter:        time.Unix(1<<31, 0),
		ExtraExtensions: []pkix.Extension{{Id: OIDAttestation, Value: v}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	return der
}

// FuzzParseEvidence: an error means a nil result; accepted evidence has a
// quote, and VerifyEventLog on it returns a result or an error, never
// both, and never panics.
func FuzzParseEvidence(f *testing.F) {
	for _, name := range []string{"quote-report.json", "tdx-lite-getquote.json", "tdx-lite-attestation.json"} {
		if b := sharedVector(f, name); b != nil {
			f.Add(b)
		}
	}
	if real := sharedAttestation(f); real != nil {
		f.Add(real)
		der := fuzzCertificate(f, real)
		f.Add(der)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	for _, a := range fuzzAttestations() {
		b, err := a.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add([]byte(`{"attestation":"` + hex.EncodeToString(b) + `"}`))
	}
	for _, b := range sharedNitroVectors() {
		f.Add(b)
	}
	f.Add([]byte(`{"quote":"00","event_log":"[]","vm_config":{"vm_config":"{}"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvidence(data)
		if err != nil {
			if ev != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if a := ev.Attestation; a != nil && (a.Platform == PlatformNitroEnclave || a.Platform == PlatformAWSNitroTPM) {
			if ev.Quote != nil {
				t.Fatal("Nitro evidence with a TDX quote")
			}
			res, err := VerifyNitro(ev, NitroOptions{})
			if (res == nil) == (err == nil) {
				t.Fatalf("VerifyNitro: result %v, error %v", res != nil, err)
			}
			return
		}
		if ev.Quote == nil {
			t.Fatal("evidence without a quote")
		}
		res, err := VerifyEventLog(ev, Options{})
		if (res == nil) == (err == nil) {
			t.Fatalf("VerifyEventLog: result %v, error %v", res != nil, err)
		}
	})
}
