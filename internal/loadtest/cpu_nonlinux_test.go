//go:build !linux

package loadtest

import "time"

// childCPU cannot read another process's CPU time on this system.
func childCPU(int) (time.Duration, bool) { return 0, false }
