//go:build !unix

package dcap

import "time"

// processCPU returns 0: the process CPU time is not read on this system.
func processCPU() time.Duration { return 0 }
