package dcap

import "github.com/tdproof/tdproof/collateral"

// withOutOfDate applies an OutOfDate component (TDX module or QE) to a
// status, Intel's convergence rule (dcap.md §2.5).
func withOutOfDate(s Status) Status {
	switch s {
	case collateral.UpToDate, collateral.SWHardeningNeeded:
		return collateral.OutOfDate
	case collateral.ConfigurationNeeded, collateral.ConfigurationAndSWHardeningNeeded:
		return collateral.OutOfDateConfigurationNeeded
	}
	return s
}

// convergeComponent folds a module or QE status into s.
func convergeComponent(s, component Status) Status {
	switch component {
	case collateral.Revoked:
		return collateral.Revoked
	case collateral.OutOfDate:
		return withOutOfDate(s)
	}
	return s
}

// Convergence inputs for one TD: the platform level status and the
// module level status (0 when there is no versioned module) for the
// launch TCB (TEE_TCB_SVN) and, for TD 1.5, the current TCB (TEE_TCB_SVN2).
type convergeInput struct {
	platform, module               Status
	td15                           bool
	currentPlatform, currentModule Status
	qe                             Status
}

// converge returns the final status, Intel QVL 2026 semantics: module
// first, then TD relaunch (TD 1.5, unless the QE is OutOfDate or Revoked),
// then the QE.
func converge(in convergeInput) Status {
	s := convergeComponent(in.platform, in.module)
	if in.td15 && in.qe != collateral.OutOfDate && in.qe != collateral.Revoked {
		cur := convergeComponent(in.currentPlatform, in.currentModule)
		if s == collateral.OutOfDate || s == collateral.OutOfDateConfigurationNeeded {
			switch cur {
			case collateral.UpToDate, collateral.SWHardeningNeeded:
				if s == collateral.OutOfDateConfigurationNeeded {
					return collateral.TDRelaunchAdvisedConfigurationNeeded
				}
				return collateral.TDRelaunchAdvised
			case collateral.ConfigurationNeeded, collateral.ConfigurationAndSWHardeningNeeded:
				return collateral.TDRelaunchAdvisedConfigurationNeeded
			}
		}
	}
	return convergeComponent(s, in.qe)
}
