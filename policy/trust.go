package policy

// TrustVector is an AR4SI trustworthiness vector (draft-ietf-rats-ar4si
// §2.3.2; EAR's ear.trustworthiness-vector). 0 means no claim; 2 is
// affirming; 32–95 warning; 96–127 contraindicated.
//
// An appraisal sets a category to 2 when the policy checked it and every
// rule of the category passed, and to the category's contraindicated
// value when one failed (see the package documentation for which rule
// belongs to which category). A Rego policy may set any category through
// its trust_vector rule; failed rules override it.
type TrustVector struct {
	InstanceIdentity int8 `json:"instance-identity"`
	Configuration    int8 `json:"configuration"`
	Executables      int8 `json:"executables"`
	FileSystem       int8 `json:"file-system"`
	Hardware         int8 `json:"hardware"`
	RuntimeOpaque    int8 `json:"runtime-opaque"`
	StorageOpaque    int8 `json:"storage-opaque"`
	SourcedData      int8 `json:"sourced-data"`
}

// AR4SI values used by tdproof.
const (
	TrustNone            int8 = 0
	TrustAffirming       int8 = 2
	TrustContraindicated int8 = 96
	// TrustHardwareUnsafe is hardware's value for a platform whose TCB
	// is not acceptable (AR4SI "unsafe", contraindicated tier).
	TrustHardwareUnsafe int8 = 97
	// TrustExecutablesUnrecognized is executables' value when a
	// measurement does not match its reference value.
	TrustExecutablesUnrecognized int8 = 96
)

// Category returns the trust-vector category a rule belongs to
// ("hardware", "configuration", "executables", "instance-identity"); rules
// tdproof does not know are "configuration".
func Category(rule string) string {
	switch rule {
	case RuleAuthentic, RuleTCBStatus, RuleCollateralExpired, RuleCollateralAge, RuleTCBDateAge,
		RuleAdvisoryIDs, RuleTCBEvalNum:
		return "hardware"
	case RuleReferenceValue, RuleEventsAfterSystemReady, RuleUnpinned:
		return "executables"
	case RuleAppID, RuleComposeHash, RuleReportData:
		return "instance-identity"
	}
	return "configuration"
}

func (v *TrustVector) ptr(cat string) *int8 {
	switch cat {
	case "hardware":
		return &v.Hardware
	case "executables":
		return &v.Executables
	case "instance-identity":
		return &v.InstanceIdentity
	case "configuration":
		return &v.Configuration
	case "file-system":
		return &v.FileSystem
	case "runtime-opaque":
		return &v.RuntimeOpaque
	case "storage-opaque":
		return &v.StorageOpaque
	case "sourced-data":
		return &v.SourcedData
	}
	return nil
}

func (v *TrustVector) fail(failed []Violation) {
	for _, f := range failed {
		p := v.ptr(Category(f.Rule))
		val := TrustContraindicated
		switch Category(f.Rule) {
		case "hardware":
			val = TrustHardwareUnsafe
		case "executables":
			val = TrustExecutablesUnrecognized
		}
		*p = val
	}
}

// Set sets the value of the category named cat (the AR4SI JSON name:
// "instance-identity", "configuration", "executables", "file-system",
// "hardware", "runtime-opaque", "storage-opaque", "sourced-data") and
// reports whether the name is known.
func (v *TrustVector) Set(cat string, val int8) bool {
	p := v.ptr(cat)
	if p == nil {
		return false
	}
	*p = val
	return true
}
