package ear

import (
	"fmt"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/jsonappend"
)

// Status is an EAR trust tier ("ear.status"). Its numeric values are the
// AR4SI tier values; its JSON and text form is the EAR name ("affirming").
// The zero value is [StatusNone].
type Status int8

// The four EAR statuses, in increasing order of severity.
const (
	// StatusNone: the verifier makes no claim (e.g. nothing was appraised).
	StatusNone Status = 0
	// StatusAffirming: the verifier affirms the attester's trustworthiness.
	StatusAffirming Status = 2
	// StatusWarning: the attester is usable with caution (e.g. OutOfDate TCB).
	StatusWarning Status = 32
	// StatusContraindicated: the attester must not be trusted.
	StatusContraindicated Status = 96
)

var statusNames = map[Status]string{
	StatusNone:            "none",
	StatusAffirming:       "affirming",
	StatusWarning:         "warning",
	StatusContraindicated: "contraindicated",
}

// Statuses lists every valid Status, least severe first.
func Statuses() []Status {
	return []Status{StatusNone, StatusAffirming, StatusWarning, StatusContraindicated}
}

// String returns the EAR name, or "Status(n)" for an invalid value.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", int8(s))
}

// Valid reports whether s is one of the four EAR statuses.
func (s Status) Valid() bool {
	_, ok := statusNames[s]
	return ok
}

// MarshalText returns the EAR name; it fails for an invalid Status.
func (s Status) MarshalText() ([]byte, error) {
	if n, ok := statusNames[s]; ok {
		return []byte(n), nil
	}
	return nil, fmt.Errorf("%w: status %d", ErrClaims, int8(s))
}

// UnmarshalText accepts exactly the four EAR names.
func (s *Status) UnmarshalText(b []byte) error {
	for v, n := range statusNames {
		if string(b) == n {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("%w: unknown ear.status %q", ErrMalformed, b)
}

// severity orders statuses: none < affirming < warning < contraindicated.
// An invalid status is the most severe (fail closed).
func (s Status) severity() int {
	switch s {
	case StatusNone:
		return 0
	case StatusAffirming:
		return 1
	case StatusWarning:
		return 2
	default:
		return 3
	}
}

// Worst returns the more severe of s and t.
func (s Status) Worst(t Status) Status {
	if t.severity() > s.severity() {
		return t
	}
	return s
}

// Claim is one AR4SI trustworthiness claim value (-128…127). Its tier is
// given by [Claim.Tier]; the constants below are the values defined by
// draft-ietf-rats-ar4si (the same numbers as github.com/veraison/ear).
type Claim int8

// Generic claim values, valid for every trust-vector entry.
const (
	VerifierMalfunction    Claim = -1 // verifier error; tier none
	NoClaim                Claim = 0  // nothing claimed; tier none
	UnexpectedEvidence     Claim = 1  // evidence not understood; tier none
	CryptoValidationFailed Claim = 99 // signature or chain invalid; contraindicated
)

// Instance-identity claim values.
const (
	InstanceTrustworthy   Claim = 2
	InstanceUntrustworthy Claim = 96
	InstanceUnrecognized  Claim = 97
)

// Configuration claim values.
const (
	ConfigApproved      Claim = 2
	ConfigNoVulns       Claim = 3
	ConfigUnsafe        Claim = 32
	ConfigUnsupportable Claim = 96
)

// Executables claim values.
const (
	RuntimeApproved        Claim = 2
	BootApproved           Claim = 3
	RuntimeUnsafe          Claim = 32
	RuntimeUnrecognized    Claim = 33
	RuntimeContraindicated Claim = 96
)

// File-system claim values.
const (
	FilesApproved        Claim = 2
	FilesUnrecognized    Claim = 32
	FilesContraindicated Claim = 96
)

// Hardware claim values.
const (
	HardwareGenuine         Claim = 2
	HardwareUnsafe          Claim = 32
	HardwareContraindicated Claim = 96
	HardwareUnrecognized    Claim = 97
)

// Runtime-opaque claim values.
const (
	MemoryEncrypted Claim = 2
	MemoryIsolated  Claim = 32
	MemoryVisible   Claim = 96
)

// Storage-opaque claim values.
const (
	SecretsHWKeysEncrypted Claim = 2
	SecretsSWKeysEncrypted Claim = 32
	SecretsUnencrypted     Claim = 96
)

// Sourced-data claim values.
const (
	SourcesTrusted         Claim = 2
	SourcesUntrusted       Claim = 32
	SourcesContraindicated Claim = 96
)

// Tier returns the status band of c as defined by AR4SI: -1…1 none,
// 2…31 and -32…-2 affirming, 32…95 and -96…-33 warning, the rest
// contraindicated.
func (c Claim) Tier() Status {
	v := int(c)
	switch {
	case v >= -1 && v <= 1:
		return StatusNone
	case (v >= 2 && v <= 31) || (v >= -32 && v <= -2):
		return StatusAffirming
	case (v >= 32 && v <= 95) || (v >= -96 && v <= -33):
		return StatusWarning
	default:
		return StatusContraindicated
	}
}

// TrustVector is the AR4SI trustworthiness vector
// ("ear.trustworthiness-vector"). The zero value claims nothing. All eight
// entries are always serialized, as Trustee and Veraison do.
type TrustVector struct {
	InstanceIdentity Claim `json:"instance-identity"`
	Configuration    Claim `json:"configuration"`
	Executables      Claim `json:"executables"`
	FileSystem       Claim `json:"file-system"`
	Hardware         Claim `json:"hardware"`
	RuntimeOpaque    Claim `json:"runtime-opaque"`
	StorageOpaque    Claim `json:"storage-opaque"`
	SourcedData      Claim `json:"sourced-data"`
}

// AppendJSON appends v as json.Marshal writes it (each claim a number),
// without reflection: the signed payload and the verification result
// encode one per request.
func (v TrustVector) AppendJSON(dst []byte) []byte {
	return jsonappend.IntObject(dst,
		jsonappend.IntMember{Name: "instance-identity", Value: int64(v.InstanceIdentity)},
		jsonappend.IntMember{Name: "configuration", Value: int64(v.Configuration)},
		jsonappend.IntMember{Name: "executables", Value: int64(v.Executables)},
		jsonappend.IntMember{Name: "file-system", Value: int64(v.FileSystem)},
		jsonappend.IntMember{Name: "hardware", Value: int64(v.Hardware)},
		jsonappend.IntMember{Name: "runtime-opaque", Value: int64(v.RuntimeOpaque)},
		jsonappend.IntMember{Name: "storage-opaque", Value: int64(v.StorageOpaque)},
		jsonappend.IntMember{Name: "sourced-data", Value: int64(v.SourcedData)})
}

// Status returns the worst tier among the eight claims ("worst claim wins",
// Trustee's update_status_from_trust_vector); the zero vector is
// [StatusNone].
func (v TrustVector) Status() Status {
	s := StatusNone
	for _, c := range [...]Claim{v.InstanceIdentity, v.Configuration, v.Executables, v.FileSystem,
		v.Hardware, v.RuntimeOpaque, v.StorageOpaque, v.SourcedData} {
		s = s.Worst(c.Tier())
	}
	return s
}

// Check is the outcome of one group of policy rules, as seen by [Derive].
// The zero value is [NotChecked].
type Check uint8

// Check values.
const (
	NotChecked Check = iota // no rule of the group applied (no reference value, no allow-list)
	Passed                  // every rule of the group passed
	Failed                  // at least one rule of the group failed
)

// Summary is the small, plain input of [Derive]: what the verifier and the
// policy found about one TDX (or SGX) evidence item. The policy package
// fills it; the zero value (not authentic) derives a contraindicated result.
type Summary struct {
	// Authentic: the quote signature, PCK chain, revocation and QE identity
	// verified (dcap.Verify returned no error).
	Authentic bool
	// TCBStatus is the platform TCB status from DCAP. If zero (Unknown),
	// the hardware claim is HardwareUnrecognized.
	TCBStatus collateral.TCBStatus
	// Debug: the TD (or enclave) has its DEBUG attribute set.
	Debug bool
	// Measurements: MRTD/RTMRs (or MRENCLAVE) against reference values.
	Measurements Check
	// Configuration: TD attributes, XFAM, SEPT_VE_DISABLE, MRCONFIGID,
	// MRSERVICETD and similar configuration rules.
	Configuration Check
	// Identity: instance or application identity allow-lists (e.g. dstack
	// app id, MRSIGNER).
	Identity Check
	// Rejected: the appraisal policy denied the evidence. It forces the
	// status to contraindicated whatever the vector says, since a policy
	// may reject for reasons no AR4SI claim names (an advisory id).
	Rejected bool
}

// Derive maps a [Summary] to an AR4SI trust vector and the EAR status for
// Intel TDX / SGX evidence. The rules, applied in this order:
//
//   - Not authentic: instance-identity and hardware are
//     CryptoValidationFailed (99), every other claim NoClaim; contraindicated.
//   - Hardware from the TCB status: UpToDate → HardwareGenuine (2);
//     SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded,
//     OutOfDate, OutOfDateConfigurationNeeded, TDRelaunchAdvised and
//     TDRelaunchAdvisedConfigurationNeeded → HardwareUnsafe (32, warning);
//     Revoked → HardwareContraindicated (96); Unknown → HardwareUnrecognized (97).
//   - Runtime-opaque: MemoryEncrypted (2, TDX/SGX private memory), or
//     MemoryVisible (96) for a debug TD whose memory the host can read.
//   - Executables: Passed → RuntimeApproved (2), Failed or NotChecked →
//     RuntimeUnrecognized (33, warning): a result is affirming only when
//     reference values vouched for the code it runs; a debug TD →
//     RuntimeContraindicated (96).
//   - Configuration: Passed → ConfigApproved (2), Failed → ConfigUnsafe (32),
//     NotChecked → NoClaim; a debug TD → ConfigUnsupportable (96).
//   - Instance-identity: Passed → InstanceTrustworthy (2), Failed →
//     InstanceUntrustworthy (96), NotChecked → NoClaim.
//   - File-system, storage-opaque and sourced-data: NoClaim (TDX has no
//     sealing and tdproof appraises no file system).
//
// The status is [TrustVector.Status], raised to contraindicated when
// Rejected is set. Derive is pure and safe for concurrent use.
func Derive(s Summary) (TrustVector, Status) {
	var v TrustVector
	if !s.Authentic {
		v.InstanceIdentity = CryptoValidationFailed
		v.Hardware = CryptoValidationFailed
		return v, StatusContraindicated
	}
	switch s.TCBStatus {
	case collateral.UpToDate:
		v.Hardware = HardwareGenuine
	case collateral.SWHardeningNeeded, collateral.ConfigurationNeeded,
		collateral.ConfigurationAndSWHardeningNeeded, collateral.OutOfDate,
		collateral.OutOfDateConfigurationNeeded, collateral.TDRelaunchAdvised,
		collateral.TDRelaunchAdvisedConfigurationNeeded:
		v.Hardware = HardwareUnsafe
	case collateral.Revoked:
		v.Hardware = HardwareContraindicated
	default:
		v.Hardware = HardwareUnrecognized
	}
	v.RuntimeOpaque = MemoryEncrypted
	// Absence is not approval: code no reference value recognised is
	// unrecognized, never NoClaim.
	v.Executables = RuntimeUnrecognized
	if s.Measurements == Passed {
		v.Executables = RuntimeApproved
	}
	v.Configuration = pick(s.Configuration, ConfigApproved, ConfigUnsafe)
	v.InstanceIdentity = pick(s.Identity, InstanceTrustworthy, InstanceUntrustworthy)
	if s.Debug {
		v.RuntimeOpaque = MemoryVisible
		v.Executables = RuntimeContraindicated
		v.Configuration = ConfigUnsupportable
	}
	st := v.Status()
	if s.Rejected {
		st = StatusContraindicated
	}
	return v, st
}

func pick(c Check, pass, fail Claim) Claim {
	switch c {
	case Passed:
		return pass
	case NotChecked:
		return NoClaim
	default:
		return fail
	}
}
