package dcap

import (
	"fmt"
	"testing"

	"github.com/tdproof/tdproof/collateral"
)

const (
	utd   = collateral.UpToDate
	swh   = collateral.SWHardeningNeeded
	cn    = collateral.ConfigurationNeeded
	cnswh = collateral.ConfigurationAndSWHardeningNeeded
	ood   = collateral.OutOfDate
	oodcn = collateral.OutOfDateConfigurationNeeded
	rev   = collateral.Revoked
	rla   = collateral.TDRelaunchAdvised
	rlacn = collateral.TDRelaunchAdvisedConfigurationNeeded
	none  = collateral.StatusUnknown // no versioned module
)

// outOfDateOf is dcap.md §2.5's table: what an OutOfDate component (TDX
// module or QE) turns a platform status into.
var outOfDateOf = map[Status]Status{
	utd: ood, swh: ood, cn: oodcn, cnswh: oodcn, ood: ood, oodcn: oodcn, rev: rev,
}

// TestConvergeAllCombinations covers every platform × module × QE
// status combination (TD 1.0, no relaunch).
func TestConvergeAllCombinations(t *testing.T) {
	platforms := []Status{utd, swh, cn, cnswh, ood, oodcn, rev}
	modules := []Status{none, utd, ood, rev}
	qes := []Status{utd, ood, rev}
	n := 0
	for _, p := range platforms {
		for _, m := range modules {
			for _, q := range qes {
				want := p
				if m == ood {
					want = outOfDateOf[want]
				}
				if q == ood {
					want = outOfDateOf[want]
				}
				if p == rev || m == rev || q == rev {
					want = rev
				}
				got := converge(convergeInput{platform: p, module: m, qe: q})
				if got != want {
					t.Errorf("converge(platform %v, module %v, QE %v) = %v, want %v", p, m, q, got, want)
				}
				n++
			}
		}
	}
	if n != 7*4*3 {
		t.Fatalf("covered %d combinations", n)
	}
}

// TestConvergeRelaunch covers TD 1.5 relaunch (dcap.md §2.5, §2.10).
func TestConvergeRelaunch(t *testing.T) {
	cases := []struct {
		launchPlatform, launchModule   Status
		currentPlatform, currentModule Status
		qe                             Status
		want                           Status
	}{
		// Launch OutOfDate through the module, current UpToDate.
		{utd, ood, utd, utd, utd, rla},
		{swh, ood, swh, utd, utd, rla},
		// Configuration needed on either side.
		{cn, ood, cn, utd, utd, rlacn},
		{cnswh, ood, cnswh, utd, utd, rlacn},
		{utd, ood, cn, utd, utd, rlacn},
		// Both OutOfDate: no relaunch helps.
		{utd, ood, utd, ood, utd, ood},
		{cn, ood, cn, ood, utd, oodcn},
		// Platform OutOfDate at launch and now.
		{ood, utd, ood, utd, utd, ood},
		{oodcn, utd, oodcn, utd, utd, oodcn},
		// Launch up to date: nothing to advise.
		{utd, utd, utd, utd, utd, utd},
		{cn, utd, cn, utd, utd, cn},
		// QE OutOfDate or Revoked: no relaunch, QE convergence applies.
		{utd, ood, utd, utd, ood, ood},
		{cn, ood, cn, utd, ood, oodcn},
		{utd, ood, utd, utd, rev, rev},
		// Revoked anywhere at launch stays Revoked.
		{rev, utd, utd, utd, utd, rev},
		{utd, rev, utd, utd, utd, rev},
		// Current TCB revoked: no relaunch.
		{utd, ood, utd, rev, utd, ood},
	}
	for _, c := range cases {
		name := fmt.Sprintf("launch=%v+%v/current=%v+%v/qe=%v", c.launchPlatform, c.launchModule, c.currentPlatform, c.currentModule, c.qe)
		t.Run(name, func(t *testing.T) {
			got := converge(convergeInput{platform: c.launchPlatform, module: c.launchModule, td15: true,
				currentPlatform: c.currentPlatform, currentModule: c.currentModule, qe: c.qe})
			if got != c.want {
				t.Errorf("converge = %v, want %v", got, c.want)
			}
		})
	}
}
