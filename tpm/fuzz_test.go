package tpm_test

import (
	"bytes"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

// FuzzParseAttest: ParseAttest never panics, never returns a result with
// an error, and an accepted message is exactly its own re-encoding, so
// Raw is the input.
func FuzzParseAttest(f *testing.F) {
	f.Add(testvectors.ReadFile(f, "multitee", "dstack", "tpm-attest__tests__tpm_quote_sample.bin"))
	pcrs, _ := simPCRs()
	f.Add(tpmsim.Attest(make([]byte, 32), pcrs))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := tpm.ParseAttest(data)
		if err != nil {
			if a != nil {
				t.Fatal("result with error")
			}
			return
		}
		if !bytes.Equal(a.Raw, data) {
			t.Fatal("Raw differs from input")
		}
		for _, s := range a.Selections {
			for _, p := range s.PCRs {
				if p < 0 || p >= 8*256 {
					t.Fatalf("PCR index %d", p)
				}
			}
		}
	})
}

// FuzzEventLog: a binary TCG log that parses yields SHA-256 pairs that
// replay to what ReplayLog says, and FindUKI never panics.
func FuzzEventLog(f *testing.F) {
	f.Add(testvectors.ReadFile(f, "multitee", "dstack", "cc-eventlog__samples__tpm_eventlog.bin"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := eventlog.ParseCCEL(data)
		if err != nil {
			return
		}
		evs, err := tpm.LogEvents(l)
		if err != nil {
			return
		}
		vals, err := tpm.ReplayLog(l)
		if err != nil {
			t.Fatalf("LogEvents ok but ReplayLog: %v", err)
		}
		direct := tpm.ReplayEvents(evs)
		for i, v := range direct {
			if i != 0 && vals[i] != v {
				t.Fatalf("PCR%d: %x vs %x", i, vals[i], v)
			}
		}
		if u, err := tpm.FindUKI(l, 2); err == nil && len(u.Digest) != 32 {
			t.Fatal("UKI digest not 32 bytes")
		}
	})
}
