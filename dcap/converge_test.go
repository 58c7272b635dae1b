package dcap

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
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

// td15TCBInfo is a TDX TCB info for TestConvergeTD15CurrentTCB: platform
// levels with TDX components 05 00 02… (top, status given) and
// 04 00 01… (OutOfDate); module identities TDX_01 (isvsvn 3 UpToDate,
// 2 OutOfDate, 1 Revoked) and TDX_03 (isvsvn 3 UpToDate).
func td15TCBInfo(top Status, sgx [16]uint8, pcesvn uint16) *collateral.TCBInfo {
	d := time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC)
	level := func(isvsvn uint16, s Status) collateral.ISVSVNLevel {
		return collateral.ISVSVNLevel{ISVSVN: isvsvn, TCBDate: d, TCBStatus: s}
	}
	return &collateral.TCBInfo{
		ID: "TDX", Version: 3, TDXModule: &collateral.TDXModule{},
		TDXModuleIdentities: []collateral.TDXModuleIdentity{
			{ID: "TDX_01", TCBLevels: []collateral.ISVSVNLevel{level(3, utd), level(2, ood), level(1, rev)}},
			{ID: "TDX_03", TCBLevels: []collateral.ISVSVNLevel{level(3, utd)}},
		},
		TCBLevels: []collateral.TCBLevel{
			{SGXComponents: sgx, PCESVN: pcesvn, TDXComponents: [16]uint8{5, 0, 2}, TCBDate: d, TCBStatus: top},
			{SGXComponents: sgx, PCESVN: pcesvn, TDXComponents: [16]uint8{4, 0, 1}, TCBDate: d, TCBStatus: ood},
		},
	}
}

// TestConvergeTD15CurrentTCB drives TD 1.5 evaluation (launch TCB from
// TEE_TCB_SVN, current TCB from TEE_TCB_SVN2) and convergence together,
// as Intel's QVL does (dcap.md §2.4, §2.5, §2.10): the current TCB is
// evaluated on every TD 1.5 quote and a failure there is terminal.
func TestConvergeTD15CurrentTCB(t *testing.T) {
	sgx := [16]uint8{3, 3, 2, 2, 4, 1, 0, 5}
	tcb := pckcert.TCB{Components: sgx, PCESVN: 13}
	cases := []struct {
		name            string
		top             Status // status of the newest platform level
		launch, current [16]byte
		td10            bool // a TD 1.0 body: TEE_TCB_SVN2 is not evaluated
		qe              Status
		want            Status
		wantErr         error
	}{
		{name: "both up to date", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, want: utd},
		{name: "launch module OutOfDate, current up to date", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, want: rla},
		{name: "current on another module version", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 3, 2}, qe: utd, want: rla},
		{name: "current module version 0 compares all 16 bytes", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{5, 0, 2}, qe: utd, want: rla},
		{name: "configuration needed", top: cn, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, want: rlacn},
		{name: "configuration and SW hardening needed", top: cnswh, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, want: rlacn},
		{name: "SW hardening needed", top: swh, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, want: rla},
		{name: "both module OutOfDate", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{2, 1, 2}, qe: utd, want: ood},
		{name: "both module OutOfDate, configuration needed", top: cn, launch: [16]byte{2, 1, 2}, current: [16]byte{2, 1, 2}, qe: utd, want: oodcn},
		{name: "launch module OutOfDate, current platform OutOfDate", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 1}, qe: utd, want: ood},
		{name: "launch up to date, current platform OutOfDate", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{3, 1, 1}, qe: utd, want: utd},
		{name: "current module Revoked", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{1, 1, 2}, qe: utd, want: ood},
		{name: "QE OutOfDate: no relaunch", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, qe: ood, want: ood},
		{name: "QE Revoked", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, qe: rev, want: rev},
		{name: "launch module Revoked", top: utd, launch: [16]byte{1, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, want: rev},
		// Terminal: the current TCB cannot be evaluated.
		{name: "current module has no identity", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{3, 7, 2}, qe: utd, wantErr: ErrTCBNotSupported},
		{name: "current module has no identity, launch OutOfDate", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 7, 2}, qe: utd, wantErr: ErrTCBNotSupported},
		{name: "current module SVN below every level", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{0, 1, 2}, qe: utd, wantErr: ErrTCBNotSupported},
		{name: "current TCB below every platform level", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{3, 1, 0}, qe: utd, wantErr: ErrTCBNotSupported},
		{name: "current module version 0 below every platform level", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{3, 0, 2}, qe: utd, wantErr: ErrTCBNotSupported},
		// Terminal: the launch TCB cannot be evaluated.
		{name: "launch module SVN below every level", top: utd, launch: [16]byte{0, 1, 2}, current: [16]byte{3, 1, 2}, qe: utd, wantErr: ErrTCBNotSupported},
		{name: "launch module has no identity", top: utd, launch: [16]byte{3, 7, 2}, current: [16]byte{3, 1, 2}, qe: utd, wantErr: ErrTDXModuleMismatch},
		{name: "launch TCB below every platform level", top: utd, launch: [16]byte{3, 1, 0}, current: [16]byte{3, 1, 2}, qe: utd, wantErr: ErrTCBNotSupported},
		// TD 1.0 has no current TCB.
		{name: "TD 1.0 ignores TEE_TCB_SVN2", top: utd, launch: [16]byte{3, 1, 2}, current: [16]byte{0, 7, 0}, td10: true, qe: utd, want: utd},
		{name: "TD 1.0 module OutOfDate", top: utd, launch: [16]byte{2, 1, 2}, current: [16]byte{3, 1, 2}, td10: true, qe: utd, want: ood},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := td15TCBInfo(c.top, sgx, tcb.PCESVN)
			td := &quote.TDReport{TEETCBSVN: c.launch, TEETCBSVN2: c.current, TD15: !c.td10}
			e, err := evaluateTD(info, &tcb, td)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || e != nil {
					t.Fatalf("evaluateTD = %+v, %v; want error %v", e, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("evaluateTD: %v", err)
			}
			if got := converge(e.input(c.qe)); got != c.want {
				t.Errorf("status %v, want %v (input %+v)", got, c.want, e.input(c.qe))
			}
		})
	}
}
