package eventlog_test

import (
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// BenchmarkReplayCCEL measures parsing a CCEL, converting it and replaying
// the RTMRs.
func BenchmarkReplayCCEL(b *testing.B) {
	run := func(b *testing.B, data []byte) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			c, err := eventlog.ParseCCEL(data)
			if err != nil {
				b.Fatal(err)
			}
			events, err := c.TDXEvents()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := eventlog.Replay(events); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("synthetic", func(b *testing.B) {
		data, _ := buildCCEL(sha384Only, sampleEvents(), 0xFF, 4096)
		run(b, data)
	})
	b.Run("ccel.bin", func(b *testing.B) {
		run(b, testvectors.ReadFile(b, "dstack", "ccel.bin"))
	})
}
