package nitro_test

import (
	"bytes"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/nitro"
)

// FuzzParse: Parse never panics, never returns a document with an error,
// and a parsed document keeps the exact input and field invariants;
// Verify never accepts a document not chaining to the pinned root.
func FuzzParse(f *testing.F) {
	n := 0
	for _, rd := range realDocs {
		f.Add(readReal(f, rd.file))
		n++
	}
	ca := newCA(f)
	for _, d := range simDocs() {
		b, err := ca.Sign(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		n++
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
	_ = testvectors.Location
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := nitro.Parse(data)
		if err != nil {
			if d != nil {
				t.Fatal("document with error")
			}
			return
		}
		if !bytes.Equal(d.Raw, data) || d.ModuleID == "" || len(d.PCRs) == 0 || len(d.CABundle) == 0 {
			t.Fatalf("invariants broken: %+v", d)
		}
		for i, v := range d.PCRs {
			if len(v) != nitro.PCRSize || i < 0 || i > nitro.MaxPCRIndex {
				t.Fatalf("PCR%d of %d bytes", i, len(v))
			}
		}
		res, err := d.Verify(nitro.Options{Time: d.Timestamp(), AllowDebug: true})
		if err == nil && !res.Chain[len(res.Chain)-1].Equal(nitro.Root()) {
			t.Fatal("verified against another root")
		}
	})
}

func simDocs() []simDoc {
	return []simDoc{simEnclave(), simTPM()}
}
