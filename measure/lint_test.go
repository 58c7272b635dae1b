package measure_test

import (
	"slices"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

func TestLint(t *testing.T) {
	ids := func(f []measure.Finding) []string {
		var out []string
		for _, x := range f {
			out = append(out, x.ID)
			if x.Severity != "warning" || x.Message == "" {
				t.Errorf("finding %+v", x)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		cmdline string
		meta    *measure.Metadata
		want    []string
	}{
		{"dstack template", dstackCmdline + measure.InitrdArg, nil, nil},
		{"empty", "", &measure.Metadata{IsDev: true}, []string{
			measure.LintEntropyTrustCPU, measure.LintEntropyTrustBootloader, measure.LintClockTSCReliable,
			measure.LintClockNoKVMClock, measure.LintRootfsUnbound, measure.LintOopsNoPanic, measure.LintDevImage}},
		{"last value wins", dstackCmdline + " random.trust_cpu=n random.trust-bootloader=y", nil, []string{measure.LintEntropyTrustCPU, measure.LintEntropyTrustBootloader}},
		{"after --", "console=ttyS0 -- random.trust_cpu=y random.trust_bootloader=n tsc=reliable no-kvmclock dstack.rootfs_hash=ab oops=panic", nil, []string{
			measure.LintEntropyTrustCPU, measure.LintEntropyTrustBootloader, measure.LintClockTSCReliable,
			measure.LintClockNoKVMClock, measure.LintRootfsUnbound, measure.LintOopsNoPanic}},
		{"quoted", `random.trust_cpu="y" random.trust_bootloader=n tsc=unstable tsc=reliable no-kvmclock dstack.rootfs_hash= oops=panic foo="a b"`, nil, []string{measure.LintRootfsUnbound}},
	} {
		if got := ids(measure.Lint(tc.cmdline, tc.meta)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
