package pckcert_test

import (
	"encoding/asn1"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

type kv struct {
	ID    asn1.ObjectIdentifier
	Value any
}

// syntheticExtension encodes an SGX extension the way Intel does.
func syntheticExtension(t testing.TB, platform bool) []byte {
	t.Helper()
	oid := func(tail ...int) asn1.ObjectIdentifier {
		return append(asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}, tail...)
	}
	var tcb []kv
	for i := 1; i <= 16; i++ {
		tcb = append(tcb, kv{oid(2, i), i})
	}
	tcb = append(tcb, kv{oid(2, 17), 13}, kv{oid(2, 18), make([]byte, 16)})
	entries := []kv{
		{oid(1), make([]byte, 16)},
		{oid(2), tcb},
		{oid(3), []byte{0, 0}},
		{oid(4), []byte{0x90, 0xc0, 0x6f, 0, 0, 0}},
		{oid(5), asn1.Enumerated(1)},
	}
	if platform {
		entries = append(entries, kv{oid(6), make([]byte, 16)},
			kv{oid(7), []kv{{oid(7, 1), false}, {oid(7, 2), true}, {oid(7, 3), true}}})
	}
	b, err := asn1.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSyntheticExtension(t *testing.T) {
	x, err := pckcert.ParseExtension(syntheticExtension(t, true))
	if err != nil {
		t.Fatal(err)
	}
	if x.TCB.Components[15] != 16 || x.TCB.PCESVN != 13 || x.SGXType != pckcert.SGXTypeScalable || x.PlatformInstanceID == nil {
		t.Errorf("unexpected %+v", x)
	}
	if c := x.Configuration; c == nil || c.CachedKeys == nil || !*c.CachedKeys || *c.DynamicPlatform {
		t.Errorf("configuration %+v", c)
	}
	if _, err := pckcert.ParseExtension(syntheticExtension(t, false)); err != nil {
		t.Errorf("processor-style extension: %v", err)
	}
}

func FuzzParsePCKExtension(f *testing.F) {
	f.Add(syntheticExtension(f, true))
	f.Add(syntheticExtension(f, false))
	dir := testvectors.Location()
	for _, name := range []string{"tdx-v4-b0c06f", "sgx-v3-00a067", "tdx-v5-90c06f"} {
		raw, err := os.ReadFile(filepath.Join(dir, "dcap", name, "quote.bin"))
		if err != nil {
			continue
		}
		q, err := quote.Parse(raw)
		if err != nil {
			f.Fatal(err)
		}
		chain, err := pckcert.ParseChainPEM(q.Signature.Certification.PCKChain)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range chain[0].Extensions {
			if e.Id.Equal(pckcert.OIDSGXExtension) {
				f.Add(e.Value)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		x, err := pckcert.ParseExtension(der)
		if (err == nil) == (x == nil) {
			t.Fatalf("result %v with error %v", x, err)
		}
		if err == nil {
			// Deterministic: the same bytes decode the same way.
			y, err := pckcert.ParseExtension(der)
			if err != nil || y.FMSPC != x.FMSPC || y.TCB != x.TCB {
				t.Fatal("second parse differs")
			}
		}
	})
}
