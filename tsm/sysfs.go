package tsm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultSysfsRoot is where sysfs is mounted.
const DefaultSysfsRoot = "/sys"

// Paths below the sysfs root.
const (
	// MeasurementsDir holds the tsm-mr attributes of a TDX guest (Linux
	// ≥ 6.16): mrtd:sha384 (read only) and rtmr0–3:sha384 (read = current
	// value, write of exactly 48 bytes = extend).
	MeasurementsDir = "class/misc/tdx_guest/measurements"
	// CCELPath is the ACPI CCEL table data: the firmware event log.
	CCELPath = "firmware/acpi/tables/data/CCEL"
)

// ErrRTMRIndex means an RTMR index outside 0–3.
var ErrRTMRIndex = errors.New("tsm: RTMR index out of range")

// Sysfs reaches the TDX guest's sysfs attributes. It implements
// [RTMRExtender] and [EventLogReader].
type Sysfs struct {
	// Root is the sysfs mount point; "" means [DefaultSysfsRoot]. Tests
	// point it at a temporary directory.
	Root string
}

func (s Sysfs) path(rel string) string {
	root := s.Root
	if root == "" {
		root = DefaultSysfsRoot
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

// RTMRPath returns the sysfs attribute of RTMR index.
func (s Sysfs) RTMRPath(index int) string {
	return s.path(fmt.Sprintf("%s/rtmr%d:sha384", MeasurementsDir, index))
}

// ExtendRTMR extends RTMR index (0–3; the agent extends only RTMR3) by
// writing exactly the 48 digest bytes in one write at offset 0, as the
// kernel requires. A missing attribute gives an error wrapping
// [ErrUnavailable] with its path.
func (s Sysfs) ExtendRTMR(index int, digest [48]byte) error {
	if index < 0 || index > 3 {
		return fmt.Errorf("%w: %d", ErrRTMRIndex, index)
	}
	p := s.RTMRPath(index)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &UnavailableError{What: "tsm-mr RTMR", Path: p, Err: err}
		}
		return fmt.Errorf("tsm: extend RTMR%d: %w", index, err)
	}
	n, werr := f.Write(digest[:])
	cerr := f.Close()
	switch {
	case werr != nil:
		return fmt.Errorf("tsm: extend RTMR%d: %w", index, werr)
	case n != len(digest):
		return fmt.Errorf("tsm: extend RTMR%d: short write (%d of %d bytes)", index, n, len(digest))
	case cerr != nil:
		return fmt.Errorf("tsm: extend RTMR%d: %w", index, cerr)
	}
	return nil
}

// ReadRTMR returns the current value of RTMR index (0–3).
func (s Sysfs) ReadRTMR(index int) ([48]byte, error) {
	var out [48]byte
	if index < 0 || index > 3 {
		return out, fmt.Errorf("%w: %d", ErrRTMRIndex, index)
	}
	p := s.RTMRPath(index)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, &UnavailableError{What: "tsm-mr RTMR", Path: p, Err: err}
		}
		return out, fmt.Errorf("tsm: read RTMR%d: %w", index, err)
	}
	if len(b) != len(out) {
		return out, fmt.Errorf("tsm: read RTMR%d: %d bytes, want %d", index, len(b), len(out))
	}
	copy(out[:], b)
	return out, nil
}

// ReadCCEL returns the CCEL table data. A missing table gives an error
// wrapping [ErrUnavailable] with its path.
func (s Sysfs) ReadCCEL() ([]byte, error) {
	p := s.path(CCELPath)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &UnavailableError{What: "CCEL", Path: p, Err: err}
		}
		return nil, fmt.Errorf("tsm: read CCEL: %w", err)
	}
	return b, nil
}
