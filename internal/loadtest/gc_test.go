package loadtest

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// serveGC runs the test with the garbage-collection target tdproof serve
// uses (verifiersvc.GCPercent) unless GOGC is set, and restores the
// previous one when it ends: the load tests measure what serve would do.
func serveGC(tb testing.TB) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return
	}
	old := debug.SetGCPercent(verifiersvc.GCPercent)
	tb.Cleanup(func() { debug.SetGCPercent(old) })
}
