package ear_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
)

func TestStatusText(t *testing.T) {
	t.Parallel()
	names := map[ear.Status]string{ear.StatusNone: "none", ear.StatusAffirming: "affirming",
		ear.StatusWarning: "warning", ear.StatusContraindicated: "contraindicated"}
	for _, s := range ear.Statuses() {
		b, err := s.MarshalText()
		if err != nil || string(b) != names[s] || s.String() != names[s] {
			t.Errorf("MarshalText(%d) = %q, %v; want %q", int8(s), b, err, names[s])
		}
		var back ear.Status
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
	}
	var s ear.Status
	if err := json.Unmarshal([]byte(`"Affirming"`), &s); !errors.Is(err, ear.ErrMalformed) {
		t.Errorf("Unmarshal(Affirming) = %v, want ErrMalformed", err)
	}
	if _, err := ear.Status(5).MarshalText(); err == nil {
		t.Error("MarshalText(5) succeeded")
	}
}

func TestClaimTier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    ear.Claim
		want ear.Status
	}{
		{-128, ear.StatusContraindicated}, {-97, ear.StatusContraindicated}, {-96, ear.StatusWarning},
		{-33, ear.StatusWarning}, {-32, ear.StatusAffirming}, {-2, ear.StatusAffirming},
		{ear.VerifierMalfunction, ear.StatusNone}, {ear.NoClaim, ear.StatusNone}, {ear.UnexpectedEvidence, ear.StatusNone},
		{2, ear.StatusAffirming}, {31, ear.StatusAffirming}, {32, ear.StatusWarning}, {95, ear.StatusWarning},
		{96, ear.StatusContraindicated}, {ear.CryptoValidationFailed, ear.StatusContraindicated}, {127, ear.StatusContraindicated},
	}
	for _, tc := range tests {
		if got := tc.c.Tier(); got != tc.want {
			t.Errorf("Claim(%d).Tier() = %v, want %v", tc.c, got, tc.want)
		}
	}
	if got := (ear.TrustVector{}).Status(); got != ear.StatusNone {
		t.Errorf("zero TrustVector.Status() = %v", got)
	}
}

func TestDerive(t *testing.T) {
	t.Parallel()
	ok := ear.Summary{Authentic: true, TCBStatus: collateral.UpToDate, Measurements: ear.Passed,
		Configuration: ear.Passed, Identity: ear.Passed}
	with := func(f func(*ear.Summary)) ear.Summary { s := ok; f(&s); return s }
	tests := []struct {
		name  string
		in    ear.Summary
		check func(ear.TrustVector) bool
		want  ear.Status
	}{
		{"all good", ok, func(v ear.TrustVector) bool {
			return v == ear.TrustVector{InstanceIdentity: 2, Configuration: 2, Executables: 2, Hardware: 2, RuntimeOpaque: 2}
		}, ear.StatusAffirming},
		{"zero summary", ear.Summary{}, func(v ear.TrustVector) bool {
			return v == ear.TrustVector{InstanceIdentity: ear.CryptoValidationFailed, Hardware: ear.CryptoValidationFailed}
		}, ear.StatusContraindicated},
		{"out of date", with(func(s *ear.Summary) { s.TCBStatus = collateral.OutOfDate }),
			func(v ear.TrustVector) bool { return v.Hardware == ear.HardwareUnsafe }, ear.StatusWarning},
		{"sw hardening", with(func(s *ear.Summary) { s.TCBStatus = collateral.SWHardeningNeeded }),
			func(v ear.TrustVector) bool { return v.Hardware == ear.HardwareUnsafe }, ear.StatusWarning},
		{"relaunch advised", with(func(s *ear.Summary) { s.TCBStatus = collateral.TDRelaunchAdvised }),
			func(v ear.TrustVector) bool { return v.Hardware == ear.HardwareUnsafe }, ear.StatusWarning},
		{"revoked", with(func(s *ear.Summary) { s.TCBStatus = collateral.Revoked }),
			func(v ear.TrustVector) bool { return v.Hardware == ear.HardwareContraindicated }, ear.StatusContraindicated},
		{"unknown tcb", with(func(s *ear.Summary) { s.TCBStatus = collateral.StatusUnknown }),
			func(v ear.TrustVector) bool { return v.Hardware == ear.HardwareUnrecognized }, ear.StatusContraindicated},
		{"debug", with(func(s *ear.Summary) { s.Debug = true }), func(v ear.TrustVector) bool {
			return v.RuntimeOpaque == ear.MemoryVisible && v.Executables == ear.RuntimeContraindicated &&
				v.Configuration == ear.ConfigUnsupportable
		}, ear.StatusContraindicated},
		{"measurement mismatch", with(func(s *ear.Summary) { s.Measurements = ear.Failed }),
			func(v ear.TrustVector) bool { return v.Executables == ear.RuntimeUnrecognized }, ear.StatusWarning},
		{"no reference values", with(func(s *ear.Summary) { s.Measurements = ear.NotChecked }),
			func(v ear.TrustVector) bool { return v.Executables == ear.RuntimeUnrecognized }, ear.StatusWarning},
		{"invalid measurements check is not approval", with(func(s *ear.Summary) { s.Measurements = 9 }),
			func(v ear.TrustVector) bool { return v.Executables == ear.RuntimeUnrecognized }, ear.StatusWarning},
		{"config failed", with(func(s *ear.Summary) { s.Configuration = ear.Failed }),
			func(v ear.TrustVector) bool { return v.Configuration == ear.ConfigUnsafe }, ear.StatusWarning},
		{"identity failed", with(func(s *ear.Summary) { s.Identity = ear.Failed }),
			func(v ear.TrustVector) bool { return v.InstanceIdentity == ear.InstanceUntrustworthy }, ear.StatusContraindicated},
		{"invalid check fails closed", with(func(s *ear.Summary) { s.Identity = 9 }),
			func(v ear.TrustVector) bool { return v.InstanceIdentity == ear.InstanceUntrustworthy }, ear.StatusContraindicated},
		{"policy rejected", with(func(s *ear.Summary) { s.Rejected = true }),
			func(v ear.TrustVector) bool { return v.Status() == ear.StatusAffirming }, ear.StatusContraindicated},
	}
	for _, tc := range tests {
		v, st := ear.Derive(tc.in)
		if st != tc.want || !tc.check(v) {
			t.Errorf("Derive(%s) = %+v, %v; want status %v", tc.name, v, st, tc.want)
		}
	}
	// Every Intel TCB status maps to a hardware claim other than NoClaim.
	for s := collateral.StatusUnknown; s <= collateral.TDRelaunchAdvisedConfigurationNeeded; s++ {
		if v, _ := ear.Derive(with(func(x *ear.Summary) { x.TCBStatus = s })); v.Hardware == ear.NoClaim {
			t.Errorf("Derive(TCBStatus %v).Hardware = NoClaim", s)
		}
	}
}

func TestKeyPEM(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	pub, err := ear.NewVerificationKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pub.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ear.ParseKeyPEM(b)
	if err != nil || back.ID() != k.ID() || back.CanSign() {
		t.Errorf("ParseKeyPEM(public) = %v, %v", back, err)
	}
	priv, _ := k.MarshalPEM()
	for name, in := range map[string][]byte{
		"empty":    nil,
		"trailing": append(append([]byte{}, priv...), priv...),
		"type":     []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
		"garbage":  []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
	} {
		if k, err := ear.ParseKeyPEM(in); !errors.Is(err, ear.ErrMalformed) || k != nil {
			t.Errorf("ParseKeyPEM(%s) = %v, %v; want ErrMalformed", name, k, err)
		}
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if got, want := fmt.Sprintf(f, k), "ear.Key("+k.ID()+")"; got != want {
			t.Errorf("Sprintf(%s, key) = %q, want %q", f, got, want)
		}
	}
	if _, err := ear.NewKeySet(pub); !errors.Is(err, ear.ErrKey) {
		t.Errorf("NewKeySet(public only) = %v, want ErrKey", err)
	}
}
