package collateral

import (
	"errors"
	"fmt"
)

// ErrMalformed: collateral that does not parse or lacks a required field.
var ErrMalformed = errors.New("collateral: malformed")

// ErrNotFound: a required piece of collateral is absent (for example a
// PCS directory without the TCB info for the quote's FMSPC).
var ErrNotFound = errors.New("collateral: not found")

// TCBStatus is a TCB level status, in Intel's spelling. The collateral
// vocabulary is UpToDate … Revoked; the verifier's results add the TD
// relaunch statuses.
type TCBStatus int

// TCB statuses. The zero value is not a valid status.
const (
	StatusUnknown TCBStatus = iota
	UpToDate
	SWHardeningNeeded
	ConfigurationNeeded
	ConfigurationAndSWHardeningNeeded
	OutOfDate
	OutOfDateConfigurationNeeded
	Revoked
	TDRelaunchAdvised
	TDRelaunchAdvisedConfigurationNeeded
)

var statusNames = [...]string{
	StatusUnknown:                        "Unknown",
	UpToDate:                             "UpToDate",
	SWHardeningNeeded:                    "SWHardeningNeeded",
	ConfigurationNeeded:                  "ConfigurationNeeded",
	ConfigurationAndSWHardeningNeeded:    "ConfigurationAndSWHardeningNeeded",
	OutOfDate:                            "OutOfDate",
	OutOfDateConfigurationNeeded:         "OutOfDateConfigurationNeeded",
	Revoked:                              "Revoked",
	TDRelaunchAdvised:                    "TDRelaunchAdvised",
	TDRelaunchAdvisedConfigurationNeeded: "TDRelaunchAdvisedConfigurationNeeded",
}

func (s TCBStatus) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("TCBStatus(%d)", int(s))
}

// AllStatuses lists every valid status (not StatusUnknown).
func AllStatuses() []TCBStatus {
	return []TCBStatus{UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded,
		OutOfDate, OutOfDateConfigurationNeeded, Revoked, TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded}
}

// ParseTCBStatus parses a status name in Intel's spelling.
func ParseTCBStatus(s string) (TCBStatus, error) {
	for i, n := range statusNames {
		if i != int(StatusUnknown) && n == s {
			return TCBStatus(i), nil
		}
	}
	return StatusUnknown, fmt.Errorf("%w: unknown TCB status %q", ErrMalformed, s)
}

// MarshalText encodes the status in Intel's spelling.
func (s TCBStatus) MarshalText() ([]byte, error) {
	if s <= StatusUnknown || int(s) >= len(statusNames) {
		return nil, fmt.Errorf("collateral: cannot marshal %v", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a status in Intel's spelling.
func (s *TCBStatus) UnmarshalText(b []byte) error {
	v, err := ParseTCBStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// collateralStatus reports whether s may appear in a TCB level of
// collateral (the relaunch statuses are results, never inputs).
func collateralStatus(s TCBStatus) bool { return s >= UpToDate && s <= Revoked }

// IdentityLevelStatus reports whether s may appear in a TCB level of a
// TDX module identity or an enclave (QE) identity: Intel's QVL accepts
// only UpToDate, OutOfDate and Revoked there.
func IdentityLevelStatus(s TCBStatus) bool { return s == UpToDate || s == OutOfDate || s == Revoked }
