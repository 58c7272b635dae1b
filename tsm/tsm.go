// Package tsm reaches the attestation interfaces of a Linux TDX guest:
// quotes through configfs-tsm (github.com/google/go-configfs-tsm), RTMR
// extension through the tsm-mr sysfs attributes
// (/sys/class/misc/tdx_guest/measurements/rtmr3:sha384, Linux ≥ 6.16),
// and the firmware event log from the ACPI CCEL table
// (/sys/firmware/acpi/tables/data/CCEL), as the Linux kernel's
// configfs-tsm ABI (Documentation/ABI/testing/configfs-tsm) defines.
//
// The interfaces [Quoter], [RTMRExtender] and [EventLogReader] are what
// the agent uses; package tdsim implements them in software for machines
// without TDX. When an interface is missing, errors wrap
// [ErrUnavailable] and carry the path that was looked for
// ([*UnavailableError]).
package tsm

import (
	"context"
	"errors"
	"fmt"
)

// Quoter produces a TDX quote whose REPORTDATA is reportData.
type Quoter interface {
	Quote(ctx context.Context, reportData [64]byte) ([]byte, error)
}

// RTMRExtender extends a runtime measurement register: RTMR[index] =
// SHA-384(RTMR[index] ‖ digest).
type RTMRExtender interface {
	ExtendRTMR(index int, digest [48]byte) error
}

// EventLogReader returns the binary firmware event log (the CCEL region,
// a TCG crypto-agile log possibly followed by 0xFF fill), which
// eventlog.ParseCCEL parses.
type EventLogReader interface {
	ReadCCEL() ([]byte, error)
}

// ErrUnavailable means an attestation interface of the kernel is missing:
// not a TDX guest, a kernel without configfs-tsm or tsm-mr, configfs not
// mounted, or no CCEL table.
var ErrUnavailable = errors.New("tsm: attestation interface unavailable")

// UnavailableError says which interface is missing and where it was
// looked for. It matches [ErrUnavailable] with errors.Is.
type UnavailableError struct {
	// What names the interface: "configfs-tsm", "tsm-mr RTMR", "CCEL".
	What string
	// Path is the file or directory that is missing.
	Path string
	// Err is the underlying error, if any.
	Err error
}

func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("tsm: %s unavailable: %s not found", e.What, e.Path)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is [ErrUnavailable].
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }
